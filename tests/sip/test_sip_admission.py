"""A SIP gateway whose engine is full answers new calls 503 with Retry-After (RFC 3261
21.5.4: a trunk then tries its next gateway) and takes calls again once a place is free."""

from __future__ import annotations

import pytest

from gateway.carriers.sip.errors import CallFailed
from tests.sip.conftest import StartGateway, until
from tests.sip.rawsip import RawUac, pcmu_offer


async def test_sip_gateway_refuses_503_with_retry_after_when_engine_full(
    start_gateway: StartGateway,
) -> None:
    gateway, _, calls = await start_gateway()
    gateway.admission.capacity = {"echo": 1}
    uacs = [await RawUac(("127.0.0.1", gateway.port)).open() for _ in range(3)]
    try:
        first, second, third = uacs
        assert (await first.invite(pcmu_offer(first.port + 2))).status == 200
        busy = await second.invite(pcmu_offer(second.port + 2))
        assert busy.status == 503 and busy.get("Retry-After") == "30"
        assert gateway.admission.refused == {("echo", "sip"): 1}
        assert (await first.bye()).status == 200
        await until(lambda: len(calls.ledgers) == 1, "the first call to end")
        assert (await third.invite(pcmu_offer(third.port + 2))).status == 200
        assert (await third.bye()).status == 200
    finally:
        for uac in uacs:
            uac.close()


async def test_sip_gateway_checks_outbound_calls_against_the_engines_capacity(
    start_gateway: StartGateway,
) -> None:
    callee, _, _ = await start_gateway()
    gateway, engine, calls = await start_gateway(trunk=f"127.0.0.1:{callee.port}")
    gateway.admission.capacity = {"echo": 1}
    uac = await RawUac(("127.0.0.1", gateway.port)).open()
    try:
        assert (await uac.invite(pcmu_offer(uac.port + 2))).status == 200
        with pytest.raises(CallFailed) as full:
            await gateway.place_call("15550001111", "bot")
        assert full.value.status == 503
        assert len(engine.sessions) == 1  # refused before the engine opened: nothing dialled
        assert gateway.admission.refused == {("echo", "sip"): 1}
        assert (await uac.bye()).status == 200
        await until(lambda: len(calls.ledgers) == 1, "the inbound call to end")
        # The place is free: the outbound call takes it, and an inbound one is then refused.
        call = await gateway.place_call("15550001111", "bot")
        other = await RawUac(("127.0.0.1", gateway.port)).open()
        try:
            assert (await other.invite(pcmu_offer(other.port + 2))).status == 503
        finally:
            other.close()
        call.hangup()
        await call.ended.wait()
        assert gateway.admission.load("echo", 0.0).in_use == 0
    finally:
        uac.close()
