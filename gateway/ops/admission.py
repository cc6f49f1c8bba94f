"""Admission control: how many calls each engine may carry at once, and "busy" past that.

An engine that takes more calls than the cores behind it can serve degrades every call at once
(at 100 SIP calls on the embedded engine on 2 cores, a third of the RTP went missing and
thousands of frames were more than 250 ms late). A call refused cleanly goes elsewhere: a SIP
trunk tries its next gateway on 503 with ``Retry-After`` (RFC 3261 21.5.4), Twilio plays the
route's fallback or ``<Reject reason="busy">``, and a load balancer stops sending calls to a
gateway whose ``/readyz`` says it is full.

The capacity is configured per engine (``--capacity local=24,echo=400``, or one number for
every engine); ``tests/bench/bench_sip.py --overload`` measures it for a machine. Unless
configured, the embedded ``local`` engine gets the measured figure per CPU core this process
may use; other engines are not limited.

A call counts against its engine from the moment it is admitted (the voice webhook, the SIP
INVITE, an outbound SIP call before its engine opens) until its ledger is closed. Admitted
calls whose media never arrives (a Twilio webhook answered but no stream opened) stop counting
after ``hold`` seconds. The class is
sans-I/O: time comes in as ``now``, and it reads the live calls through a mapping it is given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.call.ledger import CallLedger
from gateway.config import ConfigError

__all__ = ["Admission", "EngineLoad", "default_capacity", "parse_capacity"]

#: Key of the capacity that applies to every engine not named.
EVERY = "*"
#: Calls per CPU core the embedded engine carried with response p90 <= 400 ms: 24 on the
#: 2-core development machine with the callers in another process (tests/bench/bench_sip.py
#: --overload: 24 calls p90 186-334 ms, 28 calls p90 3.1 s).
LOCAL_CALLS_PER_CORE = 12


def default_capacity(configured: Mapping[str, int], cores: int) -> dict[str, int]:
    """``configured``, plus the measured figure for the local engine unless it is covered
    (named, or every engine given one number)."""
    capacity = dict(configured)
    if "local" not in capacity and EVERY not in capacity:
        capacity["local"] = LOCAL_CALLS_PER_CORE * max(1, cores)
    return capacity


def parse_capacity(text: str) -> dict[str, int]:
    """``"6"`` (every engine) or ``"local=6,echo=400"`` -> ``{"*": 6}`` / per-engine figures.

    Raises :class:`~gateway.config.ConfigError` naming the bad part.
    """
    capacity: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, eq, figure = part.rpartition("=") if "=" in part else ("", "", part)
        name, figure = (name.strip() if eq else EVERY), figure.strip()
        # ASCII digits only: str.isdigit() also takes '¹' and '٣', which int() refuses or reads.
        if not name or not (figure.isascii() and figure.isdigit()) or int(figure) < 1:
            raise ConfigError(f"capacity must be N or ENGINE=N (N >= 1), not {part!r}")
        capacity[name] = int(figure)
    return capacity


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """One engine's figures for ``/readyz`` and ``/metrics``; ``capacity`` None: unlimited."""

    engine: str
    capacity: int | None
    in_use: int

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.in_use >= self.capacity


class Admission:
    """Admits calls per engine up to its capacity; see the module docstring."""

    def __init__(
        self,
        capacity: Mapping[str, int],
        active: Mapping[str, CallLedger],
        *,
        hold: float = 15.0,
        retry_after: int = 30,
    ) -> None:
        self.capacity = dict(capacity)
        self._active = active
        self.hold = hold
        #: Seconds a refused SIP caller is told to wait (``Retry-After``).
        self.retry_after = retry_after
        #: Admitted calls not yet live: call id -> (engine, admitted until).
        self._pending: dict[str, tuple[str, float]] = {}
        #: Refused calls by (engine, carrier).
        self.refused = Counter[tuple[str, str]]()

    def capacity_of(self, engine: str) -> int | None:
        return self.capacity.get(engine, self.capacity.get(EVERY))

    def admit(self, call_id: str, engine: str, carrier: str, now: float) -> bool:
        """Take a place on ``engine`` for ``call_id``; False (and counted) when it is full.

        Admitting a call already admitted or live succeeds without taking a second place.
        """
        if call_id in self._active or call_id in self._pending:
            return True
        limit = self.capacity_of(engine)
        if limit is not None and self.load(engine, now).in_use >= limit:
            self.refused[engine, carrier] += 1
            return False
        self._pending[call_id] = (engine, now + self.hold)
        return True

    def rename(self, old: str, new: str, until: float) -> None:
        """An outbound call admitted under a placeholder (the engine opens before the carrier
        names the call) now has its carrier's id; it holds its place until ``until`` (its
        ringing limit) unless it goes live or is released first."""
        admitted = self._pending.pop(old, None)
        if admitted is not None:
            self._pending[new] = (admitted[0], until)

    def release(self, call_id: str) -> None:
        """The call ended (or never started): its place is free."""
        self._pending.pop(call_id, None)

    def call_ended(self, ledger: CallLedger) -> None:
        """For :attr:`CallRegistry.on_end`."""
        self.release(ledger.call_id)

    def load(self, engine: str, now: float) -> EngineLoad:
        self._expire(now)
        live = sum(1 for ledger in self._active.values() if ledger.engine == engine)
        waiting = sum(
            1
            for call_id, (name, _) in self._pending.items()
            if name == engine and call_id not in self._active
        )
        return EngineLoad(engine, self.capacity_of(engine), live + waiting)

    def loads(self, engines: list[str], now: float) -> list[EngineLoad]:
        """The figures of ``engines`` and of every engine configured or carrying calls."""
        names = set(engines) | (set(self.capacity) - {EVERY})
        names |= {ledger.engine for ledger in self._active.values() if ledger.engine}
        names |= {engine for engine, _ in self._pending.values()}
        return [self.load(name, now) for name in sorted(names)]

    def _expire(self, now: float) -> None:
        # Every entry holds for the same time, so insertion order is expiry order.
        pending = self._pending
        while pending:
            call_id, (_, until) = next(iter(pending.items()))
            if until > now and call_id not in self._active:
                break
            del pending[call_id]  # expired, or live now (counted through the registry)
