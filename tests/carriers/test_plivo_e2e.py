"""Plivo end to end: the simulated Plivo calls a real gateway (answer XML, stream, REST)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from conversation import (
    TRANSFER_TO,
    EchoRecorder,
    check_conversation,
    conversation,
    gateway,
    speech_like,
)

from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.carriers.dial import place_carrier_call
from gateway.sim.carriers.plivo import PlivoDialer, PlivoRestSim, sign_v3
from gateway.sim.report import CallReport
from gateway.sim.script import CallerScript

AUTH_ID = "MAXXXXXXXXXXXXXXXXXX"
TOKEN = "plivo-test-auth-token"


async def call(url: str, script: CallerScript, dialer: PlivoDialer, **kw: Any) -> CallReport:
    async with asyncio.timeout(30):
        return await place_carrier_call(url, script, dialer, **kw)


@pytest.mark.parametrize(
    "kind", ["audio/x-mulaw;rate=8000", "audio/x-l16;rate=8000", "audio/x-l16;rate=16000"]
)
async def test_plivo_holds_the_conversation_with_an_interruption(kind: str) -> None:
    engine = EchoRecorder()
    settings = Settings(plivo_auth_token=TOKEN, plivo_content_type=kind)
    async with gateway(settings, engine) as (url, ended):
        report = await call(url, conversation(), PlivoDialer(TOKEN))
        record = await ended.record(report.call_sid)
    check_conversation(report, record, engine)
    assert record["carrier"] == "plivo"
    heard = [tuple(e[1:]) for e in record["events"] if e[1] == "heard-position"]
    assert heard == [("heard-position", "exact (carrier echoes marks)")]
    (stream,) = [v for v in report.twiml if v.verb == "Stream"]
    assert stream.attributes["contentType"] == kind
    assert "stream_token=" in stream.text  # the binding rides in the signed URL


@pytest.mark.parametrize("action", ["hangup", "transfer"])
async def test_plivo_bot_hangs_up_and_transfers_through_the_rest_api(action: str) -> None:
    rest = PlivoRestSim(AUTH_ID, TOKEN)
    async with serve(rest.app()) as api:
        settings = Settings(plivo_auth_id=AUTH_ID, plivo_auth_token=TOKEN, plivo_api_base=api)
        script = CallerScript().pause(200).dtmf("#" if action == "hangup" else "0").pause(5000)
        async with gateway(settings, EchoRecorder()) as (url, ended):
            report = await call(url, script, PlivoDialer(TOKEN), on_pump=rest.track)
            record = await ended.record(report.call_sid)
    assert report.ended_by == "carrier", report.format()
    assert report.duration_s < 3.0
    ((call_id, done, detail),) = rest.actions
    assert call_id == report.call_sid and done == action and rest.rejected == []
    if action == "transfer":
        assert detail == TRANSFER_TO  # Plivo fetched the gateway's <Dial>, signed
    assert record["dtmf_in"] == 1 and record["errors"] == []


async def test_plivo_answer_unsigned_or_forged_is_refused() -> None:
    async with gateway(Settings(plivo_auth_token=TOKEN), EchoRecorder()) as (url, _):
        dialer = PlivoDialer(TOKEN)
        hook = dialer.webhook(CallReport(caller="+1", called="+2"), url)
        async with httpx.AsyncClient(base_url=url) as client:
            plain = {"Content-Type": hook.headers["Content-Type"]}
            assert (
                await client.post(hook.path, content=hook.body, headers=plain)
            ).status_code == 403
            forged = PlivoDialer("another-token").webhook(CallReport(caller="+1", called="+2"), url)
            resp = await client.post(forged.path, content=forged.body, headers=forged.headers)
            assert resp.status_code == 403
            good = await client.post(hook.path, content=hook.body, headers=hook.headers)
            assert good.status_code == 200 and "<Stream" in good.text
            bad = {"CallUUID": "../../Call", "From": "1", "To": "2"}
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            headers.update(sign_v3(TOKEN, "POST", url + "/plivo/answer", bad))
            resp = await client.post("/plivo/answer", content=urlencode(bad), headers=headers)
            assert resp.status_code == 400


async def test_plivo_stream_upgrade_must_be_signed_and_bound_to_its_call() -> None:
    engine = EchoRecorder()
    async with gateway(Settings(plivo_auth_token=TOKEN), engine) as (url, _):
        dialer = PlivoDialer(TOKEN)
        original = dialer.answer

        def unsigned(text, public, report, *, keep_media_log):  # type: ignore[no-untyped-def]
            plan = original(text, public, report, keep_media_log=keep_media_log)
            plan.headers = {}
            return plan

        dialer.answer = unsigned  # type: ignore[method-assign]
        report = await call(url, CallerScript().say(speech_like(300)), dialer)
        assert report.ended_by in ("gateway", "error") and not report.ok, report.format()

        dialer = PlivoDialer(TOKEN)
        original2 = dialer.answer

        def other_call(text, public, report, *, keep_media_log):  # type: ignore[no-untyped-def]
            plan = original2(text, public, report, keep_media_log=keep_media_log)
            plan.sim.call_uuid = "0f0e0d0c-0b0a-4000-8000-000000000000"
            return plan

        dialer.answer = other_call  # type: ignore[method-assign]
        report = await call(url, CallerScript().say(speech_like(300)), dialer)
        assert report.ended_by == "gateway" and report.close_code == 1008, report.format()
    assert engine.sessions == []
