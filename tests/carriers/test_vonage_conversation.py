"""The shared scripted conversation over Vonage's Voice API websocket, interruption included:
signed answer webhook, NCCO, L16 frames, notify echoes as marks, clear."""

from __future__ import annotations

import asyncio

import pytest
from conversation import EchoRecorder, check_conversation, conversation, gateway

from gateway.config import Settings
from gateway.sim.carriers import dialer_for
from gateway.sim.carriers.dial import place_carrier_call

SECRET = "vonage-signature-secret-0123456789"


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_vonage_holds_the_conversation_with_an_interruption(rate: int) -> None:
    engine = EchoRecorder()
    settings = Settings(vonage_signature_secret=SECRET, vonage_rate=rate)
    async with gateway(settings, engine) as (url, ended):
        async with asyncio.timeout(30):
            report = await place_carrier_call(url, conversation(), dialer_for("vonage", SECRET))
        record = await ended.record(report.call_sid)
    check_conversation(report, record, engine)
    assert record["carrier"] == "vonage"
    assert any("exact" in str(e) for e in record["events"]), record["events"]
    assert any(f"l16-le@{rate}" in str(e) for e in record["events"]), record["events"]


async def test_vonage_answer_webhook_signed_with_another_secret_is_refused() -> None:
    engine = EchoRecorder()
    async with gateway(Settings(vonage_signature_secret=SECRET), engine) as (url, _):
        dialer = dialer_for("vonage", "another-secret-0123456789abcdefgh")
        report = await place_carrier_call(url, conversation(), dialer)
    assert report.http_status == 403 and not report.streamed
    assert engine.sessions == []
