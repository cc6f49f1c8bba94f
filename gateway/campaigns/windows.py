"""Calling windows in the callee's local time, and when each contact may next be called.

Windows are written like a dial plan's hours (``"mon-fri 09:00-20:00"``, ``"sat 10:00-14:00"``,
see :mod:`gateway.dialplan.timing`) and read on the *callee's* wall clock, in the IANA zone of
the contact. A window therefore stays 09:00-20:00 on the wall across a daylight-saving change,
and a contact in Los Angeles is called three hours after one in New York.

Pure: every question takes the moment it is asked as an aware datetime. Two awkward wall
times are handled explicitly: a window that opens inside the skipped spring-forward hour opens
at the first instant after the gap (a wall time that never happens cannot be "now"), and one
that opens inside the repeated fall-back hour opens at its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.dialplan.timing import WEEK_MINUTES, WeekSet, Window, parse_days, week_minute

__all__ = ["CallingWindows"]

#: A gap (spring forward) is never longer than this; Lord Howe's is 30 min, most are 60.
_MAX_GAP_MINUTES = 180


@dataclass(frozen=True, slots=True)
class CallingWindows:
    """When calls may ring: weekly local windows, between ``first_day`` and ``last_day``.

    ``first_day``/``last_day`` are inclusive local dates of the callee (a campaign's start and
    stop dates); None leaves that side open.
    """

    weeks: WeekSet
    first_day: date | None = None
    last_day: date | None = None

    @classmethod
    def parse(
        cls, windows: Iterable[str], first_day: date | None = None, last_day: date | None = None
    ) -> CallingWindows:
        """Build from window texts; ValueError names the first one that does not parse."""
        every_day = parse_days("daily")
        spans = [span for text in windows for span in Window.parse(text).intervals(every_day)]
        return cls(WeekSet.of(spans), first_day, last_day)

    def is_open(self, at: datetime, zone: ZoneInfo) -> bool:
        """Whether a call may ring at ``at`` for a callee in ``zone``."""
        local = at.astimezone(zone)
        if self.first_day is not None and local.date() < self.first_day:
            return False
        if self.last_day is not None and local.date() > self.last_day:
            return False
        return week_minute(local) in self.weeks

    def next_open(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        """The earliest instant at or after ``at`` when a call may ring, in UTC.

        None when there is none: no windows at all, or ``at`` is past ``last_day``.
        """
        if at.tzinfo is None:
            raise ValueError("next_open needs an aware datetime")
        if not self.weeks:
            return None
        local = at.astimezone(zone)
        # Each pass either answers or moves to a later window start; a week has finitely many.
        for _ in range(len(self.weeks.spans) * 2 + 16):
            day = local.date()
            if self.first_day is not None and day < self.first_day:
                local = _localize(datetime.combine(self.first_day, time()), zone, local)
                continue
            if self.last_day is not None and day > self.last_day:
                return None
            minute = week_minute(local)
            if minute in self.weeks:
                return local.astimezone(UTC)
            starts = [begin for begin, _ in self.weeks.spans]
            following = next((s for s in starts if s > minute), starts[0] + WEEK_MINUTES)
            wall = local.replace(tzinfo=None, second=0, microsecond=0)
            local = _localize(wall + timedelta(minutes=following - minute), zone, local)
        raise AssertionError("next_open did not settle")  # pragma: no cover - loop is bounded


def _localize(wall: datetime, zone: ZoneInfo, after: datetime) -> datetime:
    """The first instant not before ``after`` whose wall clock in ``zone`` reads ``wall`` or,
    in a gap, just after it.

    In a repeated (fall-back) hour a wall time happens twice: the first reading (``fold=0``)
    unless that is already past, then the second. In a gap the wall time does not exist;
    stepping forward a minute at a time finds the first one that does (the end of the gap).
    """
    for step in range(_MAX_GAP_MINUTES + 1):
        naive = wall + timedelta(minutes=step)
        for fold in (0, 1):
            candidate = naive.replace(tzinfo=zone, fold=fold)
            exists = candidate.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive
            if exists and candidate.astimezone(UTC) >= after.astimezone(UTC):
                return candidate
    raise ValueError(f"{wall} in {zone} sits in a gap longer than {_MAX_GAP_MINUTES} minutes")
