"""A fixed-bucket histogram cheap enough for the per-frame path (no lock, no allocation)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

#: Seconds: how late a 20 ms outbound pacing tick fired.
LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)


class Histogram:
    """Fixed buckets, cumulative on export; ``observe`` is a bisect and an increment."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def merge(self, other: Histogram) -> None:
        if other.bounds != self.bounds:
            raise ValueError("histograms with different buckets")
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.total += other.total

    @property
    def count(self) -> int:
        return sum(self.counts)

    def to_dict(self) -> dict[str, object]:
        return {"bounds": list(self.bounds), "counts": list(self.counts), "sum": self.total}

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((repr(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out
