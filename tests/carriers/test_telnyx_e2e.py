"""Telnyx end to end: the simulated Telnyx calls a real gateway (TeXML, media stream, REST)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

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
from telnyx.lib.webhook_verification import verify_webhook_signature

from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.carriers.dial import place_carrier_call
from gateway.sim.carriers.telnyx import TelnyxDialer, TelnyxRestSim
from gateway.sim.carriers.wire import L16, Wire
from gateway.sim.report import CallReport
from gateway.sim.script import CallerScript

PRIVATE, PUBLIC = TelnyxDialer.new_key()
API_KEY = "KEY-telnyx-test"


async def call(url: str, script: CallerScript, dialer: TelnyxDialer, **kw: Any) -> CallReport:
    async with asyncio.timeout(30):
        return await place_carrier_call(url, script, dialer, **kw)


@pytest.mark.parametrize(
    ("codec", "wire"),
    [
        ("PCMU", None),
        ("PCMA", None),
        ("PCMU", Wire(L16, 16000, big_endian=True)),
    ],
    ids=["pcmu", "pcma", "l16-16k"],
)
async def test_telnyx_holds_the_conversation_with_an_interruption(
    codec: str, wire: Wire | None
) -> None:
    engine = EchoRecorder()
    settings = Settings(telnyx_public_key=PUBLIC, telnyx_codec=codec)
    async with gateway(settings, engine) as (url, ended):
        report = await call(url, conversation(), TelnyxDialer(PRIVATE, wire=wire))
        record = await ended.record(report.call_sid)
    check_conversation(report, record, engine)
    assert record["carrier"] == "telnyx"
    # Telnyx echoes marks as they play: the heard position is exact.
    heard = [tuple(e[1:]) for e in record["events"] if e[1] == "heard-position"]
    assert heard == [("heard-position", "exact (carrier echoes marks)")]
    stream = next(v for v in report.twiml if v.verb == "Connect").children[0]
    assert stream.attributes["bidirectionalMode"] == "rtp"
    assert stream.attributes["bidirectionalCodec"] == codec


def test_telnyx_stand_in_signs_as_the_sdk_verifies() -> None:
    dialer = TelnyxDialer(PRIVATE)
    hook = dialer.webhook(CallReport(caller="+1", called="+2"), "http://x")
    verify_webhook_signature(hook.body, hook.headers, PUBLIC)  # raises if not


@pytest.mark.parametrize("action", ["hangup", "transfer"])
async def test_telnyx_bot_hangs_up_and_transfers_through_call_control(action: str) -> None:
    rest = TelnyxRestSim(API_KEY)
    async with serve(rest.app()) as api:
        settings = Settings(
            telnyx_public_key=PUBLIC, telnyx_api_key=API_KEY, telnyx_api_base=api + "/v2"
        )
        engine = EchoRecorder()
        script = CallerScript().pause(200).dtmf("#" if action == "hangup" else "0").pause(5000)
        async with gateway(settings, engine) as (url, ended):
            report = await call(url, script, TelnyxDialer(PRIVATE), on_pump=rest.track)
            record = await ended.record(report.call_sid)
    assert report.ended_by == "carrier", report.format()
    assert report.duration_s < 3.0  # did not play out the 5 s pause
    ((call_id, done, body),) = rest.actions
    assert call_id == report.call_sid and done == action and rest.rejected == []
    if action == "transfer":
        assert body["to"] == TRANSFER_TO
    assert record["dtmf_in"] == 1 and record["errors"] == []


async def test_telnyx_without_an_api_key_hangs_up_by_closing_the_stream() -> None:
    settings = Settings(telnyx_public_key=PUBLIC)
    async with gateway(settings, EchoRecorder()) as (url, ended):
        report = await call(
            url, CallerScript().pause(200).dtmf("#").pause(5000), TelnyxDialer(PRIVATE)
        )
        await ended.record(report.call_sid)
    assert report.ended_by == "gateway" and report.close_code == 1000, report.format()


async def test_telnyx_webhook_unsigned_forged_or_stale_is_refused() -> None:
    dialer = TelnyxDialer(PRIVATE)
    async with gateway(Settings(telnyx_public_key=PUBLIC), EchoRecorder()) as (url, _):
        async with httpx.AsyncClient(base_url=url) as client:
            hook = dialer.webhook(CallReport(caller="+1", called="+2"), url)
            unsigned = {"Content-Type": hook.headers["Content-Type"]}
            assert (
                await client.post(hook.path, content=hook.body, headers=unsigned)
            ).status_code == 403
            forged = dict(hook.headers)
            forged["telnyx-signature-ed25519"] = TelnyxDialer(TelnyxDialer.new_key()[0]).sign(
                hook.body, int(forged["telnyx-timestamp"])
            )["telnyx-signature-ed25519"]
            assert (
                await client.post(hook.path, content=hook.body, headers=forged)
            ).status_code == 403
            stale = dict(hook.headers, **dialer.sign(hook.body, int(time.time()) - 400))
            assert (
                await client.post(hook.path, content=hook.body, headers=stale)
            ).status_code == 403
            good = await client.post(hook.path, content=hook.body, headers=hook.headers)
            assert good.status_code == 200 and "<Stream" in good.text


async def test_telnyx_webhook_with_a_foreign_call_id_is_refused() -> None:
    dialer = TelnyxDialer(PRIVATE)
    async with gateway(Settings(telnyx_public_key=PUBLIC), EchoRecorder()) as (url, _):
        async with httpx.AsyncClient(base_url=url) as client:
            body = b"CallSid=..%2F..%2Fcalls&From=%2B1&To=%2B2"
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            headers.update(dialer.sign(body, int(time.time())))
            resp = await client.post("/telnyx/voice", content=body, headers=headers)
    assert resp.status_code == 400 and "call control id" in resp.text


async def test_telnyx_stream_with_another_calls_token_is_refused() -> None:
    engine = EchoRecorder()
    async with gateway(Settings(telnyx_public_key=PUBLIC), engine) as (url, ended):
        dialer = TelnyxDialer(PRIVATE)
        original = dialer.answer

        def swap_call(text, public, report, *, keep_media_log):  # type: ignore[no-untyped-def]
            plan = original(text, public, report, keep_media_log=keep_media_log)
            plan.sim.call_control_id = "v3:" + "A" * 40  # a stream naming another call
            return plan

        dialer.answer = swap_call  # type: ignore[method-assign]
        report = await call(url, CallerScript().say(speech_like(300)), dialer)
    assert report.ended_by == "gateway" and report.close_code == 1008, report.format()
    assert engine.sessions == []
