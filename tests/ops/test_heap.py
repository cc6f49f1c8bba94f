"""Ended calls' reference cycles are collected within seconds (issue 13, finding 8): start-up
objects are frozen out of the collector, and a full collection follows calls' ends (see
gateway.ops.heap)."""

from __future__ import annotations

import asyncio
import gc
import weakref

from gateway.ops.heap import CallGarbage, freeze_startup_objects
from gateway.ops.lifecycle import Lifecycle, listen, run


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_freezing_collects_start_up_garbage_and_later_cycles_still_go() -> None:
    gc.collect()  # other tests' garbage first, so the freeze below is this test's own
    early = _Cycle()
    gone_early = weakref.ref(early)
    kept = [_Cycle() for _ in range(10)]
    del early
    try:
        frozen = freeze_startup_objects()
        assert gone_early() is None  # garbage of start-up is collected, not frozen
        assert frozen >= len(kept)
        tracked = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
        assert not any(id(k) in tracked for k in kept)  # out of every generation
        later = _Cycle()
        gone_later = weakref.ref(later)
        del later
        gc.collect()
        assert gone_later() is None  # a call's cycle after start-up is still collected
    finally:
        gc.unfreeze()


async def test_a_full_collection_follows_ended_calls_once_per_period() -> None:
    runs: list[float] = []
    loop = asyncio.get_running_loop()

    def collect() -> int:
        runs.append(loop.time())
        return 0

    garbage = CallGarbage(every_s=0.05, collect=collect)
    try:
        garbage.call_ended()
        garbage.call_ended()  # one collection for both
        await asyncio.sleep(0.3)
        assert len(runs) == 1 and garbage.collections == 1
        garbage.call_ended()  # a later end schedules the next one
        await asyncio.sleep(0.3)
        assert len(runs) == 2
        garbage.call_ended()
        garbage.close()  # at shutdown: nothing left scheduled
        await asyncio.sleep(0.2)
        assert len(runs) == 2
    finally:
        garbage.close()


def test_a_call_ended_without_a_loop_schedules_nothing() -> None:
    garbage = CallGarbage(every_s=0.01, collect=lambda: 1 // 0)
    garbage.call_ended()
    assert garbage.collections == 0
    garbage.close()


async def test_the_collection_frees_an_ended_calls_cycle() -> None:
    garbage = CallGarbage(every_s=0.01)
    call = _Cycle()
    gone = weakref.ref(call)
    del call
    garbage.call_ended()
    for _ in range(100):
        if gone() is None:
            break
        await asyncio.sleep(0.01)
    assert gone() is None


async def _app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


async def test_the_server_freezes_what_start_up_built() -> None:
    gc.unfreeze()
    lifecycle = Lifecycle()

    async def idle() -> None:
        return None

    sock = listen("127.0.0.1", 0)
    serving = asyncio.create_task(
        run(_app, sock=sock, drain_limit=1, wait_idle=idle, end_calls=lambda _: None,
            lifecycle=lifecycle, log_level="warning")
    )  # fmt: skip
    try:
        for _ in range(500):
            if gc.get_freeze_count() or serving.done():
                break
            await asyncio.sleep(0.01)
        assert gc.get_freeze_count() > 0
    finally:
        lifecycle.start_drain()
        await asyncio.wait_for(serving, 10)
        gc.unfreeze()
