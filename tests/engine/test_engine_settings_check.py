"""``Engine.check``: each engine judges a route's settings itself, without being built, and the
dial plan asks it by name through the registry."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.base import Problem
from engine.registry import ENGINE_NAMES, check_settings, engine_class
from engine.remote.refused import REFUSED

GREET_FLOW = """name: greet
start: hello
states:
  hello: {say: "Hello!", hangup: true}
"""


def test_engines_without_rules_find_nothing():
    for name in ("echo", "tone", "moshi"):
        assert engine_class(name).check({"api": "beta", "vad": "off", "x": "y"}) == []


def test_hosted_engines_refuse_their_own_retired_or_silent_options_only():
    openai = engine_class("openai").check({"api": "beta", "vad": "off", "voice": "ash"})
    assert [p.option for p in openai] == ["api"]
    assert openai[0].message.startswith("is refused:") and "beta_api_shape_disabled" in (
        openai[0].message
    )
    gemini = engine_class("gemini").check({"api": "beta", "vad": "OFF"})
    assert [p.option for p in gemini] == ["vad"]
    assert "never answer" in gemini[0].message


def test_local_engine_judges_the_flow_it_would_run(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(GREET_FLOW)
    broken = tmp_path / "broken.yaml"
    broken.write_text(GREET_FLOW.replace("hangup: true", "next: nowhere"))
    local = engine_class("local")
    assert local.check({"flow": str(good)}) == []
    assert local.check({}) == []
    (problem,) = local.check({"flow": str(broken)})
    assert problem.option == "flow"
    assert problem.message.startswith("cannot run:")
    assert "no state named 'nowhere'" in problem.message
    (unreadable,) = local.check({"flow": str(tmp_path / "missing.yaml")})
    assert unreadable.option == "flow" and unreadable.message.startswith("cannot be read:")


def test_check_by_name_asks_that_engine_every_engine_for_none_and_none_for_unknown(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(GREET_FLOW.replace("hangup: true", "next: nowhere"))
    settings = {"flow": str(broken), "api": "beta", "vad": "off"}
    assert [p.option for p in check_settings("echo", settings)] == []
    assert [p.option for p in check_settings("openai", settings)] == ["api"]
    assert sorted(p.option for p in check_settings(None, settings)) == ["api", "flow", "vad"]
    assert check_settings("no-such-engine", settings) == []


@given(
    st.sampled_from(sorted(ENGINE_NAMES) + [None]),
    st.dictionaries(
        st.sampled_from([k for k, _ in REFUSED] + ["model", "voice", "prompt"]),
        st.text(max_size=12),
    ),
)
def test_checks_name_only_options_given_and_never_raise(name, options):
    found = check_settings(name, options)
    assert all(isinstance(p, Problem) and p.option in options for p in found)
    refused = {k for k, v in options.items() if (k, v.strip().lower()) in REFUSED}
    if name is None:
        assert {p.option for p in found} >= refused - {"create_response"}
