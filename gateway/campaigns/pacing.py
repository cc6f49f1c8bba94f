"""Pacing: how fast and how many calls at once. Pure, with time passed in.

Calls are spaced at least ``1 / calls_per_second`` apart (a token bucket of depth one, i.e.
GCRA): a dialler that falls behind does not catch up in a burst, so any stretch of ``n``
intervals holds at most ``n`` calls, and a carrier's calls-per-second limit (Twilio queues calls
beyond the account's CPS) is never exceeded. The slot lives in the store's campaign row, so
several dialler processes share one pace.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Admission", "Pacing"]


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a call may start now; if not, ``retry_at`` says when to ask again (None: when a
    call in flight ends)."""

    ok: bool
    retry_at: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Pacing:
    calls_per_second: float
    max_concurrent: int

    def __post_init__(self) -> None:
        if not self.calls_per_second > 0:
            raise ValueError("calls_per_second must be positive")
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")

    @property
    def interval(self) -> float:
        return 1.0 / self.calls_per_second

    def admit(self, now: float, next_slot: float, in_flight: int) -> Admission:
        """May a call start at ``now``, given the shared slot and the calls in flight?"""
        if in_flight >= self.max_concurrent:
            return Admission(False, None, f"{in_flight} in flight (max {self.max_concurrent})")
        if now < next_slot:
            return Admission(False, next_slot, "pacing")
        return Admission(True)

    def next_slot(self, now: float, next_slot: float) -> float:
        """The slot after a call started at ``now``: one interval later, never earlier."""
        return max(now, next_slot) + self.interval
