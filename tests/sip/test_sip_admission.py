"""A SIP gateway whose engine is full answers new calls 503 with Retry-After (RFC 3261
21.5.4: a trunk then tries its next gateway) and takes calls again once a place is free."""

from __future__ import annotations

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
