"""Hot reload: a broken edit is refused and the plan in force stays; a fix is picked up."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import pytest

from gateway.dialplan import DialPlanInvalid, PlanHolder, install_sighup, watch

PLAN = """\
default_route: main
routes:
  main:
    otherwise: {action: say, text: "version one"}
"""


def text_of(holder):
    return holder.current.routes["main"].otherwise.text


def test_holder_loads_plan_at_start(plans, engines):
    holder = PlanHolder(plans.write(PLAN), engines)
    assert text_of(holder) == "version one"
    assert holder.get(holder.current.digest) is holder.current


def test_holder_refuses_to_start_with_broken_plan(plans, engines):
    with pytest.raises(DialPlanInvalid, match="unknown action"):
        PlanHolder(plans.write(PLAN.replace("say", "sya")), engines)


def test_holder_check_once_returns_none_when_unchanged(plans, engines):
    holder = PlanHolder(plans.write(PLAN), engines)
    before = holder.current
    assert holder.check_once() is None
    assert holder.current is before


def test_holder_check_once_picks_up_valid_edit(plans, engines):
    path = plans.write(PLAN)
    holder = PlanHolder(path, engines)
    old = holder.current
    path.write_text(PLAN.replace("version one", "version two"))
    assert holder.check_once() == []
    assert text_of(holder) == "version two"
    assert holder.current.digest != old.digest
    # A call routed by the old plan can still find it by its digest.
    assert holder.get(old.digest) is old


def test_holder_keeps_plan_in_force_on_broken_edit(plans, engines, caplog):
    path = plans.write(PLAN)
    holder = PlanHolder(path, engines)
    good = holder.current
    path.write_text(
        PLAN.replace('{action: say, text: "version one"}', "{action: bot, engine: nope}")
    )
    with caplog.at_level(logging.WARNING, logger="gateway.dialplan"):
        problems = holder.check_once()
    assert problems and "unknown engine 'nope'" in problems[0].message
    assert problems[0].line == 4
    assert holder.current is good
    assert holder.last_problems == problems
    assert "refused" in caplog.text and good.digest in caplog.text
    # The same broken content is not reported again on every poll.
    assert holder.check_once() is None
    # Fixing the file is picked up.
    path.write_text(PLAN.replace("version one", "version three"))
    assert holder.check_once() == []
    assert text_of(holder) == "version three"
    assert holder.last_problems == []


def test_holder_keeps_plan_in_force_when_its_flow_breaks(plans, engines):
    flow = plans.write(
        'name: hi\nstart: a\nstates:\n  a: {say: "Hi.", hangup: true}\n', "flows/hi.yaml"
    )
    bot = "{action: bot, engine: echo, flow: flows/hi.yaml}"
    path = plans.write(PLAN.replace('{action: say, text: "version one"}', bot))
    holder = PlanHolder(path, engines)
    good = holder.current
    flow.write_text(flow.read_text().replace("hangup: true", "next: b"))  # no state b
    problems = holder.check_once()
    assert problems and "states.a.next: no state named 'b'" in problems[0].message
    assert holder.current is good


def test_holder_keeps_plan_when_file_is_deleted(plans, engines):
    path = plans.write(PLAN)
    holder = PlanHolder(path, engines)
    good = holder.current
    path.unlink()
    problems = holder.check_once()
    assert problems and "not found" in problems[0].message
    assert holder.current is good
    path.write_text(PLAN)
    assert holder.check_once() == []
    assert holder.current.digest == good.digest


def test_holder_watches_included_files(plans, engines):
    shared = plans.write("timezone: UTC\n", "shared.yaml")
    path = plans.write("include: [shared.yaml]\n" + PLAN)
    holder = PlanHolder(path, engines)
    assert holder.current.routes["main"].timezone == "UTC"
    shared.write_text("timezone: Europe/Oslo\n")
    assert holder.check_once() == []
    assert holder.current.routes["main"].timezone == "Europe/Oslo"


def test_holder_notices_created_include_after_refusal(plans, engines):
    path = plans.write(PLAN)
    holder = PlanHolder(path, engines)
    path.write_text("include: [later.yaml]\n" + PLAN)
    problems = holder.check_once()
    assert problems and "include file not found" in problems[0].message
    assert holder.check_once() is None
    plans.write("timezone: Asia/Tokyo\n", "later.yaml")
    assert holder.check_once() == []
    assert holder.current.routes["main"].timezone == "Asia/Tokyo"


def test_holder_forgets_oldest_plans_beyond_keep(plans, engines):
    path = plans.write(PLAN)
    holder = PlanHolder(path, engines, keep=2)
    digests = [holder.current.digest]
    for n in range(3):
        path.write_text(PLAN.replace("version one", f"edit {n}"))
        assert holder.reload() == []
        digests.append(holder.current.digest)
    assert [holder.get(d) is not None for d in digests] == [False, False, True, True]


def test_holder_reload_with_same_content_keeps_plan_object(plans, engines):
    holder = PlanHolder(plans.write(PLAN), engines)
    before = holder.current
    assert holder.reload() == []
    assert holder.current is before


async def test_watch_polls_until_cancelled_and_survives_errors():
    calls: list[int] = []

    class Holder:
        path = "stub.yaml"

        def check_once(self) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("a bug in the holder")
            if len(calls) == 3:
                raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await watch(Holder(), interval=0)  # type: ignore[arg-type]
    assert len(calls) == 3


async def test_watch_reloads_changed_file(plans, engines):
    path = plans.write(PLAN)
    holder = PlanHolder(path, engines)
    path.write_text(PLAN.replace("version one", "watched"))
    seen = asyncio.Event()
    check_once = holder.check_once

    def spy():
        result = check_once()
        if result is not None:
            seen.set()
        return result

    holder.check_once = spy  # type: ignore[method-assign]
    task = asyncio.create_task(watch(holder, interval=0))
    try:
        await asyncio.wait_for(seen.wait(), timeout=5)
    finally:
        task.cancel()
    assert text_of(holder) == "watched"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGHUP is Unix only")
async def test_sighup_reloads_plan(plans, engines):
    path = plans.write(PLAN)
    holder = PlanHolder(path, engines)
    done = asyncio.Event()
    reload = holder.reload

    def spy():
        problems = reload()
        done.set()
        return problems

    holder.reload = spy  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    install_sighup(holder, loop)
    try:
        path.write_text(PLAN.replace("version one", "after hup"))
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(done.wait(), timeout=5)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
    assert text_of(holder) == "after hup"
