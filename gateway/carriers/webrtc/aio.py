"""The browser phone over aiortc: the ``/phone`` page, its signalling, and each call's media.

The wire formats are in ``signalling.py``, the access rule in ``access.py``, the connection's
deadlines in ``line.py`` and the bot's frame queue in ``playback.py`` (all sans-I/O); the call
is the shared :class:`~gateway.call.runner.CallRunner`. This module only pumps between them and
aiortc. Per call it runs, under one TaskGroup: the caller's audio reader (the remote track's
48 kHz audio, Opus decoded by aiortc, resampled into the call core's 8 kHz like any carrier's),
the engine-event pump (which also sends the transcript to the page) and the line's watchdog.
The bot's audio goes out through :class:`BotTrack`, which aiortc's sender pulls every 20 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from engine.base import (
    CallContext,
    Commit,
    EngineEvent,
    EngineFailed,
    Interrupt,
    Transcript,
)
from gateway.audio.g711 import ulaw_decode, ulaw_encode
from gateway.audio.resample import StreamResampler
from gateway.call.ledger import CallLedger
from gateway.call.recording import CallRecorder, recording_path
from gateway.call.registry import CallRegistry
from gateway.call.runner import CallRunner, open_engine
from gateway.call.session import CallSession
from gateway.carriers.webrtc.access import COOKIE, PhoneGate
from gateway.carriers.webrtc.errors import RemoteProtocolError, WebRtcError
from gateway.carriers.webrtc.line import PhoneLine
from gateway.carriers.webrtc.playback import BotQueue
from gateway.carriers.webrtc.signalling import (
    Dtmf,
    HangupRequested,
    Ignored,
    PageChannel,
    ended_message,
    parse_offer,
    state_message,
    transcript_message,
)
from gateway.config import Settings
from gateway.dialplan import BotAction, CallFacts, PlanHolder, bot_routes, route_named
from gateway.engines import EngineSet
from gateway.ids import InvalidIdentifier
from gateway.ops.admission import Admission
from gateway.ops.lifecycle import Lifecycle
from gateway.ops.logs import call_id as current_call
from gateway.ops.logs import field as log_field

log = logging.getLogger("overtalk.webrtc")

__all__ = ["BotTrack", "PhoneCarrier", "redact_tokens"]

#: aiortc's Opus runs at 48 kHz; the page's audio arrives, and the bot's leaves, at this rate.
BROWSER_RATE = 48000
FRAME_S = 0.020
_FRAME_SAMPLES = BROWSER_RATE // 50
_FRAME_BYTES = _FRAME_SAMPLES * 2
_SILENCE_ULAW = b"\xff" * 160
_TIME_BASE = fractions.Fraction(1, BROWSER_RATE)
#: The page's files, shipped in the package (no CDN, no build step).
_STATIC = {"phone.js": "text/javascript", "phone.css": "text/css"}
#: A sender more than this late re-bases its clock rather than bursting to catch up.
_REBASE_S = 0.1


def redact_tokens(record: logging.LogRecord) -> bool:
    """A logging filter for ``uvicorn.access``: the page's ``?token=`` never reaches a log."""
    args = record.args
    if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
        path = args[2]
        if "token=" in path and path.startswith("/phone"):
            record.args = (*args[:2], path.split("?", 1)[0] + "?token=<redacted>", *args[3:])
    return True


class BotTrack(MediaStreamTrack):
    """The bot's audio as aiortc pulls it: one 20 ms frame per :meth:`recv`, paced on an
    absolute schedule; silence when nothing is queued. Marks queued behind a frame are
    echoed to the call core when the frame is handed over."""

    kind = "audio"

    def __init__(self, queue: BotQueue) -> None:
        super().__init__()
        self.queue = queue
        self.runner: CallRunner | None = None
        self._resampler = StreamResampler(8000, BROWSER_RATE)
        self._buffer = bytearray()
        self._start: float | None = None
        self._sent = 0

    def clear(self) -> None:
        """Drop the queue and the resampler's held tail: nothing of the cut speech goes out."""
        self.queue.clear()
        self._resampler.reset()
        self._buffer.clear()

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            due = self._start + self._sent * FRAME_S
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -_REBASE_S:
                self._start = loop.time() - self._sent * FRAME_S
        ulaw, marks = self.queue.take()
        buffer = self._buffer
        buffer += self._resampler.process(ulaw_decode(ulaw or _SILENCE_ULAW))
        if len(buffer) < _FRAME_BYTES:  # the filter's first output is short by its delay
            buffer[:0] = bytes(_FRAME_BYTES - len(buffer))
        frame = AudioFrame(format="s16", layout="mono", samples=_FRAME_SAMPLES)
        frame.planes[0].update(bytes(buffer[:_FRAME_BYTES]))
        del buffer[:_FRAME_BYTES]
        frame.sample_rate = BROWSER_RATE
        frame.pts = self._sent * _FRAME_SAMPLES
        frame.time_base = _TIME_BASE
        self._sent += 1
        runner = self.runner
        if runner is not None:
            for name in marks:
                runner.receive_mark(name)
        return frame


class _BrowserTransport:
    """The call's :class:`~gateway.call.runner.Carrier`: frames and marks go to the bot
    track's queue; a clear drops it at once; hang-up ends the call; transfer cannot be done."""

    __slots__ = ("call",)

    def __init__(self, call: _BrowserCall) -> None:
        self.call = call

    def send_frame(self, frame: bytes) -> None:
        self.call.queue.push_frame(frame)

    def send_mark(self, name: str) -> None:
        self.call.queue.push_mark(name)

    def send_clear(self) -> None:
        """Synchronous: the clear is done when this returns."""
        call = self.call
        call.track.clear()
        if call.runner is not None:
            call.runner.clear_written()

    def flush(self) -> None:
        """Nothing to wake: the track takes the next frame when it is due."""

    async def hangup(self) -> None:
        self.call.end("the bot hung up", "completed")

    async def transfer(self, target: str) -> None:
        raise WebRtcError(f"a browser call cannot be transferred (to {log_field(target)})")


@dataclass
class _BrowserCall:
    """One browser call: its peer connection, line state and call core."""

    call_id: str
    pc: RTCPeerConnection
    line: PhoneLine
    queue: BotQueue = field(default_factory=BotQueue)
    runner: CallRunner | None = None
    channel: RTCDataChannel | None = None
    page: PageChannel = field(default_factory=PageChannel)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: tuple[str, str] = ("caller hung up", "caller-hung-up")
    caller_track: MediaStreamTrack | None = None
    got_track: asyncio.Event = field(default_factory=asyncio.Event)
    recording: Path | None = None

    def __post_init__(self) -> None:
        self.track = BotTrack(self.queue)

    def end(self, reason: str, outcome: str) -> None:
        """End the call (the first reason given stands)."""
        if not self.ended.is_set():
            self.end_reason = (reason, outcome)
            self.ended.set()

    def tell(self, message: str) -> None:
        """Send one event to the page, if its data channel is open (never blocks)."""
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            channel.send(message)


@dataclass
class PhoneCarrier:
    """What the browser phone needs from the gateway."""

    settings: Settings
    engines: EngineSet
    calls: CallRegistry
    plans: PlanHolder | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    admission: Admission | None = None
    #: Told of each refusal by kind (``GatewayMetrics.refused``).
    refused: Callable[[str], None] = lambda kind: None
    #: Whether ``/calls/<id>`` serves call timelines (a call store is configured).
    timelines: bool = False
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        if self.admission is None:
            self.admission = Admission({}, self.calls.active)
        self.gate = PhoneGate(self.settings.phone_token)
        self.active: dict[str, _BrowserCall] = {}
        #: Offers being answered (engine opening, ICE gathering): not yet in ``active``.
        self._opening = 0
        self._tasks: set[asyncio.Task[None]] = set()
        access = logging.getLogger("uvicorn.access")
        if redact_tokens not in access.filters:
            access.addFilter(redact_tokens)

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/phone", self.page, methods=["GET"])
        router.add_api_route("/phone/static/{name}", self.static, methods=["GET"])
        router.add_api_route("/phone/routes", self.routes, methods=["GET"])
        router.add_api_route("/phone/offer", self.offer, methods=["POST"])
        return router

    async def aclose(self) -> None:
        """End every browser call (shut-down) and wait for each to be filed."""
        for call in list(self.active.values()):
            call.end("gateway shutting down", "drained")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- access and the page ---------------------------------------------------------------

    def _refusal(self, request: Request) -> Response | None:
        client = request.client.host if request.client else None
        if self.gate.allows(
            client,
            request.headers,
            request.query_params.get("token"),
            request.cookies.get(COOKIE),
        ):
            return None
        self.refused("phone-access")
        why = "a valid phone token" if self.gate.needs_token else "a loopback client"
        return Response(f"the browser phone needs {why}\n", status_code=403,
                        media_type="text/plain")  # fmt: skip

    async def page(self, request: Request) -> Response:
        if (no := self._refusal(request)) is not None:
            return no
        html = (files(__package__) / "static" / "phone.html").read_text(encoding="utf-8")
        response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
        token = request.query_params.get("token")
        if token and self.gate.needs_token:
            response.set_cookie(COOKIE, token[:256], httponly=True, samesite="strict",
                                path="/phone")  # fmt: skip
        return response

    async def static(self, name: str, request: Request) -> Response:
        if (no := self._refusal(request)) is not None:
            return no
        kind = _STATIC.get(name)
        if kind is None:  # only the shipped files: the name never reaches the file system
            return Response("not found\n", status_code=404, media_type="text/plain")
        body = (files(__package__) / "static" / name).read_text(encoding="utf-8")
        return Response(body, media_type=kind)

    def _browser_facts(self) -> CallFacts:
        return CallFacts(to="", from_="", at=self.wall_clock(), direction="browser")

    async def routes(self, request: Request) -> Response:
        """The routes the page may choose: those whose decision for a browser call is a bot."""
        if (no := self._refusal(request)) is not None:
            return no
        if self.plans is None:
            return JSONResponse({"routes": [], "default": ""})
        plan = self.plans.current
        names = bot_routes(plan, self._browser_facts())
        default = plan.default_route if plan.default_route in names else ""
        return JSONResponse({"routes": list(names), "default": default})

    # -- a call ----------------------------------------------------------------------------

    def _engine_free(self, engine: str) -> bool:
        assert self.admission is not None
        full = self.admission.load(engine, time.monotonic()).full
        return self.engines.available(engine) and not full

    def _decide(self, route_name: str) -> tuple[BotAction | None, str]:
        """The bot for a browser call on ``route_name`` ("" for the plan's default route).

        Raises RemoteProtocolError (403) for a route the plan does not allow the browser."""
        plans = self.plans
        if plans is None:
            if route_name:
                raise RemoteProtocolError("no dial plan: there are no routes to choose", 403)
            return None, ""
        plan = plans.current
        name = route_name or plan.default_route
        facts = self._browser_facts()
        if name not in bot_routes(plan, facts):
            raise RemoteProtocolError(f"route {name!r} is not open to browser calls", 403)
        decision = route_named(plan, name, facts, engine_available=self._engine_free)
        if not isinstance(decision.action, BotAction):  # the engine is full or down
            raise RemoteProtocolError("the bot of that route is not available", 503)
        log.info("= browser call -> route %s, %s", decision.route, decision.branch)
        return decision.action, decision.route

    async def offer(self, request: Request) -> Response:
        """The page's offer in, our answer out; the call then runs in its own task."""
        if (no := self._refusal(request)) is not None:
            return no
        settings = self.settings
        try:
            body = await _read_bounded(request, settings.phone_max_offer_bytes)
            offer = parse_offer(body, max_bytes=settings.phone_max_offer_bytes)
            if not self.lifecycle.accepting:
                raise RemoteProtocolError("the gateway is draining", 503)
            if len(self.active) + self._opening >= settings.phone_max_calls:
                raise RemoteProtocolError(f"{settings.phone_max_calls} browser calls already", 503)
            bot, route_name = self._decide(offer.route)
        except RemoteProtocolError as exc:
            self.refused("phone-offer")
            log.info("x browser call refused: %s", log_field(exc.reason))
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        call_id = "browser-" + secrets.token_hex(8)
        engine = (bot.engine if bot is not None else None) or self.engines.default
        assert self.admission is not None
        if not self.admission.admit(call_id, engine, "browser", time.monotonic()):
            log.info("x refusing browser call: engine %s is full", engine)
            return JSONResponse({"error": f"engine {engine} is full"}, status_code=503)
        current_call.set(call_id)
        self._opening += 1  # counted against phone_max_calls while the engine opens
        try:
            answer, call = await self._answer(call_id, offer.sdp, engine, bot, route_name)
        except _Refused as exc:
            self.admission.release(call_id)
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        except BaseException:
            self.admission.release(call_id)
            raise
        finally:
            self._opening -= 1
        task = asyncio.get_running_loop().create_task(self._run(call, bot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return JSONResponse({"type": "answer", "sdp": answer, "call_id": call_id})

    async def _answer(
        self, call_id: str, sdp: str, engine: str, bot: BotAction | None, route_name: str
    ) -> tuple[str, _BrowserCall]:
        """Open the engine and answer the offer; raises :class:`_Refused`."""
        ledger = CallLedger(
            call_id=call_id,
            carrier="browser",
            engine=engine,
            caller="browser",
            route=route_name,
            started_at=time.time(),
        )
        context = CallContext(
            call_id=call_id,
            caller="",
            called="",
            direction="browser",
            parameters=bot.context_parameters() if bot is not None else {},
        )
        engine_session = await open_engine(self.engines, ledger, context)
        if engine_session is None:
            raise _Refused(f"engine {engine} is unavailable", 503)
        # No STUN or TURN: aiortc would otherwise ask Google's STUN server, and the page is
        # reached directly (loopback, or the LAN the token was given on).
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        now = time.monotonic()
        call = _BrowserCall(
            call_id,
            pc,
            PhoneLine(
                now,
                connect_timeout=self.settings.phone_connect_timeout,
                silence_timeout=self.settings.media_silence_timeout,
            ),
        )
        self._wire(call)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            pc.addTrack(call.track)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc's refusal of the SDP: the page's error
            await pc.close()
            await engine_session.close()
            log.info("x browser offer refused by aiortc: %s", log_field(exc, 300))
            raise _Refused(f"unusable offer: {exc}", 400) from None
        settings = self.settings
        try:
            recording = recording_path(
                call_id,
                recordings_dir=settings.recordings_dir,
                records_dir=settings.records_dir,
                record=bot is not None and bool(bot.record),
            )
        except InvalidIdentifier:  # our own ids are tokens; defence in depth
            recording = None
        origin = time.monotonic()
        session = CallSession(
            engine_session,
            ledger,
            origin=origin,
            playout=(bot.holds(settings.holds) if bot is not None else settings.holds).playout(
                settings.lead_ms / 1000.0, settings.mark_every
            ),
            recorder=(
                CallRecorder(origin, settings.max_recording_seconds)
                if recording is not None
                else None
            ),
        )
        call.recording = recording
        runner = CallRunner(session, _BrowserTransport(call))
        call.runner = runner
        call.track.runner = runner
        self.active[call_id] = call
        local = pc.localDescription
        return local.sdp, call

    def _wire(self, call: _BrowserCall) -> None:
        """aiortc's callbacks for one call."""
        pc = call.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and call.caller_track is None:
                call.caller_track = track
                call.got_track.set()

        @pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            if call.channel is not None:
                return  # one channel per call; others are ignored
            call.channel = channel

            @channel.on("message")
            def on_message(data: str | bytes) -> None:
                self._page_message(call, data)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            log.info("= browser call %s: connection %s", call.call_id, state)
            if state in ("failed", "closed"):
                call.end(f"connection {state}", "caller-hung-up")

    def _page_message(self, call: _BrowserCall, data: str | bytes) -> None:
        runner = call.runner
        event = call.page.receive(data, time.monotonic())
        match event:
            case HangupRequested():
                call.end("caller hung up", "caller-hung-up")
            case Dtmf(digits=digits):
                if runner is not None:
                    for digit in digits:
                        runner.receive_dtmf(digit)
            case Ignored(kind=kind, reason=reason):
                if runner is not None:
                    runner.session.ledger.violation(kind)
                log.info("x browser call %s: ignored message: %s", call.call_id, reason)

    async def _run(self, call: _BrowserCall, bot: BotAction | None) -> None:
        current_call.set(call.call_id)
        runner = call.runner
        assert runner is not None
        runner.start(self.calls, (bot.max_duration or 0) if bot is not None else 0)
        log.info("= browser call %s streaming to engine %s", call.call_id,
                 runner.session.ledger.engine)  # fmt: skip
        try:
            async with asyncio.TaskGroup() as tasks:
                reader = tasks.create_task(self._read_caller(call, runner))
                pump = tasks.create_task(self._pump_engine(call, runner))
                watchdog = tasks.create_task(self._watch(call))
                try:
                    await call.ended.wait()
                finally:
                    reader.cancel()
                    pump.cancel()
                    watchdog.cancel()
        except* Exception as group:  # noqa: BLE001 - any failure ends this call only
            reason = f"internal error: {group.exceptions[0]!r}"
            runner.session.ledger.errors.append(reason)
            call.end(reason, "internal-error")
            log.exception("x browser call %s failed", call.call_id,
                          exc_info=group.exceptions[0])  # fmt: skip
        finally:
            await self._finish(call, runner)

    async def _finish(self, call: _BrowserCall, runner: CallRunner) -> None:
        reason, outcome = call.end_reason
        call.line.end()
        call.track.stop()
        ledger = runner.session.ledger
        queue = call.queue
        ledger.event(
            time.time() - ledger.started_at,
            "webrtc",
            f"bot frames handed to aiortc {queue.frames_taken} (heard positions exact to that "
            f"hand-off), dropped by clears {queue.cleared_frames}",
        )
        try:
            await runner.close(reason, outcome, call.recording)
        finally:
            self.active.pop(call.call_id, None)
            assert self.admission is not None
            self.admission.release(call.call_id)
            timeline = f"/calls/{call.call_id}" if self.timelines else None
            call.tell(ended_message(call.call_id, reason, timeline))
            await asyncio.sleep(0.05)  # let the ended message leave before the close
            with contextlib.suppress(Exception):
                await call.pc.close()
        log.info("= browser call %s ended: %s", call.call_id, reason)

    async def _read_caller(self, call: _BrowserCall, runner: CallRunner) -> None:
        """The caller's audio: 48 kHz from aiortc, to 8 kHz mu-law frames for the call core."""
        await call.got_track.wait()
        track = call.caller_track
        assert track is not None
        resampler: StreamResampler | None = None
        rate = 0
        pending = b""
        line = call.line
        clock = time.monotonic
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                call.end("caller's audio ended", "caller-hung-up")
                return
            assert isinstance(frame, AudioFrame)
            if frame.sample_rate != rate or resampler is None:
                rate = frame.sample_rate
                resampler = StreamResampler(rate, 8000)
            samples = frame.to_ndarray()
            channels = len(frame.layout.channels)
            # Packed s16: one row, channels interleaved; the left channel is the microphone.
            mono = samples[0, ::channels] if channels > 1 else samples[0]
            pending += ulaw_encode(resampler.process(np.ascontiguousarray(mono).tobytes()))
            line.audio(clock())
            usable = len(pending) - len(pending) % 160
            for start in range(0, usable, 160):
                runner.receive_audio(pending[start : start + 160])
            pending = pending[usable:]

    async def _pump_engine(self, call: _BrowserCall, runner: CallRunner) -> None:
        """The runner's engine pump, with the transcript and interruptions shown on the page
        as they happen."""

        def show(event: EngineEvent) -> None:
            if type(event) is Transcript:
                call.tell(transcript_message(event.role, event.text, event.final))
            elif type(event) is Interrupt or type(event) is Commit:
                call.tell(state_message("interrupted"))

        try:
            await runner.pump_engine(show)
        except EngineFailed:
            call.end("engine failed", "engine-failed")
            return
        call.end("engine ended the session", "completed")

    async def _watch(self, call: _BrowserCall) -> None:
        """End a call that never connects, or whose audio stops (a tab gone without a word)."""
        line = call.line
        while True:
            deadline = line.next_deadline()
            if deadline is None:
                return
            await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
            why = line.expired(time.monotonic())
            if why is not None:
                self.refused("phone-media-timeout")
                log.warning("x browser call %s: %s; ending it", call.call_id, why)
                call.end(why, "media-timeout")
                return


class _Refused(Exception):
    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


async def _read_bounded(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes before more is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RemoteProtocolError(f"offer larger than {limit} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RemoteProtocolError(f"offer larger than {limit} bytes", 413)
    return bytes(body)
