"""A stand-in for the OpenAI Realtime API over its websocket, message for message.

Follows openai-python's ``src/openai/types/realtime/`` (GA) and REFERENCE.md 4.1:
``session.created`` on connect; ``session.update`` checked for the GA shape (``session.type ==
"realtime"``, audio under ``session.audio``), and a session carrying beta fields is refused as
the API does (``Unknown parameter``); ``input_audio_buffer.append`` heard by a server VAD that
sends ``speech_started``/``speech_stopped``/``committed``, the caller's transcript, then a
response:
``response.created``, ``response.output_item.added``, ``response.output_audio.delta`` chunks
faster than real time, ``response.output_audio_transcript.done``, ``response.output_item.done``,
``response.done``. With ``interrupt_response`` (the default) speech during a response cancels
it; without it the response talks on and the utterance gets no response of its own (see
``speech_stopped``); the deltas already "in flight" (``late_deltas``) still follow
``speech_started``, as on the real wire. ``conversation.item.truncate`` is refused with an
error when ``audio_end_ms`` exceeds the audio sent for the item (as the API documents), and
recorded otherwise.

Refused as the service refuses (each rule cites its source beside it): the retired beta
interface (``OpenAI-Beta: realtime=v1``: error ``beta_api_shape_disabled``, close 4000); a
``response.create`` while a response is active (error
``conversation_already_has_active_response``, and no second response); with turn detection
off (``turn_detection: null``) or ``create_response: false``, no response until the client
commits the buffer (``input_audio_buffer.commit``) and asks (``response.create``).

Errors and limits: a wrong key gets HTTP 401 on the upgrade; ``session_error`` answers the
``session.update`` with an ``error`` event; ``max_session_s`` ends each session as the API's
session limit does (``error`` with code ``session_expired``, then close); ``drop_after_s``
drops the socket abruptly (1011).

Each reply's audio is a square wave with its own amplitude (``LEVELS``), so the tests can tell
from what the caller heard which reply every sample belongs to. Use as::

    async with OpenAIStandIn(OpenAIScript(...)) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .common import (
    LEVELS,
    EnergyVad,
    audioop,
    mulaw_level,
    new_id,
    run_server,
    square_mulaw,
    square_pcm,
)

__all__ = ["OpenAIScript", "OpenAIStandIn", "RealtimeRecord", "ReplyRecord"]

BETA_ONLY = ("input_audio_format", "output_audio_format", "modalities", "turn_detection")
#: The close code the service uses after refusing the retired beta interface (since 2026 a
#: beta session gets error beta_api_shape_disabled, then this close).
BETA_CLOSE = 4000


@dataclass
class OpenAIScript:
    """How the stand-in behaves."""

    api_key: str = "sk-standin"
    greeting_ms: int = 1200
    reply_ms: int = 3000
    #: Audio per delta, and how much faster than real time deltas are sent.
    chunk_ms: int = 100
    speed: float = 1.5
    #: Deltas of a cancelled response still sent after ``speech_started`` (the wire race).
    late_deltas: int = 2
    vad_threshold: float = 600.0
    #: Answer session.update with this error message instead of session.updated.
    session_error: str | None = None
    #: Seconds after which each session ends with ``session_expired``.
    max_session_s: float | None = None
    #: Seconds after which the first session's socket is dropped abruptly.
    drop_after_s: float | None = None
    #: Refuse every connection after the first with HTTP 503 (a service gone mid-call).
    refuse_reconnects: bool = False
    #: Make the first reply (after the caller's first utterance) this function call.
    tool_call: tuple[str, dict[str, Any]] | None = None
    #: How long the response carrying a function call stays active after its item is done
    #: (the service finishes the response after the item: response.output_item.done comes
    #: first, response.done later; openai-python types/realtime/realtime_server_event.py).
    tool_response_tail_ms: int = 200
    #: The caller's transcript for utterance N (1-based); others are "caller utterance N".
    transcripts: dict[int, str] = field(default_factory=dict)


@dataclass
class ReplyRecord:
    item_id: str
    response_id: str
    amplitude: int
    #: Audio sent for the item, in ms (what truncation may not exceed).
    sent_ms: float = 0.0
    cancelled: bool = False
    late_deltas_sent: int = 0

    @property
    def level(self) -> int:
        """The sample magnitude this reply has after mu-law (what the caller hears)."""
        return mulaw_level(self.amplitude)


@dataclass
class RealtimeRecord:
    """What one connection saw."""

    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=dict)
    audio_format: str = ""
    appended: bytearray = field(default_factory=bytearray)
    appends: int = 0
    #: time.monotonic() at each append's arrival and at each audio delta's send (benchmarks).
    append_times: list[float] = field(default_factory=list)
    delta_times: list[float] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    replies: list[ReplyRecord] = field(default_factory=list)
    truncates: list[tuple[str, int]] = field(default_factory=list)
    errors_sent: list[str] = field(default_factory=list)
    items_created: list[dict[str, Any]] = field(default_factory=list)
    speech_started: int = 0
    #: Utterances that ended while a response was active and was not interrupted: unanswered.
    answers_skipped: int = 0
    closed: bool = False

    def types(self) -> list[str]:
        return [m.get("type", "") for m in self.received]

    def reply(self, item_id: str) -> ReplyRecord:
        return next(r for r in self.replies if r.item_id == item_id)


class _Session:
    """One websocket connection: the Realtime server's side of it."""

    def __init__(
        self,
        ws: ServerConnection,
        script: OpenAIScript,
        record: RealtimeRecord,
        standin: OpenAIStandIn,
    ) -> None:
        self.ws = ws
        self.script = script
        self.record = record
        self.standin = standin
        self.vad = EnergyVad(script.vad_threshold)
        self.turn_detection: dict[str, Any] | None = {"type": "server_vad"}
        self.transcribe = False
        self.response_task: asyncio.Task[None] | None = None
        #: The active response, from response.created until response.done is sent.
        self.active_response: str | None = None
        #: Caller audio appended since the last commit (input_audio_buffer.commit needs some).
        self.uncommitted_ms = 0.0
        self.cancel = asyncio.Event()
        self.utterances = 0
        self.lock = asyncio.Lock()

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", new_id("event"))
        async with self.lock:
            await self.ws.send(json.dumps(event))

    async def error(
        self, message: str, code: str | None = None, kind: str = "invalid_request_error"
    ) -> None:
        self.record.errors_sent.append(message)
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": kind,
                    "code": code,
                    "message": message,
                    "param": None,
                    "event_id": None,
                },
            }
        )

    async def run(self) -> None:
        await self.send(
            {
                "type": "session.created",
                "session": {"id": new_id("sess"), "type": "realtime", "object": "realtime.session"},
            }
        )
        async for raw in self.ws:
            try:
                msg = json.loads(raw)
            except ValueError:
                await self.error("We could not parse the JSON body of your request.")
                continue
            self.record.received.append(
                {k: v for k, v in msg.items() if k != "audio"} if isinstance(msg, dict) else {}
            )
            await self.dispatch(msg)

    async def dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        match kind:
            case "session.update":
                await self.session_update(msg.get("session") or {})
            case "input_audio_buffer.append":
                await self.append(msg.get("audio", ""))
            case "response.create":
                # One active response per conversation: the service refuses a second with
                # this error and starts nothing (its words and code as quoted in
                # openai/openai-agents-python issue 1466 and livekit/agents pull 6818).
                if self.active_response is not None:
                    await self.error(
                        "Conversation already has an active response in progress: "
                        f"{self.active_response}. Wait until the response is finished before "
                        "creating a new one.",
                        code="conversation_already_has_active_response",
                    )
                    return
                self.start_response(self.script.greeting_ms)
            case "input_audio_buffer.commit":
                await self.commit()
            case "conversation.item.truncate":
                await self.truncate(msg)
            case "conversation.item.create":
                item = msg.get("item") or {}
                self.record.items_created.append(item)
                await self.send({"type": "conversation.item.added", "item": item})
                await self.send({"type": "conversation.item.done", "item": item})
            case "response.cancel":
                if self.response_task is None or self.response_task.done():
                    await self.error(
                        "Cancellation failed: no active response found",
                        code="response_cancel_not_active",
                    )
                else:
                    self.cancel.set()
            case _:
                await self.error(
                    f"Invalid value: '{kind}'. Supported values are: ...", code="invalid_value"
                )

    async def session_update(self, session: dict[str, Any]) -> None:
        record = self.record
        if self.script.session_error:
            await self.error(self.script.session_error, code="invalid_model")
            return
        if session.get("type") != "realtime":
            await self.error(
                "Missing required parameter: 'session.type'.", code="missing_required_parameter"
            )
            return
        for key in BETA_ONLY:
            if key in session:
                await self.error(f"Unknown parameter: 'session.{key}'.", code="unknown_parameter")
                return
        audio_in = (session.get("audio") or {}).get("input") or {}
        fmt = (audio_in.get("format") or {}).get("type", "audio/pcm")
        record.audio_format = {"audio/pcmu": "pcmu", "audio/pcm": "pcm"}.get(fmt, fmt)
        self.turn_detection = audio_in.get("turn_detection", {"type": "server_vad"})
        self.transcribe = bool(audio_in.get("transcription"))
        if self.turn_detection:
            self.vad.stop_ms = self.turn_detection.get("silence_duration_ms", 500)
        record.session = session
        await self.send({"type": "session.updated", "session": session})

    async def append(self, audio_b64: str) -> None:
        try:
            audio = base64.b64decode(audio_b64, validate=True)
        except ValueError:
            await self.error("Invalid 'audio'. Expected base64-encoded audio bytes.")
            return
        record = self.record
        record.append_times.append(time.monotonic())
        record.appended += audio
        record.appends += 1
        if record.audio_format == "pcmu":
            linear, ms = audioop.ulaw2lin(audio, 2), len(audio) / 8
        else:
            linear, ms = audio, len(audio) / 48
        self.uncommitted_ms += ms
        if not self.turn_detection or not linear:
            return  # turn detection off: the client commits (see commit())
        edge = self.vad.feed(audioop.rms(linear, 2), ms)
        if edge == "start":
            await self.speech_started()
        elif edge == "stop":
            await self.speech_stopped()

    async def speech_started(self) -> None:
        self.record.speech_started += 1
        td = self.turn_detection or {}
        start = max(0, int(self.vad.onset_ms) - td.get("prefix_padding_ms", 300))
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": start,
                "item_id": new_id("item"),
            }
        )
        if td.get("interrupt_response", True) and self.response_task is not None:
            self.cancel.set()

    async def commit(self) -> None:
        """``input_audio_buffer.commit``: refused on an empty buffer, and no response of its own
        (Realtime API reference, client events, ``input_audio_buffer.commit``: "This event will
        produce an error if the input audio buffer is empty", "it will not create a response
        from the model")."""
        if self.uncommitted_ms < 100:
            await self.error(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {self.uncommitted_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
            return
        self.uncommitted_ms = 0.0
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": new_id("item"),
                "previous_item_id": None,
            }  # fmt: skip
        )

    async def speech_stopped(self) -> None:
        item = new_id("item")
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": int(self.vad.position_ms),
                "item_id": item,
            }
        )
        await self.send(
            {"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": None}
        )
        self.uncommitted_ms = 0.0
        self.utterances += 1
        if self.transcribe:
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item,
                    "content_index": 0,
                    "transcript": self.script.transcripts.get(
                        self.utterances, f"caller utterance {self.utterances}"
                    ),
                }
            )
        td = self.turn_detection or {}
        if td.get("create_response", True):
            if self.response_task is not None and not self.response_task.done():
                if not td.get("interrupt_response", True):
                    # The response talks on, and none can start beside it: "If
                    # interrupt_response is set to false this may fail to create a response if
                    # the model is already responding" (openai-python
                    # types/realtime/realtime_audio_input_turn_detection.py, create_response).
                    self.record.answers_skipped += 1
                    return
                await self.response_task  # cancelled at speech_started: its done follows
            tool = self.script.tool_call if self.utterances == 1 else None
            self.start_response(self.script.reply_ms, tool)

    def start_response(self, ms: int, tool: tuple[str, dict[str, Any]] | None = None) -> None:
        self.cancel = asyncio.Event()
        self.active_response = response = new_id("resp")  # active from now, not from its task
        self.response_task = asyncio.get_running_loop().create_task(
            self.respond(response, ms, tool)
        )

    async def respond(
        self, response: str, ms: int, tool: tuple[str, dict[str, Any]] | None
    ) -> None:
        await self.send(
            {
                "type": "response.created",
                "response": {"id": response, "status": "in_progress", "output": []},
            }
        )
        if tool is not None:
            name, args = tool
            item = {
                "id": new_id("item"),
                "type": "function_call",
                "name": name,
                "call_id": new_id("call"),
                "arguments": json.dumps(args),
                "status": "completed",
            }
            await self.send(
                {
                    "type": "response.output_item.added",
                    "response_id": response,
                    "output_index": 0,
                    "item": {**item, "arguments": ""},
                }
            )
            await self.send(
                {
                    "type": "response.function_call_arguments.done",
                    "response_id": response,
                    "item_id": item["id"],
                    "output_index": 0,
                    "call_id": item["call_id"],
                    "arguments": item["arguments"],
                }
            )
            await self.send(
                {
                    "type": "response.output_item.done",
                    "response_id": response,
                    "output_index": 0,
                    "item": item,
                }
            )
            await asyncio.sleep(self.script.tool_response_tail_ms / 1000)
            self.active_response = None
            await self.send(
                {
                    "type": "response.done",
                    "response": {"id": response, "status": "completed", "output": [item]},
                }
            )
            return
        item = new_id("item")
        reply = ReplyRecord(item, response, LEVELS[len(self.standin.replies) % len(LEVELS)])
        self.record.replies.append(reply)
        self.standin.replies.append(reply)
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response,
                "output_index": 0,
                "item": {
                    "id": item,
                    "type": "message",
                    "role": "assistant",
                    "status": "in_progress",
                    "content": [],
                },
            }
        )
        delta_type = "response.output_audio.delta"
        chunk = self.script.chunk_ms
        sent = 0.0
        late = None
        while sent < ms:
            if self.cancel.is_set():
                if late is None:
                    late = self.script.late_deltas
                if reply.late_deltas_sent >= late:
                    reply.cancelled = True
                    break
                reply.late_deltas_sent += 1
            if self.record.audio_format == "pcmu":
                audio = square_mulaw(chunk, reply.amplitude)
            else:
                audio = square_pcm(chunk, reply.amplitude, 24000)
            self.record.delta_times.append(time.monotonic())
            await self.send(
                {
                    "type": delta_type,
                    "response_id": response,
                    "item_id": item,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": base64.b64encode(audio).decode(),
                }
            )
            sent += chunk
            reply.sent_ms = sent
            if late is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.cancel.wait(), chunk / 1000 / self.script.speed)
        status = "cancelled" if reply.cancelled else "completed"
        done = "response.output_audio_transcript.done"
        await self.send(
            {
                "type": done,
                "response_id": response,
                "item_id": item,
                "output_index": 0,
                "content_index": 0,
                "transcript": f"bot reply {len(self.standin.replies)}",
            }
        )
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": response,
                "output_index": 0,
                "item": {
                    "id": item,
                    "type": "message",
                    "role": "assistant",
                    "status": "incomplete" if reply.cancelled else "completed",
                },
            }
        )
        self.active_response = None
        await self.send(
            {"type": "response.done", "response": {"id": response, "status": status, "output": []}}
        )

    async def truncate(self, msg: dict[str, Any]) -> None:
        item, end = msg.get("item_id"), msg.get("audio_end_ms")
        reply = next((r for r in self.record.replies if r.item_id == item), None)
        if reply is None:
            await self.error(f"Item with item_id '{item}' not found.", code="item_not_found")
            return
        if not isinstance(end, int) or end < 0 or end > reply.sent_ms:
            await self.error(
                f"Audio content of {reply.sent_ms:.0f}ms is already shorter than {end}ms",
                code="invalid_value",
            )
            return
        self.record.truncates.append((item, end))
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item,
                "content_index": 0,
                "audio_end_ms": end,
            }
        )


class OpenAIStandIn:
    """The stand-in server; ``async with`` it for a ``url`` to give the engine."""

    def __init__(self, script: OpenAIScript | None = None) -> None:
        self.script = script or OpenAIScript()
        self.connections: list[RealtimeRecord] = []
        self.replies: list[ReplyRecord] = []
        self.url = ""
        self._stack = contextlib.AsyncExitStack()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not urlsplit(request.path).path.startswith("/v1/realtime"):
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if "model" not in parse_qs(urlsplit(request.path).query):
            return connection.respond(HTTPStatus.BAD_REQUEST, "missing model\n")
        if self.script.refuse_reconnects and self.connections:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "overloaded\n")
        if request.headers.get("Authorization") != f"Bearer {self.script.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid_api_key\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        headers = ws.request.headers if ws.request is not None else Headers()
        record = RealtimeRecord(
            path=ws.request.path if ws.request is not None else "",
            headers={k: v for k, v in headers.raw_items()},
        )
        self.connections.append(record)
        session = _Session(ws, self.script, record, self)
        if headers.get("OpenAI-Beta") == "realtime=v1":
            # The beta interface is retired (2026): the service says so in an error event
            # (code beta_api_shape_disabled) and closes with 4000.
            with contextlib.suppress(ConnectionClosed):
                await session.error(
                    "The Realtime API beta interface has been retired. Remove the "
                    "'OpenAI-Beta: realtime=v1' header and use the GA session shape.",
                    code="beta_api_shape_disabled",
                )
                await ws.close(BETA_CLOSE, "beta_api_shape_disabled")
            record.closed = True
            return
        limit = self.script.max_session_s
        if self.script.drop_after_s is not None and len(self.connections) == 1:
            limit, drop = self.script.drop_after_s, True
        else:
            drop = False
        try:
            if limit is None:
                await session.run()
            else:
                try:
                    await asyncio.wait_for(session.run(), limit)
                except TimeoutError:
                    if drop:
                        await ws.close(1011, "internal error")
                    else:
                        await session.error(
                            "Your session hit the maximum duration.", code="session_expired"
                        )
                        await ws.close(1000, "session expired")
        except ConnectionClosed:
            pass
        finally:
            if session.response_task is not None:
                session.response_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await session.response_task
            record.closed = True

    async def __aenter__(self) -> OpenAIStandIn:
        self.url = (
            await self._stack.enter_async_context(
                run_server(self._handle, process_request=self._process_request)
            )
            + "/v1/realtime"
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


@contextlib.asynccontextmanager
async def openai_standin(script: OpenAIScript | None = None) -> AsyncIterator[OpenAIStandIn]:
    """``async with openai_standin(...) as standin`` for benchmarks and tests."""
    async with OpenAIStandIn(script) as standin:
        yield standin
