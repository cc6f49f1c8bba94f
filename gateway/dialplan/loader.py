"""Load dial-plan files into a checked, immutable :class:`DialPlan`, or say precisely why not.

Stages, each collecting every problem it finds before the next one runs:

1. read each file and its ``include:`` list, depth first (a missing file, an include cycle and
   a YAML syntax error are problems of the file that names them);
2. substitute ``${NAME}`` from the environment in string values (an unset name is an error;
   ``$${`` writes a literal ``${``) and refuse secrets written in the file: keys such as
   ``sip_password`` or ``api_key`` must take their value from the environment;
3. validate each file against :mod:`gateway.dialplan.schema`, mapping pydantic's error
   locations back to YAML lines and columns;
4. merge the files and check the plan as a whole: unknown engines, caller lists and holiday
   calendars; time conditions without a time zone; overlapping time windows; branches, routes
   and number patterns that can never be reached; ``reject`` after the call was answered.

Merging: a file's includes are read before it, and in order. Settings (``timezone``,
``default_route``, ``defaults``) in a file win over its includes, later includes over earlier
ones. Named things (routes, holiday calendars, caller lists) must be defined once only.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import types
import typing
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from engine.files import FileRefused, read_regular_file
from gateway.dialplan._yaml import Loc, Positions, parse
from gateway.dialplan.numbers import NumberPattern
from gateway.dialplan.plan import CompiledBranch, CompiledRoute, DialPlan, NumberRule
from gateway.dialplan.problems import DialPlanInvalid, Problem
from gateway.dialplan.schema import (
    ACTION_MODELS,
    DIRECTIONS,
    FIELD_MARK,
    NESTED_ACTIONS,
    AnyAction,
    BotAction,
    BotDefaults,
    PlanFile,
    RejectAction,
    Route,
)
from gateway.dialplan.timing import EVERY_MINUTE, WeekSet, describe_span

__all__ = ["MAX_FILE_BYTES", "PlanFileUnreadable", "check", "load", "read_plan_file"]

#: Keys whose values are secrets: they must come from the environment, never the file.
SECRET_KEY = re.compile(r"(?i)(pass(word)?|secret|token|api[_-]?key|credential)s?$")
_ENV = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Most files one plan may consist of, includes included.
MAX_FILES = 64
#: Largest plan file read. A hand-written plan is a few kilobytes; YAML parses at a few seconds
#: a megabyte here, and a reload must not take minutes or gigabytes.
MAX_FILE_BYTES = 1024 * 1024


#: A plan file cannot be used: missing, not a regular file, too large, or unreadable. The rule is
#: shared with the embedded engine's flow files (see engine.files).
PlanFileUnreadable = FileRefused


def read_plan_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a plan file: a regular file of at most ``max_bytes`` (see engine.files)."""
    return read_regular_file(path, max_bytes)


def load(
    path: str | Path,
    engines: Collection[str],
    *,
    env: Mapping[str, str] | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> DialPlan:
    """Load the plan at ``path`` and its includes; raise :class:`DialPlanInvalid` if broken.

    ``engines`` are the engine names a ``bot`` may use (the gateway passes
    ``engine.registry.ENGINE_NAMES``). ``env`` replaces ``os.environ`` for ``${NAME}``
    substitution. Each file must be a regular file of at most ``max_bytes``.
    """
    loader = _Loader(Path(path), frozenset(engines), os.environ if env is None else env)
    loader.max_bytes = max_bytes
    return loader.run()


def check(
    path: str | Path,
    engines: Collection[str],
    *,
    env: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every problem of the plan at ``path``; an empty list when it loads."""
    try:
        load(path, engines, env=env)
    except DialPlanInvalid as exc:
        return exc.problems
    return []


@dataclass(slots=True)
class _Source:
    """One file of the plan as read: its data, positions and validated model."""

    path: Path
    positions: Positions
    model: PlanFile | None = None
    content: bytes = b""

    def at(self, loc: Loc, message: str, *, key: bool = False) -> Problem:
        line, column = self.positions.locate(loc, key=key)
        return Problem(self.path, line, column, message)


@dataclass(slots=True)
class _Loader:
    root: Path
    engines: frozenset[str]
    env: Mapping[str, str]
    problems: list[Problem] = field(default_factory=list)
    sources: list[_Source] = field(default_factory=list)
    tried: list[Path] = field(default_factory=list)
    env_used: dict[str, str] = field(default_factory=dict)
    max_bytes: int = MAX_FILE_BYTES

    # -- stage 1-3: files ------------------------------------------------------------------

    def run(self) -> DialPlan:
        self.read(self.root.absolute(), stack=(), named_by=None)
        self.raise_if_any()
        plan = self.merge_and_check()
        self.raise_if_any()
        assert plan is not None
        return plan

    def raise_if_any(self) -> None:
        if self.problems:
            raise DialPlanInvalid(self.problems, self.tried)

    def read(self, path: Path, stack: tuple[Path, ...], named_by: Problem | None) -> None:
        path = Path(os.path.normpath(path))
        if path in stack:
            chain = " -> ".join(p.name for p in (*stack[stack.index(path) :], path))
            assert named_by is not None
            self.problems.append(_moved(named_by, f"include cycle: {chain}"))
            return
        if path in self.tried:
            return  # included twice (a diamond): its content counts once
        self.tried.append(path)
        if len(self.tried) > MAX_FILES:
            self.problems.append(_moved(named_by, f"more than {MAX_FILES} files included"))
            return
        try:
            content = read_plan_file(path, self.max_bytes)
        except PlanFileUnreadable as exc:
            reason = str(exc)
            if named_by is None:
                self.problems.append(Problem(path, 1, 1, f"cannot read dial plan: {reason}"))
            else:
                self.problems.append(_moved(named_by, f"include file {reason}: {path}"))
            return
        try:
            data, positions = parse(content.decode("utf-8"), path)
        except UnicodeDecodeError as exc:
            self.problems.append(Problem(path, 1, 1, f"not UTF-8 text: {exc.reason}"))
            return
        except DialPlanInvalid as exc:
            self.problems.extend(exc.problems)
            return
        source = _Source(path, positions, content=content)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problems.append(
                source.at((), "a dial-plan file is a mapping (version, include, routes, ...)")
            )
            return
        data = self.substitute(data, (), source)
        includes = data.get("include")
        if isinstance(includes, list):
            for i, name in enumerate(includes):
                if isinstance(name, str) and name:
                    here = source.at(("include", i), "")
                    self.read(path.parent / name, (*stack, path), here)
        try:
            source.model = PlanFile.model_validate(data, context={"base_dir": path.parent})
        except ValidationError as exc:
            self.problems.extend(_validation_problems(exc, source))
        self.sources.append(source)

    def substitute(self, value: Any, loc: Loc, source: _Source) -> Any:
        """Replace ``${NAME}`` in every string; refuse secrets that are not substituted."""
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if (
                    isinstance(key, str)
                    and SECRET_KEY.search(key)
                    and item is not None
                    and not (isinstance(item, str) and "${" in item)
                ):
                    self.problems.append(
                        source.at(
                            (*loc, key),
                            f"{key} is a secret: write it as ${{ENV_NAME}} and set the "
                            "variable in the gateway's environment, never in the file",
                        )
                    )
                out[key] = self.substitute(item, (*loc, key), source)
            return out
        if isinstance(value, list):
            return [self.substitute(item, (*loc, i), source) for i, item in enumerate(value)]
        if isinstance(value, str) and "$" in value:
            return _ENV.sub(lambda m: self.env_value(m, loc, source), value)
        return value

    def env_value(self, match: re.Match[str], loc: Loc, source: _Source) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1)
        if not _ENV_NAME.fullmatch(name):
            self.problems.append(source.at(loc, f"${{{name}}} is not an environment variable"))
            return ""
        if name not in self.env:
            self.problems.append(source.at(loc, f"environment variable {name} is not set"))
            return ""
        self.env_used[name] = self.env[name]
        return self.env[name]

    # -- stage 4: the plan as a whole ------------------------------------------------------

    def merge_and_check(self) -> DialPlan | None:
        main = self.sources[-1]  # post-order: the root file is read last
        timezone: str | None = None
        default_route: str | None = None
        bot_defaults: dict[str, Any] = {}
        routes: dict[str, tuple[Route, _Source]] = {}
        holidays: dict[str, tuple[Any, _Source]] = {}
        caller_lists: dict[str, tuple[Any, _Source]] = {}
        for source in self.sources:
            model = source.model
            assert model is not None
            timezone = model.timezone or timezone
            default_route = model.default_route or default_route
            if model.defaults is not None:
                bot_defaults.update(model.defaults.bot.model_dump(exclude_none=True))
            for kind, table, new in (
                ("route", routes, model.routes),
                ("holiday calendar", holidays, model.holidays),
                ("caller list", caller_lists, model.caller_lists),
            ):
                section = {"route": "routes", "holiday calendar": "holidays"}.get(
                    kind, "caller_lists"
                )
                for name, item in new.items():
                    if name in table:
                        first = table[name][1]
                        line, _ = first.positions.locate((section, name), key=True)
                        self.problems.append(
                            source.at(
                                (section, name),
                                f"{kind} {name!r} is already defined at {first.path}:{line}",
                                key=True,
                            )
                        )
                    else:
                        table[name] = (item, source)  # type: ignore[assignment]

        if not routes:
            self.problems.append(main.at((), "the plan has no routes"))
            return None
        if default_route is None:
            self.problems.append(
                main.at((), "the plan needs default_route: the route for numbers no route lists")
            )
        elif default_route not in routes:
            where = next(s for s in reversed(self.sources) if s.model and s.model.default_route)
            self.problems.append(
                where.at(("default_route",), _unknown("route", default_route, routes))
            )

        defaults = BotDefaults(**bot_defaults)
        calendars = {name: _calendar(ranges, name) for name, (ranges, _) in holidays.items()}
        lists = {name: tuple(items) for name, (items, _) in caller_lists.items()}
        compiled: dict[str, CompiledRoute] = {}
        for name, (route, source) in routes.items():
            compiled[name] = self.compile_route(
                name, route, source, timezone, defaults, calendars, lists
            )
            # The browser phone chooses routes by name: a route with a branch for the
            # ``browser`` direction is used even without numbers.
            for_browser = any("browser" in (b.when.direction or ()) for b in route.branches)
            if not route.numbers and name != default_route and not for_browser:
                self.problems.append(
                    source.at(
                        ("routes", name),
                        f"route {name!r} is never used: it has no numbers, is not the "
                        "default_route and has no branch for direction browser",
                        key=True,
                    )
                )
        exact, patterns = self.number_table(routes)
        if self.problems or default_route is None:
            return None
        files = [s.path for s in self.sources] + sorted(
            {
                action.flow
                for route in compiled.values()
                for action in _all_actions(route)
                if isinstance(action, BotAction) and action.flow is not None
            }
        )
        return DialPlan(
            path=self.root,
            digest=self.digest(files),
            files=tuple(files),
            default_route=default_route,
            routes=MappingProxyType(compiled),
            exact=MappingProxyType(exact),
            patterns=tuple(patterns),
        )

    def digest(self, files: list[Path]) -> str:
        """A short name for this exact plan: every file's bytes and the environment used."""
        h = hashlib.sha256()
        for path in files:
            content = next((s.content for s in self.sources if s.path == path), None)
            if content is None:
                try:
                    content = read_plan_file(path, self.max_bytes)
                except PlanFileUnreadable:
                    content = b""
            h.update(str(path).encode() + b"\0" + hashlib.sha256(content).digest())
        for name in sorted(self.env_used):
            h.update(f"{name}={self.env_used[name]}\0".encode())
        return h.hexdigest()[:12]

    def compile_route(
        self,
        name: str,
        route: Route,
        source: _Source,
        plan_timezone: str | None,
        defaults: BotDefaults,
        calendars: Mapping[str, Mapping[date, str]],
        lists: Mapping[str, tuple[NumberPattern, ...]],
    ) -> CompiledRoute:
        base: Loc = ("routes", name)
        tz = route.timezone or plan_timezone
        if tz is None and any(b.when.has_time for b in route.branches):
            self.problems.append(
                source.at(
                    base,
                    f"route {name!r} has time conditions but no time zone: set timezone on the "
                    "route or at the top of the plan",
                    key=True,
                )
            )
        branches: list[CompiledBranch] = []
        for i, spec in enumerate(route.branches):
            loc = (*base, "branches", i)
            action = self.finish(spec.do, (*loc, "do"), source, defaults, top=True)
            branch = spec.model_copy(update={"do": action})
            branches.append(self.compile_branch(i + 1, branch, loc, source, calendars, lists))
        otherwise = None
        if route.otherwise is not None:
            otherwise = self.finish(
                route.otherwise, (*base, "otherwise"), source, defaults, top=True
            )
        self.check_branches(name, branches, otherwise, base, source)
        zone_name = tz or "UTC"
        return CompiledRoute(
            name=name,
            spec=route,
            timezone=zone_name,
            zone=ZoneInfo(zone_name),
            branches=tuple(branches),
            otherwise=otherwise,
            source=source.path,
        )

    def finish(
        self, action: AnyAction, loc: Loc, source: _Source, defaults: BotDefaults, *, top: bool
    ) -> AnyAction:
        """Apply bot defaults, check engines and ``reject`` placement, recursively."""
        update: dict[str, Any] = {}
        if isinstance(action, BotAction):
            for key, value in defaults.model_dump(exclude_none=True).items():
                if getattr(action, key) is None:
                    update[key] = value
            engine = update.get("engine", action.engine)
            if engine is None:
                self.problems.append(
                    source.at(
                        loc, "bot has no engine: set engine here or defaults.bot.engine", key=True
                    )
                )
            elif engine not in self.engines:
                at = (*loc, "engine") if action.engine is not None else loc
                self.problems.append(source.at(at, _unknown("engine", engine, self.engines)))
        if isinstance(action, RejectAction) and not top:
            self.problems.append(
                source.at(
                    loc,
                    "reject only works as the first thing a call meets; here the call is "
                    "already answered (use hangup)",
                    key=True,
                )
            )
        for key in NESTED_ACTIONS:
            nested = getattr(action, key, None)
            if nested is not None:
                update[key] = self.finish(nested, (*loc, key), source, defaults, top=False)
        return action.model_copy(update=update) if update else action

    def compile_branch(
        self,
        index: int,
        spec: Any,
        loc: Loc,
        source: _Source,
        calendars: Mapping[str, Mapping[date, str]],
        lists: Mapping[str, tuple[NumberPattern, ...]],
    ) -> CompiledBranch:
        when = spec.when
        callers: tuple[NumberPattern, ...] | None = None
        if when.callers is not None or when.caller_lists is not None:
            items = list(when.callers or ())
            for j, list_name in enumerate(when.caller_lists or ()):
                if list_name in lists:
                    items.extend(lists[list_name])
                else:
                    self.problems.append(
                        source.at(
                            (*loc, "when", "caller_lists", j),
                            _unknown("caller list", list_name, lists),
                        )
                    )
            callers = tuple(items)

        times: WeekSet | None = None
        if when.hours is not None:
            days = when.days if when.days is not None else range(7)
            spans: list[tuple[int, int]] = []
            for j, window in enumerate(when.hours):
                mine = WeekSet.of(window.intervals(days))
                clash = WeekSet.of(spans) & mine
                if clash:
                    other = next(
                        w.text for w in when.hours[:j] if WeekSet.of(w.intervals(days)) & mine
                    )
                    self.problems.append(
                        source.at(
                            (*loc, "when", "hours", j),
                            f"time window {window.text!r} overlaps {other!r} "
                            f"({describe_span(*clash.spans[0])})",
                        )
                    )
                spans.extend(mine.spans)
            times = WeekSet.of(spans)
        elif when.days is not None:
            times = WeekSet.whole_days(when.days)

        dates: set[date] | None = None
        names: dict[date, str] = {}
        if when.dates is not None or when.holidays is not None:
            dates = set()
            for r in when.dates or ():
                for day in r.days():
                    dates.add(day)
                    names.setdefault(day, r.name or "a listed date")
            for j, calendar in enumerate(when.holidays or ()):
                if calendar not in calendars:
                    self.problems.append(
                        source.at(
                            (*loc, "when", "holidays", j),
                            _unknown("holiday calendar", calendar, calendars),
                        )
                    )
                    continue
                for day, label in calendars[calendar].items():
                    dates.add(day)
                    names.setdefault(day, label)
        return CompiledBranch(
            index=index,
            label=spec.name or f"#{index}",
            spec=spec,
            callers=callers,
            times=times,
            dates=frozenset(dates) if dates is not None else None,
            date_names=MappingProxyType(names),
        )

    def check_branches(
        self,
        name: str,
        branches: list[CompiledBranch],
        otherwise: AnyAction | None,
        base: Loc,
        source: _Source,
    ) -> None:
        catch_all: CompiledBranch | None = None
        for j, later in enumerate(branches):
            loc = (*base, "branches", j)
            if catch_all is not None:
                self.problems.append(
                    source.at(
                        loc,
                        f"branch {later.label} can never match: branch {catch_all.label} before "
                        "it matches every call",
                    )
                )
                continue
            for earlier in branches[:j]:
                if _covers(earlier, later):
                    self.problems.append(
                        source.at(
                            loc,
                            f"branch {later.label} can never match: branch {earlier.label} "
                            "before it matches every call it would",
                        )
                    )
                    break
                if _same_but_time(earlier, later):
                    clash = (earlier.times or EVERY_MINUTE) & (later.times or EVERY_MINUTE)
                    if clash:
                        at = "hours" if later.when.hours is not None else "days"
                        self.problems.append(
                            source.at(
                                (*loc, "when", at),
                                f"time windows overlap branch {earlier.label}'s "
                                f"({describe_span(*clash.spans[0])}); the earlier branch would "
                                "win there: make the windows meet, not overlap",
                            )
                        )
                        break
            if later.matches_everything:
                catch_all = later
        if catch_all is not None and otherwise is not None:
            self.problems.append(
                source.at(
                    (*base, "otherwise"),
                    f"otherwise is never used: branch {catch_all.label} matches every call",
                    key=True,
                )
            )
        if catch_all is None and otherwise is None:
            self.problems.append(
                source.at(
                    base,
                    f"route {name!r} has no otherwise: a call that matches no branch would "
                    "have nowhere to go",
                    key=True,
                )
            )

    def number_table(
        self, routes: Mapping[str, tuple[Route, _Source]]
    ) -> tuple[dict[str, str], list[NumberRule]]:
        exact: dict[str, str] = {}
        where: dict[str, tuple[str, _Source, int]] = {}
        patterns: list[tuple[NumberRule, _Source, Loc]] = []
        for name, (route, source) in routes.items():
            for i, pattern in enumerate(route.numbers):
                loc: Loc = ("routes", name, "numbers", i)
                if pattern.text in where:
                    other, other_source, other_i = where[pattern.text]
                    line, _ = other_source.positions.locate(("routes", other, "numbers", other_i))
                    kind = "number" if pattern.is_exact else "pattern"
                    self.problems.append(
                        source.at(
                            loc,
                            f"{kind} {pattern} is never used: route {other!r} already lists it "
                            f"({other_source.path}:{line})",
                        )
                    )
                    continue
                where[pattern.text] = (name, source, i)
                if pattern.is_exact:
                    exact[pattern.text] = name
                else:
                    patterns.append((NumberRule(pattern, name), source, loc))
        for k, (rule, source, loc) in enumerate(patterns):
            q = rule.pattern
            shadow = next(
                (
                    other
                    for other, _, _ in patterns
                    if other.route != rule.route
                    and other.pattern.precedence > q.precedence
                    and other.pattern.covers(q)
                ),
                None,
            )
            if shadow is not None:
                self.problems.append(
                    source.at(
                        loc,
                        f"pattern {q} is never used: every number it matches goes to route "
                        f"{shadow.route!r} by the more specific {shadow.pattern}",
                    )
                )
                continue
            tie = next(
                (
                    other
                    for other, _, _ in patterns[:k]
                    if other.route != rule.route
                    and other.pattern.precedence == q.precedence
                    and other.pattern.overlaps(q)
                ),
                None,
            )
            if tie is not None:
                self.problems.append(
                    source.at(
                        loc,
                        f"patterns {q} and {tie.pattern} (route {tie.route!r}) match some of "
                        "the same numbers and neither is more specific: make one of them longer",
                    )
                )
        ordered = sorted(
            (rule for rule, _, _ in patterns), key=lambda r: r.pattern.precedence, reverse=True
        )
        return exact, ordered


# -- helpers -------------------------------------------------------------------------------


def _moved(problem: Problem | None, message: str) -> Problem:
    assert problem is not None
    return Problem(problem.file, problem.line, problem.column, message)


def _unknown(kind: str, name: str, known: Collection[str]) -> str:
    hint = difflib.get_close_matches(name, sorted(known), n=1)
    if hint:
        return f"unknown {kind} {name!r}; did you mean {hint[0]!r}?"
    listing = ", ".join(sorted(known)) or "none defined"
    return f"unknown {kind} {name!r} (known: {listing})"


def _calendar(ranges: Any, name: str) -> Mapping[date, str]:
    days: dict[date, str] = {}
    for r in ranges:
        for day in r.days():
            days.setdefault(day, f"{name}: {r.name}" if r.name else name)
    return days


def _all_actions(route: CompiledRoute) -> Iterator[AnyAction]:
    stack: list[Any] = [b.action for b in route.branches]
    if route.otherwise is not None:
        stack.append(route.otherwise)
    while stack:
        action = stack.pop()
        yield action
        stack.extend(getattr(action, key) for key in NESTED_ACTIONS if getattr(action, key, None))


def _caller_covers(a: CompiledBranch, b: CompiledBranch) -> bool:
    if a.callers is None and a.when.anonymous is None:
        return True
    if a.when.anonymous is True:
        return b.when.anonymous is True
    b_named_only = b.when.anonymous is False or b.callers is not None
    if not b_named_only:
        return False
    if a.callers is None:
        return True
    if b.callers is None:
        return False
    return all(any(p.covers(q) for p in a.callers) for q in b.callers)


def _covers(a: CompiledBranch, b: CompiledBranch) -> bool:
    """True when every call ``b`` matches is matched by ``a`` as well (conservatively)."""
    if not _caller_covers(a, b):
        return False
    a_dir, b_dir = a.when.direction, b.when.direction
    if a_dir is not None and set(a_dir) != set(DIRECTIONS):
        if b_dir is None or not set(b_dir) <= set(a_dir):
            return False
    if a.times is not None and not a.times.covers(b.times or EVERY_MINUTE):
        return False
    return a.dates is None or (b.dates is not None and b.dates <= a.dates)


def _same_but_time(a: CompiledBranch, b: CompiledBranch) -> bool:
    """True when two branches differ (at most) in days and hours."""
    if a.times is None or b.times is None:
        return False
    fields = {"callers", "caller_lists", "anonymous", "direction", "dates", "holidays"}
    return a.when.model_dump(include=fields) == b.when.model_dump(include=fields)


# -- pydantic errors -> positions ----------------------------------------------------------


def _validation_problems(exc: ValidationError, source: _Source) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        ctx = error.get("ctx") or {}
        field_name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(loc[:-1])
            hint = difflib.get_close_matches(key, allowed, n=1)
            if hint:
                message = f"unknown key {key!r}; did you mean {hint[0]!r}?"
            elif allowed:
                message = f"unknown key {key!r} (allowed here: {', '.join(allowed)})"
            else:
                message = f"unknown key {key!r}"
            problems.append(source.at(loc, message, key=True))
            continue
        if kind == "missing":
            problems.append(source.at(loc, f"missing {loc[-1]!r}"))
            continue
        if kind == "union_tag_invalid":
            tag = str(ctx.get("tag"))
            message = _unknown("action", tag, ACTION_MODELS)
            problems.append(source.at((*loc, "action"), message))
            continue
        if kind == "union_tag_not_found":
            kinds = ", ".join(ACTION_MODELS)
            problems.append(source.at(loc, f"an action needs 'action: <kind>' ({kinds})"))
            continue
        if kind in ("value_error", "assertion_error"):
            message = str(error["msg"]).removeprefix("Value error, ")
            field, sep, rest = message.partition(FIELD_MARK)
            if sep and field.isidentifier():  # a model check naming the field at fault
                loc, message = (*loc, field), rest
        elif kind == "literal_error" and isinstance(error.get("input"), str):
            expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
            message = f"{field_name}: {error['msg']}"
            hint = difflib.get_close_matches(error["input"], expected, n=1)
            if hint:
                message = f"{field_name}: {error['input']!r}; did you mean {hint[0]!r}?"
        else:
            message = f"{field_name}: {error['msg']}"
        problems.append(source.at(loc, message))
    return problems


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys the schema allows at ``loc`` (a path into a PlanFile), for suggestions."""
    current: Any = PlanFile
    for part in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if origin in (typing.Union, types.UnionType):
            current = ACTION_MODELS.get(str(part))  # the tag pydantic puts in the loc
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            current = info.annotation if info is not None else None
        elif origin is dict:
            current = typing.get_args(current)[1]
        elif origin in (tuple, list):
            current = typing.get_args(current)[0]
        else:
            return []
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []
