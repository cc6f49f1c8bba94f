"""Dial-plan files are bounded: regular files only, a size cap, a depth cap, every error at
``file:line:col``, and hot reload parsed off the event loop (issue 13, finding 6). The loader
is fuzzed: whatever a file holds, it loads or is refused with problems, nothing else."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.dialplan import DialPlanInvalid, PlanHolder, check, load, watch
from gateway.dialplan._yaml import MAX_DEPTH, parse
from gateway.dialplan.loader import MAX_FILE_BYTES

ENGINES = frozenset({"echo", "tone"})

PLAN = """\
default_route: main
routes:
  main:
    otherwise: {action: say, text: "hello"}
"""


def test_plan_include_of_a_device_is_refused_without_reading_it(plans):
    path = plans.write("include: [/dev/zero]\n" + PLAN)
    problem = plans.problem(path, "not a regular file")
    assert (problem.file, problem.line, problem.column) == (path, 1, 11)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_plan_include_of_a_fifo_is_refused_without_blocking(plans, tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    path = plans.write("include: [pipe.yaml]\n" + PLAN)
    assert plans.problem(path, "not a regular file").line == 1


def test_plan_file_over_the_size_cap_is_refused_before_it_is_read(plans, tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(50 * 1024 * 1024)  # 50 MB, sparse: nothing to parse if it were read
    path = plans.write("include: [big.yaml]\n" + PLAN)
    assert f"larger than {MAX_FILE_BYTES} bytes" in plans.problem(path, "larger than").message


def test_plan_nested_100000_levels_is_a_problem_not_a_recursion_error(plans):
    path = plans.write("routes: " + "[" * 100_000 + "\n")
    problem = plans.problem(path, "levels deep")
    assert (problem.line, problem.column) == (1, 9 + MAX_DEPTH - 1)


def test_plan_stray_control_character_is_reported_at_its_place(plans):
    path = plans.write(PLAN.replace('"hello"', '"hel\x01lo"'))
    problem = plans.problem(path, "U+0001")
    assert (problem.line, problem.column) == (4, 40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_parse_fuzzed_text_gives_data_or_problems_only(text: str) -> None:
    try:
        parse(text, Path("fuzz.yaml"))
    except DialPlanInvalid as exc:
        assert exc.problems and all(p.line >= 1 and p.column >= 1 for p in exc.problems)


yaml_lines = st.lists(
    st.sampled_from(
        [
            "default_route: main", "routes:", "  main:", "    otherwise: {action: say, text: hi}",
            "    otherwise: {action: bot, engine: echo}", "include: [/dev/zero]",
            "include: [plan.yaml]", "numbers: {'+15005550001': main}", "  - [", "&a [*a]",
            "timezone: Mars/Olympus", "version: 2", "\t", "key: !!python/object:os.system x",
            "defaults: ${HOME}", "x: \x7f", "- " * 80 + "deep",
        ]
    )
    | st.text(max_size=30),
    max_size=8,
)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(yaml_lines)
def test_load_fuzzed_plan_files_load_or_are_refused_with_problems(tmp_path, lines):
    path = tmp_path / "plan.yaml"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        load(path, ENGINES, env={})
    except DialPlanInvalid as exc:
        assert exc.problems
        assert all(p.line >= 1 and p.column >= 1 for p in exc.problems)


async def test_watch_parses_a_changed_plan_off_the_event_loop(plans):
    path = plans.write(PLAN)
    holder = PlanHolder(path, ENGINES)
    loop_thread = threading.get_ident()
    threads: list[int] = []
    check_once = holder.check_once

    def spy():
        threads.append(threading.get_ident())
        return check_once()

    holder.check_once = spy  # type: ignore[method-assign]
    path.write_text(PLAN.replace("hello", "changed"))
    task = asyncio.create_task(watch(holder, interval=0.01))
    try:
        for _ in range(500):
            if holder.current.routes["main"].otherwise.text == "changed":
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert holder.current.routes["main"].otherwise.text == "changed"
    assert threads and loop_thread not in threads


def test_check_of_the_shipped_plans_still_passes():
    shipped = Path(__file__).resolve().parents[2] / "dialplans" / "default.yaml"
    assert check(shipped, {"local", "echo", "tone"}) == []
