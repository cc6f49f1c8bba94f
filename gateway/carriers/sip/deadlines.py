"""A set of named deadlines: the one timer structure the sans-I/O SIP classes share.

Setting a key again moves its deadline; cancelling forgets it. Lookups are O(log n) with a
heap whose stale entries are skipped lazily, so thousands of transactions cost no scan.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Deadlines by key ``K`` (a transaction and its timer, a call and its timer...)."""

    def __init__(self) -> None:
        self._when: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._counter = itertools.count()

    def set(self, key: K, when: float) -> None:
        self._when[key] = when
        heapq.heappush(self._heap, (when, next(self._counter), key))

    def cancel(self, key: K) -> None:
        self._when.pop(key, None)

    def get(self, key: K) -> float | None:
        return self._when.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._when

    def next(self) -> float | None:
        """The earliest deadline set, or None."""
        heap = self._heap
        while heap:
            when, _, key = heap[0]
            if self._when.get(key) == when:
                return when
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> list[K]:
        """Keys whose deadline is at or before ``now``, earliest first; they are forgotten."""
        due: list[K] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            if self._when.get(key) == when:
                del self._when[key]
                due.append(key)
        return due
