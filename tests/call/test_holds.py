"""The hold policy: the gateway's settings, a dial-plan bot's ``interruption`` on top, and
what each makes of the playout."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.call.holds import HoldPolicy
from gateway.config import ConfigError, load_settings
from gateway.dialplan import check, load
from gateway.dialplan.schema import BotAction, Interruption

PLAN = """\
default_route: main
routes:
  main:
    otherwise:
      action: bot
      engine: echo
      interruption:
{body}
"""


def _plan(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN.format(body="\n".join(" " * 8 + line for line in body.splitlines())))
    return path


def test_gateway_settings_choose_the_holds_and_refuse_nonsense() -> None:
    settings = load_settings(environ={"OVERTALK_HOLD": "duck", "OVERTALK_HOLD_SOFT_DB": "0"})
    assert settings.holds == HoldPolicy("duck", -30.0, None)
    assert settings.holds.playout().duck_db == -30.0
    assert load_settings(environ={}).holds == HoldPolicy()  # clear, soft level -10 dB
    for env, what in (
        ({"OVERTALK_HOLD": "mute"}, "hold must be one of clear, stop, duck"),
        ({"OVERTALK_HOLD_DUCK_DB": "-6"}, "hold_duck_db must be"),
        ({"OVERTALK_HOLD_SOFT_DB": "-25"}, "hold_soft_db must be"),
        ({"OVERTALK_HOLD_SOFT_DB": "nan"}, "hold_soft_db must be"),
    ):
        with pytest.raises(ConfigError, match=what):
            load_settings(environ=env)


def test_gateway_every_policy_makes_a_playout() -> None:
    for mode in ("clear", "stop", "duck"):
        for soft in (None, -6.0):
            p = HoldPolicy(mode, -40.0, soft).playout()  # type: ignore[arg-type]
            assert p.hold_clears == (mode == "clear") and p.soft_db == soft
            assert p.duck_db == (-40.0 if mode == "duck" else None)


def test_gateway_dial_plan_bot_overrides_the_hold_settings(tmp_path: Path) -> None:
    plan = load(_plan(tmp_path, "hold: duck\nduck_db: -24\nsoft_db: off"), ["echo"])
    bot = plan.routes["main"].otherwise
    assert isinstance(bot, BotAction)
    assert bot.holds(HoldPolicy()) == HoldPolicy("duck", -24.0, None)
    plan = load(_plan(tmp_path, "soft_db: -6"), ["echo"])
    bot = plan.routes["main"].otherwise
    assert isinstance(bot, BotAction)
    assert bot.holds(HoldPolicy("stop", -30.0, -10.0)) == HoldPolicy("stop", -30.0, -6.0)


@pytest.mark.parametrize(
    ("body", "line", "what"),
    [
        ("hold: mute", 8, "'clear', 'stop' or 'duck'"),
        ("hold: duck\nduck_db: -10", 9, "less than or equal to -20"),
        ("soft_db: -30", 8, "soft_db must be between -20 and 0"),
        ("soft_db: loud", 8, "a level in dB"),
        ("soft: -6", 8, "unknown key"),
    ],
)
def test_gateway_dial_plan_refuses_a_bad_interruption_at_its_line(
    tmp_path: Path, body: str, line: int, what: str
) -> None:
    problems = check(_plan(tmp_path, body), ["echo"])
    assert len(problems) == 1 and what in problems[0].message
    assert problems[0].line == line


@given(st.one_of(st.floats(allow_nan=True), st.text(max_size=8), st.booleans(), st.none()))
def test_gateway_soft_db_is_a_shallow_level_or_off_whatever_is_written(value: object) -> None:
    try:
        policy = Interruption(soft_db=value).policy(HoldPolicy())  # type: ignore[arg-type]
    except ValueError:
        return  # refused with a message (pydantic's ValidationError is a ValueError)
    soft = policy.soft_db
    assert soft is None or (-20.0 < soft < 0.0 and not math.isnan(soft))
    policy.playout()  # whatever is accepted makes a playout
