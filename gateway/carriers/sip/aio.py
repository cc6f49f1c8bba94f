"""SIP over asyncio: the gateway that joins the sans-I/O user agent to its sockets and calls.

The protocol lives in the sans-I/O modules (``ua.py`` over ``transaction.py``, ``media.py``,
``sdp.py``); this module only pumps. :class:`SipGateway` owns:

- the SIP sockets (``transport.py``: UDP, and TCP framed by ``SipFramer``);
- one ``loop.call_at`` for the user agent's next deadline (retransmissions, timers A-M, 2xx
  retransmission, registration refresh, session timers);
- one :class:`~gateway.carriers.sip.media_clock.MediaClock` for every call's RTP: each 20 ms
  tick pulls the bot's next frame from a call's session as its stream packs it, so the RTP
  clock is the call's only pacer and "heard" is what went on the wire;
- per answered call (``calls.py``), an RTP/RTCP socket pair from the configured range, a
  :class:`~gateway.call.session.CallSession` with the engine the dial plan named, and one
  owner task whose TaskGroup holds the call's tasks (answering, the engine pump): when the
  call is finished they are cancelled together, a task that fails hangs up that call only,
  and everything the call holds is released.

Inbound calls are routed through the dial plan by the dialled number (the Request-URI user;
the To user when the Request-URI is our registered contact or has no user) and the From user.
A bot is answered and streamed to its engine; when that engine is full (gateway/ops/admission.py)
the route's fallback is taken, or without one the call gets ``busy_status`` (503 with
Retry-After, or 486). A transfer is answered ``302`` to the target before answering;
``reject`` is ``486`` (busy) or ``603``; ``hangup`` before answering is ``603``. ``say``,
``play`` and ``voicemail`` need a speech engine to render their prompts, which the SIP
carrier does not have outside the bot path: such calls are answered, kept silent for a
second, noted in the ledger and hung up.

Outbound calls go through the trunk: :meth:`SipGateway.place_call`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import logging
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.base import CallContext, EngineFailed, EngineSession
from gateway.call.holds import HoldPolicy
from gateway.call.labels import CallOutcome
from gateway.call.ledger import CallLedger
from gateway.call.recording import CallRecorder, recording_path
from gateway.call.registry import CallRegistry
from gateway.call.runner import CallRunner, open_engine
from gateway.call.session import CallSession
from gateway.carriers.sip.calls import RtpTransport, SipCall
from gateway.carriers.sip.digest import Credentials
from gateway.carriers.sip.errors import CallFailed, LocalProtocolError, RemoteProtocolError
from gateway.carriers.sip.headers import Uri
from gateway.carriers.sip.media import RtpStream
from gateway.carriers.sip.media_clock import MediaClock, PortPool
from gateway.carriers.sip.sdp import (
    MediaParams,
    NoCommonCodec,
    SessionDescription,
    accept_answer,
    answer,
    offer,
)
from gateway.carriers.sip.settings import SipSettings
from gateway.carriers.sip.transaction import Peer
from gateway.carriers.sip.transport import Datagrams, SipTransport
from gateway.carriers.sip.ua import (
    NO_ACK,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallProgress,
    DtmfReceived,
    IncomingCall,
    OfferReceived,
    ReferStatus,
    Registered,
    RegistrationFailed,
    UaConfig,
    UaEvent,
    UserAgent,
)
from gateway.carriers.sip.ua import CallFailed as UaCallFailed
from gateway.config import ConfigError
from gateway.dialplan import (
    BotAction,
    CallFacts,
    HangupAction,
    PlanHolder,
    RejectAction,
    TransferAction,
    route,
)
from gateway.engines import EngineSet
from gateway.ids import InvalidIdentifier
from gateway.ops.admission import Admission
from gateway.ops.lifecycle import CannotListen, Lifecycle
from gateway.ops.logs import call_id as current_call

log = logging.getLogger("overtalk.sip")

__all__ = ["SipGateway", "sip_server"]

#: A prompt-only call (say/play/voicemail) is held this long before the hang-up.
PROMPT_HOLD = 1.0
#: How long a transfer waits for the REFER's outcome.
REFER_TIMEOUT = 32.0


class _CallFinished(Exception):
    """Raised in a call's owner to end its TaskGroup: the call is finished."""


@dataclass
class _Prompt:
    """A say/play/voicemail action, answered without a speech engine (see module doc)."""

    kind: str


class SipGateway:
    """The SIP carrier of one gateway process. See the module docstring."""

    def __init__(
        self,
        settings: SipSettings,
        engines: EngineSet,
        calls: CallRegistry,
        plans: PlanHolder | None = None,
        *,
        lifecycle: Lifecycle | None = None,
        admission: Admission | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recordings_dir: str = "",
        holds: HoldPolicy | None = None,
    ) -> None:
        if settings.host in ("0.0.0.0", "::") and not settings.public_host:
            raise ConfigError("listening on a wildcard address needs OVERTALK_SIP_PUBLIC_HOST")
        self.settings = settings
        self.engines = engines
        self.registry = calls
        self.plans = plans
        self.lifecycle = lifecycle or Lifecycle()
        #: Places per engine; a call holds one from its INVITE until it is finished.
        self.admission = admission or Admission({}, calls.active)
        self.wall_clock = wall_clock
        self.recordings_dir = recordings_dir
        #: How a call's holds sound unless its bot says (the gateway's settings).
        self.holds = holds or HoldPolicy()
        credentials = (
            Credentials(settings.username, settings.password) if settings.username else None
        )
        self.credentials = credentials
        self.ports = PortPool(settings.host, settings.rtp_port_min, settings.rtp_port_max)
        self.media = MediaClock()
        self.calls: dict[str, SipCall] = {}
        self.ua: UserAgent | None = None
        self.port = settings.port
        self.transport = SipTransport(self._receive, self._spawn)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outbound: dict[str, asyncio.Future[UaEvent]] = {}
        self._refers: dict[str, asyncio.Future[int]] = {}
        self.registered = asyncio.Event()
        self.registration_error: RegistrationFailed | None = None
        self.trunk_peer: Peer | None = None
        self.trunk_uri: Uri | None = None

    # -- start and stop ----------------------------------------------------------------------

    async def start(self) -> None:
        settings = self.settings
        # Port 0 lets the system choose for UDP; TCP must then take the same number,
        # which another socket may already hold: choose again, a few times.
        attempts = 20 if settings.port == 0 and len(settings.transports) > 1 else 1
        for attempt in range(attempts):
            try:
                self.port = await self.transport.listen(
                    settings.host, settings.port, settings.transports
                )
                break
            except OSError as error:
                # uvloop reports a taken UDP address without an errno.
                taken = error.errno in (errno.EADDRINUSE, None)
                if not taken or attempt == attempts - 1:
                    raise CannotListen(
                        f"SIP cannot listen on {settings.host}:{settings.port} "
                        f"({'+'.join(settings.transports)}): {error.strerror or error}"
                    ) from error
        self.ua = UserAgent(
            UaConfig(
                host=settings.contact_host,
                port=self.port,
                user=settings.user,
                credentials=self.credentials,
                registrar=settings.registrar,
                aor=settings.aor,
                register_expires=settings.register_expires,
                answer_timeout=settings.answer_timeout,
            )
        )
        if settings.trunk:
            self.trunk_uri = Uri.parse(
                settings.trunk if settings.trunk.startswith("sip") else f"sip:{settings.trunk}"
            )
            self.trunk_peer = await self._resolve(self.trunk_uri)
        log.info(
            "= SIP listening on %s:%d (%s), contact %s, RTP ports %d-%d",
            settings.host,
            self.port,
            "+".join(settings.transports),
            settings.contact_host,
            settings.rtp_port_min,
            settings.rtp_port_max,
        )
        if settings.registrar:
            peer = await self._resolve(Uri.parse(settings.registrar))
            self.ua.register(peer, time.monotonic())
            self._flush()

    async def stop(self) -> None:
        """Hang up every call (BYE), unregister, and close every socket."""
        ua = self.ua
        if ua is not None:
            for call_id in list(self.calls):
                self.hangup(call_id, "gateway shutting down")
            if self.registered.is_set() and ua.registrar_peer is not None:
                ua.register(ua.registrar_peer, time.monotonic(), expires=0)
                self._flush()
            await asyncio.sleep(0)  # let the BYEs and the un-REGISTER leave
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        for task in list(self._tasks):
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        await self.transport.close()

    # -- SIP in and out ----------------------------------------------------------------------

    def _receive(self, messages: list[bytes], peer: Peer) -> None:
        """Messages from the transport: through the user agent, then act on its output."""
        ua = self.ua
        if ua is None:
            return  # listening, not yet started: nothing can be answered
        for message in messages:
            ua.receive(message, peer, time.monotonic())
        self._flush()

    def _flush(self) -> None:
        """Send what the UA produced and act on its events, until both are empty."""
        ua = self.ua
        assert ua is not None
        while True:
            datagrams = ua.datagrams_to_send()
            events = ua.events()
            if not datagrams and not events:
                break
            for data, peer in datagrams:
                self.transport.send(data, peer)
            for event in events:
                # Each event is handled under its own call's id: the SIP socket's callback
                # context is shared by every call and must never keep one call's id.
                token = current_call.set(getattr(event, "call_id", ""))
                try:
                    self._handle(event)
                except Exception:  # one call's failure must never stop the SIP stack
                    log.exception("x handling %s failed", type(event).__name__)
                finally:
                    current_call.reset(token)
        self._arm()

    def _arm(self) -> None:
        assert self.ua is not None
        deadline = self.ua.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            loop = asyncio.get_running_loop()
            delay = deadline - time.monotonic()
            self._timer = loop.call_at(loop.time() + max(0.0, delay), self._on_timer)

    def _on_timer(self) -> None:
        assert self.ua is not None
        self._timer = None
        self._timer_at = None
        self.ua.handle_timer(time.monotonic())
        self._flush()

    def _spawn(self, coro: Any, call: SipCall | None = None) -> asyncio.Task[Any]:
        """A task of the gateway's, or of ``call``'s (then it runs in a copy of its context)."""
        context = call.context.copy() if call is not None else contextvars.Context()
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("x SIP task %s failed", task.get_coro(), exc_info=exc)

    async def _resolve(self, uri: Uri) -> Peer:
        """A URI's host as an address (names resolved once, off the SIP path)."""
        loop = asyncio.get_running_loop()
        port = uri.port or 5060
        infos = await loop.getaddrinfo(uri.host.strip("[]"), port, type=socket.SOCK_DGRAM)
        if not infos:
            raise ConfigError(f"cannot resolve {uri.host}")
        return Peer(uri.transport, str(infos[0][4][0]), port)

    # -- UA events ---------------------------------------------------------------------------

    def _handle(self, event: UaEvent) -> None:
        assert self.ua is not None
        match event:
            case IncomingCall():
                self._on_incoming(event)
            case CallConfirmed(call_id=call_id, body=body):
                call = self.calls.get(call_id)
                if call is not None and body and call.stream is not None:
                    self._apply_answer(call, body)  # the answer to the offer in our 2xx
            case CallEnded(call_id=call_id, reason=reason, by=by):
                log.info("= SIP call %s ended (%s, by %s)", call_id, reason, by)
                call = self.calls.get(call_id)
                if call is not None:
                    if reason == NO_ACK:
                        call.ledger.settle(CallOutcome.NO_ACK)  # the caller never had the answer
                    else:
                        call.ledger.settle(
                            CallOutcome.CALLER_HUNG_UP if by == "remote" else CallOutcome.COMPLETED
                        )
                self._finish(call_id, reason)
            case CallAnswered() | UaCallFailed():
                future = self._outbound.pop(event.call_id, None)
                if future is not None and not future.done():
                    future.set_result(event)
            case CallProgress(call_id=call_id, status=status):
                log.info("< call %s: %d", call_id, status)
            case OfferReceived():
                self._on_offer(event)
            case DtmfReceived(call_id=call_id, digit=digit):
                call = self.calls.get(call_id)
                if call is not None and call.runner is not None:
                    call.runner.receive_dtmf(digit)
            case ReferStatus(call_id=call_id, status=status):
                refer = self._refers.get(call_id)
                if refer is not None and not refer.done() and status >= 200:
                    refer.set_result(status)
            case Registered(expires=expires):
                log.info("= registered with %s for %d s", self.settings.registrar, expires)
                self.registration_error = None
                self.registered.set()
            case RegistrationFailed(status=status, reason=reason):
                log.warning("x registration failed: %d %s", status, reason)
                self.registration_error = event
                self.registered.clear()

    def _on_incoming(self, event: IncomingCall) -> None:
        ua = self.ua
        assert ua is not None
        now = time.monotonic()
        call_id = event.call_id
        log.info("< SIP call %s from %s to %s", call_id, event.caller, event.called)
        if not self.lifecycle.accepting:
            log.info("x refusing call %s: draining", call_id)
            ua.reject(call_id, 503, now)  # a trunk tries its next gateway on 503
            return
        if event.offer:
            try:
                offered = SessionDescription.parse(event.offer)
                answer(offered, host=self.settings.contact_host, port=0, session_id=0, version=0)
            except NoCommonCodec as exc:
                log.info("x call %s: %s: 488", call_id, exc.reason)
                ua.reject(call_id, 488, now)
                return
            except RemoteProtocolError as exc:
                log.info("x call %s: bad SDP (%s): 400", call_id, exc.reason)
                ua.reject(call_id, 400, now, "Bad SDP")
                return
        action: Any = None
        route_name = ""
        if self.plans is not None:
            facts = CallFacts(
                to=event.called, from_=event.caller, at=self.wall_clock(), direction="inbound"
            )
            # A full engine is an unavailable one: its bot gives way to the route's fallback.
            decision = route(self.plans.current, facts, engine_available=self._engine_free)
            action = decision.action
            route_name = decision.route
            log.info(
                "= call %s -> route %s, %s: %s",
                call_id,
                decision.route,
                decision.branch,
                action.action,
            )
        match action:
            case None | BotAction():
                engine = (action.engine if action is not None else None) or self.engines.default
                if not self.admission.admit(call_id, engine, "sip", now):
                    status, retry = self.settings.busy_status, self.admission.retry_after
                    log.info("x refusing call %s: engine %s is full: %d", call_id, engine, status)
                    ua.reject(call_id, status, now, retry_after=retry)
                    return
                self._start_bot(event, action, route_name)
            case TransferAction(to=to):
                target = self._target_uri(to, event.request.uri)
                log.info("= call %s: transfer before answering: 302 to %s", call_id, target)
                ua.redirect(call_id, target, now)
            case RejectAction(reason=reason):
                ua.reject(call_id, 486 if reason == "busy" else 603, now)
            case HangupAction():
                ua.reject(call_id, 603, now)
            case _:
                self._start_prompt(event, _Prompt(action.action), route_name)

    def _engine_free(self, engine: str) -> bool:
        full = self.admission.load(engine, time.monotonic()).full
        return self.engines.available(engine) and not full

    def _new_call(self, event: IncomingCall, engine: str, route_name: str) -> SipCall:
        ledger = CallLedger(
            call_id=event.call_id,
            carrier="sip",
            engine=engine,
            caller=event.caller,
            called=event.called,
            route=route_name,
            started_at=time.time(),
        )
        call = SipCall(self, event.call_id, ledger)
        call.offer = event.offer
        self.calls[event.call_id] = call
        return call

    def _start_bot(self, event: IncomingCall, bot: BotAction | None, route_name: str) -> None:
        engine = (bot.engine if bot is not None else None) or self.engines.default
        call = self._new_call(event, engine, route_name)
        context = CallContext(
            call_id=event.call_id,
            caller=event.caller,
            called=event.called,
            direction="inbound",
            parameters=bot.context_parameters() if bot is not None else {},
        )
        assert self.ua is not None
        self.ua.ring(event.call_id, time.monotonic())
        self._spawn(self._own(call, self._answer_bot(call, context, bot)), call)

    async def _answer_bot(self, call: SipCall, context: CallContext, bot: BotAction | None) -> None:
        ua = self.ua
        assert ua is not None
        engine_session = await open_engine(self.engines, call.ledger, context)
        if engine_session is None:
            self._refuse(call, 503, call.ledger.end_reason)
            return
        if call.call_id not in self.calls:  # cancelled while the engine was opening
            await engine_session.close()
            return
        try:
            await self._open_media(call)
        except OSError as exc:
            log.error("x call %s: %s", call.call_id, exc)
            await engine_session.close()
            self._refuse(call, 503, str(exc))
            return
        sdp = self._local_answer(call, call.offer)
        self._start_session(call, engine_session, bot)
        ua.answer(call.call_id, sdp, time.monotonic())
        self._flush()

    def _refuse(self, call: SipCall, status: int, reason: str) -> None:
        assert self.ua is not None
        call.ledger.end_reason = reason
        if call.call_id in self.calls:
            with contextlib.suppress(LocalProtocolError):
                self.ua.reject(call.call_id, status, time.monotonic())
            self._flush()
            self._finish(call.call_id, reason)

    async def _open_media(self, call: SipCall) -> None:
        port, rtp_sock, rtcp_sock = self.ports.allocate()
        call.port = port
        await self._bind_media(call, rtp_sock, rtcp_sock)

    async def _bind_media(
        self, call: SipCall, rtp_sock: socket.socket, rtcp_sock: socket.socket
    ) -> None:
        """Wrap the call's RTP/RTCP sockets; called in the call's context, which the
        transports' callbacks keep."""
        loop = asyncio.get_running_loop()
        call.rtp, _ = await loop.create_datagram_endpoint(
            lambda: Datagrams(call.on_rtp), sock=rtp_sock
        )
        call.rtcp, _ = await loop.create_datagram_endpoint(
            lambda: Datagrams(call.on_rtcp), sock=rtcp_sock
        )

    def _local_answer(self, call: SipCall, offer_body: bytes) -> bytes:
        """Our SDP for ``offer_body`` (or our offer when it is empty); updates the stream."""
        host = self.settings.contact_host
        port = call.port
        assert port is not None

        def build(version: int) -> tuple[SessionDescription, MediaParams]:
            if offer_body:
                return answer(
                    SessionDescription.parse(offer_body),
                    host=host,
                    port=port,
                    session_id=call.session_id,
                    version=version,
                )
            ours = offer(host=host, port=port, session_id=call.session_id, version=version)
            return ours, MediaParams("0.0.0.0", 0, 0, "PCMU", 101, "sendrecv")

        local, params = build(call.sdp_version)
        # RFC 3264 8: the o= version moves only when the description changes.
        if call.local_sdp is not None and _body(local) != _body(call.local_sdp):
            call.sdp_version += 1
            local, params = build(call.sdp_version)
        call.local_sdp = local
        if call.stream is None:
            call.stream = RtpStream(params, self.media.next_tick())
        else:
            call.stream.update(params)
        return local.encode()

    def _apply_answer(self, call: SipCall, body: bytes) -> None:
        try:
            params = accept_answer(SessionDescription.parse(body))
        except RemoteProtocolError as exc:
            log.warning("x call %s: unusable SDP answer (%s); hanging up", call.call_id, exc)
            self.hangup(call.call_id, "unusable SDP answer")
            return
        assert call.stream is not None
        call.stream.update(params)

    def _start_session(
        self, call: SipCall, engine_session: EngineSession, bot: BotAction | None
    ) -> None:
        try:
            recording = recording_path(
                call.call_id,
                recordings_dir=self.recordings_dir,
                records_dir=self.registry.records_dir,
                record=bot is not None and bool(bot.record),
            )
        except InvalidIdentifier as exc:  # a Call-ID unfit for a file name is not recorded
            log.warning("x call %s not recorded: %s", call.call_id, exc)
            recording = None
        origin = time.monotonic()
        session = CallSession(
            engine_session,
            call.ledger,
            origin=origin,
            playout=(bot.holds(self.holds) if bot is not None else self.holds).playout(),
            recorder=CallRecorder(origin) if recording is not None else None,
            carrier_clock=True,
        )
        runner = CallRunner(session, RtpTransport(call))
        call.runner = runner
        call.source = runner.pull_frame
        call.recording = recording
        runner.start(self.registry, (bot.max_duration or 0) if bot is not None else 0)
        self.media.attach(call)
        assert call.group is not None
        call.group.create_task(self._pump_engine(call, runner), context=call.context.copy())
        log.info("= call %s streaming to engine %s", call.call_id, call.ledger.engine)

    async def _pump_engine(self, call: SipCall, runner: CallRunner) -> None:
        try:
            await runner.pump_engine()
        except EngineFailed:
            call.ledger.settle(CallOutcome.ENGINE_FAILED)
            self.hangup(call.call_id, "engine failed")
            return
        # The engine ended its stream: the conversation is over from its side.
        self.hangup(call.call_id, "engine ended the session")

    def _start_prompt(self, event: IncomingCall, prompt: _Prompt, route_name: str) -> None:
        call = self._new_call(event, "", route_name)
        note = (
            f"dial-plan action {prompt.kind!r} needs a speech engine to render its prompt; "
            "the SIP carrier answered the call silently and hung up"
        )
        log.warning("x call %s: %s", event.call_id, note)
        call.ledger.errors.append(note)
        self._spawn(self._own(call, self._answer_prompt(call)), call)

    async def _answer_prompt(self, call: SipCall) -> None:
        assert self.ua is not None
        try:
            await self._open_media(call)
        except OSError as exc:
            self._refuse(call, 503, str(exc))
            return
        sdp = self._local_answer(call, call.offer)
        self.registry.started(
            call.ledger, lambda reason, outcome: self.hangup(call.call_id, reason)
        )
        self.media.attach(call)  # comfort silence while the line is up
        self.ua.answer(call.call_id, sdp, time.monotonic())
        self._flush()
        await asyncio.sleep(PROMPT_HOLD)
        self.hangup(call.call_id, f"prompt-only action ({call.ledger.errors[-1][:40]}...)")

    def _on_offer(self, event: OfferReceived) -> None:
        ua = self.ua
        assert ua is not None
        now = time.monotonic()
        call = self.calls.get(event.call_id)
        if call is None or call.stream is None:
            ua.reject_offer(event.call_id, 491, now)
            return
        if not event.offer and call.local_sdp is not None and event.method == "UPDATE":
            ua.answer_offer(event.call_id, b"", now)
            return
        try:
            sdp = self._local_answer(call, event.offer)
        except RemoteProtocolError as exc:
            log.info("x call %s: re-offer refused: %s", call.call_id, exc.reason)
            ua.reject_offer(event.call_id, exc.status or 488, now)
            return
        params = call.stream.params
        log.info("= call %s re-negotiated: %s %s", call.call_id, params.codec, params.direction)
        ua.answer_offer(event.call_id, sdp, now)

    # -- ending calls ------------------------------------------------------------------------

    def hangup(self, call_id: str, reason: str = "local hangup") -> None:
        """End a call from our side (BYE, CANCEL or a decline, whichever fits)."""
        ua = self.ua
        if ua is None:
            return
        ua.hangup(call_id, time.monotonic(), reason)
        self._flush()
        if call_id in self.calls and call_id not in ua.calls:
            self._finish(call_id, reason)

    def _finish(self, call_id: str, reason: str) -> None:
        call = self.calls.pop(call_id, None)
        self.admission.release(call_id)
        if call is None:
            return
        call.end_reason = reason
        self.media.detach(call)
        future = self._outbound.pop(call_id, None)
        if future is not None and not future.done():
            future.set_result(UaCallFailed(call_id, 487, reason))
        refer = self._refers.pop(call_id, None)
        if refer is not None and not refer.done():
            refer.set_result(487)
        call.finishing.set()

    async def _own(self, call: SipCall, first: Coroutine[Any, Any, None] | None) -> None:
        """The call's one owner: its tasks run in one TaskGroup until the call is finished;
        then every one still running is cancelled and the call is closed.

        A task that fails hangs the call up (only that call); the owner closes it once the
        hang-up has finished it."""
        try:
            async with asyncio.TaskGroup() as group:
                call.group = group
                if first is not None:
                    group.create_task(first)
                await call.finishing.wait()
                raise _CallFinished  # ends the group: its tasks are cancelled
        except* _CallFinished:
            pass
        except* Exception as failure:
            error = failure.exceptions[0]
            log.error("x call %s failed", call.call_id, exc_info=error)
            call.ledger.errors.append(f"internal error: {error!r}")
            call.ledger.settle(CallOutcome.INTERNAL_ERROR)
            self.hangup(call.call_id, "internal error")
            if call.call_id in self.calls:  # the BYE is out: its answer finishes the call
                await call.finishing.wait()
        finally:
            call.group = None
        await self._close_call(call, call.end_reason)

    async def _close_call(self, call: SipCall, reason: str) -> None:
        call.settle_ledger()
        for transport in (call.rtp, call.rtcp):
            if transport is not None:
                transport.close()
        if call.port is not None:
            self.ports.release(call.port)
        if call.runner is not None:  # settles the ledger, writes the recording, files the call
            await call.runner.close(reason, CallOutcome.COMPLETED, call.recording)
        else:
            call.ledger.settle(CallOutcome.COMPLETED, reason)
            call.ledger.ended_at = time.time()
            self.registry.ended(call.ledger)
        call.ended.set()

    # -- transfers and outbound calls --------------------------------------------------------

    def _target_uri(self, target: str, request_uri: str = "") -> str:
        """A transfer or dial target as a SIP URI: as given, or a number at a known host."""
        if target.startswith(("sip:", "sips:")):
            return target
        domain = self.settings.transfer_domain
        if not domain and self.trunk_uri is not None:
            domain = self.trunk_uri.host + (
                f":{self.trunk_uri.port}" if self.trunk_uri.port else ""
            )
        if not domain and request_uri:
            domain = Uri.parse(request_uri).host
        if not domain:
            raise LocalProtocolError(f"no domain for {target!r}: set OVERTALK_SIP_TRANSFER_DOMAIN")
        return f"sip:{target}@{domain}"

    async def transfer(self, call_id: str, target: str) -> None:
        """REFER the caller to ``target``; on success the call is ended (BYE)."""
        ua = self.ua
        assert ua is not None
        uri = self._target_uri(target)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._refers[call_id] = future
        ua.refer(call_id, uri, time.monotonic())
        self._flush()
        try:
            status = await asyncio.wait_for(future, REFER_TIMEOUT)
        except TimeoutError:
            status = 408
        finally:
            self._refers.pop(call_id, None)
        if not 200 <= status < 300:
            raise CallFailed(status, f"transfer to {uri} failed")
        log.info("= call %s transferred to %s", call_id, uri)
        self.hangup(call_id, f"transferred to {uri}")

    async def place_call(
        self,
        to: str,
        from_: str,
        *,
        engine: str | None = None,
        parameters: Mapping[str, str] | None = None,
    ) -> SipCall:
        """Call ``to`` (a number or SIP URI) through the trunk, streaming to ``engine``.

        Returns once the call is answered, with the media running; ``SipCall.ended`` is set
        when it ends. Raises :class:`~gateway.carriers.sip.errors.CallFailed` with the final
        status when it is not answered (busy 486, declined 603, 408 no answer, ...), or 503
        when the engine is full (admission, as for inbound calls), and ``EngineError`` when
        the engine cannot take the call (nothing is dialled in either case).
        """
        ua = self.ua
        assert ua is not None
        if to.startswith(("sip:", "sips:")):
            target = Uri.parse(to)
            peer = self.trunk_peer or await self._resolve(target)
        else:
            if self.trunk_uri is None or self.trunk_peer is None:
                raise LocalProtocolError("no trunk configured: set OVERTALK_SIP_TRUNK")
            target = Uri(user=to, host=self.trunk_uri.host, port=self.trunk_uri.port)
            peer = self.trunk_peer
        name = engine or self.engines.default
        # The engine opens before the INVITE names the call: admit it under a placeholder.
        placeholder = f"outbound-{secrets.token_hex(8)}"
        if not self.admission.admit(placeholder, name, "sip", time.monotonic()):
            log.info("x not calling %s: engine %s is full", to, name)
            raise CallFailed(503, f"engine {name} is full")
        context = CallContext(
            call_id="",
            caller=from_,
            called=to,
            direction="outbound-api",
            parameters=dict(parameters or {}),
        )
        try:
            engine_session = await self.engines.get(name).open(context)
        except BaseException:
            self.admission.release(placeholder)
            raise
        try:
            port, rtp_sock, rtcp_sock = self.ports.allocate()
        except OSError:
            self.admission.release(placeholder)
            await engine_session.close()
            raise
        host = self.settings.contact_host
        session_id = random.getrandbits(31)
        local = offer(host=host, port=port, session_id=session_id, version=1)
        from_uri = from_ if from_.startswith("sip") else f"sip:{from_}@{host}"
        now = time.monotonic()
        call_id = ua.invite(
            target=str(target),
            from_uri=from_uri,
            to_uri=str(target),
            sdp=local.encode(),
            peer=peer,
            now=now,
        )
        # Named now: its place is held while it rings (and then while it is live).
        self.admission.rename(placeholder, call_id, now + self.settings.answer_timeout + 5.0)
        ledger = CallLedger(
            call_id=call_id,
            carrier="sip",
            engine=name,
            caller=from_,
            called=to,
            started_at=time.time(),
        )
        call = SipCall(self, call_id, ledger)
        call.port, call.session_id, call.local_sdp = port, session_id, local
        await self._spawn(self._bind_media(call, rtp_sock, rtcp_sock), call)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[UaEvent] = loop.create_future()
        self._outbound[call_id] = future
        self.calls[call_id] = call
        self._spawn(self._own(call, None), call)
        self._flush()
        log.info("> calling %s from %s (%s)", target, from_uri, call_id)
        result = await future
        if not isinstance(result, CallAnswered):
            assert isinstance(result, UaCallFailed)
            await engine_session.close()
            self._finish(call_id, f"{result.status} {result.reason}")
            await call.ended.wait()
            raise CallFailed(result.status, result.reason)
        try:
            params = accept_answer(SessionDescription.parse(result.body))
        except RemoteProtocolError as exc:
            await engine_session.close()
            self.hangup(call_id, f"unusable SDP answer: {exc.reason}")
            raise CallFailed(488, exc.reason) from exc
        call.stream = RtpStream(params, self.media.next_tick())
        self._start_session(call, engine_session, None)
        return call


def _body(sdp: SessionDescription) -> str:
    """An SDP without its o= line, to tell whether a description changed."""
    return "\n".join(line for line in str(sdp).splitlines() if not line.startswith("o="))


@asynccontextmanager
async def sip_server(
    settings: SipSettings,
    engines: EngineSet,
    calls: CallRegistry,
    plans: PlanHolder | None = None,
    *,
    lifecycle: Lifecycle | None = None,
    admission: Admission | None = None,
    wall_clock: Callable[[], datetime] | None = None,
    recordings_dir: str = "",
    holds: HoldPolicy | None = None,
) -> AsyncIterator[SipGateway]:
    """Run the SIP carrier for the block's duration (the app's lifespan wraps it)."""
    gateway = SipGateway(
        settings,
        engines,
        calls,
        plans,
        lifecycle=lifecycle,
        admission=admission,
        recordings_dir=recordings_dir,
        holds=holds,
    )
    if wall_clock is not None:
        gateway.wall_clock = wall_clock
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()
