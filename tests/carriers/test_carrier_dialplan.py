"""Dial-plan routing works the same on Telnyx and Plivo as on Twilio: a number's bot gets its
route and greeting, a number sent elsewhere gets the carrier's transfer document."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conversation import EchoRecorder, gateway, speech_like

from gateway.config import Settings
from gateway.sim.carriers.dial import place_carrier_call
from gateway.sim.carriers.plivo import PlivoDialer
from gateway.sim.carriers.telnyx import TelnyxDialer
from gateway.sim.script import CallerScript

PRIVATE, PUBLIC = TelnyxDialer.new_key()
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


@pytest.mark.parametrize("carrier", ["telnyx", "plivo"])
async def test_dial_plan_routes_a_carrier_call_to_its_bot_and_elsewhere(
    carrier: str, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    settings = Settings(
        dialplan=str(plan),
        engine="echo",
        telnyx_public_key=PUBLIC,
        plivo_auth_token="tok",
    )
    dialer = TelnyxDialer(PRIVATE) if carrier == "telnyx" else PlivoDialer("tok")
    engine = Recording()
    script = CallerScript().say(speech_like(300)).wait_for_bot(silence_ms=200, timeout_s=5)
    async with gateway(settings, engine) as (url, ended):
        async with asyncio.timeout(30):
            bot = await place_carrier_call(url, script, dialer, called="+15005550001")
            record = await ended.record(bot.call_sid)
            away = await place_carrier_call(url, script, dialer, called="+15005550002")
    assert bot.ok and bot.streamed, bot.format()
    assert record["route"] == "front" and record["carrier"] == carrier
    (context,) = engine.contexts
    assert context.parameters["route"] == "front"  # type: ignore[attr-defined]
    assert context.parameters["greeting"] == "Hello from the front desk."  # type: ignore[attr-defined]
    assert not away.streamed and away.ended_by == "twiml"
    (dial,) = [verb for verb in away.twiml if verb.verb == "Dial"]
    assert [(c.verb, c.text) for c in dial.children] == [("Number", "+15005550009")]
