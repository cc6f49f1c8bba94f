"""Days, time-of-day windows and dates, reduced to sets a router can test in O(log n).

Every weekly condition becomes a set of half-open intervals of *minutes of the local week*
(Monday 00:00 is minute 0, Sunday 23:59 is minute 10079). Local means the wall clock of the
route's IANA time zone, computed from the call's aware timestamp with ``zoneinfo``, so a
09:00-17:00 window is 09:00-17:00 on the wall on both sides of a daylight-saving change, and a
wall time that does not exist (the skipped spring-forward hour) can never be "now".

Windows are written ``"[DAYS ]HH:MM-HH:MM"``: ``"09:00-17:00"``, ``"mon-fri 09:00-17:00"``,
``"sat,sun 10:00-14:00"``. The end is exclusive and may be ``24:00``; an end at or before the
start runs past midnight into the next day (``"fri 22:00-02:00"`` is Friday night into
Saturday morning, belonging to Friday).
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_GROUPS = {
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "daily": frozenset(range(7)),
    "everyday": frozenset(range(7)),
}
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES
#: Longest date range accepted: a typo such as 2062 for 2026 should fail loudly.
MAX_RANGE_DAYS = 3660

_WINDOW = re.compile(
    r"(?:(?P<days>[A-Za-z,\-]+)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
)


def _day(word: str) -> int:
    word = word.strip().lower()
    if word in DAY_NAMES:
        return DAY_NAMES.index(word)
    if word in _FULL_NAMES:
        return _FULL_NAMES.index(word)
    known = [*DAY_NAMES, *_FULL_NAMES, *_GROUPS]
    hint = difflib.get_close_matches(word, known, n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else " (use mon, tue, ... sun)"
    raise ValueError(f"unknown day {word!r}{suggestion}")


def parse_days(text: str) -> frozenset[int]:
    """``"mon-fri"``, ``"mon,wed,fri"``, ``"sat"``, ``"weekdays"`` -> weekday numbers (Mon=0).

    A range may wrap the week end: ``"fri-mon"`` is Friday to Monday.
    """
    result: set[int] = set()
    for part in text.split(","):
        part = part.strip().lower()
        if part in _GROUPS:
            result |= _GROUPS[part]
        elif "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first), _day(last)
            result.update((a + i) % 7 for i in range((b - a) % 7 + 1))
        else:
            result.add(_day(part))
    return frozenset(result)


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and m):
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return h * 60 + m


@dataclass(frozen=True, slots=True)
class Window:
    """A daily time window, optionally on its own days (else on the branch's days)."""

    text: str
    days: frozenset[int] | None
    start: int
    end: int

    @classmethod
    def parse(cls, value: Any) -> Window:
        if isinstance(value, Window):
            return value
        if not isinstance(value, str):
            raise ValueError("a time window is a string such as 'mon-fri 09:00-17:00'")
        match = _WINDOW.fullmatch(value.strip())
        if not match:
            raise ValueError(
                f"{value!r} is not a time window: write 'HH:MM-HH:MM', optionally after days "
                "('mon-fri 09:00-17:00')"
            )
        days = parse_days(match["days"]) if match["days"] else None
        start, end = _minutes(match["start"]), _minutes(match["end"])
        if start == end or (start == DAY_MINUTES):
            raise ValueError(f"{value!r} is empty: its start and end are the same time")
        return cls(value.strip(), days, start, end)

    def intervals(self, days: Iterable[int]) -> list[tuple[int, int]]:
        """Week-minute intervals of this window on ``days`` (its own days when it has any)."""
        length = (self.end - self.start) % DAY_MINUTES or DAY_MINUTES
        out: list[tuple[int, int]] = []
        for day in sorted(self.days if self.days is not None else days):
            begin = day * DAY_MINUTES + self.start
            out.extend(_wrap(begin, begin + length))
        return out


def _wrap(begin: int, end: int) -> list[tuple[int, int]]:
    if end <= WEEK_MINUTES:
        return [(begin, end)]
    return [(begin, WEEK_MINUTES), (0, end - WEEK_MINUTES)]


@dataclass(frozen=True, slots=True)
class WeekSet:
    """A union of disjoint, sorted, half-open week-minute intervals."""

    spans: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, spans: Iterable[tuple[int, int]]) -> WeekSet:
        merged: list[list[int]] = []
        for begin, end in sorted(spans):
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([begin, end])
        return cls(tuple((a, b) for a, b in merged))

    @classmethod
    def whole_days(cls, days: Iterable[int]) -> WeekSet:
        return cls.of((d * DAY_MINUTES, (d + 1) * DAY_MINUTES) for d in days)

    def __contains__(self, minute: object) -> bool:
        if not isinstance(minute, int):
            return False
        i = bisect.bisect_right(self.spans, (minute, WEEK_MINUTES + 1)) - 1
        return i >= 0 and self.spans[i][0] <= minute < self.spans[i][1]

    def __and__(self, other: WeekSet) -> WeekSet:
        out = []
        for a, b in self.spans:
            for c, d in other.spans:
                lo, hi = max(a, c), min(b, d)
                if lo < hi:
                    out.append((lo, hi))
        return WeekSet.of(out)

    def __bool__(self) -> bool:
        return bool(self.spans)

    def covers(self, other: WeekSet) -> bool:
        return (self & other) == other

    @property
    def is_whole_week(self) -> bool:
        return self.spans == ((0, WEEK_MINUTES),)


EVERY_MINUTE = WeekSet(((0, WEEK_MINUTES),))


def week_minute(local: datetime) -> int:
    """Minute of the local week for a wall-clock datetime (Monday 00:00 is 0)."""
    return local.weekday() * DAY_MINUTES + local.hour * 60 + local.minute


def describe_span(begin: int, end: int) -> str:
    """``(960, 1020)`` -> ``"Mon 16:00-17:00"``, for messages."""
    day = DAY_NAMES[begin // DAY_MINUTES].capitalize()
    b, e = begin % DAY_MINUTES, end - (begin // DAY_MINUTES) * DAY_MINUTES
    return f"{day} {b // 60:02d}:{b % 60:02d}-{e // 60:02d}:{e % 60:02d}"


@dataclass(frozen=True, slots=True)
class DateRange:
    """An inclusive range of local dates (one day when ``first == last``), maybe named."""

    first: date
    last: date
    name: str | None = None

    @classmethod
    def parse(cls, value: Any) -> DateRange:
        """A date, ``"2026-12-24..2026-12-26"``, or ``{date:, until:, name:}``."""
        if isinstance(value, DateRange):
            return value
        name = None
        if isinstance(value, dict):
            unknown = set(value) - {"date", "until", "name"}
            if unknown:
                raise ValueError(
                    f"unknown key {sorted(unknown)[0]!r} in a date: use date, until and name"
                )
            if "date" not in value:
                raise ValueError("a dated entry needs 'date' (YYYY-MM-DD)")
            name = value.get("name")
            if name is not None and not isinstance(name, str):
                raise ValueError("a date's name is text")
            first = _date(value["date"])
            last = _date(value["until"]) if value.get("until") is not None else first
        elif isinstance(value, str) and ".." in value:
            left, _, right = value.partition("..")
            first, last = _date(left.strip()), _date(right.strip())
        else:
            first = last = _date(value)
        if last < first:
            raise ValueError(f"date range ends ({last}) before it starts ({first})")
        if (last - first).days > MAX_RANGE_DAYS:
            raise ValueError(f"date range {first}..{last} spans more than 10 years")
        return cls(first, last, name)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def days(self) -> frozenset[date]:
        return frozenset(
            self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)
        )

    def __str__(self) -> str:
        span = str(self.first) if self.first == self.last else f"{self.first}..{self.last}"
        return f"{span} ({self.name})" if self.name else span


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"{value} has a time: a holiday or closure is a date (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or range (YYYY-MM-DD..YYYY-MM-DD)")
