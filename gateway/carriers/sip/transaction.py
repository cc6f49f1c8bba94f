"""The SIP transaction layer (RFC 3261 section 17, with RFC 6026's Accepted states), sans-I/O.

:class:`TransactionLayer` matches requests and responses to the four kinds of transaction
(INVITE/non-INVITE, client/server), retransmits over UDP and times transactions out. It owns no
socket and reads no clock: feed it with :meth:`~TransactionLayer.receive` (``now`` passed in),
ask :meth:`~TransactionLayer.next_deadline`, call :meth:`~TransactionLayer.handle_timer` when
it is due, and collect :meth:`~TransactionLayer.datagrams_to_send` and
:meth:`~TransactionLayer.events_received`. The asyncio adapter arms one ``loop.call_at``.

Every state change is an entry of :data:`TRANSITIONS`: ``(kind, state, input) -> Step(next
state, timers to start, timers to stop, actions)``. Timers are entries of :data:`TIMERS`
(17.1.1.2, 17.1.2.2, 17.2.1, 17.2.2; L and M from RFC 6026), never sleeps; an input with no entry
for the current state is absorbed, which is what section 17 prescribes for every case it does
not list (a late provisional, a retransmitted final response...).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from gateway.carriers.sip.deadlines import Deadlines
from gateway.carriers.sip.errors import LocalProtocolError, RemoteProtocolError
from gateway.carriers.sip.headers import Via
from gateway.carriers.sip.message import SipMessage

__all__ = [
    "TIMERS",
    "TRANSITIONS",
    "Kind",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "State",
    "Timer",
    "Timings",
    "TransactionLayer",
    "TransactionTimedOut",
    "response_peer",
]

BRANCH_COOKIE = "z9hG4bK"  # 8.1.1.7: marks a branch unique per RFC 3261


class Peer(NamedTuple):
    """Where a message comes from or goes: transport (``udp``/``tcp``), host, port."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


@dataclass(frozen=True, slots=True)
class Timings:
    """RFC 3261 table 4 defaults: T1 (RTT estimate), T2 (max retransmit interval), T4."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


DEFAULT_TIMINGS = Timings()


class Kind(enum.Enum):
    INVITE_CLIENT = "ict"
    NON_INVITE_CLIENT = "nict"
    INVITE_SERVER = "ist"
    NON_INVITE_SERVER = "nist"


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Timer(enum.Enum):
    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"


class Input(enum.Enum):
    """What can happen to a transaction: a message, something the TU sends, or a timer."""

    R1XX = "1xx received"
    R2XX = "2xx received"
    RFINAL = "3xx-6xx received"
    REQUEST = "request retransmission"
    ACK = "ACK received"
    SEND_1XX = "TU sends 1xx"
    SEND_2XX = "TU sends 2xx"
    SEND_FINAL = "TU sends 3xx-6xx"
    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_K = "timer K"
    TIMER_L = "timer L"
    TIMER_M = "timer M"


class Action(enum.Enum):
    PASS = "pass the message to the TU"
    SEND = "send the TU's response"
    RESEND_REQUEST = "retransmit the request"
    RESEND_RESPONSE = "retransmit the last response"
    SEND_ACK = "ACK the non-2xx final response"
    TIMEOUT = "report a timeout to the TU"


@dataclass(frozen=True, slots=True)
class TimerRule:
    """How long a timer runs: ``duration(timings)`` over UDP.

    Over a reliable transport a retransmission timer (``udp_only``) is not started at all and
    a wait-for-retransmissions timer (``zero_if_reliable``) fires at once. ``backoff``: the
    interval doubles at each firing, capped by ``cap`` when given.
    """

    duration: Callable[[Timings], float]
    fires: Input
    udp_only: bool = False
    zero_if_reliable: bool = False
    backoff: bool = False
    cap: Callable[[Timings], float] | None = None


def _t1(t: Timings) -> float:
    return t.t1


def _t2(t: Timings) -> float:
    return t.t2


def _t4(t: Timings) -> float:
    return t.t4


def _64t1(t: Timings) -> float:
    return 64 * t.t1


#: Timers A-M: RFC 3261 table 4 (and RFC 6026 for L and M).
TIMERS: dict[Timer, TimerRule] = {
    Timer.A: TimerRule(_t1, Input.TIMER_A, udp_only=True, backoff=True),
    Timer.B: TimerRule(_64t1, Input.TIMER_B),
    Timer.D: TimerRule(lambda t: max(32.0, 64 * t.t1), Input.TIMER_D, zero_if_reliable=True),
    Timer.E: TimerRule(_t1, Input.TIMER_E, udp_only=True, backoff=True, cap=_t2),
    Timer.F: TimerRule(_64t1, Input.TIMER_F),
    Timer.G: TimerRule(_t1, Input.TIMER_G, udp_only=True, backoff=True, cap=_t2),
    Timer.H: TimerRule(_64t1, Input.TIMER_H),
    Timer.I: TimerRule(_t4, Input.TIMER_I, zero_if_reliable=True),
    Timer.J: TimerRule(_64t1, Input.TIMER_J, zero_if_reliable=True),
    Timer.K: TimerRule(_t4, Input.TIMER_K, zero_if_reliable=True),
    Timer.L: TimerRule(_64t1, Input.TIMER_L),
    Timer.M: TimerRule(_64t1, Input.TIMER_M),
}


@dataclass(frozen=True, slots=True)
class Step:
    next: State
    start: tuple[Timer, ...] = ()
    stop: tuple[Timer, ...] = ()
    do: tuple[Action, ...] = ()


K, S, I_, A_ = Kind, State, Input, Action
_TERMINATE = Step(S.TERMINATED)

#: Every transition of RFC 3261 figures 5-8 (and RFC 6026 figures 2-3), as table entries.
TRANSITIONS: dict[tuple[Kind, State, Input], Step] = {
    # INVITE client, 17.1.1.2.
    (K.INVITE_CLIENT, S.CALLING, I_.TIMER_A): Step(S.CALLING, (Timer.A,), (), (A_.RESEND_REQUEST,)),
    (K.INVITE_CLIENT, S.CALLING, I_.TIMER_B): Step(S.TERMINATED, do=(A_.TIMEOUT,)),
    (K.INVITE_CLIENT, S.CALLING, I_.R1XX): Step(
        S.PROCEEDING, stop=(Timer.A, Timer.B), do=(A_.PASS,)
    ),
    (K.INVITE_CLIENT, S.PROCEEDING, I_.R1XX): Step(S.PROCEEDING, do=(A_.PASS,)),
    (K.INVITE_CLIENT, S.CALLING, I_.R2XX): Step(
        S.ACCEPTED, (Timer.M,), (Timer.A, Timer.B), (A_.PASS,)
    ),
    (K.INVITE_CLIENT, S.PROCEEDING, I_.R2XX): Step(S.ACCEPTED, (Timer.M,), (), (A_.PASS,)),
    (K.INVITE_CLIENT, S.CALLING, I_.RFINAL): Step(
        S.COMPLETED, (Timer.D,), (Timer.A, Timer.B), (A_.SEND_ACK, A_.PASS)
    ),
    (K.INVITE_CLIENT, S.PROCEEDING, I_.RFINAL): Step(
        S.COMPLETED, (Timer.D,), (), (A_.SEND_ACK, A_.PASS)
    ),
    (K.INVITE_CLIENT, S.COMPLETED, I_.RFINAL): Step(S.COMPLETED, do=(A_.SEND_ACK,)),
    (K.INVITE_CLIENT, S.COMPLETED, I_.TIMER_D): _TERMINATE,
    (K.INVITE_CLIENT, S.ACCEPTED, I_.R2XX): Step(S.ACCEPTED, do=(A_.PASS,)),
    (K.INVITE_CLIENT, S.ACCEPTED, I_.TIMER_M): _TERMINATE,
    # Non-INVITE client, 17.1.2.2. In Proceeding, E fires every T2 (its backoff is capped).
    (K.NON_INVITE_CLIENT, S.TRYING, I_.TIMER_E): Step(
        S.TRYING, (Timer.E,), (), (A_.RESEND_REQUEST,)
    ),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I_.TIMER_E): Step(
        S.PROCEEDING, (Timer.E,), (), (A_.RESEND_REQUEST,)
    ),
    (K.NON_INVITE_CLIENT, S.TRYING, I_.TIMER_F): Step(S.TERMINATED, do=(A_.TIMEOUT,)),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I_.TIMER_F): Step(S.TERMINATED, do=(A_.TIMEOUT,)),
    (K.NON_INVITE_CLIENT, S.TRYING, I_.R1XX): Step(S.PROCEEDING, do=(A_.PASS,)),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I_.R1XX): Step(S.PROCEEDING, do=(A_.PASS,)),
    (K.NON_INVITE_CLIENT, S.TRYING, I_.R2XX): Step(
        S.COMPLETED, (Timer.K,), (Timer.E, Timer.F), (A_.PASS,)
    ),
    (K.NON_INVITE_CLIENT, S.TRYING, I_.RFINAL): Step(
        S.COMPLETED, (Timer.K,), (Timer.E, Timer.F), (A_.PASS,)
    ),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I_.R2XX): Step(
        S.COMPLETED, (Timer.K,), (Timer.E, Timer.F), (A_.PASS,)
    ),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I_.RFINAL): Step(
        S.COMPLETED, (Timer.K,), (Timer.E, Timer.F), (A_.PASS,)
    ),
    (K.NON_INVITE_CLIENT, S.COMPLETED, I_.TIMER_K): _TERMINATE,
    # INVITE server, 17.2.1 with RFC 6026's Accepted state (the TU retransmits the 2xx).
    (K.INVITE_SERVER, S.PROCEEDING, I_.REQUEST): Step(S.PROCEEDING, do=(A_.RESEND_RESPONSE,)),
    (K.INVITE_SERVER, S.PROCEEDING, I_.SEND_1XX): Step(S.PROCEEDING, do=(A_.SEND,)),
    (K.INVITE_SERVER, S.PROCEEDING, I_.SEND_2XX): Step(S.ACCEPTED, (Timer.L,), (), (A_.SEND,)),
    (K.INVITE_SERVER, S.PROCEEDING, I_.SEND_FINAL): Step(
        S.COMPLETED, (Timer.G, Timer.H), (), (A_.SEND,)
    ),
    (K.INVITE_SERVER, S.ACCEPTED, I_.SEND_2XX): Step(S.ACCEPTED, do=(A_.SEND,)),
    (K.INVITE_SERVER, S.ACCEPTED, I_.TIMER_L): _TERMINATE,
    (K.INVITE_SERVER, S.COMPLETED, I_.REQUEST): Step(S.COMPLETED, do=(A_.RESEND_RESPONSE,)),
    (K.INVITE_SERVER, S.COMPLETED, I_.TIMER_G): Step(
        S.COMPLETED, (Timer.G,), (), (A_.RESEND_RESPONSE,)
    ),
    (K.INVITE_SERVER, S.COMPLETED, I_.ACK): Step(S.CONFIRMED, (Timer.I,), (Timer.G, Timer.H)),
    (K.INVITE_SERVER, S.COMPLETED, I_.TIMER_H): Step(S.TERMINATED, do=(A_.TIMEOUT,)),
    (K.INVITE_SERVER, S.CONFIRMED, I_.TIMER_I): _TERMINATE,
    # Non-INVITE server, 17.2.2.
    (K.NON_INVITE_SERVER, S.TRYING, I_.SEND_1XX): Step(S.PROCEEDING, do=(A_.SEND,)),
    (K.NON_INVITE_SERVER, S.TRYING, I_.SEND_2XX): Step(S.COMPLETED, (Timer.J,), (), (A_.SEND,)),
    (K.NON_INVITE_SERVER, S.TRYING, I_.SEND_FINAL): Step(S.COMPLETED, (Timer.J,), (), (A_.SEND,)),
    (K.NON_INVITE_SERVER, S.PROCEEDING, I_.SEND_1XX): Step(S.PROCEEDING, do=(A_.SEND,)),
    (K.NON_INVITE_SERVER, S.PROCEEDING, I_.SEND_2XX): Step(S.COMPLETED, (Timer.J,), (), (A_.SEND,)),
    (K.NON_INVITE_SERVER, S.PROCEEDING, I_.SEND_FINAL): Step(
        S.COMPLETED, (Timer.J,), (), (A_.SEND,)
    ),
    (K.NON_INVITE_SERVER, S.PROCEEDING, I_.REQUEST): Step(S.PROCEEDING, do=(A_.RESEND_RESPONSE,)),
    (K.NON_INVITE_SERVER, S.COMPLETED, I_.REQUEST): Step(S.COMPLETED, do=(A_.RESEND_RESPONSE,)),
    (K.NON_INVITE_SERVER, S.COMPLETED, I_.TIMER_J): _TERMINATE,
}

_INITIAL = {
    Kind.INVITE_CLIENT: (State.CALLING, (Timer.A, Timer.B)),
    Kind.NON_INVITE_CLIENT: (State.TRYING, (Timer.E, Timer.F)),
    Kind.INVITE_SERVER: (State.PROCEEDING, ()),
    Kind.NON_INVITE_SERVER: (State.TRYING, ()),
}

# -- events to the transaction user ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request (not a retransmission), or an ACK for a 2xx (which has no transaction)."""

    request: SipMessage
    peer: Peer
    #: The server transaction to answer through (None for an ACK).
    key: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for a client transaction; ``key`` is None for a stray 2xx to INVITE (a
    retransmission after the transaction ended, or another fork's answer)."""

    response: SipMessage
    request: SipMessage | None
    key: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B/F (no response: act as if 408), or H (our final response was never ACKed)."""

    request: SipMessage
    key: tuple[str, ...]
    timer: Timer


TransactionEvent = RequestReceived | ResponseReceived | TransactionTimedOut


@dataclass(slots=True)
class Transaction:
    kind: Kind
    key: tuple[str, ...]
    request: SipMessage
    peer: Peer
    state: State
    wire: bytes = b""  # the request (client) or last response (server), for retransmission
    response: SipMessage | None = None
    ack: bytes = b""
    intervals: dict[Timer, float] = field(default_factory=dict)


def response_peer(request: SipMessage, source: Peer) -> Peer:
    """Where responses to ``request`` go (18.2.2, RFC 3581): over a stream, back the way it
    came; over UDP to the source address when the top Via asks for ``rport``, else to the Via's
    ``received`` (the source IP) and its port."""
    if source.reliable:
        return source
    via = request.via
    if "rport" in via.params:
        return source
    return Peer(source.transport, source.host, via.port or 5060)


def stamp_via(request: SipMessage, source: Peer) -> None:
    """18.2.1 and RFC 3581 4: note on the top Via where the request really came from, so
    responses (which copy it) find their way back through NAT."""
    vias = request.get_all("Via")
    via = Via.parse(vias[0])
    changed = False
    if via.host != source.host:
        via.params["received"] = source.host
        changed = True
    if "rport" in via.params and via.params["rport"] is None:
        via.params["rport"] = str(source.port)
        changed = True
    if changed:
        request.remove("Via")
        for i, value in enumerate([str(via), *vias[1:]]):
            request.headers.insert(i, ("Via", value))


def server_key(request: SipMessage) -> tuple[str, ...]:
    """17.2.3: branch + sent-by + method (ACK matches its INVITE); RFC 2543 peers without the
    magic cookie fall back to Call-ID, CSeq number, From tag and sent-by."""
    via = request.via
    method = "INVITE" if request.method == "ACK" else request.method
    if via.branch.startswith(BRANCH_COOKIE):
        return ("s", via.branch, via.sent_by, method)
    cseq = request.cseq
    return ("s2543", request.call_id, str(cseq.seq), request.from_.tag, via.sent_by, method)


def client_key(message: SipMessage) -> tuple[str, ...]:
    """17.1.3: our branch + the CSeq method."""
    return ("c", message.via.branch, message.cseq.method)


class TransactionLayer:
    """Every transaction of one SIP endpoint. See the module docstring for the contract."""

    def __init__(
        self, timings: Timings = DEFAULT_TIMINGS, *, max_transactions: int = 20000
    ) -> None:
        self.timings = timings
        self.max_transactions = max_transactions
        self._transactions: dict[tuple[str, ...], Transaction] = {}
        self._timers: Deadlines[tuple[tuple[str, ...], Timer]] = Deadlines()
        self._out: list[tuple[bytes, Peer]] = []
        self._events: list[TransactionEvent] = []
        self.retransmissions = 0

    # -- outputs ----------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Peer]]:
        out, self._out = self._out, []
        return out

    def events_received(self) -> list[TransactionEvent]:
        events, self._events = self._events, []
        return events

    def __len__(self) -> int:
        return len(self._transactions)

    def get(self, key: tuple[str, ...]) -> Transaction | None:
        return self._transactions.get(key)

    # -- inputs from the wire ----------------------------------------------------------------

    def receive(self, message: SipMessage, source: Peer, now: float) -> None:
        """Route one parsed message: to its transaction, or up to the TU as a new request.

        Raises :class:`RemoteProtocolError` (with the status to answer) for a request too
        broken to start a transaction; the TU answers it through :meth:`reply_stateless`.
        """
        if message.is_request:
            self._receive_request(message, source, now)
        else:
            self._receive_response(message, now)

    def _receive_request(self, request: SipMessage, source: Peer, now: float) -> None:
        stamp_via(request, source)
        key = server_key(request)
        tx = self._transactions.get(key)
        if request.method == "ACK":
            if tx is not None and tx.kind is Kind.INVITE_SERVER:
                if tx.state is State.ACCEPTED:
                    self._events.append(RequestReceived(request, source, None))  # RFC 6026
                else:
                    self._apply(tx, Input.ACK, now)
            else:
                self._events.append(RequestReceived(request, source, None))  # ACK for a 2xx
            return
        if tx is not None:
            self._apply(tx, Input.REQUEST, now)
            return
        if len(self._transactions) >= self.max_transactions:
            raise RemoteProtocolError("too many transactions in progress", 503)
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        tx = self._start(kind, key, request, response_peer(request, source), now)
        self._events.append(RequestReceived(request, source, key))
        if kind is Kind.INVITE_SERVER:
            # 17.2.1: a 100 at once stops the caller's INVITE retransmissions over UDP.
            self.respond(key, make_response(request, 100, "Trying"), now)

    def _receive_response(self, response: SipMessage, now: float) -> None:
        key = client_key(response)
        tx = self._transactions.get(key)
        if tx is None:
            if response.cseq.method == "INVITE" and 200 <= response.status < 300:
                self._events.append(ResponseReceived(response, None, None))
            return  # 17.1.3: a response matching no transaction is discarded
        if response.status < 200:
            inp = Input.R1XX
        elif response.status < 300:
            inp = Input.R2XX
        else:
            inp = Input.RFINAL
        tx.response = response
        self._apply(tx, inp, now)

    # -- inputs from the TU ------------------------------------------------------------------

    def send_request(self, request: SipMessage, peer: Peer, now: float) -> tuple[str, ...]:
        """Start a client transaction for ``request`` (its top Via carries a fresh branch).

        ACK for a 2xx is not a transaction (17.1.1.3): use :meth:`send_stateless`.
        """
        if request.method == "ACK":
            raise LocalProtocolError("an ACK for a 2xx is sent with send_stateless")
        key = client_key(request)
        if key in self._transactions:
            raise LocalProtocolError(f"transaction {key} already exists: reuse of a branch")
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        tx = self._start(kind, key, request, peer, now)
        tx.wire = request.serialize()
        self._out.append((tx.wire, peer))
        return key

    def respond(self, key: tuple[str, ...], response: SipMessage, now: float) -> None:
        """Send ``response`` through server transaction ``key``."""
        tx = self._transactions.get(key)
        if tx is None or tx.kind not in (Kind.INVITE_SERVER, Kind.NON_INVITE_SERVER):
            raise LocalProtocolError(f"no server transaction {key} to respond through")
        tx.response = response
        if response.status < 200:
            inp = Input.SEND_1XX
        elif response.status < 300:
            inp = Input.SEND_2XX
        else:
            inp = Input.SEND_FINAL
        if (tx.kind, tx.state, inp) not in TRANSITIONS:
            raise LocalProtocolError(
                f"cannot send {response.status} in state {tx.state.value} of {tx.kind.value}"
            )
        tx.wire = response.serialize()
        self._apply(tx, inp, now)

    def send_stateless(self, message: SipMessage, peer: Peer) -> bytes:
        """Send outside any transaction (ACK for 2xx, its retransmissions, 2xx retransmits)."""
        wire = message.serialize()
        self._out.append((wire, peer))
        return wire

    def resend(self, wire: bytes, peer: Peer) -> None:
        self.retransmissions += 1
        self._out.append((wire, peer))

    def reply_stateless(self, request: SipMessage, source: Peer, status: int, reason: str) -> None:
        """Answer a request that could not start a transaction (8.2: 400, 503...)."""
        self._out.append((make_response(request, status, reason).serialize(),
                          response_peer(request, source)))  # fmt: skip

    def cancel_target(self, cancel: SipMessage) -> Transaction | None:
        """The INVITE server transaction a CANCEL names (9.2: same branch and sent-by)."""
        key = server_key(cancel)
        return self._transactions.get((*key[:-1], "INVITE"))

    # -- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._timers.next()

    def handle_timer(self, now: float) -> None:
        for key, timer in self._timers.pop_due(now):
            tx = self._transactions.get(key)
            if tx is not None:
                self._apply(tx, TIMERS[timer].fires, now)

    # -- machinery ---------------------------------------------------------------------------

    def _start(
        self, kind: Kind, key: tuple[str, ...], request: SipMessage, peer: Peer, now: float
    ) -> Transaction:
        state, timers = _INITIAL[kind]
        tx = Transaction(kind, key, request, peer, state)
        self._transactions[key] = tx
        for timer in timers:
            self._start_timer(tx, timer, now)
        return tx

    def _start_timer(self, tx: Transaction, timer: Timer, now: float) -> None:
        rule = TIMERS[timer]
        reliable = tx.peer.reliable
        if reliable and rule.udp_only:
            return
        if reliable and rule.zero_if_reliable:
            interval = 0.0
        elif rule.cap is not None and tx.state is State.PROCEEDING:
            interval = rule.cap(self.timings)  # 17.1.2.2: E fires every T2 once a 1xx came
        elif rule.backoff and timer in tx.intervals:
            interval = tx.intervals[timer] * 2
            if rule.cap is not None:
                interval = min(interval, rule.cap(self.timings))
        else:
            interval = rule.duration(self.timings)
        tx.intervals[timer] = interval
        self._timers.set((tx.key, timer), now + interval)

    def _apply(self, tx: Transaction, inp: Input, now: float) -> None:
        step = TRANSITIONS.get((tx.kind, tx.state, inp))
        if step is None:
            return  # absorbed: section 17 ignores everything it does not list
        tx.state = step.next
        for timer in step.stop:
            self._timers.cancel((tx.key, timer))
        for action in step.do:
            self._act(tx, action, inp)
        if step.next is State.TERMINATED:
            self._transactions.pop(tx.key, None)
            for timer in TIMERS:
                self._timers.cancel((tx.key, timer))
            return
        for timer in step.start:
            self._start_timer(tx, timer, now)

    def _act(self, tx: Transaction, action: Action, inp: Input) -> None:
        match action:
            case Action.PASS:
                if tx.kind in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT):
                    assert tx.response is not None
                    self._events.append(ResponseReceived(tx.response, tx.request, tx.key))
            case Action.SEND:
                self._out.append((tx.wire, tx.peer))
            case Action.RESEND_REQUEST | Action.RESEND_RESPONSE:
                if tx.wire:
                    self.resend(tx.wire, tx.peer)
            case Action.SEND_ACK:
                if not tx.ack:
                    assert tx.response is not None
                    tx.ack = ack_for_failure(tx.request, tx.response).serialize()
                self._out.append((tx.ack, tx.peer))
            case Action.TIMEOUT:
                timer = Timer.H if inp is Input.TIMER_H else (
                    Timer.B if inp is Input.TIMER_B else Timer.F
                )  # fmt: skip
                self._events.append(TransactionTimedOut(tx.request, tx.key, timer))


def make_response(request: SipMessage, status: int, reason: str) -> SipMessage:
    """A response copying Via, From, To, Call-ID and CSeq from ``request`` (8.2.6.2).

    The top Via gets ``received``/``rport`` filled in by the caller when known.
    """
    response = SipMessage(status=status, reason=reason)
    for name, value in request.headers:
        if name in ("Via", "From", "To", "Call-ID", "CSeq"):
            response.headers.append((name, value))
    if status == 100 and (stamp := request.get("Timestamp")):
        response.headers.append(("Timestamp", stamp))
    return response


def ack_for_failure(invite: SipMessage, response: SipMessage) -> SipMessage:
    """17.1.1.3: the ACK for a non-2xx final response, sent by the client transaction itself
    (same Request-URI, top Via and CSeq number as the INVITE; To from the response)."""
    ack = SipMessage(method="ACK", uri=invite.uri)
    ack.add("Via", invite.get_all("Via")[0])
    for name in ("From", "Call-ID"):
        ack.add(name, invite.get(name) or "")
    ack.add("To", response.get("To") or "")
    ack.add("CSeq", f"{invite.cseq.seq} ACK")
    for route in invite.get_all("Route"):
        ack.add("Route", route)
    ack.add("Max-Forwards", "70")
    return ack
