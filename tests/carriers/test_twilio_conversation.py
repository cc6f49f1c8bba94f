"""The shared scripted conversation over Twilio: the baseline every other carrier matches."""

from __future__ import annotations

import asyncio

from conversation import EchoRecorder, check_conversation, conversation, gateway

from gateway.config import Settings
from gateway.sim.caller import place_call

TOKEN = "conversation-twilio-token"


async def test_twilio_holds_the_conversation_with_an_interruption() -> None:
    engine = EchoRecorder()
    async with gateway(Settings(twilio_auth_token=TOKEN), engine) as (url, ended):
        async with asyncio.timeout(30):
            report = await place_call(url, conversation(), auth_token=TOKEN)
        record = await ended.record(report.call_sid)
    check_conversation(report, record, engine)
    assert record["carrier"] == "twilio"
