"""The loader's checks: each kind of error, reported at the right file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.dialplan import DialPlanInvalid, check, load

MINIMAL = """\
default_route: main
routes:
  main:
    otherwise: hangup
"""


def test_loader_loads_minimal_plan(plans, engines):
    plan = load(plans.write(MINIMAL), engines)
    assert plan.default_route == "main"
    assert set(plan.routes) == {"main"}
    assert len(plan.digest) == 12


def test_loader_reports_unknown_key_with_suggestion(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise:
              action: bot
              engin: echo
        """
    )
    problem = plans.problem(path, "unknown key 'engin'")
    assert "did you mean 'engine'?" in problem.message
    assert (problem.line, problem.column) == plans.where(path, "engin:")
    assert problem.file == path


def test_loader_reports_unknown_top_level_key_with_suggestion(plans):
    path = plans.write(MINIMAL + "timezon: UTC\n")
    problem = plans.problem(path, "unknown key 'timezon'")
    assert "did you mean 'timezone'?" in problem.message
    assert (problem.line, problem.column) == plans.where(path, "timezon:")


def test_loader_reports_bad_e164_numbers_each_at_its_line(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            numbers:
              - "4155550100"
              - "+1 415 555 0101"
              - "+0441234"
            otherwise: hangup
        """
    )
    missing_plus = plans.problem(path, "needs a leading '+'")
    spaced = plans.problem(path, "write it as '+14155550101'")
    zero = plans.problem(path, "country codes never start with 0")
    assert missing_plus.line == plans.where(path, '"4155550100"')[0]
    assert spaced.line == plans.where(path, "+1 415")[0]
    assert zero.line == plans.where(path, "+0441234")[0]


def test_loader_accepts_unquoted_e164_number(plans, engines):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            numbers: [+14155550100]
            otherwise: hangup
        """
    )
    assert dict(load(path, engines).exact) == {"+14155550100": "main"}


def test_loader_reports_yaml_syntax_error_with_its_line(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise: [hangup
        """
    )
    problems = check(path, {"echo"})
    assert len(problems) == 1
    assert problems[0].message.startswith("YAML syntax")
    assert problems[0].line >= 4


def test_loader_reports_duplicate_key_with_first_line(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise: hangup
          main:
            otherwise: reject
        """
    )
    problem = plans.problem(path, "duplicate key 'main'")
    assert "first at line 3" in problem.message
    assert problem.line == 5


def test_loader_reports_unknown_engine_with_suggestion(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise:
              action: bot
              engine: eccho
        """
    )
    problem = plans.problem(path, "unknown engine 'eccho'")
    assert "did you mean 'echo'?" in problem.message
    assert (problem.line, problem.column) == plans.where(path, "eccho")


def test_loader_reports_bot_without_engine(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise:
              action: bot
        """
    )
    problem = plans.problem(path, "bot has no engine")
    assert problem.line == plans.where(path, "otherwise:")[0]


def test_loader_applies_bot_defaults_and_checks_their_engine(plans, engines):
    path = plans.write(
        """
        default_route: main
        defaults:
          bot: {engine: tone, language: en-GB}
        routes:
          main:
            otherwise: {action: bot, language: fr-FR}
        """
    )
    action = load(path, engines).routes["main"].otherwise
    assert (action.engine, action.language) == ("tone", "fr-FR")
    with pytest.raises(DialPlanInvalid, match="unknown engine 'tone'"):
        load(path, {"echo"})


GREET_FLOW = """name: greet
start: hello
states:
  hello: {say: "Hello!", hangup: true}
"""


def test_loader_reports_a_broken_flow_at_the_route_that_names_it(plans):
    plans.write(GREET_FLOW.replace("hangup: true", "next: nowhere"), "flows/greet.yaml")
    path = plans.write(
        """version: 1
default_route: main
routes:
  main:
    otherwise: {action: bot, engine: echo, flow: flows/greet.yaml}
"""
    )
    problem = plans.problem(path, "flow flows/greet.yaml cannot run")
    assert "states.hello.next: no state named 'nowhere'" in problem.message
    assert (problem.line, problem.column) == plans.where(path, "flows/greet.yaml")


def test_loader_reports_missing_flow_file(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise: {action: bot, engine: echo, flow: flows/missing.yaml}
        """
    )
    problem = plans.problem(path, "flow file not found: flows/missing.yaml")
    assert (problem.line, problem.column) == plans.where(path, "flows/missing.yaml")


def test_loader_resolves_flow_relative_to_plan_file(plans, engines):
    plans.write(GREET_FLOW, "sub/flows/greet.yaml")
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise: {action: bot, engine: echo, flow: flows/greet.yaml}
        """,
        "sub/plan.yaml",
    )
    plan = load(path, engines)
    flow = plan.routes["main"].otherwise.flow
    assert flow == path.parent / "flows" / "greet.yaml"
    assert flow in plan.files


def test_loader_reports_unknown_action_with_suggestion(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise:
              action: voicemial
        """
    )
    problem = plans.problem(path, "unknown action 'voicemial'")
    assert "did you mean 'voicemail'?" in problem.message
    assert (problem.line, problem.column) == plans.where(path, "voicemial")


def test_loader_reports_missing_field_at_its_mapping(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise:
              action: transfer
              timeout: 20
        """
    )
    problem = plans.problem(path, "missing 'to'")
    assert problem.line == plans.where(path, "otherwise:")[0]


def test_loader_reports_overlapping_windows_within_branch(plans):
    path = plans.write(
        """
        timezone: America/New_York
        default_route: main
        routes:
          main:
            branches:
              - when: {hours: ["mon-fri 09:00-12:00", "mon-fri 11:30-17:00"]}
                do: hangup
            otherwise: hangup
        """
    )
    problem = plans.problem(path, "overlaps")
    assert "'mon-fri 11:30-17:00' overlaps 'mon-fri 09:00-12:00'" in problem.message
    assert "Mon 11:30-12:00" in problem.message
    assert (problem.line, problem.column) == plans.where(path, '"mon-fri 11:30')


def test_loader_reports_overlapping_windows_across_branches(plans):
    path = plans.write(
        """
        timezone: America/New_York
        default_route: main
        routes:
          main:
            branches:
              - when: {days: mon-fri, hours: ["09:00-17:00"]}
                do: hangup
              - when: {days: mon-fri, hours: ["16:00-20:00"]}
                do: {action: reject}
            otherwise: hangup
        """
    )
    problem = plans.problem(path, "overlap branch #1")
    assert "Mon 16:00-17:00" in problem.message
    assert problem.line == plans.where(path, '"16:00-20:00"')[0]


def test_loader_accepts_overlapping_windows_for_different_callers(plans, engines):
    path = plans.write(
        """
        timezone: America/New_York
        default_route: main
        routes:
          main:
            branches:
              - when: {callers: ["+12125550100"], hours: ["08:00-20:00"]}
                do: hangup
              - when: {hours: ["09:00-17:00"]}
                do: hangup
            otherwise: hangup
        """
    )
    assert check(path, engines) == []


def test_loader_reports_branch_after_unconditional_branch(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            branches:
              - name: always
                do: hangup
              - name: never
                when: {anonymous: true}
                do: hangup
        """
    )
    problem = plans.problem(path, "branch never can never match")
    assert "branch always before it matches every call" in problem.message
    assert problem.line == plans.where(path, "- name: never")[0]


def test_loader_reports_branch_shadowed_by_broader_branch(plans):
    path = plans.write(
        """
        timezone: Europe/London
        default_route: main
        routes:
          main:
            branches:
              - when: {callers: ["+44*"], days: weekdays}
                do: hangup
              - when: {callers: ["+4420*"], hours: ["mon 10:00-11:00"]}
                do: {action: reject}
            otherwise: hangup
        """
    )
    problem = plans.problem(path, "branch #2 can never match")
    assert problem.line == plans.where(path, '"+4420*"')[0]


def test_loader_reports_otherwise_after_catch_all(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            branches:
              - do: hangup
            otherwise: {action: reject}
        """
    )
    problem = plans.problem(path, "otherwise is never used")
    assert problem.line == plans.where(path, "otherwise:")[0]


def test_loader_reports_route_without_otherwise(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            branches:
              - when: {anonymous: true}
                do: hangup
        """
    )
    problem = plans.problem(path, "has no otherwise")
    assert problem.line == plans.where(path, "main:")[0]


def test_loader_reports_unreachable_route(plans):
    path = plans.write(MINIMAL + "  orphan:\n    otherwise: hangup\n")
    problem = plans.problem(path, "route 'orphan' is never used")
    assert problem.line == plans.where(path, "orphan:")[0]


def test_loader_reports_number_listed_twice(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            numbers: ["+14155550100", "+1415*"]
            otherwise: hangup
          other:
            numbers: ["+1212*", "+1415*"]
            otherwise: hangup
        """
    )
    problem = plans.problem(path, "pattern +1415* is never used")
    assert "route 'main' already lists it" in problem.message
    line, column = plans.where(path, '"+1212*", "+1415*"')
    assert (problem.line, problem.column) == (line, column + len('"+1212*", '))


def test_loader_reports_ambiguous_patterns(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            numbers: ["+1415X5*"]
            otherwise: hangup
          other:
            numbers: ["+1415XX5*"]
            otherwise: hangup
        """
    )
    problem = plans.problem(path, "neither is more specific")
    assert problem.line == plans.where(path, "+1415XX5*")[0]


def test_loader_reports_unknown_time_zone_with_suggestion(plans):
    path = plans.write(MINIMAL + "timezone: America/NewYork\n")
    problem = plans.problem(path, "unknown time zone")
    assert "did you mean 'America/New_York'?" in problem.message
    assert problem.line == plans.where(path, "America/NewYork")[0]


def test_loader_reports_time_conditions_without_time_zone(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            branches:
              - when: {days: weekends}
                do: hangup
            otherwise: {action: reject}
        """
    )
    problem = plans.problem(path, "no time zone")
    assert problem.line == plans.where(path, "main:")[0]


def test_loader_reports_bad_window_and_day(plans):
    path = plans.write(
        """
        timezone: UTC
        default_route: main
        routes:
          main:
            branches:
              - when: {hours: ["9-17"]}
                do: hangup
              - when: {days: [thurs]}
                do: hangup
            otherwise: {action: reject}
        """
    )
    window = plans.problem(path, "is not a time window")
    day = plans.problem(path, "unknown day 'thurs'")
    assert window.line == plans.where(path, "9-17")[0]
    assert "did you mean" in day.message
    assert day.line == plans.where(path, "thurs")[0]


def test_loader_reports_unknown_caller_list_and_holiday_calendar(plans):
    path = plans.write(
        """
        timezone: UTC
        default_route: main
        holidays:
          company: [2026-12-25]
        caller_lists:
          vips: ["+14155550100"]
        routes:
          main:
            branches:
              - when: {caller_lists: [vip]}
                do: hangup
              - when: {holidays: [compnay]}
                do: hangup
            otherwise: {action: reject}
        """
    )
    assert "did you mean 'vips'?" in plans.problem(path, "unknown caller list").message
    calendar = plans.problem(path, "unknown holiday calendar")
    assert "did you mean 'company'?" in calendar.message
    assert calendar.line == plans.where(path, "[compnay]")[0]


def test_loader_reports_reject_after_answer(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise:
              action: say
              text: Goodbye
              then: {action: reject, reason: busy}
        """
    )
    problem = plans.problem(path, "reject only works as the first thing")
    assert problem.line == plans.where(path, "then:")[0]


def test_loader_reports_transcription_longer_than_twilio_allows(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise:
              action: voicemail
              max_length: 300
        """
    )
    problem = plans.problem(path, "at most 120 s")
    assert (problem.line, problem.column) == plans.where(path, "300")


def test_loader_reports_anonymous_branch_with_callers(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            branches:
              - when: {anonymous: true, callers: ["+14155550100"]}
                do: hangup
            otherwise: hangup
        """
    )
    problem = plans.problem(path, "can never match: anonymous callers")
    assert problem.line == plans.where(path, "anonymous: true")[0]


def test_loader_reports_unknown_template_variable(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise: {action: say, text: "Hello {calller}"}
        """
    )
    problem = plans.problem(path, "unknown variable {calller}")
    assert problem.line == plans.where(path, "Hello {calller}")[0]


def test_loader_refuses_attribute_access_in_templates(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise: {action: say, text: "{caller.__class__}"}
        """
    )
    assert plans.problem(path, "unknown variable").line == 4


def test_loader_reports_missing_default_route(plans):
    path = plans.write(
        """
        routes:
          main:
            numbers: ["+14155550100"]
            otherwise: hangup
        """
    )
    problem = plans.problem(path, "the plan needs default_route")
    assert (problem.line, problem.column) == (1, 1)


def test_loader_reports_default_route_that_does_not_exist(plans):
    path = plans.write(MINIMAL.replace("default_route: main", "default_route: mian"))
    problem = plans.problem(path, "unknown route 'mian'")
    assert "did you mean 'main'?" in problem.message
    assert problem.line == 1


def test_loader_reports_sip_password_in_uri(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise: {action: transfer, to: "sip:bob:hunter2@pbx.example.com"}
        """
    )
    assert plans.problem(path, "must not carry a password").line == 4


def test_loader_reports_missing_file(tmp_path: Path):
    problems = check(tmp_path / "nope.yaml", {"echo"})
    assert [p.message for p in problems] == ["cannot read dial plan: not found"]


def test_loader_collects_problems_from_several_routes_at_once(plans):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            numbers: ["12"]
            otherwise: {action: bot, engine: nope}
          other:
            numbers: ["+1415*"]
            otherwise: {action: say}
        """
    )
    problems = check(path, {"echo"})
    assert len(problems) >= 2
    assert problems == sorted(problems)
    text = str(DialPlanInvalid(problems))
    assert all(line.startswith(f"{path}:") for line in text.splitlines())


# -- includes ------------------------------------------------------------------------------------


def test_loader_merges_included_holidays_and_defaults(plans, engines):
    plans.write(
        """
        timezone: Europe/Paris
        defaults:
          bot: {engine: tone}
        holidays:
          closures: [2026-08-15]
        """,
        "shared/settings.yaml",
    )
    path = plans.write(
        """
        include: [shared/settings.yaml]
        timezone: America/New_York
        default_route: main
        routes:
          main:
            branches:
              - when: {holidays: [closures]}
                do: hangup
            otherwise: {action: bot}
        """
    )
    plan = load(path, engines)
    main = plan.routes["main"]
    assert main.timezone == "America/New_York"  # the including file wins
    assert main.otherwise.engine == "tone"
    assert len(plan.files) == 2


def test_loader_reports_missing_include_at_the_include_line(plans):
    path = plans.write("include: [shared/nope.yaml]\n" + MINIMAL)
    problem = plans.problem(path, "include file not found")
    assert problem.file == path
    assert (problem.line, problem.column) == plans.where(path, "shared/nope.yaml")


def test_loader_reports_problem_inside_included_file(plans):
    shared = plans.write("holidays:\n  closures: [2026-13-01]\n", "shared.yaml")
    path = plans.write("include: [shared.yaml]\n" + MINIMAL)
    problem = plans.problem(path, "is not a valid")
    assert problem.file == shared
    assert problem.line == 2


def test_loader_reports_include_cycle(plans):
    plans.write("include: [plan.yaml]\n", "b.yaml")
    path = plans.write("include: [b.yaml]\n" + MINIMAL)
    problem = plans.problem(path, "include cycle")
    assert "plan.yaml -> b.yaml -> plan.yaml" in problem.message


def test_loader_reports_route_defined_in_two_files(plans):
    plans.write("routes:\n  main:\n    otherwise: hangup\n", "other.yaml")
    path = plans.write("include: [other.yaml]\n" + MINIMAL)
    problem = plans.problem(path, "route 'main' is already defined at")
    assert "other.yaml:2" in problem.message
    assert problem.line == plans.where(path, "main:")[0]


# -- environment -----------------------------------------------------------------------------------


SECRET_PLAN = """
    default_route: main
    routes:
      main:
        otherwise:
          action: transfer
          to: "sip:desk@${PBX_HOST}"
          sip_username: overtalk
          sip_password: ${PBX_PASSWORD}
"""


def test_loader_substitutes_environment_variables(plans, engines):
    path = plans.write(SECRET_PLAN)
    env = {"PBX_HOST": "pbx.example.com", "PBX_PASSWORD": "s3cret"}
    action = load(path, engines, env=env).routes["main"].otherwise
    assert action.to == "sip:desk@pbx.example.com"
    assert action.sip_password == "s3cret"


def test_loader_reports_unset_environment_variable(plans):
    path = plans.write(SECRET_PLAN)
    problem = plans.problem(
        path, "environment variable PBX_PASSWORD is not set", env={"PBX_HOST": "pbx.example.com"}
    )
    assert (problem.line, problem.column) == plans.where(path, "${PBX_PASSWORD}")


def test_loader_reports_secret_written_in_file(plans):
    path = plans.write(SECRET_PLAN.replace("${PBX_PASSWORD}", "hunter2"))
    problem = plans.problem(path, "sip_password is a secret", env={"PBX_HOST": "h.example"})
    assert problem.line == plans.where(path, "hunter2")[0]


def test_loader_keeps_escaped_dollar_brace(plans, engines):
    path = plans.write(
        """
        default_route: main
        routes:
          main:
            otherwise: {action: say, text: "costs $${5}"}
        """
    )
    # "$${" is a literal "${"; the rest must then still be a valid template ("{5}" is not).
    assert "unknown variable {5}" in check(path, engines, env={})[0].message


def test_loader_digest_changes_with_environment(plans, engines):
    path = plans.write(SECRET_PLAN)
    one = load(path, engines, env={"PBX_HOST": "a.example", "PBX_PASSWORD": "x"})
    two = load(path, engines, env={"PBX_HOST": "b.example", "PBX_PASSWORD": "x"})
    same = load(path, engines, env={"PBX_HOST": "a.example", "PBX_PASSWORD": "x"})
    assert one.digest != two.digest
    assert one.digest == same.digest


def test_loader_plan_is_immutable(plans, engines):
    plan = load(plans.write(MINIMAL), engines)
    with pytest.raises(TypeError):
        plan.routes["x"] = plan.routes["main"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        plan.digest = "x"  # type: ignore[misc]


def test_loader_refuses_recursive_alias(plans):
    path = plans.write("routes: &a [*a]\n")
    problem = plans.problem(path, "recursive alias")
    assert (problem.line, problem.column) == (1, 9)


def test_loader_refuses_alias_bomb(plans):
    lines = ["x0: &x0 [" + ",".join(["lol"] * 10) + "]"]
    lines += [f"x{i}: &x{i} [" + ",".join([f"*x{i - 1}"] * 10) + "]" for i in range(1, 8)]
    path = plans.write("\n".join(lines) + "\n")
    assert "expands to more than" in plans.problem(path, "expands").message
