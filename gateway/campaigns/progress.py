"""Progress of a campaign as one line a person can watch: counts and the dialling rate."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.campaigns.store import Stats

__all__ = ["Progress"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Counters at time ``t`` (seconds, any clock); ``rate_since`` compares two of them."""

    t: float
    state: str
    dialled: int
    answered: int
    machine: int
    failed: int
    busy: int
    no_answer: int
    in_flight: int
    remaining: int

    @classmethod
    def of(cls, stats: Stats, t: float) -> Progress:
        o = stats.outcomes
        return cls(
            t=t,
            state=stats.state,
            dialled=stats.dialled,
            answered=o.get("answered", 0),
            machine=o.get("machine", 0) + o.get("voicemail", 0),
            failed=o.get("failed", 0) + o.get("invalid", 0),
            busy=o.get("busy", 0),
            no_answer=o.get("no-answer", 0),
            in_flight=stats.in_flight,
            remaining=stats.remaining,
        )

    def rate_since(self, earlier: Progress) -> float:
        """Calls dialled per second between ``earlier`` and this snapshot."""
        span = self.t - earlier.t
        return (self.dialled - earlier.dialled) / span if span > 0 else 0.0

    def line(self, rate: float) -> str:
        return (
            f"{self.state:<8} dialled {self.dialled:>5}  answered {self.answered:>5}  "
            f"machine {self.machine:>4}  busy {self.busy:>4}  no-answer {self.no_answer:>4}  "
            f"failed {self.failed:>4}  in flight {self.in_flight:>3}  "
            f"remaining {self.remaining:>5}  rate {rate:5.2f}/s"
        )
