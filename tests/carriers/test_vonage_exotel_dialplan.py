"""Dial-plan routing works the same on Vonage and Exotel as on Twilio: a number's bot gets its
route and greeting; a number sent elsewhere gets Vonage's transfer NCCO, and on Exotel (whose
applet only streams) no stream."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from conversation import EchoRecorder, gateway, speech_like

from gateway.config import Settings
from gateway.sim.carriers import dialer_for
from gateway.sim.carriers.dial import place_carrier_call
from gateway.sim.carriers.vonage import new_uuid, sign_webhook
from gateway.sim.script import CallerScript

SECRET = "vonage-signature-secret-0123456789"
PLAN = """\
version: 1
timezone: UTC
default_route: front
routes:
  front:
    numbers: ["+15005550001"]
    otherwise:
      action: bot
      engine: echo
      greeting: "Hello from the front desk."
  away:
    numbers: ["+15005550002"]
    otherwise:
      action: transfer
      to: "+15005550009"
"""


class Recording(EchoRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[object] = []

    async def open(self, context):  # type: ignore[no-untyped-def]
        self.contexts.append(context)
        return await super().open(context)


@pytest.mark.parametrize("carrier", ["vonage", "exotel"])
async def test_dial_plan_routes_a_carrier_call_to_its_bot_and_elsewhere(
    carrier: str, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    settings = Settings(
        dialplan=str(plan),
        engine="echo",
        vonage_signature_secret=SECRET,
        exotel_api_key="k",
        exotel_api_token="t0k",
    )
    dialer = dialer_for(carrier, SECRET if carrier == "vonage" else "k:t0k")
    engine = Recording()
    script = CallerScript().say(speech_like(300)).wait_for_bot(silence_ms=200, timeout_s=5)
    async with gateway(settings, engine) as (url, ended):
        async with asyncio.timeout(30):
            bot = await place_carrier_call(url, script, dialer, called="+15005550001")
            record = await ended.record(bot.call_sid)
            away = await place_carrier_call(url, script, dialer, called="+15005550002")
            body = json.dumps({"uuid": new_uuid(), "from": "15005550006", "to": "15005550002"})
            token = sign_webhook(SECRET, body.encode(), time.time())
            async with httpx.AsyncClient() as client:
                ncco = await client.post(
                    url + "/vonage/answer",
                    content=body,
                    headers={"authorization": f"Bearer {token}"},
                )
    assert bot.ok and bot.streamed, bot.format()
    assert record["route"] == "front" and record["carrier"] == carrier
    (context,) = engine.contexts
    assert context.parameters["route"] == "front"  # type: ignore[attr-defined]
    assert context.parameters["greeting"] == "Hello from the front desk."  # type: ignore[attr-defined]
    assert not away.streamed
    if carrier == "vonage":
        assert away.ended_by == "twiml" and "ncco: connect" in away.notes, away.format()
        [connect] = ncco.json()
        assert connect["endpoint"] == [{"number": "15005550009", "type": "phone"}]
    else:
        assert away.http_status == 503
