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

Strict where the service is strict (each rule cites its source beside it): with
``automaticActivityDetection.disabled`` the model answers only after ``activityStart`` and
``activityEnd``; ``turnComplete`` waits for the reply's play-out time after
``generationComplete``, and caller speech in that time (or just after) gets ``interrupted``,
which may thus follow ``turnComplete``; ``sessionResumptionUpdate`` says ``resumable: false``
mid-turn and during tool calls; a tool response lets the model go on with a reply; a Gemini 3.x
model closes with 1007 on ``clientContent`` other than initial history declared in
``historyConfig.initialHistoryInClientContent`` (which triggers no reply).

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
    #: After turnComplete, caller speech this soon still gets ``interrupted`` (the service's
    #: play-out estimate runs behind the caller's ear).
    late_interrupt_ms: int = 300


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
    activity: list[str] = field(default_factory=list)
    #: Why the stand-in closed the connection with an error code, if it did.
    refused: str = ""
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
        self.manual_activity = False
        self.gemini3 = False
        self.history_open = False  # initial history may still be sent (3.x, declared)
        self.turn_done_at = -1.0  # loop time of the last turnComplete

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
        # python-genai types.py AutomaticActivityDetection.disabled: "the client must send
        # activity signals" (realtimeInput.activityStart/activityEnd); no VAD turns then.
        self.manual_activity = bool(vad.get("disabled"))
        model = str(setup["model"]).removeprefix("models/")
        self.gemini3 = model.startswith("gemini-") and model[7:8].isdigit() and int(model[7]) >= 3
        # types.py HistoryConfig.initialHistoryInClientContent: clientContent is taken as
        # initial history right after setupComplete, until its turnComplete.
        self.history_open = bool((setup.get("historyConfig") or {}).get(
            "initialHistoryInClientContent"))  # fmt: skip
        await self.send({"setupComplete": {}})
        if "sessionResumption" in setup:
            await self.new_handle()
        async for raw in self.ws:
            msg = json.loads(raw)
            self.record.received.append(next(iter(msg), ""))
            if "realtimeInput" in msg:
                self.history_open = False
                await self.on_audio(msg["realtimeInput"])
            elif "clientContent" in msg:
                content = msg["clientContent"]
                self.record.client_content.append(content)
                if self.gemini3:
                    # Gemini 3.x Live: clientContent only seeds the initial history
                    # (types.py HistoryConfig.initial_history_in_client_content); elsewhere
                    # the request is invalid and the service closes with 1007.
                    if not self.history_open:
                        self.record.refused = "clientContent after setup on a 3.x model"
                        await self.ws.close(1007, "Request contains an invalid argument.")
                        return
                    if content.get("turnComplete"):
                        self.history_open = False  # history seeded: no reply to it
                    continue
                self.start_turn(self.script.greeting_ms)
            elif "toolResponse" in msg:
                self.record.tool_responses.append(msg["toolResponse"])
                # The model goes on with the function responses in hand (live.py
                # send_tool_response answers a LiveServerToolCall mid-turn).
                if self.turn is None or self.turn.done():
                    self.start_turn(self.script.reply_ms, after_tool=True)

    async def on_audio(self, realtime: dict[str, Any]) -> None:
        if "activityStart" in realtime or "activityEnd" in realtime:
            kind = "start" if "activityStart" in realtime else "end"
            self.record.activity.append(kind)
            if not self.manual_activity:
                # types.py ActivityStart: only "if automatic activity detection is disabled".
                self.record.refused = f"activity{kind.title()} with automatic detection on"
                await self.ws.close(1007, "Request contains an invalid argument.")
                return
            if kind == "start":
                await self.caller_started()
            else:
                await self.caller_stopped()
            return
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
        if self.manual_activity:
            return  # turns come from activityStart/activityEnd only
        if edge == "start":
            await self.caller_started()
        elif edge == "stop":
            await self.caller_stopped()

    async def caller_started(self) -> None:
        if self.turn is not None and not self.turn.done():
            self.cancel.set()
            await self.turn
        elif (
            0
            <= asyncio.get_running_loop().time() - self.turn_done_at
            < (self.script.late_interrupt_ms / 1000)
        ):
            self.record.interrupted += 1
            await self.send({"serverContent": {"interrupted": True}})  # after turnComplete
        await self.send({"serverContent": {"inputTranscription": {"text": "caller "}}})

    async def caller_stopped(self) -> None:
        self.conversation.utterances += 1
        await self.send(
            {
                "serverContent": {
                    "inputTranscription": {"text": f"utterance {self.conversation.utterances}"}
                }
            }
        )
        self.start_turn(self.script.reply_ms)

    def start_turn(self, ms: int, *, after_tool: bool = False) -> None:
        self.cancel = asyncio.Event()
        self.turn = asyncio.get_running_loop().create_task(self.model_turn(ms, after_tool))

    async def not_resumable(self) -> None:
        """types.py LiveServerSessionResumptionUpdate.resumable: false (empty handle) while
        the model is "executing function calls or just generating"."""
        await self.send({"sessionResumptionUpdate": {"newHandle": "", "resumable": False}})

    async def model_turn(self, ms: int, after_tool: bool = False) -> None:
        tool = self.script.tool_call if self.conversation.utterances == 1 else None
        if tool is not None and not after_tool and not self.standin.tool_called:
            self.standin.tool_called = True
            name, args = tool
            await self.send(
                {"toolCall": {"functionCalls": [{"id": new_id("fc"), "name": name, "args": args}]}}
            )
            await self.not_resumable()
            return
        self.conversation.replies += 1
        n = self.conversation.replies
        self.standin.replies_started.append(n)
        freq, chunk, sent = reply_freq(n), self.script.chunk_ms, 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        while sent < ms:
            if self.cancel.is_set():
                await self.interrupted()
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
                await self.not_resumable()  # mid-turn
            sent += chunk
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel.wait(), chunk / 1000 / self.script.speed)
        await self.send({"serverContent": {"generationComplete": True}})
        # turnComplete waits for the reply's play-out at 1x (python-genai types.py
        # LiveServerContent.generation_complete: "When model assumes realtime playback there
        # will be delay between generation_complete and turn_complete that is caused by model
        # waiting for playback to finish").
        left = started + ms / 1000 - loop.time()
        if left > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel.wait(), left)
        if self.cancel.is_set():
            await self.interrupted()
            return
        await self.send({"serverContent": {"turnComplete": True}})
        self.turn_done_at = loop.time()
        await self.new_handle()

    async def interrupted(self) -> None:
        self.record.interrupted += 1
        await self.send({"serverContent": {"interrupted": True}})
        await self.send({"serverContent": {"turnComplete": True}})
        self.turn_done_at = asyncio.get_running_loop().time()

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
