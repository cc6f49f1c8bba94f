"""The SIP user agent core (RFC 3261 sections 8, 12-15, 22), sans-I/O.

:class:`UserAgent` sits on the :class:`~gateway.carriers.sip.transaction.TransactionLayer` and
keeps calls (one dialog each, ``dialogs.py``), the registration (``registration.py``) and the
digest authentication state (``auth.py``); REFER's request and progress are ``refer.py``. Like the
layer below it, it takes bytes and ``now`` in (:meth:`UserAgent.receive`,
:meth:`UserAgent.handle_timer`) and gives datagrams (:meth:`UserAgent.datagrams_to_send`),
events (:meth:`UserAgent.events`) and a deadline (:meth:`UserAgent.next_deadline`) out.

The application answers events with commands, synchronously, before it flushes: an
:class:`IncomingCall` is answered with :meth:`~UserAgent.answer`, :meth:`~UserAgent.reject`
or :meth:`~UserAgent.redirect`; an :class:`OfferReceived` (re-INVITE, UPDATE) with
:meth:`~UserAgent.answer_offer` or :meth:`~UserAgent.reject_offer`. SDP is opaque here: the
application negotiates it (``sdp.py``).

What it takes care of, with the section that asks for it:

- 2xx retransmission until the ACK arrives, BYE when it never does (13.3.1.4);
- CANCEL answered 200 with the INVITE answered 487 (9.2), merged requests 482 (8.2.2.2),
  out-of-order CSeq 500 (12.2.2), glare 491 (14.2), unknown dialogs 481, unsupported
  extensions 420 (8.2.2.3), unknown methods 501 and known unsupported ones 405;
- session timers (RFC 4028): refreshes are answered, and a call whose refresher falls silent
  is ended before the interval runs out;
- outbound: authentication on 401/407 (22.2), 3xx redirection followed (8.1.3.4), CANCEL only
  after a provisional response (9.1), ACK re-sent for every retransmitted 2xx;
- REGISTER with refresh before expiry, 423 Min-Expires honoured (10.2);
- REFER (RFC 3515) with its NOTIFY progress.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gateway.carriers.sip.auth import DigestClient
from gateway.carriers.sip.deadlines import Deadlines
from gateway.carriers.sip.dialogs import (
    Call,
    CallState,
    first_contact,
    peer_of,
    refresh_target,
    without_tag,
)
from gateway.carriers.sip.digest import Credentials
from gateway.carriers.sip.errors import LocalProtocolError, RemoteProtocolError
from gateway.carriers.sip.headers import Address, Uri
from gateway.carriers.sip.message import LIMITS, SipLimits, SipMessage, check_request
from gateway.carriers.sip.refer import add_refer_to, refer_progress
from gateway.carriers.sip.registration import (
    REGISTER_RETRY,
    Binding,
    granted_expires,
    min_expires,
    refresh_after,
)
from gateway.carriers.sip.transaction import (
    BRANCH_COOKIE,
    DEFAULT_TIMINGS,
    Peer,
    RequestReceived,
    ResponseReceived,
    Timings,
    TransactionLayer,
    TransactionTimedOut,
    client_key,
    make_response,
)

__all__ = [
    "ALLOW",
    "CallAnswered",
    "CallConfirmed",
    "CallEnded",
    "CallFailed",
    "CallProgress",
    "DtmfReceived",
    "IncomingCall",
    "NO_ACK",
    "OfferReceived",
    "ReferStatus",
    "Registered",
    "RegistrationFailed",
    "UaConfig",
    "UaEvent",
    "UserAgent",
]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY, REFER"
#: Methods we know but do not serve as a UA (answered 405 with Allow, 8.2.1).
_NOT_ALLOWED = frozenset({"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "REFER", "PRACK"})
SUPPORTED = frozenset({"timer"})
#: What we answer OPTIONS with (RFC 3261 11.2).
_OPTIONS_HEADERS = (("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "timer"))
MAX_REDIRECTS = 3
#: RFC 4028 4: the smallest session interval we accept.
MIN_SE = 90
#: :attr:`CallEnded.reason` of a call whose 2xx was never acknowledged (13.3.1.4): the caller
#: never heard the answer, so it is no completed call.
NO_ACK = "no ACK for our 2xx"


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new INVITE. ``offer`` is the SDP body (empty: the INVITE asks us to offer)."""

    call_id: str
    caller: str  # From user part (a number, a name or "anonymous")
    #: The dialled number: the Request-URI user, except where the Request-URI is our own
    #: contact (a registrar retargets to it, RFC 3261 10.2 and 16.5) or has no user: then To's.
    called: str
    offer: bytes
    request: SipMessage
    source: Peer


@dataclass(frozen=True, slots=True)
class CallConfirmed:
    """The ACK for our 2xx arrived; ``body`` is the answer when we made the offer in the 2xx."""

    call_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class CallProgress:
    """A provisional response to our INVITE (180 Ringing, 183 with early media)."""

    call_id: str
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """Our INVITE was answered (2xx, ACK already sent); ``body`` is the SDP answer."""

    call_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class CallFailed:
    """Our INVITE got a final failure (or timed out: 408, was cancelled: 487)."""

    call_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """An established (or answering) call is over; ``by`` is ``remote`` or ``local``."""

    call_id: str
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class OfferReceived:
    """A re-INVITE or UPDATE in the call; answer with :meth:`UserAgent.answer_offer`.

    ``offer`` empty: a re-INVITE without SDP (we offer in the 2xx) or a plain session refresh.
    """

    call_id: str
    method: str
    offer: bytes


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """A digit sent as SIP INFO (``application/dtmf-relay`` or ``application/dtmf``)."""

    call_id: str
    digit: str


@dataclass(frozen=True, slots=True)
class ReferStatus:
    """Progress of a transfer we asked for: the REFER's failure or a NOTIFY's sipfrag status."""

    call_id: str
    status: int


@dataclass(frozen=True, slots=True)
class Registered:
    expires: int


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    status: int
    reason: str


UaEvent = (
    IncomingCall
    | CallConfirmed
    | CallProgress
    | CallAnswered
    | CallFailed
    | CallEnded
    | OfferReceived
    | DtmfReceived
    | ReferStatus
    | Registered
    | RegistrationFailed
)


# -- state -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UaConfig:
    """Who this UA is on the wire."""

    #: Address and port written into Via and Contact: the public one behind NAT.
    host: str
    port: int
    user: str = "overtalk"
    user_agent: str = "Overtalk"
    #: Account for registrars and trunks that challenge us.
    credentials: Credentials | None = None
    #: ``sip:registrar.example.com``; empty = no registration.
    registrar: str = ""
    #: Address-of-record to register (``sip:user@domain``); empty = ``sip:user@registrar``.
    aor: str = ""
    register_expires: int = 3600
    #: Seconds an outbound INVITE may ring before we CANCEL it.
    answer_timeout: float = 60.0


def _token() -> str:
    return secrets.token_hex(8)


class UserAgent:
    """One SIP endpoint's calls and registration. See the module docstring."""

    def __init__(
        self,
        config: UaConfig,
        *,
        timings: Timings = DEFAULT_TIMINGS,
        limits: SipLimits = LIMITS,
        token: Callable[[], str] = _token,
    ) -> None:
        self.config = config
        self.timings = timings
        self.limits = limits
        self.token = token
        self.transactions = TransactionLayer(timings)
        self.calls: dict[str, Call] = {}
        self._events: list[UaEvent] = []
        #: Our own timers: ("register",) or (kind, Call-ID) -> deadline.
        self._timers: Deadlines[tuple[str, ...]] = Deadlines()
        #: Client transaction key -> (purpose, call id).
        self._client: dict[tuple[str, ...], tuple[str, str]] = {}
        self.auth = DigestClient(config.credentials, token)
        # registration
        self.binding = Binding(f"{token()}@{config.host}", token(), config.register_expires)
        self.registrar_peer: Peer | None = None
        self.registered_until = 0.0
        # counters for the ledger and tests
        self.bad_messages = 0
        self.last_error = ""

    # -- outputs -----------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Peer]]:
        return self.transactions.datagrams_to_send()

    def events(self) -> list[UaEvent]:
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        ours = self._timers.next()
        theirs = self.transactions.next_deadline()
        if ours is None:
            return theirs
        return ours if theirs is None else min(ours, theirs)

    # -- inputs ------------------------------------------------------------------------------

    def receive(self, data: bytes, source: Peer, now: float) -> None:
        """One datagram, or one message framed from a stream. Garbage is answered or dropped,
        counted in :attr:`bad_messages`, and never raises."""
        layer = self.transactions
        message: SipMessage | None = None
        try:
            message = SipMessage.parse(data, self.limits)
            if message.is_request:
                check_request(message)
            else:
                client_key(message)  # a response we cannot match is dropped here
            layer.receive(message, source, now)
        except RemoteProtocolError as exc:
            self.bad_messages += 1
            self.last_error = exc.reason
            request = message if message is not None else exc.partial
            if (
                exc.status is not None
                and request is not None
                and request.is_request
                and request.method != "ACK"  # 17.2.3: an ACK is never answered
            ):
                try:
                    layer.reply_stateless(request, source, exc.status, _reason(exc.status))
                except RemoteProtocolError:
                    pass  # no usable Via after all: nowhere to answer
            return
        self._drain(now)

    def handle_timer(self, now: float) -> None:
        self.transactions.handle_timer(now)
        self._drain(now)
        for key in self._timers.pop_due(now):
            self._on_timer(key, now)
        self._drain(now)

    def _drain(self, now: float) -> None:
        for event in self.transactions.events_received():
            match event:
                case RequestReceived():
                    self._on_request(event, now)
                case ResponseReceived():
                    self._on_response(event, now)
                case TransactionTimedOut():
                    self._on_timeout(event, now)

    # -- building messages -------------------------------------------------------------------

    def _contact(self, reliable: bool = False) -> str:
        transport = ";transport=tcp" if reliable else ""
        return f"<sip:{self.config.user}@{self.config.host}:{self.config.port}{transport}>"

    def _via(self, peer: Peer) -> str:
        return (
            f"SIP/2.0/{peer.transport.upper()} {self.config.host}:{self.config.port}"
            f";branch={BRANCH_COOKIE}{self.token()};rport"
        )

    def _respond(
        self,
        key: tuple[str, ...],
        request: SipMessage,
        status: int,
        reason: str = "",
        now: float = 0.0,
        *,
        to_tag: str = "",
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
    ) -> SipMessage:
        response = make_response(request, status, reason or _reason(status))
        if status > 100:
            to = request.to
            if not to.tag:
                to.params["tag"] = to_tag or self.token()
                response.set("To", str(to))
        for name, value in headers:
            response.add(name, value)
        response.add("Server", self.config.user_agent)
        if body:
            response.add("Content-Type", "application/sdp")
        response.body = body
        self.transactions.respond(key, response, now)
        return response

    def _request(self, call: Call, method: str) -> SipMessage:
        """A request within ``call``'s dialog (12.2.1.1)."""
        call.local_seq += 1
        request = SipMessage(method=method, uri=call.remote_target)
        request.add("Via", self._via(call.peer))
        request.add("Max-Forwards", "70")
        request.add("From", f"{call.local_uri};tag={call.local_tag}")
        request.add("To", f"{call.remote_uri};tag={call.remote_tag}" if call.remote_tag
                    else call.remote_uri)  # fmt: skip
        request.add("Call-ID", call.call_id)
        request.add("CSeq", f"{call.local_seq} {method}")
        for route in call.route_set:
            request.add("Route", route)
        if method in ("INVITE", "UPDATE", "REFER"):
            request.add("Contact", self._contact(call.reliable))
        request.add("User-Agent", self.config.user_agent)
        return request

    def _send(self, request: SipMessage, peer: Peer, purpose: str, ref: str, now: float) -> None:
        key = self.transactions.send_request(request, peer, now)
        self._client[key] = (purpose, ref)

    # -- commands: inbound calls -------------------------------------------------------------

    def _incoming(self, call_id: str) -> Call:
        call = self.calls.get(call_id)
        if call is None or call.outbound or call.invite_key is None:
            raise LocalProtocolError(f"no incoming call {call_id}")
        if call.state is not CallState.INCOMING:
            raise LocalProtocolError(f"call {call_id} was already answered ({call.state.value})")
        return call

    def ring(self, call_id: str, now: float) -> None:
        """Send 180 Ringing."""
        call = self._incoming(call_id)
        assert call.invite_key is not None
        self._respond(call.invite_key, call.invite, 180, now=now, to_tag=call.local_tag)

    def answer(self, call_id: str, sdp: bytes, now: float) -> None:
        """Send 200 OK with ``sdp`` (our answer, or our offer if the INVITE had none)."""
        call = self._incoming(call_id)
        assert call.invite_key is not None
        headers: list[tuple[str, str]] = [
            ("Contact", self._contact(call.reliable)),
            ("Allow", ALLOW),
            ("Supported", "timer"),
        ]
        headers += [("Record-Route", rr) for rr in call.invite.get_all("Record-Route")]
        if call.session_expires:
            headers += [
                ("Session-Expires", f"{call.session_expires};refresher=uac"),
                ("Require", "timer"),
            ]
        response = self._respond(
            call.invite_key,
            call.invite,
            200,
            now=now,
            to_tag=call.local_tag,
            headers=tuple(headers),
            body=sdp,
        )
        call.state = CallState.ANSWERED
        self._await_ack(call, response, call.invite, now)

    def _await_ack(self, call: Call, response: SipMessage, request: SipMessage, now: float) -> None:
        """13.3.1.4: retransmit the 2xx at T1, doubling to T2, until the ACK; give up at 64*T1."""
        tx = self.transactions.get(call.invite_key or ())
        peer = tx.peer if tx is not None else call.peer
        call.pending_2xx = (response.serialize(), peer, request.cseq.seq, self.timings.t1)
        if not peer.reliable:
            self._timers.set(("2xx", call.call_id), now + self.timings.t1)
        self._timers.set(("no-ack", call.call_id), now + 64 * self.timings.t1)

    def reject(
        self,
        call_id: str,
        status: int,
        now: float,
        reason: str = "",
        *,
        retry_after: int | None = None,
    ) -> None:
        """Refuse an incoming call with a final response (3xx-6xx); ``retry_after`` (seconds)
        goes with a 486, 503 or 600 (RFC 3261 20.33)."""
        if status < 300:
            raise LocalProtocolError(f"reject needs a 3xx-6xx status, not {status}")
        call = self._incoming(call_id)
        assert call.invite_key is not None
        headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        self._respond(call.invite_key, call.invite, status, reason, now,
                      to_tag=call.local_tag, headers=headers)  # fmt: skip
        self._forget(call)

    def redirect(self, call_id: str, target: str, now: float) -> None:
        """302 Moved Temporarily to ``target`` (a SIP URI): the caller's side re-routes."""
        call = self._incoming(call_id)
        assert call.invite_key is not None
        self._respond(
            call.invite_key,
            call.invite,
            302,
            now=now,
            to_tag=call.local_tag,
            headers=(("Contact", f"<{target}>"),),
        )
        self._forget(call)

    def answer_offer(self, call_id: str, sdp: bytes, now: float) -> None:
        """Answer the pending re-INVITE/UPDATE with ``sdp`` (our answer, or offer)."""
        call, key, request = self._pending_offer(call_id)
        headers: list[tuple[str, str]] = [("Contact", self._contact(call.reliable))]
        if call.session_expires:
            headers += [
                ("Session-Expires", f"{call.session_expires};refresher=uac"),
                ("Require", "timer"),
            ]
        response = self._respond(key, request, 200, now=now, headers=tuple(headers), body=sdp)
        if request.method == "INVITE":
            self._await_ack(call, response, request, now)

    def reject_offer(self, call_id: str, status: int, now: float) -> None:
        """Refuse the pending offer (488: nothing acceptable); the call goes on as it was."""
        call, key, request = self._pending_offer(call_id)
        self._respond(key, request, status, now=now)

    def _pending_offer(self, call_id: str) -> tuple[Call, tuple[str, ...], SipMessage]:
        call = self.calls.get(call_id)
        if call is None or call.pending_offer is None:
            raise LocalProtocolError(f"call {call_id} has no offer waiting for an answer")
        key, request = call.pending_offer
        call.pending_offer = None
        return call, key, request

    # -- commands: either direction ----------------------------------------------------------

    def hangup(self, call_id: str, now: float, reason: str = "local hangup") -> None:
        """End a call however far it got: decline, CANCEL, or BYE (deferred until the ACK)."""
        call = self.calls.get(call_id)
        if call is None or call.state is CallState.ENDED:
            return
        if call.state is CallState.INCOMING:
            self.reject(call_id, 603, now)
            self._events.append(CallEnded(call_id, reason, "local"))
        elif call.state is CallState.CALLING:
            self._cancel(call, now)
        elif call.state is CallState.ANSWERED:
            call.bye_wanted = True  # 15: no BYE before the ACK (or its timeout)
            self._events.append(CallEnded(call_id, reason, "local"))
        else:
            self._bye(call, now)
            self._events.append(CallEnded(call_id, reason, "local"))

    def _bye(self, call: Call, now: float) -> None:
        self._send(self._request(call, "BYE"), call.peer, "bye", call.call_id, now)
        self._forget(call)

    def refer(self, call_id: str, target: str, now: float) -> None:
        """Ask the peer to call ``target`` (a SIP URI) instead: RFC 3515 REFER."""
        call = self.calls.get(call_id)
        if call is None or call.state is not CallState.CONFIRMED:
            raise LocalProtocolError(f"call {call_id} is not established: cannot REFER")
        request = self._request(call, "REFER")
        add_refer_to(request, target, call.local_uri)
        self._send(request, call.peer, "refer", call_id, now)

    # -- commands: outbound calls and registration -------------------------------------------

    def invite(
        self,
        *,
        target: str,
        from_uri: str,
        to_uri: str,
        sdp: bytes,
        peer: Peer,
        now: float,
        display: str = "",
    ) -> str:
        """Place a call: INVITE ``target`` through ``peer``; returns the new call's Call-ID."""
        call_id = f"{self.token()}@{self.config.host}"
        local = f'"{display}" <{from_uri}>' if display else f"<{from_uri}>"
        request = SipMessage(method="INVITE", uri=target)
        call = Call(
            call_id,
            outbound=True,
            state=CallState.CALLING,
            local_tag=self.token(),
            local_uri=local,
            remote_uri=f"<{to_uri}>",
            invite=request,
            peer=peer,
            remote_target=target,
            reliable=peer.reliable,
        )
        self.calls[call_id] = call
        self._send_invite(call, sdp, now)
        self._timers.set(("answer-timeout", call_id), now + self.config.answer_timeout)
        return call_id

    def _send_invite(
        self, call: Call, sdp: bytes, now: float, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        request = self._request(call, "INVITE")
        request.uri = call.remote_target
        request.add("Allow", ALLOW)
        for name, value in extra:
            request.add(name, value)
        if sdp:
            request.add("Content-Type", "application/sdp")
        request.body = sdp
        call.invite = request
        key = self.transactions.send_request(request, call.peer, now)
        call.invite_key = key
        self._client[key] = ("invite", call.call_id)

    def _cancel(self, call: Call, now: float) -> None:
        """9.1: CANCEL once a provisional response has come; until then, remember to."""
        if not call.provisional:
            call.cancel_wanted = True
            return
        invite = call.invite
        cancel = SipMessage(method="CANCEL", uri=invite.uri)
        cancel.add("Via", invite.get_all("Via")[0])
        for name in ("From", "To", "Call-ID"):
            cancel.add(name, invite.get(name) or "")
        cancel.add("CSeq", f"{invite.cseq.seq} CANCEL")
        for route in invite.get_all("Route"):
            cancel.add("Route", route)
        cancel.add("Max-Forwards", "70")
        call.cancel_wanted = False
        self._send(cancel, call.peer, "cancel", call.call_id, now)

    def register(self, peer: Peer, now: float, expires: int | None = None) -> None:
        """REGISTER our Contact with the configured registrar (``expires=0`` removes it)."""
        config = self.config
        if not config.registrar:
            raise LocalProtocolError("no registrar configured")
        self.registrar_peer = peer
        if expires is not None:
            self.binding.expires = expires
        aor = config.aor or f"sip:{config.user}@{Uri.parse(config.registrar).host}"
        request = self.binding.request(
            config.registrar, aor, self._via(peer), self._contact(peer.reliable), config.user_agent
        )
        self._timers.cancel(("register",))
        self._send(request, peer, "register", "", now)

    # -- requests in -------------------------------------------------------------------------

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        method = request.method
        if method == "ACK":
            self._on_ack(request, now)
            return
        key = event.key
        assert key is not None
        try:
            Uri.parse(request.uri)
        except RemoteProtocolError as exc:
            self._respond(key, request, exc.status or 400, exc.reason[:80], now)
            return
        if method != "CANCEL":
            required = [
                tag.strip()
                for value in request.get_all("Require")
                for tag in value.split(",")
                if tag.strip()
            ]
            unsupported = [tag for tag in required if tag not in SUPPORTED]
            if unsupported:
                headers = (("Unsupported", ", ".join(unsupported)),)
                self._respond(key, request, 420, now=now, headers=headers)
                return
        match method:
            case "INVITE":
                if request.to.tag:
                    self._on_reinvite(key, request, now)
                else:
                    self._on_invite(key, request, event.peer, now)
            case "CANCEL":
                self._on_cancel(key, request, now)
            case "BYE":
                self._on_bye(key, request, now)
            case "OPTIONS":
                self._respond(key, request, 200, now=now, headers=_OPTIONS_HEADERS)
            case "UPDATE":
                self._on_update(key, request, now)
            case "INFO":
                self._on_info(key, request, now)
            case "NOTIFY":
                self._on_notify(key, request, now)
            case _ if method in _NOT_ALLOWED:
                self._respond(key, request, 405, now=now, headers=(("Allow", ALLOW),))
            case _:
                self._respond(key, request, 501, now=now, headers=(("Allow", ALLOW),))

    def _dialog(self, key: tuple[str, ...], request: SipMessage, now: float) -> Call | None:
        """The call a mid-dialog request belongs to, its CSeq checked; else answered 481/500."""
        call = self.calls.get(request.call_id)
        if (
            call is None
            or call.state is CallState.ENDED
            or request.to.tag != call.local_tag
            or (call.remote_tag and request.from_.tag != call.remote_tag)
        ):
            self._respond(key, request, 481, now=now)
            return None
        seq = request.cseq.seq
        if seq <= call.remote_seq:
            self._respond(key, request, 500, "CSeq out of order", now,
                          headers=(("Retry-After", "1"),))  # fmt: skip
            return None
        call.remote_seq = seq
        return call

    def _on_invite(
        self, key: tuple[str, ...], request: SipMessage, source: Peer, now: float
    ) -> None:
        call_id = request.call_id
        if call_id in self.calls:
            # 8.2.2.2: the same request reached us twice by different paths.
            self._respond(key, request, 482, now=now)
            return
        contacts = request.get_all("Contact")
        if not contacts:
            self._respond(key, request, 400, "Missing Contact", now)
            return
        try:
            target = Address.parse(contacts[0]).uri
        except RemoteProtocolError as exc:
            self._respond(key, request, 400, exc.reason[:80], now)
            return
        session_expires = 0
        if (se := request.get("Session-Expires")) is not None:
            text = se.split(";")[0].strip()
            if not text.isdigit():
                self._respond(key, request, 400, "Bad Session-Expires", now)
                return
            if int(text) < MIN_SE:
                self._respond(key, request, 422, now=now, headers=(("Min-SE", str(MIN_SE)),))
                return
            supported = ",".join(request.get_all("Supported")).replace(" ", "").split(",")
            if "timer" in supported:
                session_expires = int(text)
        body = request.body
        ctype = (request.get("Content-Type") or "").split(";")[0].strip().lower()
        if body and ctype != "application/sdp":
            self._respond(key, request, 415, now=now, headers=(("Accept", "application/sdp"),))
            return
        uri = Uri.parse(request.uri)
        call = Call(
            call_id,
            outbound=False,
            state=CallState.INCOMING,
            local_tag=self.token(),
            local_uri=without_tag(request.get("To") or ""),
            remote_uri=without_tag(request.get("From") or ""),
            invite=request,
            peer=source if source.reliable else peer_of(target, source),
            remote_tag=request.from_.tag,
            remote_target=str(target),
            route_set=request.get_all("Record-Route"),
            remote_seq=request.cseq.seq,
            invite_key=key,
            reliable=source.reliable,
            session_expires=session_expires,
        )
        self.calls[call_id] = call
        called = uri.user
        if not called or called == self.config.user:
            # Behind a registrar the Request-URI is the contact we registered, the same for
            # every number: the number dialled is only in To (RFC 3261 8.1.1.2, 10.2.1).
            called = request.to.uri.user or called
        self._events.append(
            IncomingCall(call_id, request.from_.uri.user, called, body, request, source)
        )

    def _on_reinvite(self, key: tuple[str, ...], request: SipMessage, now: float) -> None:
        call = self._dialog(key, request, now)
        if call is None:
            return
        if call.pending_offer is not None or call.pending_2xx is not None:
            self._respond(key, request, 491, now=now)  # 14.2: an offer is already in flight
            return
        refresh_target(call, request)
        call.pending_offer = (key, request)
        self._arm_session_timer(call, now)
        self._events.append(OfferReceived(call.call_id, "INVITE", request.body))

    def _on_update(self, key: tuple[str, ...], request: SipMessage, now: float) -> None:
        call = self._dialog(key, request, now)
        if call is None:
            return
        self._arm_session_timer(call, now)
        if not request.body:
            headers: tuple[tuple[str, str], ...] = (("Contact", self._contact(call.reliable)),)
            if call.session_expires:
                headers += (("Session-Expires", f"{call.session_expires};refresher=uac"),)
            self._respond(key, request, 200, now=now, headers=headers)  # a session refresh
            return
        if call.pending_offer is not None:
            self._respond(key, request, 491, now=now)
            return
        call.pending_offer = (key, request)
        self._events.append(OfferReceived(call.call_id, "UPDATE", request.body))

    def _on_cancel(self, key: tuple[str, ...], request: SipMessage, now: float) -> None:
        tx = self.transactions.cancel_target(request)
        call = self.calls.get(request.call_id)
        if tx is None or call is None or call.invite_key != tx.key:
            self._respond(key, request, 481, now=now)
            return
        self._respond(key, request, 200, now=now, to_tag=call.local_tag)
        if call.state is CallState.INCOMING:
            self._respond(tx.key, call.invite, 487, now=now, to_tag=call.local_tag)
            self._forget(call)
            self._events.append(CallEnded(call.call_id, "cancelled by the caller", "remote"))

    def _on_bye(self, key: tuple[str, ...], request: SipMessage, now: float) -> None:
        call = self._dialog(key, request, now)
        if call is None:
            return
        self._respond(key, request, 200, now=now)
        was_live = not call.bye_wanted
        self._forget(call)
        if was_live:
            self._events.append(CallEnded(call.call_id, "remote hangup", "remote"))

    def _on_info(self, key: tuple[str, ...], request: SipMessage, now: float) -> None:
        call = self._dialog(key, request, now)
        if call is None:
            return
        self._respond(key, request, 200, now=now)
        digit = _info_digit(request)
        if digit:
            self._events.append(DtmfReceived(call.call_id, digit))

    def _on_notify(self, key: tuple[str, ...], request: SipMessage, now: float) -> None:
        call = self._dialog(key, request, now)
        if call is None:
            return
        self._respond(key, request, 200, now=now)
        status = refer_progress(request)
        if status is not None:
            self._events.append(ReferStatus(call.call_id, status))

    def _on_ack(self, ack: SipMessage, now: float) -> None:
        call = self.calls.get(ack.call_id)
        if call is None or call.pending_2xx is None or ack.to.tag != call.local_tag:
            return  # a stray or late ACK: nothing to do (17.2.3, 13.3.1.4)
        if ack.cseq.seq != call.pending_2xx[2]:
            return
        call.pending_2xx = None
        self._timers.cancel(("2xx", call.call_id))
        self._timers.cancel(("no-ack", call.call_id))
        if call.state is CallState.ANSWERED:
            call.state = CallState.CONFIRMED
            self._arm_session_timer(call, now)
            if call.bye_wanted:
                self._bye(call, now)
                return
            self._events.append(CallConfirmed(call.call_id, ack.body))
        elif ack.body:
            self._events.append(CallConfirmed(call.call_id, ack.body))

    # -- responses in ------------------------------------------------------------------------

    def _on_response(self, event: ResponseReceived, now: float) -> None:
        response = event.response
        if event.key is None:
            self._on_stray_2xx(response)
            return
        purpose, ref = self._client.get(event.key, ("", ""))
        if response.status >= 200:
            self._client.pop(event.key, None)
        if not purpose and response.cseq.method == "INVITE" and response.status < 300:
            self._on_stray_2xx(response)  # a 2xx retransmission the Accepted state passed up
            return
        match purpose:
            case "invite":
                self._on_invite_response(ref, response, event.request, now)
            case "register":
                self._on_register_response(response, event.request, now)
            case "refer":
                if response.status >= 300:
                    self._events.append(ReferStatus(ref, response.status))
            case _:
                pass  # BYE, CANCEL: the call is already over on our side

    def _on_stray_2xx(self, response: SipMessage) -> None:
        """A retransmitted 2xx after the INVITE transaction ended: ACK it again (13.2.2.4)."""
        call = self.calls.get(response.call_id)
        if call is not None and call.ack_wire:
            self.transactions.resend(call.ack_wire, call.peer)

    def _on_invite_response(
        self, call_id: str, response: SipMessage, request: SipMessage | None, now: float
    ) -> None:
        call = self.calls.get(call_id)
        if call is None or request is None:
            return
        status = response.status
        if status < 200:
            call.provisional = True
            if call.cancel_wanted:
                self._cancel(call, now)
            if status > 100:
                self._events.append(CallProgress(call_id, status, response.body))
            return
        if status < 300:
            if call.state is CallState.CONFIRMED:
                if call.ack_wire:
                    self.transactions.resend(call.ack_wire, call.peer)
                return
            self._timers.cancel(("answer-timeout", call_id))
            call.remote_tag = response.to.tag
            contacts = response.get_all("Contact")
            if contacts:
                try:
                    call.remote_target = str(Address.parse(contacts[0]).uri)
                except RemoteProtocolError:
                    pass  # keep the Request-URI as the target
            call.route_set = list(reversed(response.get_all("Record-Route")))
            call.remote_uri = without_tag(response.get("To") or call.remote_uri)
            call.state = CallState.CONFIRMED
            ack = self._request(call, "ACK")
            call.local_seq -= 1  # 13.2.2.4: the ACK carries the INVITE's CSeq number
            ack.set("CSeq", f"{request.cseq.seq} ACK")
            call.ack_wire = self.transactions.send_stateless(ack, call.peer)
            if call.cancel_wanted or call.bye_wanted:
                self._bye(call, now)  # the answer crossed our CANCEL
                self._events.append(CallFailed(call_id, 487, "cancelled"))
                return
            self._events.append(CallAnswered(call_id, response.body))
            return
        if status in (401, 407) and self._retry_with_auth(call.invite, response):
            self._send_invite_again(call, now)
            return
        if 300 <= status < 400 and call.redirects < MAX_REDIRECTS and not call.cancel_wanted:
            target = first_contact(response)
            if target is not None:
                call.redirects += 1
                call.remote_target = str(target)
                call.peer = peer_of(target, call.peer)
                call.invite.uri = str(target)
                self._send_invite_again(call, now)
                return
        self._timers.cancel(("answer-timeout", call_id))
        self._forget(call)
        self._events.append(CallFailed(call_id, status, response.reason))

    def _send_invite_again(self, call: Call, now: float) -> None:
        """Re-send the INVITE (after a challenge or redirect): new branch, next CSeq (8.1.3.5)."""
        previous = call.invite
        extra = tuple(
            (name, value)
            for name, value in previous.headers
            if name in ("Authorization", "Proxy-Authorization")
        )
        self._send_invite(call, previous.body, now, extra)

    def _retry_with_auth(self, request: SipMessage, response: SipMessage) -> bool:
        """Add credentials answering ``response``'s challenge to ``request`` (22.2).

        False when we have no credentials, or already failed with this nonce (a wrong
        password must not loop), in which case the 401/407 stands.
        """
        try:
            return self.auth.answer(request, response)
        except RemoteProtocolError as exc:
            self.last_error = exc.reason
            return False

    def _on_register_response(
        self, response: SipMessage, request: SipMessage | None, now: float
    ) -> None:
        status = response.status
        if status < 200 or request is None:
            return
        if status < 300:
            expires = granted_expires(response, self.binding.expires, self._contact())
            if self.binding.expires == 0:
                self.registered_until = 0.0
                return
            self.registered_until = now + expires
            self._timers.set(("register",), now + refresh_after(expires))
            self._events.append(Registered(expires))
            return
        if status in (401, 407) and self._retry_with_auth(request, response):
            self._resend_register(request, now)
            return
        least = min_expires(response) if status == 423 else None
        if least is not None:
            self.binding.expires = least  # 10.2.8: ask again for at least that long
            request.set("Expires", str(least))
            self._resend_register(request, now)
            return
        self._events.append(RegistrationFailed(status, response.reason))
        self._timers.set(("register",), now + REGISTER_RETRY)

    def _resend_register(self, request: SipMessage, now: float) -> None:
        assert self.registrar_peer is not None
        self.binding.again(request, self._via(self.registrar_peer))
        self._send(request, self.registrar_peer, "register", "", now)

    def _on_timeout(self, event: TransactionTimedOut, now: float) -> None:
        purpose, ref = self._client.pop(event.key, ("", ""))
        if purpose == "invite":
            call = self.calls.get(ref)
            if call is not None:
                self._timers.cancel(("answer-timeout", ref))
                self._forget(call)
                self._events.append(CallFailed(ref, 408, "Request Timeout"))
        elif purpose == "register":
            self._events.append(RegistrationFailed(408, "Request Timeout"))
            self._timers.set(("register",), now + REGISTER_RETRY)
        elif purpose == "refer":
            self._events.append(ReferStatus(ref, 408))

    # -- our timers --------------------------------------------------------------------------

    def _on_timer(self, key: tuple[str, ...], now: float) -> None:
        kind = key[0]
        if kind == "register":
            if self.registrar_peer is not None:
                self.register(self.registrar_peer, now)
            return
        call = self.calls.get(key[1])
        if call is None:
            return
        if kind == "2xx" and call.pending_2xx is not None:
            wire, peer, seq, interval = call.pending_2xx
            self.transactions.resend(wire, peer)
            interval = min(interval * 2, self.timings.t2)
            call.pending_2xx = (wire, peer, seq, interval)
            self._timers.set(("2xx", call.call_id), now + interval)
        elif kind == "no-ack" and call.pending_2xx is not None:
            call.pending_2xx = None
            self._timers.cancel(("2xx", call.call_id))
            bye_wanted = call.bye_wanted
            self._bye(call, now)
            if not bye_wanted:
                self._events.append(CallEnded(call.call_id, NO_ACK, "local"))
        elif kind == "session":
            self._bye(call, now)
            self._events.append(CallEnded(call.call_id, "session timer expired", "local"))
        elif kind == "answer-timeout" and call.state is CallState.CALLING:
            self._cancel(call, now)

    def _arm_session_timer(self, call: Call, now: float) -> None:
        """RFC 4028 10: the peer refreshes; if it falls silent, end the call before expiry."""
        if call.session_expires:
            margin = min(32, call.session_expires / 3)
            self._timers.set(("session", call.call_id), now + call.session_expires - margin)

    def _forget(self, call: Call) -> None:
        call.state = CallState.ENDED
        self.calls.pop(call.call_id, None)
        for kind in ("2xx", "no-ack", "session", "answer-timeout"):
            self._timers.cancel((kind, call.call_id))


# -- helpers -----------------------------------------------------------------------------------

_REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    202: "Accepted",
    302: "Moved Temporarily",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    422: "Session Interval Too Small",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}


def _reason(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def _info_digit(request: SipMessage) -> str:
    ctype = (request.get("Content-Type") or "").split(";")[0].strip().lower()
    text = request.body.decode("ascii", "replace").strip()
    if ctype == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                text = value.strip()
                break
        else:
            return ""
    elif ctype != "application/dtmf":
        return ""
    digit = {"10": "*", "11": "#"}.get(text, text)
    return digit if len(digit) == 1 and digit in "0123456789*#ABCDabcd" else ""
