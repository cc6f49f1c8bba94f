"""The simulator's Twilio REST stand-in driven by the real twilio client, and whole campaigns
over it: a real gateway answers, the dial plan routes on the caller ID, contact variables
reach the engine, AMD leaves a message on a machine or hangs up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from campaignkit import write_campaign
from fastapi import FastAPI, Request, Response
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.campaigns.api import campaign_router
from gateway.campaigns.carrier import TwilioCalls
from gateway.campaigns.dialler import Dialler
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import open_store
from gateway.carriers.twilio.control import rest_client
from gateway.carriers.twilio.stream_token import StreamTokens
from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.callee import Callee, CalleeBook
from gateway.sim.rest import TwilioRestSim
from gateway.sim.script import CallerScript

TOKEN = "campaign-sim-token"
PLAN = Path(__file__).resolve().parents[2] / "dialplans" / "campaign-callback.yaml"


def tone(ms: int, freq: float = 440.0) -> bytes:
    t = np.arange(ms * 8) / 8000
    return (np.sin(2 * np.pi * freq * t) * 0.3 * 32767).astype("<i2").tobytes()


async def until(predicate, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class Recorder:
    """A tiny HTTP app keeping every callback it gets."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], str]] = []
        self.app = FastAPI()

        @self.app.post("/{path:path}")
        async def keep(path: str, request: Request) -> Response:
            form = await request.form()
            params = {k: v for k, v in form.items() if isinstance(v, str)}
            self.got.append((str(request.url), params, request.headers["x-twilio-signature"]))
            return Response(status_code=204)


async def test_rest_standin_follows_the_calls_api_through_the_twilio_client() -> None:
    book = CalleeBook({"+13125550172": Callee.busy(ring_s=0.1)},
                      default=Callee.person(CallerScript().pause(200), ring_s=0.1,
                                            amd_after_s=0.02))  # fmt: skip
    sim = TwilioRestSim(book, auth_token=TOKEN, time_scale=0.1)
    recorder = Recorder()
    async with serve(sim.app()) as api, serve(recorder.app) as hooks:
        client = rest_client(sim.account_sid, TOKEN, api)
        twiml = "<Response><Say>Hello there</Say><Hangup/></Response>"
        call = await asyncio.to_thread(
            client.calls.create, to="+13125550170", from_="+13125550150", twiml=twiml,
            status_callback=f"{hooks}/status?attempt=a1",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            machine_detection="Enable", async_amd="true",
            async_amd_status_callback=f"{hooks}/amd?attempt=a1", timeout=20,
        )  # fmt: skip
        assert call.status == "queued" and call.sid.startswith("CA") and len(call.sid) == 34
        busy = await asyncio.to_thread(client.calls.create, to="+13125550172",
                                       from_="+13125550150", url=f"{hooks}/twiml")  # fmt: skip
        await until(lambda: sim.calls[call.sid].done and sim.calls[busy.sid].done)
        fetched = await asyncio.to_thread(client.calls(call.sid).fetch)
        assert (fetched.status, fetched.answered_by, fetched.direction) == (
            "completed", "human", "outbound-api")  # fmt: skip
        assert sim.calls[call.sid].said == ["Hello there"]
        listed = await asyncio.to_thread(client.calls.list, to="+13125550170")
        assert [c.sid for c in listed] == [call.sid]
        assert (await asyncio.to_thread(client.calls(busy.sid).fetch)).status == "busy"
        with pytest.raises(TwilioRestException) as bad:
            await asyncio.to_thread(client.calls.create, to="12", from_="+13125550150", twiml=twiml)
        assert (bad.value.status, bad.value.code) == (400, 21211)
        wrong = rest_client(sim.account_sid, "not-the-token", api)
        with pytest.raises(TwilioRestException) as denied:
            await asyncio.to_thread(wrong.calls.create, to="+13125550170",
                                    from_="+13125550150", twiml=twiml)  # fmt: skip
        assert denied.value.status == 401
    await sim.aclose()
    validator = RequestValidator(TOKEN)
    statuses = [p["CallStatus"] for url, p, _ in recorder.got if "/status" in url]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
    for url, params, signature in recorder.got:
        assert validator.validate(url, params, signature), url
    amd = [p for url, p, _ in recorder.got if "/amd" in url]
    assert amd and amd[0]["AnsweredBy"] == "human" and "MachineDetectionDuration" in amd[0]
    final = [p for url, p, _ in recorder.got if p.get("CallStatus") == "completed"][0]
    assert int(final["CallDuration"]) >= 0 and final["CallbackSource"] == "call-progress-events"


async def test_rest_standin_cancels_a_ringing_call_and_hangs_up_a_live_one() -> None:
    book = CalleeBook(
        {"+13125550180": Callee.no_answer()},
        default=Callee.person(CallerScript().pause(30_000), ring_s=0.05),
    )
    sim = TwilioRestSim(book, auth_token=TOKEN)
    async with serve(sim.app()) as api:
        client = rest_client(sim.account_sid, TOKEN, api)
        twiml = "<Response><Pause length='30'/></Response>"
        ringing = await asyncio.to_thread(client.calls.create, to="+13125550180",
                                          from_="+13125550150", twiml=twiml)  # fmt: skip
        live = await asyncio.to_thread(client.calls.create, to="+13125550181",
                                       from_="+13125550150", twiml=twiml)  # fmt: skip
        await until(lambda: sim.calls[live.sid].status == "in-progress")
        await asyncio.to_thread(client.calls(live.sid).update, status="canceled")  # no effect
        await asyncio.to_thread(client.calls(ringing.sid).update, status="canceled")
        await until(lambda: sim.calls[ringing.sid].done)
        assert sim.calls[live.sid].status == "in-progress"
        await asyncio.to_thread(client.calls(live.sid).update, status="completed")
        await until(lambda: sim.calls[live.sid].done)
    await sim.aclose()
    assert sim.calls[ringing.sid].status == "canceled"
    assert (sim.calls[live.sid].status, sim.calls[live.sid].ended_by) == ("completed", "api")


class RecordingEcho(EchoEngine):
    """The echo engine, keeping the context of every call it serves."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts = []

    async def open(self, context):
        self.contexts.append(context)
        return await super().open(context)


@pytest.mark.parametrize("on_machine", ["message", "hangup"])
async def test_campaign_runs_over_the_simulator_with_amd(tmp_path: Path, on_machine: str) -> None:
    body = f"""\
        dialplan: {PLAN}
        windows: ["00:00-24:00"]
        pacing: {{calls_per_second: 10, max_concurrent: 4}}
        retry:
          busy: {{times: 1, after: [1s]}}
          machine: {{times: 1, after: [1s]}}
        max_attempts: 2
        amd: {{enabled: true, on_machine: {on_machine}, message: "Hi {{first_name}}, call us."}}
        """
    contacts = "phone,first_name\n+13125550170,Ann\n+13125550171,Bob\n+13125550172,Cy\n"
    path = write_campaign(tmp_path, body, contacts=contacts)
    book = CalleeBook({
        "+13125550170": Callee.person(
            CallerScript().pause(200).say(tone(400)).wait_for_bot(300, 3), ring_s=0.2),
        "+13125550171": Callee.voicemail(tone(700, 300), ring_s=0.2, record_s=4),
        "+13125550172": Callee.busy(ring_s=0.1),
    })  # fmt: skip
    sim = TwilioRestSim(book, auth_token=TOKEN, time_scale=0.05)
    store = open_store(str(tmp_path / "c.db"))
    engine = RecordingEcho()
    async with serve(sim.app()) as api:
        carrier = TwilioCalls(sim.account_sid, TOKEN, api_base=api)
        settings = Settings(
            dialplan=str(PLAN),
            twilio_auth_token=TOKEN,
            twilio_account_sid=sim.account_sid,
            twilio_api_base=api,
            engine="local",  # the plan's bots name local: the recording engine stands in for it
        )
        app = create_app(settings, engine=engine)
        app.include_router(campaign_router(store, twilio_auth_token=TOKEN, carrier=carrier))
        async with serve(app) as gateway:
            create_campaign(store, path, time.time())
            store.change_state("spring", "start", time.time())
            dialler = Dialler(store, "spring", carrier, public_url=gateway, poll_s=0.05,
                              stream_tokens=StreamTokens.derive(auth_token=TOKEN))  # fmt: skip
            await asyncio.wait_for(dialler.run(), 60)
    await sim.aclose()
    rows = {r["phone"]: r for r in store.contacts("spring")}
    ann, bob, cy = rows["+13125550170"], rows["+13125550171"], rows["+13125550172"]
    assert (ann["outcome"], ann["answered_by"], ann["attempts"]) == ("answered", "human", 1)
    assert (cy["outcome"], cy["attempts"]) == ("busy", 2)
    by_number = {c.to: c for c in sim.calls.values()}
    if on_machine == "message":
        assert (bob["outcome"], bob["machine_action"], bob["attempts"]) == (
            "voicemail",
            "message",
            1,
        )
        assert by_number["+13125550171"].said == ["Hi Bob, call us."]  # after the beep
    else:
        assert (bob["outcome"], bob["attempts"]) == ("machine", 2)  # retried once, hung up twice
        assert all(c.said == [] and c.ended_by == "api" for c in sim.calls.values()
                   if c.to == "+13125550171")  # fmt: skip
    # The dial plan routed the answered calls on our caller ID; the contact's columns and the
    # attempt key reached the engine's CallContext.parameters.
    ann_context = next(c for c in engine.contexts if c.parameters.get("to") == "+13125550170")
    params = ann_context.parameters
    assert (params["first_name"], params["route"], params["branch"]) == (
        "Ann", "callback-line", "campaign-call")  # fmt: skip
    assert params["attempt"] == "spring:1:1" and params["direction"] == "outbound-api"
    assert params["flow"].endswith("campaign-outbound.yaml")
    report = by_number["+13125550170"].streams[0]
    assert report.streamed and not report.violations and report.media_received > 0
    for call in sim.calls.values():  # every callback reached the campaign router, signed
        key = dict(parse_qsl(urlsplit(call.params["StatusCallback"]).query))["attempt"]
        assert key.startswith("spring:")
        assert all(status == 204 for _, _, status in call.callbacks)
