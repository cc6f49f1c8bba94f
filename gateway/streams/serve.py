"""One media-stream call over a websocket, for any carrier: the asyncio pump.

The carrier's sans-I/O core (:class:`~gateway.streams.events.MediaStream`) parses and frames;
:class:`~gateway.call.runner.CallRunner` runs the call. This module only moves bytes between
them and the socket. Per call it runs, under one TaskGroup: the reader (this coroutine), the
writer (the only coroutine that writes the socket, so a clear goes out ahead of everything not
yet written), the engine-event pump and a media watchdog; plus, for a carrier that does not
echo marks, one timer releasing the marks the pacing clock says were heard
(:class:`~gateway.streams.heard.PacedEchoes`).

Bounds: the start message within ``start_timeout``; the first audio within
``first_media_timeout`` and no gap longer than ``media_silence_timeout``; message size, rate
and garbage are the core's (``RemoteProtocolError`` ends this call only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from engine.base import CallContext, EngineFailed
from gateway.call.ledger import CallLedger
from gateway.call.recording import CallRecorder
from gateway.call.runner import CallRunner, RequestsDtmf, open_engine
from gateway.call.session import CallSession
from gateway.ids import InvalidIdentifier
from gateway.ops.logs import call_id as current_call
from gateway.ops.logs import field as log_field
from gateway.streams.events import (
    CallerAudio,
    DigitPressed,
    MediaStream,
    PlayedUpTo,
    RemoteProtocolError,
    StreamEnded,
    StreamOpened,
    Violation,
)
from gateway.streams.heard import PacedEchoes

if TYPE_CHECKING:
    from gateway.streams.carrier import CallControl, ControlFactory, StreamCarrier

__all__ = ["StreamCall", "StreamTransport"]

log = logging.getLogger("overtalk.streams")

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_UNAVAILABLE = 1013  # "try again later": the engine could not take the call
#: How often a stream's media deadlines are checked (one timer per call, not one per frame).
WATCHDOG_S = 1.0


class StreamTransport:
    """The call's :class:`~gateway.call.runner.Carrier` over a carrier's MediaStream: the
    writer coroutine drains it to the socket; hang-up, transfer and DTMF go to ``control``
    (DTMF only where that control is :class:`~gateway.call.runner.RequestsDtmf`: else the
    runner plays tones)."""

    __slots__ = ("stream", "ws", "_wakeup", "runner", "control", "echoes", "_echo_timer")

    def __init__(self, stream: MediaStream, ws: WebSocket) -> None:
        self.stream = stream
        self.ws = ws
        self._wakeup = asyncio.Event()
        self.runner: CallRunner | None = None
        self.control: CallControl | None = None
        #: The pacing clock's mark echoes, for a carrier that sends none.
        self.echoes = None if stream.exact_heard else PacedEchoes()
        self._echo_timer: asyncio.TimerHandle | None = None

    # Once the carrier has stopped the stream the call is ending: a pacing timer or engine
    # event that fires before the session closes has nowhere to send to, and is dropped.

    def send_frame(self, frame: bytes) -> None:
        if self.stream.streaming:
            self.stream.send_audio(frame)
            if self.echoes is not None:
                # The session paces frames out at their play time less its lead: queue time
                # is send time.
                self.echoes.sent_audio(len(frame) / 8000.0, time.monotonic())

    def send_mark(self, name: str) -> None:
        if self.stream.streaming:
            self.stream.send_mark(name)
            if self.echoes is not None:
                self.echoes.sent_mark(name, time.monotonic())

    def send_clear(self) -> None:
        if self.stream.streaming:
            self.stream.send_clear()
            if self.echoes is not None:
                self.echoes.cleared()

    def flush(self) -> None:
        self._wakeup.set()

    async def hangup(self) -> None:
        if self.control is not None:
            await self.control.hangup()

    async def transfer(self, target: str) -> None:
        if self.control is not None:
            await self.control.transfer(target)

    def can_request_dtmf(self, digits: str) -> bool:
        control = self.control
        return isinstance(control, RequestsDtmf) and control.can_request_dtmf(digits)

    async def request_dtmf(self, digits: str) -> None:
        control = self.control
        if not isinstance(control, RequestsDtmf):  # the runner asked can_request_dtmf first
            raise RuntimeError("this call's control sends no DTMF")
        await control.request_dtmf(digits)

    def arm_echoes(self) -> None:
        """Keep one timer at the next estimated mark echo (pacing-clock carriers only)."""
        echoes = self.echoes
        if echoes is None:
            return
        due = echoes.next_due()
        if self._echo_timer is not None:
            self._echo_timer.cancel()
            self._echo_timer = None
        if due is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, due - time.monotonic())
            self._echo_timer = loop.call_at(loop.time() + delay, self._release_echoes)

    def _release_echoes(self) -> None:
        self._echo_timer = None
        runner, echoes = self.runner, self.echoes
        if runner is None or echoes is None:
            return
        for name in echoes.due(time.monotonic()):
            runner.receive_mark(name)
        self.arm_echoes()

    def stop_echoes(self) -> None:
        if self._echo_timer is not None:
            self._echo_timer.cancel()
            self._echo_timer = None

    async def run_writer(self) -> None:
        """Write queued frames until cancelled, or until the peer is gone (then quietly: the
        reader sees the disconnect and ends the call)."""
        try:
            await self._write()
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            log.info("x media stream closed while writing: %s", log_field(exc))

    async def _write(self) -> None:
        stream, ws, wakeup, echoes = self.stream, self.ws, self._wakeup, self.echoes
        while True:
            await wakeup.wait()
            wakeup.clear()
            while (message := stream.next_message()) is not None:
                if isinstance(message, str):
                    await ws.send_text(message)
                else:
                    await ws.send_bytes(message)
                runner = self.runner
                if runner is not None and stream.is_clear(message):
                    runner.clear_written()
            if echoes is not None:
                self.arm_echoes()


class StreamCall:
    """The lifetime of one media-stream connection."""

    def __init__(
        self, carrier: StreamCarrier, ws: WebSocket, stream: MediaStream, control: ControlFactory
    ) -> None:
        self.carrier = carrier
        self.ws = ws
        self.stream = stream
        self.control_factory = control
        self.transport = StreamTransport(stream, ws)
        self._last_audio = 0.0
        self._had_audio = False
        self._timed_out: str | None = None

    async def _receive(self) -> str | bytes | None:
        """The next frame's data, or None once the peer has gone."""
        try:
            message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""

    async def _await_start(self) -> StreamOpened | None:
        stream = self.stream
        while True:
            data = await self._receive()
            if data is None:
                return None
            stream.receive_message(data, time.monotonic())
            for event in stream.events_received():
                if isinstance(event, StreamOpened):
                    return event
                if isinstance(event, Violation):
                    log.warning("x before start: %s", log_field(event.reason, 300))

    async def run(self) -> None:
        carrier = self.carrier
        try:
            opened = await asyncio.wait_for(self._await_start(), carrier.settings.start_timeout)
        except TimeoutError:
            log.warning("x no start within %.0f s; closing", carrier.settings.start_timeout)
            carrier.refused("start-timeout")
            await self._close(CLOSE_POLICY)
            return
        except RemoteProtocolError as exc:
            log.warning("x media stream before start: %s", log_field(exc.reason, 300))
            carrier.refused(exc.kind)
            await self._close(exc.close_code)
            return
        if opened is None:
            return
        refusal = carrier.admit_stream(opened)
        if refusal is not None:
            kind, reason = refusal
            log.warning("x %s stream for call %s refused: %s", carrier.name, opened.call_id, reason)
            carrier.refused(kind)
            await self._close(CLOSE_POLICY)
            return
        carrier.streaming.add(opened.call_id)
        try:
            await self._serve(opened)
        finally:
            carrier.streaming.discard(opened.call_id)

    async def _serve(self, opened: StreamOpened) -> None:
        carrier = self.carrier
        settings = carrier.settings
        params = opened.parameters
        bot = carrier.bot_for(params, opened.call_id)
        engines = carrier.engines
        current_call.set(opened.call_id)
        ledger = CallLedger(
            call_id=opened.call_id,
            carrier=carrier.name,
            engine=(bot.engine if bot is not None else None) or engines.default,
            caller=params.get("from", ""),
            called=params.get("to", ""),
            route=params.get("route", ""),
            started_at=time.time(),
        )
        # The record says how the heard position reported to the engine was known.
        ledger.event(
            0.0,
            "heard-position",
            "exact (carrier echoes marks)"
            if self.stream.exact_heard
            else "estimated (pacing clock; the carrier echoes no marks)",
        )
        if opened.media_format:
            ledger.event(0.0, "media-format", opened.media_format)
        context = CallContext(
            call_id=opened.call_id,
            caller=params.get("from", ""),
            called=params.get("to", ""),
            direction=params.get("direction", "inbound"),
            parameters={**params, **(bot.context_parameters() if bot is not None else {})},
        )
        try:
            self.transport.control = self.control_factory(opened, self._close_normally)
        except InvalidIdentifier as exc:  # the core checked the id; defence in depth
            log.error("x %s call %s refused: %s", carrier.name, opened.call_id, exc)
            carrier.refused("bad-identifier")
            await self._close(CLOSE_POLICY)
            return
        engine_session = await open_engine(engines, ledger, context)
        if engine_session is None:
            carrier.calls.ended(ledger)
            await self._close(CLOSE_UNAVAILABLE)
            return
        try:
            recording = carrier.recording_path(ledger.call_id, bot)
        except InvalidIdentifier as exc:  # the core checked the id; defence in depth
            log.error("x call %s not recorded: %s", ledger.call_id, exc)
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
        runner = CallRunner(session, self.transport)
        self.transport.runner = runner
        runner.start(carrier.calls, (bot.max_duration or 0) if bot is not None else 0)
        log.info("= %s call %s streaming to engine %s", carrier.name, ledger.call_id, ledger.engine)
        reason, outcome = "stream closed", "completed"
        try:
            async with asyncio.TaskGroup() as tasks:
                writer = tasks.create_task(self.transport.run_writer())
                pump = tasks.create_task(self._pump_engine(runner))
                watchdog = tasks.create_task(self._watch_media())
                try:
                    reason, outcome = await self._read(runner)
                finally:
                    writer.cancel()
                    pump.cancel()
                    watchdog.cancel()
        except* EngineFailed:
            reason, outcome = "engine failed", "engine-failed"
        except* Exception as group:  # noqa: BLE001 - any failure ends this call only
            reason, outcome = f"internal error: {group.exceptions[0]!r}", "internal-error"
            ledger.errors.append(reason)
            log.exception("x call %s failed", ledger.call_id, exc_info=group.exceptions[0])
        finally:
            self.transport.stop_echoes()
            await runner.close(reason, outcome, recording)
            await self._close(CLOSE_NORMAL)

    async def _pump_engine(self, runner: CallRunner) -> None:
        await runner.pump_engine()
        await self._close(CLOSE_NORMAL)  # the engine ended the conversation

    async def _watch_media(self) -> None:
        """Close a stream whose audio does not start, or stops: these carriers send a frame
        every 20 ms while the call is up, so a long gap means a dead or hostile peer."""
        settings = self.carrier.settings
        clock = time.monotonic
        self._last_audio = clock()
        while True:
            await asyncio.sleep(WATCHDOG_S)
            quiet = clock() - self._last_audio
            if not self._had_audio and quiet > settings.first_media_timeout:
                self._timed_out = f"no media within {settings.first_media_timeout:g} s of start"
                self.carrier.refused("first-media-timeout")
            elif self._had_audio and quiet > settings.media_silence_timeout:
                self._timed_out = f"no media for {settings.media_silence_timeout:g} s"
                self.carrier.refused("media-silence-timeout")
            else:
                continue
            log.warning("x %s; closing", self._timed_out)
            await self._close(CLOSE_POLICY)
            return

    async def _read(self, runner: CallRunner) -> tuple[str, str]:
        """Feed the call until the stream stops; returns why it ended and the outcome."""
        stream = self.stream
        ledger = runner.session.ledger
        clock = time.monotonic
        while True:
            data = await self._receive()
            if data is None:
                if self._timed_out is not None:
                    return self._timed_out, "media-timeout"
                return "caller disconnected", "caller-hung-up"
            now = clock()
            try:
                stream.receive_message(data, now)
            except RemoteProtocolError as exc:
                ledger.violation(exc.kind)
                log.warning("x call %s: %s; closing", ledger.call_id, log_field(exc.reason, 300))
                self.carrier.refused(exc.kind)
                await self._close(exc.close_code)
                return f"protocol error: {exc.reason}", "protocol-error"
            for event in stream.events_received():
                if type(event) is CallerAudio:
                    self._last_audio = now
                    self._had_audio = True
                    runner.receive_audio(event.ulaw, event.timestamp)
                elif type(event) is PlayedUpTo:
                    runner.receive_mark(event.name)
                elif type(event) is DigitPressed:
                    runner.receive_dtmf(event.digit)
                elif type(event) is StreamEnded:
                    return "stream stopped", "completed"
                elif type(event) is Violation:
                    ledger.violation(event.kind)
                    log.warning(
                        "x call %s: ignored message: %s",
                        ledger.call_id,
                        log_field(event.reason, 300),
                    )

    async def _close_normally(self) -> None:
        await self._close(CLOSE_NORMAL)

    async def _close(self, code: int) -> None:
        ws = self.ws
        if ws.application_state is WebSocketState.CONNECTED or (
            ws.client_state is WebSocketState.CONNECTING
        ):
            try:
                await ws.close(code=code)
            except (RuntimeError, WebSocketDisconnect):
                pass  # the peer went first
