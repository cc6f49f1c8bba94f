"""Twilio over FastAPI: the voice, status, dial and voicemail webhooks and the Media Streams
websocket.

The protocol lives in ``stream.py`` (sans-I/O) and the call in ``gateway.call.session``; this module
only pumps bytes between them and the sockets. Per call it runs three things under one
TaskGroup: the reader (this endpoint), the writer (the only coroutine that writes the socket,
so a ``clear`` can be put ahead of everything not yet written) and the engine-event pump.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect
from starlette.datastructures import QueryParams
from starlette.websockets import WebSocketState
from twilio.twiml.voice_response import VoiceResponse

from engine.base import CallContext, EngineFailed
from gateway.call.labels import CallOutcome
from gateway.call.ledger import CallLedger
from gateway.call.recording import CallRecorder, recording_path
from gateway.call.registry import CallRegistry
from gateway.call.runner import CallRunner, open_engine
from gateway.call.session import CallSession
from gateway.carriers.twilio.control import (
    StreamCloseControl,
    TwilioRestControl,
    rest_client,
)
from gateway.carriers.twilio.signature import SignatureChecker, public_url
from gateway.carriers.twilio.stream import (
    AudioChunk,
    Dtmf,
    MarkReached,
    ProtocolViolation,
    RemoteProtocolError,
    StreamStarted,
    StreamState,
    StreamStopped,
    TwilioStream,
)
from gateway.carriers.twilio.stream_token import TOKEN_PARAMETER, StreamTokens
from gateway.carriers.twilio.twiml import connect_stream, render
from gateway.carriers.twilio.voicemail import (
    BadCallback,
    RecordEnded,
    RecordingReport,
    TranscriptionReport,
    audio_url,
    classify,
)
from gateway.carriers.twilio.voicemail_io import VoicemailKeeper
from gateway.config import Settings
from gateway.dialplan import (
    BotAction,
    CallFacts,
    Decision,
    PlanHolder,
    VoicemailAction,
    after_dial,
    recall,
    route,
)
from gateway.engines import EngineSet
from gateway.ids import ACCOUNT_SID, CALL_SID, InvalidIdentifier, is_twilio_sid
from gateway.ops.admission import Admission
from gateway.ops.lifecycle import Lifecycle
from gateway.ops.logs import call_id as current_call
from gateway.ops.logs import field as log_field

log = logging.getLogger("overtalk.twilio")

MEDIA_PATH = "/twilio/media"
#: Where Twilio reports how a dial-plan transfer ended (``<Dial action>``).
DIAL_PATH = "/twilio/dial"
#: Where a dial-plan voicemail reports: ``<Record action>``, recording and transcription
#: callbacks (see ``gateway.carriers.twilio.voicemail``).
VOICEMAIL_PATH = "/twilio/voicemail"
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_UNAVAILABLE = 1013  # "try again later": the engine could not take the call
#: How often a stream's media deadlines are checked (one timer per call, not one per frame).
WATCHDOG_S = 1.0


def _stream_context(params: dict[str, str]) -> dict[str, str]:
    """The call's identity as ``<Parameter>``s (bounded: Twilio caps name + value at 500)."""
    return {
        "call_sid": params.get("CallSid", "")[:64],
        "from": params.get("From", "")[:100],
        "to": params.get("To", "")[:100],
        "direction": params.get("Direction", "inbound")[:40],
    }


def _identified(params: dict[str, str]) -> str | None:
    """None when the webhook's identifiers have Twilio's format, else what is wrong: the
    ``CallSid`` goes into TwiML, stream tokens, the status history and log lines."""
    if not is_twilio_sid(params.get("CallSid"), CALL_SID):
        return "CallSid is not a Twilio call SID"
    account = params.get("AccountSid")
    if account is not None and not is_twilio_sid(account, ACCOUNT_SID):
        return "AccountSid is not a Twilio account SID"
    return None


def _forbidden() -> Response:
    return Response("forbidden\n", status_code=403, media_type="text/plain")


def _bad_request(reason: str) -> Response:
    return Response(f"bad request: {reason}\n", status_code=400, media_type="text/plain")


def _twiml(text: str) -> Response:
    return Response(text, media_type="application/xml")


def _busy() -> Response:
    """Twilio's busy signal: the caller hears busy and the call is not billed (TwiML
    ``<Reject>``: https://www.twilio.com/docs/voice/twiml/reject)."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return _twiml(str(response))


def _hangup() -> Response:
    """``<Response><Hangup/></Response>`` (the builder's ``hangup()`` returns the verb alone)."""
    response = VoiceResponse()
    response.hangup()
    return _twiml(str(response))


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass
class TwilioCarrier:
    """What the Twilio routes need from the gateway."""

    settings: Settings
    engines: EngineSet
    calls: CallRegistry
    plans: PlanHolder | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    #: Wall clock for routing by time of day (a fixed one in tests).
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    #: Told of each refusal by kind (``GatewayMetrics.refused``).
    refused: Callable[[str], None] = lambda kind: None
    #: Places per engine (gateway/ops/admission.py); unset: unlimited.
    admission: Admission | None = None

    def __post_init__(self) -> None:
        if self.admission is None:
            self.admission = Admission({}, self.calls.active)
        token = self.settings.twilio_auth_token
        self.tokens = StreamTokens.derive(
            self.settings.stream_secret, token, self.settings.stream_token_ttl
        )
        #: Call SIDs with a media stream being served: one stream per call.
        self.streaming: set[str] = set()
        self.checker = SignatureChecker(token) if token else None
        sid = self.settings.twilio_account_sid
        self.rest = (
            rest_client(sid, token, self.settings.twilio_api_base or None)
            if sid and token
            else None
        )
        self.voicemail = VoicemailKeeper(sid, token)

    async def aclose(self) -> None:
        """Stop the background work of the webhooks (voicemail fetches), at shut-down."""
        await self.voicemail.aclose()

    def base_url(self, fallback: str) -> str:
        return self.settings.public_url or fallback

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/twilio/voice", self.voice, methods=["POST"])
        router.add_api_route("/twilio/status", self.status, methods=["POST"])
        router.add_api_route(DIAL_PATH, self.dial_status, methods=["POST"])
        router.add_api_route(VOICEMAIL_PATH, self.voicemail_callback, methods=["POST"])
        router.add_api_websocket_route(MEDIA_PATH, self.media)
        return router

    # -- webhooks ----------------------------------------------------------------------------

    async def _authorized_form(self, request: Request) -> dict[str, str] | None:
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        if self.checker is None:
            client = request.client.host if request.client else None
            return params if _is_loopback(client) else None
        url = public_url(self.base_url(str(request.base_url)), request.url.path, request.url.query)
        if not self.checker.check_webhook(url, params, request.headers.get("x-twilio-signature")):
            log.warning("x rejected unsigned or forged request to %s", log_field(request.url.path))
            self.refused("bad-signature")
            return None
        return params

    def _token_for(self, call_sid: str) -> Callable[[dict[str, str]], str]:
        """Issues the stream token of ``call_sid`` for a ``<Stream>``'s other parameters."""
        return lambda parameters: self.tokens.issue(call_sid, parameters, time.time())

    async def voice(self, request: Request) -> Response:
        """Answer an incoming call: the dial plan's decision, or a stream to the engine."""
        params = await self._authorized_form(request)
        if params is None:
            return _forbidden()
        problem = _identified(params)
        if problem is not None:
            log.warning("x voice webhook refused: %s", problem)
            self.refused("bad-identifier")
            return _bad_request(problem)
        call_sid = params["CallSid"]
        current_call.set(call_sid)
        if not self.lifecycle.accepting:
            log.info("x refusing call %s: draining", call_sid)
            if self.settings.drain_answer == "unavailable":
                return Response("draining\n", status_code=503, media_type="text/plain")
            return _busy()
        log.info(
            "< voice webhook call %s from %s to %s (%s)",
            call_sid,
            log_field(params.get("From", "")),
            log_field(params.get("To", "")),
            log_field(params.get("Direction", "")),
        )
        plans = self.plans
        if plans is None:
            if not self._admit(call_sid, self.engines.default):
                return _busy()
            stream_url = public_url(
                self.base_url(str(request.base_url)), MEDIA_PATH, websocket=True
            )
            context = _stream_context(params)
            context[TOKEN_PARAMETER] = self._token_for(call_sid)(context)
            return _twiml(connect_stream(stream_url, context))
        facts = CallFacts.from_twilio(params, self.wall_clock())
        # A full engine is an unavailable one: its bot gives way to the route's fallback.
        decision = route(plans.current, facts, engine_available=self._engine_free)
        log.info(
            "= call %s -> route %s, %s: %s",
            call_sid,
            decision.route,
            decision.branch,
            decision.action.action,
        )
        log.debug("= why: %s", "; ".join(decision.reasons))
        action = decision.action
        if isinstance(action, BotAction) and not self._admit(
            call_sid, action.engine or self.engines.default
        ):
            return _busy()  # full, and the route has no fallback
        return self._render(decision, request, params)

    def _engine_free(self, engine: str) -> bool:
        assert self.admission is not None
        full = self.admission.load(engine, time.monotonic()).full
        return self.engines.available(engine) and not full

    def _admit(self, call_sid: str, engine: str) -> bool:
        assert self.admission is not None
        if self.admission.admit(call_sid, engine, "twilio", time.monotonic()):
            return True
        log.info("x refusing call %s: engine %s is full", call_sid, engine)
        return False

    def _render(self, decision: Decision, request: Request, params: dict[str, str]) -> Response:
        """The TwiML for a dial-plan decision, with this gateway's stream, dial and voicemail
        URLs. The voicemail URL carries the caller and called numbers: Twilio's recording
        status callback does not, and the message's record needs them."""
        base = self.base_url(str(request.base_url))
        numbers = urlencode(
            {"from": params.get("From", "")[:100], "to": params.get("To", "")[:100]}
        )
        return _twiml(
            render(
                decision,
                stream_url=public_url(base, MEDIA_PATH, websocket=True),
                parameters=_stream_context(params),
                action_url=public_url(base, DIAL_PATH),
                voicemail_url=public_url(base, VOICEMAIL_PATH, numbers),
                stream_token=self._token_for(params["CallSid"]),
            )
        )

    async def dial_status(self, request: Request) -> Response:
        """A dial-plan transfer ended: continue with its ``on_busy``/``on_no_answer`` action."""
        params = await self._authorized_form(request)
        if params is None:
            return _forbidden()
        problem = _identified(params)
        if problem is not None:
            self.refused("bad-identifier")
            return _bad_request(problem)
        names = request.query_params
        if "DialCallStatus" not in params and (
            "RecordingStatus" in params or "TranscriptionSid" in params or "RecordingUrl" in params
        ):
            # A voicemail rendered with only a dial URL (a campaign's answer, or a call answered
            # before this gateway had a voicemail URL) reports here.
            return await self._voicemail(params, names)
        if self.plans is None:
            return _hangup()
        plan = self.plans.get(names.get("plan", "")) or self.plans.current
        facts = CallFacts.from_twilio(params, self.wall_clock())
        try:
            decision = recall(
                plan, names.get("route", ""), names.get("branch", ""), facts,
                path=names.get("path", ""),
            )  # fmt: skip
            decision = after_dial(decision, params.get("DialCallStatus", "failed"))
        except (LookupError, ValueError) as exc:
            log.warning(
                "x dial status for call %s: %s; hanging up", params["CallSid"], log_field(exc)
            )
            return _hangup()
        return self._render(decision, request, params)

    async def voicemail_callback(self, request: Request) -> Response:
        """A dial-plan voicemail's ``<Record>`` reports: keep the message in its store."""
        params = await self._authorized_form(request)
        if params is None:
            return _forbidden()
        return await self._voicemail(params, request.query_params)

    async def _voicemail(self, params: dict[str, str], names: QueryParams) -> Response:
        call_sid = log_field(params.get("CallSid", "?"), 40)
        try:
            callback = classify(params)
        except BadCallback as exc:
            log.warning("x voicemail callback for call %s refused: %s", call_sid, log_field(exc))
            return _bad_request(str(exc))
        if isinstance(callback, RecordEnded):
            log.info("< voicemail of call %s ended (%s s)", call_sid, callback.duration)
            return _hangup()
        store = self._voicemail_store(params, names)
        if store is None:
            return _bad_request("no voicemail with a directory store at this route")
        where = {
            "route": names.get("route", ""),
            "branch": names.get("branch", ""),
            "caller": names.get("from", "")[:100],
            "called": names.get("to", "")[:100],
        }
        try:
            match callback:
                case RecordingReport():
                    media = (
                        audio_url(callback, self.settings.twilio_api_base)
                        if callback.recording_url
                        else None
                    )
                    await self.voicemail.recording(store, callback, media_url=media, **where)
                case TranscriptionReport():
                    await self.voicemail.transcription(store, callback, **where)
        except BadCallback as exc:
            log.warning("x voicemail callback for call %s refused: %s", call_sid, log_field(exc))
            return _bad_request(str(exc))
        except OSError as exc:
            log.error("x voicemail of call %s not kept in %s: %s", call_sid, store, exc)
            return Response("cannot store voicemail\n", status_code=500, media_type="text/plain")
        return Response(status_code=204)

    def _voicemail_store(self, params: dict[str, str], names: QueryParams) -> Path | None:
        """The directory the dial plan's voicemail action keeps messages in, found by the names
        in the callback URL (never by anything else in the request); None (logged) if none."""
        plans = self.plans
        route_name, branch = names.get("route", ""), names.get("branch", "")
        if plans is None:
            log.warning("x voicemail callback for route %s but no dial plan is loaded",
                        log_field(route_name))  # fmt: skip
            return None
        plan = plans.get(names.get("plan", "")) or plans.current
        facts = CallFacts.from_twilio(params, self.wall_clock())
        try:
            action = recall(plan, route_name, branch, facts, path=names.get("path", "")).action
        except LookupError as exc:
            log.warning("x voicemail callback for call %s: %s", log_field(params.get("CallSid")),
                        log_field(exc))  # fmt: skip
            return None
        if not isinstance(action, VoicemailAction) or action.store is None or action.store_is_url:
            log.warning(
                "x voicemail callback for route %s, branch %s: not a voicemail with a directory "
                "store",
                log_field(route_name),
                log_field(branch),
            )
            return None
        return Path(action.store)

    async def status(self, request: Request) -> Response:
        """Keep Twilio's call status callbacks with their call."""
        params = await self._authorized_form(request)
        if params is None:
            return _forbidden()
        problem = _identified(params)
        if problem is not None:
            self.refused("bad-identifier")
            return _bad_request(problem)
        call_sid = params["CallSid"]
        self.calls.status(call_sid, params)
        log.info("< status of call %s: %s", call_sid, log_field(params.get("CallStatus", "?"), 20))
        return Response(status_code=204)

    # -- media stream ------------------------------------------------------------------------

    def bot_for(self, params: dict[str, str], call_sid: str) -> BotAction | None:
        """The dial-plan bot action a stream was started for, from its ``<Parameter>``s.

        Looked up in the plan the call was routed by (if still held), so a reload mid-call
        changes nothing for it. None when there is no plan or the stream names no route.
        """
        plans = self.plans
        if plans is None or "route" not in params:
            return None
        plan = plans.get(params.get("plan", "")) or plans.current
        facts = CallFacts(
            to=params.get("to", ""),
            from_=params.get("from", ""),
            at=self.wall_clock(),
            direction=params.get("direction", "inbound"),
        )
        try:
            decision = recall(
                plan, params["route"], params.get("branch", ""), facts, path=params.get("path", "")
            )
        except LookupError as exc:
            log.warning("x call %s: %s; using the default engine", call_sid, log_field(exc))
            return None
        return decision.action if isinstance(decision.action, BotAction) else None

    def recording_path(self, call_id: str, bot: BotAction | None) -> Path | None:
        """Where this call's stereo recording goes, or None when it is not recorded."""
        return recording_path(
            call_id,
            recordings_dir=self.settings.recordings_dir,
            records_dir=self.settings.records_dir,
            record=bot is not None and bool(bot.record),
        )

    def _upgrade_allowed(self, ws: WebSocket) -> bool:
        if self.checker is None:
            return _is_loopback(ws.client.host if ws.client else None)
        base = self.base_url(str(ws.base_url).replace("ws", "http", 1))
        url = public_url(base, ws.url.path, websocket=True)
        return self.checker.check_upgrade(url, ws.headers.get("x-twilio-signature"))

    async def media(self, ws: WebSocket) -> None:
        """One call's Media Stream, from upgrade to close."""
        if not self._upgrade_allowed(ws):
            log.warning("x rejected media stream upgrade: bad or missing signature")
            self.refused("bad-signature")
            await ws.close(code=CLOSE_POLICY)
            return
        await ws.accept()
        call = _MediaCall(self, ws)
        await call.run()


class _TwilioTransport:
    """The call's :class:`~gateway.call.runner.Carrier` over a TwilioStream: the writer
    coroutine drains it to the socket; hang-up and transfer go to ``control``."""

    __slots__ = ("stream", "ws", "_wakeup", "runner", "control")

    def __init__(self, stream: TwilioStream, ws: WebSocket) -> None:
        self.stream = stream
        self.ws = ws
        self._wakeup = asyncio.Event()
        self.runner: CallRunner | None = None
        self.control: TwilioRestControl | StreamCloseControl | None = None

    # Once Twilio has sent ``stop`` the call is ending: a pacing timer or engine event that
    # fires before the session closes has nowhere to send to, and is dropped.

    def send_frame(self, frame: bytes) -> None:
        if self.stream.state is StreamState.STREAMING:
            self.stream.send_audio(frame)

    def send_mark(self, name: str) -> None:
        if self.stream.state is StreamState.STREAMING:
            self.stream.send_mark(name)

    def send_clear(self) -> None:
        if self.stream.state is StreamState.STREAMING:
            self.stream.send_clear()

    def flush(self) -> None:
        self._wakeup.set()

    async def hangup(self) -> None:
        if self.control is not None:
            await self.control.hangup()

    async def transfer(self, target: str) -> None:
        if self.control is not None:
            await self.control.transfer(target)

    async def run_writer(self) -> None:
        """Write queued frames until cancelled, or until the peer is gone (then quietly: the
        reader sees the disconnect and ends the call)."""
        try:
            await self._write()
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            log.info("x media stream closed while writing: %s", log_field(exc))

    async def _write(self) -> None:
        stream = self.stream
        send = self.ws.send_text
        wakeup = self._wakeup
        while True:
            await wakeup.wait()
            wakeup.clear()
            while (message := stream.next_message()) is not None:
                await send(message)
                runner = self.runner
                if runner is not None and stream.is_clear(message):
                    runner.clear_written()


class _MediaCall:
    """The lifetime of one Media Stream connection."""

    def __init__(self, carrier: TwilioCarrier, ws: WebSocket) -> None:
        self.carrier = carrier
        self.ws = ws
        settings = carrier.settings
        self.stream = TwilioStream(
            max_payload_bytes=settings.media_max_payload,
            max_rate=settings.media_max_rate,
            burst=settings.media_burst,
        )
        self.transport = _TwilioTransport(self.stream, ws)
        self.ledger: CallLedger | None = None
        #: Monotonic time of the last audio (or of ``start`` until the first), for the
        #: watchdog; None before the first audio.
        self._last_audio = 0.0
        self._had_audio = False
        #: Why the watchdog closed the stream, when it did.
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

    async def _await_start(self) -> StreamStarted | None:
        stream = self.stream
        while True:
            data = await self._receive()
            if data is None:
                return None
            stream.receive_message(data, time.monotonic())
            for event in stream.events_received():
                if isinstance(event, StreamStarted):
                    return event
                if isinstance(event, ProtocolViolation):
                    log.warning("x before start: %s", log_field(event.reason, 300))

    async def run(self) -> None:
        settings = self.carrier.settings
        try:
            started = await asyncio.wait_for(self._await_start(), settings.start_timeout)
        except TimeoutError:
            log.warning("x no 'start' within %.0f s; closing", settings.start_timeout)
            self.carrier.refused("start-timeout")
            await self._close(CLOSE_POLICY)
            return
        except RemoteProtocolError as exc:
            log.warning("x media stream before start: %s", log_field(exc.reason, 300))
            self.carrier.refused(exc.kind)
            await self._close(exc.close_code)
            return
        if started is None:
            return
        refusal = self._admit(started)
        if refusal is not None:
            kind, reason = refusal
            log.warning("x media stream for call %s refused: %s", started.call_sid, reason)
            self.carrier.refused(kind)
            await self._close(CLOSE_POLICY)
            return
        streaming = self.carrier.streaming
        streaming.add(started.call_sid)
        try:
            await self._serve(started)
        finally:
            streaming.discard(started.call_sid)

    def _admit(self, started: StreamStarted) -> tuple[str, str] | None:
        """None when this stream may serve its call; else the refusal's kind and reason."""
        problem = self.carrier.tokens.verify(
            started.call_sid, started.custom_parameters, time.time()
        )
        if problem is not None:
            return "stream-token", problem
        if started.call_sid in self.carrier.streaming or (
            started.call_sid in self.carrier.calls.active
        ):
            return "duplicate-stream", "that call has a media stream already"
        return None

    async def _serve(self, started: StreamStarted) -> None:
        settings = self.carrier.settings
        params = started.custom_parameters
        bot = self.carrier.bot_for(params, started.call_sid)
        engines = self.carrier.engines
        current_call.set(started.call_sid)  # every line logged for this call carries its id
        ledger = CallLedger(
            call_id=started.call_sid,
            carrier="twilio",
            engine=(bot.engine if bot is not None else None) or engines.default,
            caller=params.get("from", ""),
            called=params.get("to", ""),
            route=params.get("route", ""),
            started_at=time.time(),
        )
        self.ledger = ledger
        context = CallContext(
            call_id=started.call_sid,
            caller=params.get("from", ""),
            called=params.get("to", ""),
            direction=params.get("direction", "inbound"),
            parameters={**params, **(bot.context_parameters() if bot is not None else {})},
        )
        engine_session = await open_engine(engines, ledger, context)
        if engine_session is None:
            self.carrier.calls.ended(ledger)
            # Closing the stream makes Twilio run the TwiML after </Connect> (the fallback).
            await self._close(CLOSE_UNAVAILABLE)
            return
        control: TwilioRestControl | StreamCloseControl
        rest = self.carrier.rest
        if rest is not None:
            control = TwilioRestControl(rest, started.call_sid)
        else:
            control = StreamCloseControl(lambda: self._close(CLOSE_NORMAL))
        try:
            recording = self.carrier.recording_path(ledger.call_id, bot)
        except InvalidIdentifier as exc:  # a SID never gets here unchecked; defence in depth
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
        self.transport.control = control
        runner.start(self.carrier.calls, (bot.max_duration or 0) if bot is not None else 0)
        log.info("= call %s streaming to engine %s", ledger.call_id, ledger.engine)
        reason, outcome = "stream closed", CallOutcome.COMPLETED
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
            reason, outcome = "engine failed", CallOutcome.ENGINE_FAILED
        except* Exception as group:  # noqa: BLE001 - any failure ends this call only
            reason, outcome = f"internal error: {group.exceptions[0]!r}", CallOutcome.INTERNAL_ERROR
            ledger.errors.append(reason)
            log.exception("x call %s failed", ledger.call_id, exc_info=group.exceptions[0])
        finally:
            await runner.close(reason, outcome, recording)
            await self._close(CLOSE_NORMAL)

    async def _pump_engine(self, runner: CallRunner) -> None:
        await runner.pump_engine()
        # The engine ended its stream: the conversation is over from its side.
        await self._close(CLOSE_NORMAL)

    async def _watch_media(self) -> None:
        """Close a stream whose audio does not start, or stops: Twilio sends a frame every
        20 ms for as long as the call is up, so a long gap means a dead or hostile peer."""
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

    async def _read(self, runner: CallRunner) -> tuple[str, CallOutcome]:
        """Feed the call until the stream stops; returns why it ended and the outcome."""
        stream = self.stream
        ledger = runner.session.ledger
        clock = time.monotonic
        while True:
            data = await self._receive()
            if data is None:
                if self._timed_out is not None:
                    return self._timed_out, CallOutcome.MEDIA_TIMEOUT
                return "caller disconnected", CallOutcome.CALLER_HUNG_UP
            now = clock()
            try:
                stream.receive_message(data, now)
            except RemoteProtocolError as exc:
                ledger.violation(exc.kind)
                log.warning("x call %s: %s; closing", ledger.call_id, log_field(exc.reason, 300))
                self.carrier.refused(exc.kind)
                await self._close(exc.close_code)
                return f"protocol error: {exc.reason}", CallOutcome.PROTOCOL_ERROR
            for event in stream.events_received():
                if type(event) is AudioChunk:
                    self._last_audio = now
                    self._had_audio = True
                    runner.receive_audio(event.payload, event.timestamp)
                elif type(event) is MarkReached:
                    runner.receive_mark(event.name)
                elif type(event) is Dtmf:
                    runner.receive_dtmf(event.digit)
                elif type(event) is StreamStopped:
                    return "stream stopped", "completed"
                elif type(event) is ProtocolViolation:
                    ledger.violation(event.kind)
                    log.warning(
                        "x call %s: ignored message: %s",
                        ledger.call_id,
                        log_field(event.reason, 300),
                    )

    async def _close(self, code: int) -> None:
        ws = self.ws
        if ws.application_state is WebSocketState.CONNECTED or (
            ws.client_state is WebSocketState.CONNECTING
        ):
            try:
                await ws.close(code=code)
            except (RuntimeError, WebSocketDisconnect):
                pass  # the peer went first
