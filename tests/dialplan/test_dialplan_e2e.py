"""Each shipped dial plan, end to end: a signed simulated call through a real gateway."""

from __future__ import annotations

import contextlib
import json
import shutil
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import orjson
import pytest
import websockets
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect

from engine.echo import EchoEngine
from engine.local.flow import FlowRunner, load_flow
from gateway.app import create_app
from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript

PLANS = Path(__file__).resolve().parents[2] / "dialplans"
TOKEN = "dial-plan-e2e-token"
NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")


def speech_like(ms: int = 400) -> bytes:
    t = np.arange(ms * 8) / 8000
    return (np.sin(2 * np.pi * 300 * t) * 9000).astype("<i2").tobytes()


def short_script() -> CallerScript:
    return CallerScript().pause(100).say(speech_like(), "hello").wait_for_bot(300, timeout_s=3)


class LocalStandIn(EchoEngine):
    """Serves the calls the shipped plans send to the local engine (the gateway's default), and
    keeps each call's context: these tests are about routing, not speech, so no models load."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts = []

    async def open(self, context):
        self.contexts.append(context)
        return await super().open(context)


async def call(plan: str, to: str, from_: str, at: datetime, tmp_path: Path):
    settings = Settings(
        dialplan=str(PLANS / plan), twilio_auth_token=TOKEN, records_dir=str(tmp_path)
    )
    engine = LocalStandIn()
    app = create_app(settings, engine, wall_clock=lambda: at)
    async with serve(app) as url:
        report = await place_call(url, short_script(), auth_token=TOKEN, caller=from_, called=to)
    return report, app, engine


def stream_parameters(report) -> dict[str, str]:
    return {
        attrs["name"]: attrs["value"]
        for verb, attrs, _ in report.twiml_verbs()
        if verb == "Parameter"
    }


def verbs(report) -> list[str]:
    return [verb for verb, _, _ in report.twiml_verbs()]


def bot(flow: str | None = None, **parameters: str) -> dict[str, object]:
    """A bot on the local engine: the flow file it runs and call parameters it must receive."""
    return {"flow": flow, "parameters": parameters}


# (plan, to, from, local time, route, branch, what the caller meets)
CASES = [
    ("default.yaml", "+15005550001", "+15005550006", datetime(2026, 12, 2, 10, tzinfo=NY),
     "everyone", "otherwise", bot("demo.yaml")),
    ("business-hours.yaml", "+12125550100", "+13475550123", datetime(2026, 12, 2, 10, tzinfo=NY),
     "front-desk", "open", bot("front-desk.yaml", transfer_to="+12125550111",
                               greeting="Riverside Dental, good Wednesday! How can I help you?")),
    ("business-hours.yaml", "+12125550100", "+13475550123", datetime(2026, 12, 25, 10, tzinfo=NY),
     "front-desk", "holiday", ["Say", "Record"]),
    ("business-hours.yaml", "+12125550100", "+13475550123",
     datetime(2026, 12, 24, 18, 30, tzinfo=NY), "front-desk", "christmas-eve",
     ["Say", "Say", "Record"]),
    ("business-hours.yaml", "+12125550100", "+12125550199", datetime(2026, 12, 5, 22, tzinfo=NY),
     "front-desk", "emergencies", ["Dial", "Number"]),
    ("business-hours.yaml", "+12125550100", "+13475550123", datetime(2026, 12, 5, 22, tzinfo=NY),
     "front-desk", "otherwise", ["Say", "Record"]),
    ("multi-number.yaml", "+14155550101", "+13475550123", datetime(2026, 12, 2, 10, tzinfo=NY),
     "support", "otherwise", bot("support.yaml", transfer_to="sip:support@pbx.acme.example",
                                 greeting="Acme support. What can I help you with?")),
    ("multi-number.yaml", "+14155550100", "+13475550123", datetime(2026, 12, 2, 10, tzinfo=NY),
     "sales", "otherwise", bot(None, voice="en_US-joe-medium",
                               prompt="You are Acme's sales assistant. Be brief and friendly. "
                                      "Today is Wednesday, December 02.")),
    ("multi-number.yaml", "+14155550100", "+16505550123", datetime(2026, 12, 2, 10, tzinfo=NY),
     "sales", "key-account", ["Dial", "Sip"]),
    ("multi-number.yaml", "+14155550999", "+13475550123", datetime(2026, 12, 2, 10, tzinfo=NY),
     "local-block", "otherwise", ["Say"]),
    ("campaign-callback.yaml", "+13125550150", "+13475550123",
     datetime(2026, 12, 2, 10, tzinfo=CHI), "callback-line", "open",
     bot("campaign-callback.yaml",
         greeting="Thanks for calling the Lakeside Clinic reminder line.")),
    ("campaign-callback.yaml", "+13125550150", "+13125550170",
     datetime(2026, 12, 2, 10, tzinfo=CHI), "callback-line", "known-contact",
     bot("campaign-callback.yaml",
         greeting="Thanks for calling back. This is the Lakeside Clinic reminder line.")),
    ("campaign-callback.yaml", "+13125550150", "anonymous", datetime(2026, 12, 2, 10, tzinfo=CHI),
     "callback-line", "withheld", ["Say", "Record"]),
]  # fmt: skip


@pytest.mark.parametrize(("plan", "to", "from_", "at", "route", "branch", "meets"), CASES)
async def test_gateway_routes_call_by_shipped_plan(
    tmp_path, plan, to, from_, at, route, branch, meets
):
    report, app, engine = await call(plan, to, from_, at, tmp_path)
    assert report.http_status == 200 and not report.violations
    if isinstance(meets, dict):
        assert report.streamed
        params = stream_parameters(report)
        assert (params["route"], params["branch"]) == (route, branch)
        assert params["plan"] == app.state.plans.current.digest
        record = json.loads((tmp_path / f"{report.call_sid}.json").read_text())
        # the media session found the plan's bot and opened the engine it names
        assert record["engine"] == "local"
        (context,) = engine.contexts
        sent = context.parameters
        assert {k: sent.get(k) for k in meets["parameters"]} == meets["parameters"]
        if meets["flow"] is None:
            assert "flow" not in sent
        else:
            # The flow the plan names loads, and opens with the plan's greeting.
            assert Path(sent["flow"]).name == meets["flow"]
            opening = FlowRunner(load_flow(sent["flow"]), sent).start()
            assert opening.lines[0] == sent.get("greeting", opening.lines[0])
            assert not opening.ends_call and opening.no_input_after is not None  # it asks
    else:
        assert not report.streamed
        assert verbs(report)[: len(meets)] == meets


async def test_gateway_transfer_no_answer_continues_with_plans_on_no_answer(tmp_path):
    at = datetime(2026, 12, 5, 22, tzinfo=NY)
    report, _, _ = await call("business-hours.yaml", "+12125550100", "+12125550199", at, tmp_path)
    dial = next(attrs for verb, attrs, _ in report.twiml_verbs() if verb == "Dial")
    action = dial["action"]
    assert action.startswith("http")
    # Twilio POSTs the dial outcome to the action URL, signed, with the names in its query.
    settings = Settings(dialplan=str(PLANS / "business-hours.yaml"), twilio_auth_token=TOKEN)
    app = create_app(settings, EchoEngine(), wall_clock=lambda: at)
    async with serve(app) as url:
        parts = urlsplit(action)
        local = url + parts.path + "?" + parts.query
        form = {"CallSid": report.call_sid, "DialCallStatus": "no-answer",
                "From": "+12125550199", "To": "+12125550100", "Direction": "inbound"}  # fmt: skip
        signature = RequestValidator(TOKEN).compute_signature(local, form)
        async with httpx.AsyncClient() as client:
            answer = await client.post(local, data=form, headers={"X-Twilio-Signature": signature})
            forged = await client.post(local, data=form, headers={"X-Twilio-Signature": "x"})
    assert answer.status_code == 200 and forged.status_code == 403
    assert "on-call dentist is unavailable" in answer.text and "<Record" in answer.text
    assert dict(parse_qsl(parts.query))["branch"] == "emergencies"


async def test_gateway_call_in_progress_keeps_plan_it_was_routed_by(tmp_path):
    plan = tmp_path / "plan.yaml"
    shutil.copy(PLANS / "default.yaml", plan)
    shutil.copytree(PLANS / "flows", tmp_path / "flows")
    settings = Settings(dialplan=str(plan), records_dir=str(tmp_path))
    app = create_app(settings, EchoEngine())
    holder = app.state.plans
    first = holder.current.digest
    form = {"CallSid": "CA" + "7" * 32, "From": "+15005550006", "To": "+15005550001"}
    async with serve(app) as url, httpx.AsyncClient() as client:
        # The call is routed (webhook) by the first plan...
        answer = await client.post(url + "/twilio/voice", data=form)
        stream = ET.fromstring(answer.text).find("./Connect/Stream")
        params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        assert params["plan"] == first
        # ...then the plan is edited before Twilio opens the call's media stream.
        plan.write_text(plan.read_text().replace("engine: local", "engine: tone"))
        assert holder.check_once() == []
        assert holder.current.digest != first
        ws_url = url.replace("http", "ws") + "/twilio/media"
        async with connect(ws_url) as ws:
            await ws.send(orjson.dumps({"event": "start", "start": {
                "streamSid": "MZ" + "1" * 32, "callSid": form["CallSid"],
                "customParameters": params,
            }}).decode())  # fmt: skip
            await ws.send('{"event":"stop","streamSid":"MZ' + "1" * 32 + '","stop":{}}')
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.recv()
        # A new call meets the new plan.
        newer = await place_call(url, short_script(), auth_token=None)
    assert '"engine":"local"' in (tmp_path / f"{form['CallSid']}.json").read_text()
    assert stream_parameters(newer)["plan"] == holder.current.digest
    assert '"engine":"tone"' in (tmp_path / f"{newer.call_sid}.json").read_text()


async def test_gateway_broken_plan_edit_keeps_running_plan(tmp_path):
    plan = tmp_path / "plan.yaml"
    shutil.copy(PLANS / "default.yaml", plan)
    shutil.copytree(PLANS / "flows", tmp_path / "flows")
    app = create_app(Settings(dialplan=str(plan), twilio_auth_token=TOKEN), EchoEngine())
    holder = app.state.plans
    before = holder.current.digest
    text = plan.read_text()
    line = text[: text.index("default_route:")].count("\n") + 1
    plan.write_text(text.replace("default_route: everyone", "default_rute: everyone"))
    problems = holder.check_once()
    assert problems and problems[0].line == line and "did you mean" in problems[0].message
    assert holder.current.digest == before
    async with serve(app) as url:
        report = await place_call(url, short_script(), auth_token=TOKEN)
    assert report.streamed and stream_parameters(report)["plan"] == before
