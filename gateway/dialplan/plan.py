"""The plan in force: an immutable, pre-compiled form of the merged dial-plan files.

Built only by the loader, after every check has passed. Routing works on these objects, never
on raw YAML: time windows are already week-minute sets, holiday calendars already date sets,
caller lists already patterns, and numbers already sorted by precedence, so routing a call is a
handful of set lookups. Nothing here changes after construction, so a call keeps routing
against the plan it started with however many reloads happen meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.dialplan.numbers import NumberPattern
from gateway.dialplan.schema import DIRECTIONS, AnyAction, Branch, Route, When
from gateway.dialplan.timing import WeekSet


@dataclass(frozen=True, slots=True)
class CompiledBranch:
    """A branch with its conditions reduced to sets. ``None`` means "no condition"."""

    index: int  # 1-based position in the route
    label: str  # the branch's name, or "#<index>"
    spec: Branch
    callers: tuple[NumberPattern, ...] | None  # callers + caller_lists, expanded
    times: WeekSet | None  # days and hours as local week minutes
    dates: frozenset[date] | None  # dates + holidays, expanded
    date_names: Mapping[date, str] = field(default_factory=dict)

    @property
    def when(self) -> When:
        return self.spec.when

    @property
    def action(self) -> AnyAction:
        return self.spec.do

    @property
    def matches_everything(self) -> bool:
        when = self.when
        return (
            self.callers is None
            and when.anonymous is None
            and (when.direction is None or set(when.direction) == set(DIRECTIONS))
            and (self.times is None or self.times.is_whole_week)
            and self.dates is None
        )


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    name: str
    spec: Route
    timezone: str
    zone: ZoneInfo
    branches: tuple[CompiledBranch, ...]
    otherwise: AnyAction | None
    source: Path

    def branch(self, key: str) -> CompiledBranch | None:
        """The branch called ``key`` (a label, or its 1-based index as text)."""
        for branch in self.branches:
            if key in (branch.label, str(branch.index)):
                return branch
        return None


@dataclass(frozen=True, slots=True)
class NumberRule:
    """One entry of the number table: calls to numbers ``pattern`` matches go to ``route``."""

    pattern: NumberPattern
    route: str


@dataclass(frozen=True, slots=True)
class DialPlan:
    """A loaded, checked plan. ``digest`` names this exact content (files and environment).

    ``numbers`` holds the patterns in precedence order (see :mod:`gateway.dialplan.numbers`);
    exact numbers are in ``exact`` for a direct lookup.
    """

    path: Path
    digest: str
    files: tuple[Path, ...]
    default_route: str
    routes: Mapping[str, CompiledRoute]
    exact: Mapping[str, str]
    patterns: tuple[NumberRule, ...]

    def summary(self) -> str:
        numbers = len(self.exact)
        return (
            f"{len(self.routes)} route{'s' * (len(self.routes) != 1)}, "
            f"{numbers} number{'s' * (numbers != 1)}, "
            f"{len(self.patterns)} pattern{'s' * (len(self.patterns) != 1)}, "
            f"{len(self.files)} file{'s' * (len(self.files) != 1)}, plan {self.digest}"
        )
