"""``overtalk dialplan check`` and ``overtalk dialplan route``, through the module's handlers."""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.dialplan.cli import main, register, run_check, run_route

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "dialplans").glob("*.yaml"))


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="overtalk")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["dialplan", *argv])


def test_cli_check_passes_shipped_dialplans():
    assert {p.name for p in SHIPPED} >= {
        "default.yaml",
        "business-hours.yaml",
        "multi-number.yaml",
        "campaign-callback.yaml",
    }
    out = io.StringIO()
    args = parse("check", *map(str, SHIPPED))
    assert args.handler(args, out=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{len(SHIPPED)} dial plans OK")


def test_cli_check_passes_shipped_dialplans_with_registry_engines():
    # Without an explicit engine set the command asks engine.registry, as the gateway does.
    out = io.StringIO()
    assert run_check(parse("check", str(REPO / "dialplans" / "default.yaml")), out=out) == 0


def test_cli_check_fails_broken_file_with_position(plans):
    broken = plans.write(
        """
        default_route: main
        routes:
          main:
            numbers: ["555-0100"]
            otherwise: hangup
        """
    )
    good = REPO / "dialplans" / "default.yaml"
    out = io.StringIO()
    status = run_check(parse("check", str(good), str(broken)), engines={"local"}, out=out)
    assert status == 1
    first, summary = out.getvalue().splitlines()
    match = re.fullmatch(r"(.+):(\d+):(\d+): (.+)", first)
    assert match is not None
    assert (match[1], match[2], match[3]) == (str(broken), "4", "15")
    assert "not E.164" in match[4]
    assert summary == "1 of 2 dial plans invalid"


def test_cli_check_reports_yaml_syntax_error_line(plans):
    broken = plans.write("default_route: main\nroutes:\n  main: {otherwise: hangup\n")
    out = io.StringIO()
    assert run_check(parse("check", str(broken)), engines={"echo"}, out=out) == 1
    assert re.match(rf"{re.escape(str(broken))}:\d+:\d+: YAML syntax", out.getvalue())


def test_cli_route_prints_route_action_and_reasons():
    out = io.StringIO()
    args = parse(
        "route",
        str(REPO / "dialplans" / "business-hours.yaml"),
        "--to",
        "+12125550100",
        "--from",
        "+13475550123",
        "--at",
        "2026-12-24T18:30",
    )
    assert run_route(args, engines={"local"}, out=out) == 0
    text = out.getvalue()
    assert text.startswith("route: front-desk (branch christmas-eve")
    assert "action: say" in text
    assert "local time Thu 2026-12-24 18:30 America/New_York" in text
    assert "branch christmas-eve matched" in text


def test_cli_route_reads_naive_time_in_route_zone():
    out = io.StringIO()
    args = parse(
        "route",
        str(REPO / "dialplans" / "business-hours.yaml"),
        "--to",
        "+12125550100",
        "--at",
        "2026-03-09T09:30",
    )
    assert run_route(args, engines={"local"}, out=out) == 0
    text = out.getvalue()
    assert "branch open matched: Mon 09:30" in text
    # The bot runs on the local engine with the front-desk flow, not the fallback transfer.
    action = text[text.index("action:") : text.index("  fallback:")]
    assert "engine: local" in action and "flows/front-desk.yaml" in action
    assert "engine local is unavailable" not in text


def test_cli_route_sends_campaign_call_to_outbound_flow():
    out = io.StringIO()
    args = parse(
        "route",
        str(REPO / "dialplans" / "campaign-callback.yaml"),
        "--to",
        "+13125550170",
        "--from",
        "+13125550150",
        "--direction",
        "outbound-api",
        "--at",
        "2026-03-09T09:30",
    )
    assert run_route(args, engines={"local"}, out=out) == 0
    text = out.getvalue()
    assert text.startswith("route: callback-line (branch campaign-call")
    assert "engine: local" in text and "flows/campaign-outbound.yaml" in text


def test_cli_route_refuses_unknown_direction(capsys):
    with pytest.raises(SystemExit):
        parse("route", "x.yaml", "--to", "+1", "--direction", "sideways")
    assert "invalid choice" in capsys.readouterr().err


def test_cli_main_runs_as_module(plans):
    broken = plans.write("routes: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.dialplan.cli", "check", str(broken)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"{broken}:1:1: the plan has no routes" in result.stdout


def test_cli_overtalk_dialplan_check_passes_shipped_plans():
    # Through the top-level `overtalk` command, as users run it.
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "dialplan", "check", *map(str, SHIPPED)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dial plans OK" in result.stdout


def test_cli_main_checks_shipped_plans(capsys):
    assert main(["check", *map(str, SHIPPED)]) == 0
    assert "OK" in capsys.readouterr().out
