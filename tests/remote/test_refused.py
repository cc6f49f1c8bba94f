"""Options the hosted services refuse: refused by ``overtalk dialplan check`` and the engines."""

from __future__ import annotations

import argparse
import io
import textwrap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.registry import ENGINE_NAMES
from engine.remote.refused import REFUSED, refusals
from gateway.dialplan.cli import run_check


def plan(tmp_path, engine: str, options: str):
    path = tmp_path / "plan.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            timezone: UTC
            default_route: everyone
            routes:
              everyone:
                otherwise:
                  action: bot
                  engine: {engine}
                  options:
                    {options}
            """
        )
    )
    return path


def check(path) -> tuple[int, str]:
    out = io.StringIO()
    args = argparse.Namespace(files=[str(path)], dialplan_command="check")
    return run_check(args, engines=ENGINE_NAMES, out=out), out.getvalue()


def test_dialplan_check_refuses_the_retired_beta_interface_with_where_and_why(tmp_path):
    status, out = check(plan(tmp_path, "openai", "api: beta"))
    assert status == 1
    assert "plan.yaml:" in out and "beta_api_shape_disabled" in out


def test_dialplan_check_refuses_turn_taking_nobody_would_do(tmp_path):
    for engine, option in (
        ("openai", "turn_detection: none"),
        ("openai", "create_response: false"),
        ("gemini", "vad: 'off'"),
    ):
        status, out = check(plan(tmp_path, engine, option))
        assert status == 1 and "never answer" in out, (option, out)


def test_dialplan_check_leaves_other_engines_options_alone(tmp_path):
    status, out = check(plan(tmp_path, "echo", "vad: 'off'"))
    assert status == 0, out
    assert refusals({"api": "ga", "turn_detection": "server_vad"}, "openai") == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([k for k, _ in REFUSED] + ["model", "voice"]),
                       st.one_of(st.text(max_size=12), st.booleans(), st.integers())))  # fmt: skip
def test_refusals_name_each_refused_option_and_nothing_else(options):
    found = refusals(options)
    assert len(found) <= len(options)
    for reason in found:
        key = reason.split("=")[0].removeprefix("option ")
        assert any(key == k for k, _ in REFUSED)
