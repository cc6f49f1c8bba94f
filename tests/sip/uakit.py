"""Two sans-I/O user agents joined by a fake link with a fake clock (h11's ConnectionPair).

Nothing here opens a socket or sleeps: :meth:`Link.run` moves datagrams between the two ends
and fires their timers in deadline order until ``until``; ``drop`` makes loss deterministic.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.carriers.sip.message import SipMessage
from gateway.carriers.sip.transaction import Peer
from gateway.carriers.sip.ua import UaConfig, UaEvent, UserAgent

A = Peer("udp", "10.0.0.1", 5060)
B = Peer("udp", "10.0.0.2", 5060)


def counter_tokens(prefix: str) -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def agent(peer: Peer, **config: object) -> UserAgent:
    return UserAgent(
        UaConfig(host=peer.host, port=peer.port, **config),  # type: ignore[arg-type]
        token=counter_tokens(peer.host[-1]),
    )


@dataclass
class Link:
    a: UserAgent
    b: UserAgent
    now: float = 0.0
    #: Every datagram sent: (time, sender peer, message).
    wire: list[tuple[float, Peer, SipMessage]] = field(default_factory=list)
    events: dict[Peer, list[UaEvent]] = field(default_factory=lambda: {A: [], B: []})
    drop: Callable[[Peer, SipMessage], bool] = lambda sender, msg: False
    #: Called with (peer, event) as events come out, to issue commands in reply.
    on_event: Callable[[Peer, UaEvent], None] = lambda peer, event: None

    def _agents(self) -> dict[Peer, UserAgent]:
        return {A: self.a, B: self.b}

    def flush(self) -> None:
        agents = self._agents()
        moved = True
        while moved:
            moved = False
            for peer, ua in agents.items():
                for event in ua.events():
                    self.events[peer].append(event)
                    self.on_event(peer, event)
                    moved = True
                for data, to in ua.datagrams_to_send():
                    moved = True
                    msg = SipMessage.parse(data)
                    self.wire.append((self.now, peer, msg))
                    if self.drop(peer, msg) or to not in agents:
                        continue
                    agents[to].receive(data, Peer(to.transport, peer.host, peer.port), self.now)

    def run(self, until: float) -> None:
        """Deliver and fire timers in order up to ``until`` (seconds on the fake clock)."""
        self.flush()
        while True:
            deadlines = [d for d in (self.a.next_deadline(), self.b.next_deadline()) if d]
            if not deadlines or min(deadlines) > until:
                break
            self.now = max(self.now, min(deadlines))
            for ua in (self.a, self.b):
                ua.handle_timer(self.now)
            self.flush()
        self.now = until

    def sent(self, sender: Peer, kind: str | int) -> list[tuple[float, SipMessage]]:
        """What ``sender`` put on the wire of one method or status."""
        return [
            (t, m)
            for t, p, m in self.wire
            if p == sender and (m.method == kind if isinstance(kind, str) else m.status == kind)
        ]

    def of(self, peer: Peer, kind: type) -> list[UaEvent]:
        return [e for e in self.events[peer] if isinstance(e, kind)]
