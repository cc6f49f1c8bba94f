"""What a live SIP gateway records about its calls: a call whose 200 OK is never ACKed has
its own outcome, and every log line of a call carries that call's id and no other's."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

from engine.base import CallContext, EngineEvent, EngineSession
from gateway.carriers.sip.transaction import Timings
from gateway.ops.logs import call_id as current_call
from tests.sip.conftest import RecordingEcho, StartGateway, until
from tests.sip.rawsip import RawUac, pcmu_offer


class _Lines(logging.Handler):
    """Every log line with the call id its context carried when it was written."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((current_call.get(), record.getMessage()))


async def test_gateway_records_unacked_answer_as_no_ack_not_completed(
    start_gateway: StartGateway,
) -> None:
    gateway, _, calls = await start_gateway()
    assert gateway.ua is not None
    gateway.ua.timings = Timings(t1=0.02, t2=0.16)  # 64 * T1 = 1.28 s instead of 32 s
    uac = await RawUac(("127.0.0.1", gateway.port)).open()
    try:
        uac.send(uac.request("INVITE", 1, pcmu_offer(uac.port + 2)))
        assert (await uac.final(1)).status == 200  # and never ACKed
        await until(lambda: bool(calls.ledgers), "the unacknowledged call to end")
    finally:
        uac.close()
    (ledger,) = calls.ledgers
    assert ledger.outcome == "no-ack"
    assert "no ACK" in ledger.end_reason


async def test_gateway_log_lines_of_a_call_never_carry_another_calls_id(
    start_gateway: StartGateway,
) -> None:
    lines = _Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(lines)
    root.setLevel(logging.DEBUG)
    try:
        gateway, _, calls = await start_gateway()
        first = await RawUac(("127.0.0.1", gateway.port)).open()
        second = await RawUac(("127.0.0.1", gateway.port)).open()
        try:
            assert (await first.invite(pcmu_offer(first.port + 2))).status == 200
            assert (await second.invite(pcmu_offer(second.port + 2))).status == 200
            await until(lambda: len(calls.active) == 2, "both calls to stream")
            assert (await first.bye()).status == 200
            await until(lambda: len(calls.ledgers) == 1, "the first call to end")
            assert (await second.bye()).status == 200
            await until(lambda: len(calls.ledgers) == 2, "the second call to end")
        finally:
            first.close()
            second.close()
    finally:
        root.removeHandler(lines)
        root.setLevel(level)
    ids = {first.call_id, second.call_id}
    mentioning = [(cid, text) for cid, text in lines.lines if re.search("|".join(ids), text)]
    assert len(mentioning) >= 6  # each call's arrival, streaming and end at least
    for cid, text in mentioning:
        named = {i for i in ids if i in text}
        assert cid in named or cid == "", (cid, text)  # never the other call's id
    ended = [(cid, text) for cid, text in mentioning if "ended" in text]
    assert {cid for cid, _ in ended} == ids  # and an end is logged under its own call


class _BrokenPump(RecordingEcho):
    """An engine whose event stream breaks with a bug (not an EngineFailed)."""

    async def open(self, context: CallContext) -> EngineSession:
        session = await super().open(context)

        async def events() -> AsyncIterator[EngineEvent]:
            await asyncio.sleep(0.05)
            raise RuntimeError("a bug in the pump")
            yield  # an async generator

        session.events = events  # type: ignore[method-assign]
        return session


async def test_gateway_a_failing_call_task_hangs_up_and_closes_the_call(
    start_gateway: StartGateway,
) -> None:
    gateway, _, calls = await start_gateway(engine=_BrokenPump(rate=8000))
    uac = await RawUac(("127.0.0.1", gateway.port)).open()
    try:
        assert (await uac.invite(pcmu_offer(uac.port + 2))).status == 200
        bye = await uac.receive()
        assert bye.method == "BYE"  # the call's TaskGroup ended it, with a BYE
        await until(lambda: bool(calls.ledgers), "the failed call to be written out")
    finally:
        uac.close()
    (ledger,) = calls.ledgers
    assert ledger.outcome == "internal-error"
    assert any("a bug in the pump" in error for error in ledger.errors)
    assert gateway.calls == {} and gateway.media.calls == {}
