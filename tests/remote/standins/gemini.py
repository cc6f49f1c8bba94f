"""A stand-in for Gemini Live (``BidiGenerateContent`` over a websocket), message for message.

Follows googleapis/python-genai ``google/genai/live.py`` and ``types.py`` and REFERENCE.md 4.3:
the API key in ``x-goog-api-key`` (or ``?key=``), ``{"setup": ...}`` first (anything else closes
with 1007), ``setupComplete``; ``realtimeInput.audio`` blobs whose MIME type declares the rate;
a server VAD; ``serverContent`` with ``inputTranscription``, ``modelTurn`` audio chunks
(``audio/pcm;rate=24000``) sent faster than real time, ``outputTranscription``,
``generationComplete`` and ``turnComplete``; caller speech while generating cancels the turn
with ``interrupted`` then ``turnComplete`` (speech after generation finished interrupts
nothing, as on the real service); ``sessionResumptionUpdate`` handles after set-up and after
every turn; ``toolCall`` when scripted. Server messages go out as *binary* frames carrying JSON
by default, as the service does.

Limits and errors: ``go_away_after_s`` sends ``goAway{timeLeft}`` on every connection and closes
it when the time is up; a ``setup.sessionResumption.handle`` restores the conversation it names
(an unknown one closes with 1007); ``drop_after_s`` drops the first connection abruptly (1011);
a wrong key closes with 1008 before set-up.

Reply ``n`` is a sine at ``300 + 100 * n`` Hz, so the tests can tell replies apart in what the
caller heard.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .common import EnergyVad, audioop, new_id, run_server, tone_pcm

__all__ = ["GeminiRecord", "GeminiScript", "GeminiStandIn", "reply_freq"]

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


def reply_freq(n: int) -> float:
    """The tone of the ``n``-th reply of a conversation (1-based)."""
    return 300.0 + 100.0 * n


@dataclass
class GeminiScript:
    api_key: str = "gm-standin"
    greeting_ms: int = 800
    reply_ms: int = 1500
    chunk_ms: int = 40
    speed: float = 1.5
    binary: bool = True
    vad_threshold: float = 600.0
    go_away_after_s: float | None = None
    go_away_time_left_s: float = 6.0
    drop_after_s: float | None = None
    #: Make the first reply this function call ``(name, args)``.
    tool_call: tuple[str, dict[str, Any]] | None = None


@dataclass
class Conversation:
    """What a resumption handle restores."""

    replies: int = 0
    utterances: int = 0


@dataclass
class GeminiRecord:
    """What one connection saw."""

    headers: dict[str, str] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    mime_types: set[str] = field(default_factory=set)
    audio_ms: float = 0.0
    audio_messages: int = 0
    #: time.monotonic() at each audio message's arrival and each reply chunk's send.
    audio_times: list[float] = field(default_factory=list)
    chunk_times: list[float] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    client_content: list[dict[str, Any]] = field(default_factory=list)
    #: ``realtimeInput.text`` received (the model answers each with a turn).
    texts: list[str] = field(default_factory=list)
    tool_responses: list[dict[str, Any]] = field(default_factory=list)
    handles_sent: list[str] = field(default_factory=list)
    interrupted: int = 0
    go_away_sent: bool = False
    closed: bool = False


class _Connection:
    def __init__(self, ws: ServerConnection, standin: GeminiStandIn, record: GeminiRecord):
        self.ws = ws
        self.standin = standin
        self.script = standin.script
        self.record = record
        self.vad = EnergyVad(self.script.vad_threshold)
        self.conversation = Conversation()
        self.turn: asyncio.Task[None] | None = None
        self.cancel = asyncio.Event()
        self.lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message)
        async with self.lock:
            await self.ws.send(data.encode() if self.script.binary else data)

    async def new_handle(self) -> None:
        handle = new_id("handle")
        self.standin.handles[handle] = Conversation(**vars(self.conversation))
        self.record.handles_sent.append(handle)
        await self.send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    async def run(self) -> None:
        first = json.loads(await self.ws.recv())
        setup = first.get("setup") if isinstance(first, dict) else None
        if not isinstance(setup, dict):
            await self.ws.close(1007, "Invalid JSON payload: setup must be the first message")
            return
        self.record.setup = setup
        if not str(setup.get("model", "")).startswith("models/"):
            await self.ws.close(1007, "model must be models/<name>")
            return
        handle = (setup.get("sessionResumption") or {}).get("handle")
        if handle:
            if handle not in self.standin.handles:
                await self.ws.close(1007, "invalid session resumption handle")
                return
            self.conversation = Conversation(**vars(self.standin.handles[handle]))
            self.record.resumed_from = handle
        vad = (setup.get("realtimeInputConfig") or {}).get("automaticActivityDetection") or {}
        self.vad.stop_ms = vad.get("silenceDurationMs", 500)
        await self.send({"setupComplete": {}})
        if "sessionResumption" in setup:
            await self.new_handle()
        async for raw in self.ws:
            msg = json.loads(raw)
            self.record.received.append(next(iter(msg), ""))
            if "realtimeInput" in msg:
                await self.on_audio(msg["realtimeInput"])
            elif "clientContent" in msg:
                self.record.client_content.append(msg["clientContent"])
                self.start_turn(self.script.greeting_ms)
            elif "toolResponse" in msg:
                self.record.tool_responses.append(msg["toolResponse"])

    async def on_audio(self, realtime: dict[str, Any]) -> None:
        text = realtime.get("text")
        if isinstance(text, str):
            self.record.texts.append(text)
            if self.turn is None or self.turn.done():
                self.start_turn(self.script.greeting_ms)
            return
        blob = realtime.get("audio")
        if not isinstance(blob, dict):
            return
        self.record.audio_times.append(time.monotonic())
        mime = blob.get("mimeType", "")
        self.record.mime_types.add(mime)
        rate = int(mime.split("rate=")[1]) if "rate=" in mime else 16000
        pcm = base64.b64decode(blob.get("data", ""))
        ms = len(pcm) / 2 / rate * 1000
        self.record.audio_ms += ms
        self.record.audio_messages += 1
        self.standin.audio_ms += ms
        edge = self.vad.feed(audioop.rms(pcm, 2), ms)
        if edge == "start":
            if self.turn is not None and not self.turn.done():
                self.cancel.set()
                await self.turn
            await self.send({"serverContent": {"inputTranscription": {"text": "caller "}}})
        elif edge == "stop":
            self.conversation.utterances += 1
            await self.send(
                {
                    "serverContent": {
                        "inputTranscription": {"text": f"utterance {self.conversation.utterances}"}
                    }
                }
            )
            self.start_turn(self.script.reply_ms)

    def start_turn(self, ms: int) -> None:
        self.cancel = asyncio.Event()
        self.turn = asyncio.get_running_loop().create_task(self.model_turn(ms))

    async def model_turn(self, ms: int) -> None:
        tool = self.script.tool_call if self.conversation.utterances == 1 else None
        if tool is not None and not self.standin.tool_called:
            self.standin.tool_called = True
            name, args = tool
            await self.send(
                {"toolCall": {"functionCalls": [{"id": new_id("fc"), "name": name, "args": args}]}}
            )
            return
        self.conversation.replies += 1
        n = self.conversation.replies
        self.standin.replies_started.append(n)
        freq, chunk, sent = reply_freq(n), self.script.chunk_ms, 0
        while sent < ms:
            if self.cancel.is_set():
                self.record.interrupted += 1
                await self.send({"serverContent": {"interrupted": True}})
                await self.send({"serverContent": {"turnComplete": True}})
                return
            pcm = tone_pcm(chunk, freq, 24000, phase=sent * 24)
            self.record.chunk_times.append(time.monotonic())
            await self.send(
                {
                    "serverContent": {
                        "modelTurn": {
                            "parts": [
                                {
                                    "inlineData": {
                                        "mimeType": "audio/pcm;rate=24000",
                                        "data": base64.b64encode(pcm).decode(),
                                    }
                                }
                            ]
                        }
                    }
                }
            )
            if sent == 0:
                await self.send(
                    {"serverContent": {"outputTranscription": {"text": f"bot reply {n}"}}}
                )
            sent += chunk
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel.wait(), chunk / 1000 / self.script.speed)
        await self.send({"serverContent": {"generationComplete": True}})
        await self.send({"serverContent": {"turnComplete": True}})
        await self.new_handle()

    async def go_away(self, after: float) -> None:
        await asyncio.sleep(after)
        self.record.go_away_sent = True
        left = self.script.go_away_time_left_s
        await self.send({"goAway": {"timeLeft": f"{left:g}s"}})
        await asyncio.sleep(left)
        await self.ws.close(1000, "connection lifetime reached")


class GeminiStandIn:
    """The stand-in server; ``async with`` it for a ``url`` to give the engine."""

    def __init__(self, script: GeminiScript | None = None) -> None:
        self.script = script or GeminiScript()
        self.connections: list[GeminiRecord] = []
        self.handles: dict[str, Conversation] = {}
        self.replies_started: list[int] = []
        self.audio_ms = 0.0
        self.tool_called = False
        self.url = ""
        self._stack = contextlib.AsyncExitStack()

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        record = GeminiRecord(headers=dict(request.headers.raw_items()))
        self.connections.append(record)
        key = (
            request.headers.get("x-goog-api-key")
            or parse_qs(urlsplit(request.path).query).get("key", [""])[0]
        )
        conn = _Connection(ws, self, record)
        extra: list[asyncio.Task[None]] = []
        try:
            if urlsplit(request.path).path != PATH:
                await ws.close(1008, "Method not found")
                return
            if key != self.script.api_key:
                await ws.close(1008, "API key not valid. Please pass a valid API key.")
                return
            if self.script.go_away_after_s is not None:
                extra.append(asyncio.create_task(conn.go_away(self.script.go_away_after_s)))
            if self.script.drop_after_s is not None and len(self.connections) == 1:

                async def drop() -> None:
                    await asyncio.sleep(self.script.drop_after_s or 0)
                    await ws.close(1011, "Internal error encountered.")

                extra.append(asyncio.create_task(drop()))
            await conn.run()
        except ConnectionClosed:
            pass
        finally:
            for task in extra:
                task.cancel()
            if conn.turn is not None:
                conn.turn.cancel()
            for task in [*extra, *([conn.turn] if conn.turn else [])]:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
            record.closed = True

    async def __aenter__(self) -> GeminiStandIn:
        self.url = await self._stack.enter_async_context(run_server(self._handle)) + PATH
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
