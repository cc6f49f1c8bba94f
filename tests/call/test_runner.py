"""CallRunner, the asyncio side of a call: it hands the core's commands to a carrier, keeps
the core's one timer, runs hang-ups in order, ends a call at its length limit and files it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest

from engine.base import (
    Audio,
    CallContext,
    EngineFailed,
    EngineSession,
    EngineUnavailable,
    Hangup,
    Transfer,
)
from engine.base import Engine as EngineBase
from gateway.call.ledger import CallLedger
from gateway.call.playout import Playout
from gateway.call.registry import CallRegistry
from gateway.call.runner import CallRunner, open_engine
from gateway.call.session import CallSession
from gateway.engines import EngineSet


class Engine(EngineSession):
    def send_audio(self, pcm: bytes) -> None:
        pass


class Carrier:
    """A carrier that keeps what it was asked to do; a mark plays as soon as it is sent."""

    def __init__(self) -> None:
        self.frames = 0
        self.marks: list[str] = []
        self.clears = 0
        self.actions: list[str] = []
        self.runner: CallRunner | None = None

    def send_frame(self, frame: bytes) -> None:
        self.frames += 1

    def send_mark(self, name: str) -> None:
        self.marks.append(name)

    def send_clear(self) -> None:
        self.clears += 1

    def flush(self) -> None:
        pass

    async def hangup(self) -> None:
        self.actions.append("hangup")

    async def transfer(self, target: str) -> None:
        if target == "bad":
            raise RuntimeError("REST said no")
        self.actions.append(f"transfer {target}")


def make() -> tuple[CallRunner, Carrier, Engine, CallRegistry]:
    engine = Engine(8000)
    session = CallSession(
        engine,
        CallLedger("CArunner", "fake"),
        origin=asyncio.get_running_loop().time(),
        playout=Playout(lead=0.04, mark_every=1),
    )
    carrier = Carrier()
    runner = CallRunner(session, carrier, clock=asyncio.get_running_loop().time)
    registry = CallRegistry()
    return runner, carrier, engine, registry


async def until(predicate: Callable[[], bool]) -> None:
    """Let the loop run until ``predicate`` holds (bounded: a stuck runner fails the test)."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the runner never got there")


def speech(seconds: float) -> bytes:
    return (np.sin(np.arange(int(8000 * seconds)) / 3) * 8000).astype(np.int16).tobytes()


async def test_runner_paces_frames_out_on_the_cores_deadline() -> None:
    runner, carrier, _, registry = make()
    runner.start(registry)
    runner.engine_event(Audio(speech(0.2)))
    assert carrier.frames == 2  # the lead's worth at once
    await until(lambda: carrier.frames == 10)  # the timer sends the rest as it drains
    assert sum(runner.session.ledger.frame_lateness.counts) >= 1  # on timer ticks
    await runner.close("test")
    assert not registry.active


async def test_runner_hangs_up_after_the_speech_and_files_the_call() -> None:
    runner, carrier, engine, registry = make()
    ended: list[CallLedger] = []
    registry.on_end.append(ended.append)
    runner.start(registry)
    engine.channel.put(Audio(speech(0.04)))
    engine.channel.put(Transfer("bad"))
    engine.channel.put(Hangup())
    pump = asyncio.create_task(runner.pump_engine())
    await asyncio.sleep(0.01)
    assert carrier.actions == []  # the speech before them has not played
    for name in list(carrier.marks):
        runner.receive_mark(name)
    await asyncio.sleep(0.01)
    assert carrier.actions == ["hangup"]  # in order; the failed transfer did not stop it
    await engine.close()
    await pump
    await runner.close("test")
    assert ended and ended[0].errors == ["transfer failed: REST said no"]
    assert ended[0].outcome == "completed"


async def test_runner_ends_a_call_at_its_length_limit() -> None:
    runner, carrier, _, registry = make()
    runner.start(registry, max_duration=0.02)
    await until(lambda: bool(carrier.actions))
    assert carrier.actions == ["hangup"]
    assert runner.session.ledger.outcome == "limit"
    await runner.close("test")


async def test_runner_reports_an_engine_failure_and_raises_it() -> None:
    runner, _, engine, registry = make()
    runner.start(registry)
    engine.channel.close(EngineFailed("socket gone"))
    with pytest.raises(EngineFailed):
        await runner.pump_engine()
    await runner.close("engine failed")
    ledger = runner.session.ledger
    assert ledger.engine_errors == 1 and ledger.errors == ["engine failed: socket gone"]


async def test_runner_records_an_unavailable_engine_for_the_carriers_fallback() -> None:
    class Full(EngineBase):
        async def open(self, context: CallContext) -> EngineSession:
            raise EngineUnavailable("no GPU free")

    ledger = CallLedger("CAfull", "fake", engine="echo")
    engines = EngineSet("echo", prebuilt=Full())
    assert await open_engine(engines, ledger, CallContext(call_id="CAfull")) is None
    assert (ledger.outcome, ledger.engine_errors) == ("engine-unavailable", 1)
    assert ledger.end_reason == "engine unavailable: no GPU free"
