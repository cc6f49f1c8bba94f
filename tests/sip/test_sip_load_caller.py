"""The load runs' bare SIP caller against a live gateway: answered, echoed, hung up; and
refused with the gateway's busy answer when the engine is full."""

from __future__ import annotations

import time

from gateway.bench import flatness
from gateway.sipcaller import SipCaller
from tests.sip.conftest import StartGateway, until


async def test_load_caller_call_is_answered_echoed_and_ended(start_gateway: StartGateway) -> None:
    gateway, _, calls = await start_gateway()
    frames = [bytes([0x10 + i % 64]) * 160 for i in range(30)]
    result = await SipCaller(("127.0.0.1", gateway.port)).call(frames)
    assert result.status == 200 and result.frames_sent == 30
    assert len(result.arrivals) > 10  # the echo came back over RTP
    await until(lambda: len(calls.ledgers) == 1, "the call to end")
    assert calls.ledgers[0].outcome == "caller-hung-up"


async def test_load_caller_sees_busy_with_retry_after(start_gateway: StartGateway) -> None:
    gateway, _, _ = await start_gateway()
    gateway.admission.capacity = {"*": 1}
    assert gateway.admission.admit("held", "echo", "sip", time.monotonic())  # a call ringing
    result = await SipCaller(("127.0.0.1", gateway.port)).call([b"\xff" * 160])
    assert (result.status, result.retry_after) == (503, "30")


def test_soak_flatness_measures_rise_after_warmup() -> None:
    rss = [50, 80, 100, 104, 103, 108, 106, 105, 107, 109]
    flat = flatness([{"rss_mib": float(v)} for v in rss])
    assert flat["after_warmup_mib"] == 100 and flat["max_mib"] == 109
    assert round(flat["rise_pct"], 1) == 9.0
