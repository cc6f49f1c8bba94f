"""``overtalk dialplan check FILE...`` and ``overtalk dialplan route FILE --to ... --from ...``.

:func:`register` adds the ``dialplan`` command to the top-level parser; each subcommand sets
``handler`` (and, for parsers that use that name, ``func``): it takes the parsed arguments and
returns the exit status. Without the top-level
CLI, ``python -m gateway.dialplan.cli check dialplans/*.yaml`` does the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import yaml

from gateway.dialplan.loader import load
from gateway.dialplan.problems import DialPlanInvalid
from gateway.dialplan.router import CallFacts, route, select_route
from gateway.dialplan.schema import DIRECTIONS

__all__ = ["main", "register", "run_check", "run_route"]


def _engine_names() -> frozenset[str]:
    # Imported here, not at module level: the dial plan itself never depends on the engines,
    # only this command-line adapter asks the registry which names exist.
    from engine.registry import ENGINE_NAMES

    return frozenset(ENGINE_NAMES)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dialplan check`` and ``dialplan route`` to a parser's subcommands."""
    parser = subparsers.add_parser(
        "dialplan", help="check dial-plan files and try routing a call through them"
    )
    commands = parser.add_subparsers(dest="dialplan_command", required=True)

    check = commands.add_parser(
        "check", help="report every error with file:line:column; exit 1 if there are any"
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.set_defaults(handler=run_check, func=run_check)

    try_route = commands.add_parser("route", help="show the route, action and reasons for one call")
    try_route.add_argument("file", type=Path, metavar="FILE")
    try_route.add_argument("--to", required=True, help="the number called (To)")
    try_route.add_argument(
        "--from", dest="from_", default="anonymous", help="the caller (From); default anonymous"
    )
    try_route.add_argument(
        "--at",
        type=datetime.fromisoformat,
        default=None,
        help="when, ISO 8601 (2026-12-24T18:30); without an offset it is read in the route's "
        "time zone; default now",
    )
    try_route.add_argument("--direction", default="inbound", choices=DIRECTIONS)
    try_route.set_defaults(handler=run_route, func=run_route)


def run_check(
    args: argparse.Namespace,
    *,
    engines: Collection[str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Check every file; print each problem as ``file:line:col: message``, or one summary."""
    out = out or sys.stdout
    names = _engine_names() if engines is None else frozenset(engines)
    failed = 0
    routes = numbers = 0
    for path in args.files:
        try:
            plan = load(path, names)
        except DialPlanInvalid as exc:
            failed += 1
            for problem in exc.problems:
                print(problem, file=out)
            continue
        routes += len(plan.routes)
        numbers += len(plan.exact) + len(plan.patterns)
    total = len(args.files)
    if failed:
        print(f"{failed} of {total} dial plan{'s' * (total != 1)} invalid", file=out)
        return 1
    print(
        f"{total} dial plan{'s' * (total != 1)} OK: {routes} routes, {numbers} numbers and "
        "patterns",
        file=out,
    )
    return 0


def run_route(
    args: argparse.Namespace,
    *,
    engines: Collection[str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Route one call through the plan and print the decision and its reasons."""
    out = out or sys.stdout
    try:
        plan = load(args.file, _engine_names() if engines is None else engines)
    except DialPlanInvalid as exc:
        print(exc, file=out)
        return 1
    at: datetime = args.at or datetime.now(UTC)
    facts = CallFacts(to=args.to, from_=args.from_, at=at, direction=args.direction)
    if at.tzinfo is None:
        # A wall-clock time means the route's wall clock (which route does not depend on time).
        chosen, _ = select_route(plan, facts.ours)
        facts = CallFacts(args.to, args.from_, at.replace(tzinfo=chosen.zone), args.direction)
    decision = route(plan, facts)
    print(f"route: {decision.route} (branch {decision.branch}, plan {decision.plan})", file=out)
    action = decision.action.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    print("action:", file=out)
    dumped = yaml.safe_dump(
        action, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000
    )
    for line in dumped.splitlines():
        print(f"  {line}", file=out)
    print("because:", file=out)
    for reason in decision.reasons:
        print(f"  - {reason}", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point, for use before the top-level CLI wires :func:`register`."""
    parser = argparse.ArgumentParser(prog="overtalk")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dialplan", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
