"""The openai engine end to end: simulated Twilio -> real gateway -> OpenAI Realtime stand-in.

Each test places a real call (``place_call``) to a real gateway (``create_app`` under
``serve``) whose engine talks to the stand-in over a real websocket, and asserts on what the
caller heard (the call recording) and on what the stand-in received.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from remotekit import (
    SILENCE,
    clear_times,
    gateway,
    level_samples,
    plan_file,
    settle,
    tone8k,
    voice_track,
)
from standins.common import audioop
from standins.openai import OpenAIScript, OpenAIStandIn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from engine.base import CallContext, EngineUnavailable
from engine.remote.openai import OpenAIRealtimeEngine
from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript

OPTIONS = {"silence_duration_ms": 300, "transcription_model": "gpt-4o-mini-transcribe"}
MARK_INTERVAL_MS = 40


def barge_script() -> tuple[CallerScript, bytes, bytes]:
    question, interruption = tone8k(600, 400), tone8k(500, 600)
    script = (
        CallerScript()
        .pause(200)
        .say(question, "question")
        .barge_in(600, interruption, "interruption")
        .wait_for_bot(silence_ms=600, timeout_s=8)
    )
    return script, question, interruption


async def test_twilio_call_passes_mulaw_through_and_truncates_where_the_caller_stopped(tmp_path):
    script, question, interruption = barge_script()
    async with OpenAIStandIn(OpenAIScript(reply_ms=2000, late_deltas=2)) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        async with gateway(engine, tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None, record=tmp_path / "c.wav")
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    assert conn.audio_format == "pcmu" and conn.session["type"] == "realtime"
    assert conn.session["audio"]["output"]["format"] == {"type": "audio/pcmu"}

    # No transcoding: every byte the caller sent reached input_audio_buffer.append untouched.
    assert len(conn.appended) == report.frames_sent * 160
    sent = [conn.appended[i : i + 160] for i in range(0, len(conn.appended), 160)]
    spoken = [bytes(f) for f in sent if f != SILENCE]
    expected = [
        audioop.lin2ulaw(pcm, 2)[i : i + 160]
        for pcm in (question, interruption)
        for i in range(0, len(pcm) // 2, 160)
    ]
    assert spoken == expected

    # The first reply was cut: truncated within one mark interval of what the caller heard,
    # and never beyond the audio received for it.
    first, second = standin.replies[:2]
    assert first.cancelled and first.late_deltas_sent == 2
    assert conn.errors_sent == []
    assert [item for item, _ in conn.truncates] == [first.item_id]
    _, end_ms = conn.truncates[0]
    caller, bot = voice_track(tmp_path / "c.wav")
    heard_ms = len(level_samples(bot, first.level)) / 8
    assert abs(end_ms - heard_ms) <= MARK_INTERVAL_MS, (end_ms, heard_ms)
    assert end_ms <= first.sent_ms

    # Nothing of the cut reply played after the clear; the next reply played in full.
    (clear_at,) = clear_times(report)
    late = level_samples(bot, first.level)
    assert late.size and late.max() <= round(clear_at * 8000) + 1
    assert len(level_samples(bot, second.level)) / 8 == pytest.approx(2000, abs=20)


async def test_pcm_audio_at_24k_in_the_ga_shape(tmp_path):
    options = {**OPTIONS, "audio_format": "pcm"}
    script = CallerScript().pause(100).say(tone8k(500), "hi").wait_for_bot(500, timeout_s=6)
    async with OpenAIStandIn(OpenAIScript(reply_ms=600)) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        async with gateway(engine, tmp_path, plan_file(tmp_path, options)) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    assert "OpenAI-Beta" not in conn.headers and conn.session["type"] == "realtime"
    assert conn.session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    # 24 kHz 16-bit: 48 bytes per ms of caller audio (resampled by the gateway).
    assert len(conn.appended) / 48 == pytest.approx(report.frames_sent * 20, abs=60)
    assert report.bot_audio_played_s == pytest.approx(0.6, abs=0.05)


async def test_greeting_and_transcripts_reach_the_call_ledger(tmp_path):
    script = CallerScript().wait_for_bot(400, timeout_s=5).say(tone8k(400)).wait_for_bot(400)
    async with OpenAIStandIn(OpenAIScript(greeting_ms=500, reply_ms=500)) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        plan = plan_file(tmp_path, OPTIONS, greeting="Hello from the test")
        async with gateway(engine, tmp_path, plan) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    creates = [m for m in standin.connections[0].received if m["type"] == "response.create"]
    assert "Hello from the test" in creates[0]["response"]["instructions"]
    ledger = next(tmp_path.glob("*.json")).read_text()
    assert "bot reply 1" in ledger and "caller utterance 1" in ledger


async def test_wrong_key_is_unavailable_before_the_call_starts():
    async with OpenAIStandIn() as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key="sk-wrong")
        with pytest.raises(EngineUnavailable, match="HTTP 401"):
            await engine.open(CallContext("CA1"))


async def test_session_update_refused_is_unavailable():
    async with OpenAIStandIn(OpenAIScript(session_error="Invalid model")) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        with pytest.raises(EngineUnavailable, match="Invalid model"):
            await engine.open(CallContext("CA1"))


async def test_unreachable_engine_gives_the_caller_the_fallback(tmp_path):
    async with OpenAIStandIn() as standin:
        url = standin.url  # the stand-in is gone once the block ends
    engine = OpenAIRealtimeEngine(url=url, api_key="sk-x", ready_timeout=2)
    script = CallerScript().pause(400)
    async with gateway(engine, tmp_path, plan_file(tmp_path, {})) as gw:
        report = await place_call(gw, script, auth_token=None)
    assert report.ended_by == "gateway" and report.close_code == 1013


async def test_session_limit_mid_call_reconnects_with_the_conversation_replayed(tmp_path):
    script = (
        CallerScript()
        .pause(100)
        .say(tone8k(400))
        .wait_for_bot(400, timeout_s=5)
        .pause(1500)
        .say(tone8k(400))
        .wait_for_bot(400, timeout_s=5)
    )
    async with OpenAIStandIn(OpenAIScript(reply_ms=500, max_session_s=2.0)) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        async with gateway(engine, tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin, connections=2)

    assert report.ok, report.format()
    first, second = standin.connections[:2]
    assert first.errors_sent == ["Your session hit the maximum duration."]
    replayed = [item["content"][0]["text"] for item in second.items_created]
    assert replayed[:2] == ["caller utterance 1", "bot reply 1"]
    assert len(standin.replies) == 2 and report.response_latencies_ms  # answered after it


async def test_engine_gone_mid_call_fails_the_call_over_to_its_fallback(tmp_path):
    script = CallerScript().pause(5000)
    async with OpenAIStandIn(OpenAIScript(drop_after_s=0.5, refuse_reconnects=True)) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        async with gateway(engine, tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None)

    assert report.ended_by == "gateway" and report.duration_s < 4
    ledger = next(tmp_path.glob("*.json")).read_text()
    assert "engine failed" in ledger and "HTTP 503" in ledger


async def test_caller_keys_reach_the_model_as_one_message_and_it_answers(tmp_path):
    script = (
        CallerScript()
        .pause(300)
        .dtmf("4")
        .dtmf("2")
        .dtmf("#")
        .wait_for_bot(silence_ms=500, timeout_s=8)
    )
    async with OpenAIStandIn(OpenAIScript(greeting_ms=600)) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        async with gateway(engine, tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    texts = [part["text"] for item in conn.items_created for part in item.get("content", [])]
    assert texts == ["The caller pressed 4 2 pound on the phone keypad."]
    assert report.bot_audio_played_s == pytest.approx(0.6, abs=0.06)  # the model's answer


async def test_standin_refuses_the_retired_beta_interface_with_error_and_close_4000():
    async with OpenAIStandIn() as standin:
        headers = {"Authorization": "Bearer sk-standin", "OpenAI-Beta": "realtime=v1"}
        async with connect(standin.url + "?model=gpt-realtime", additional_headers=headers) as ws:
            error = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
    assert error["type"] == "error" and error["error"]["code"] == "beta_api_shape_disabled"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000


def test_engine_refuses_the_beta_interface_at_start_up():
    with pytest.raises(ValueError, match="beta_api_shape_disabled"):
        OpenAIRealtimeEngine(url="ws://127.0.0.1:9", api_key="sk-x", api="beta")
    with pytest.raises(ValueError, match="never answer"):
        OpenAIRealtimeEngine(api_key="sk-x", options={"turn_detection": "none"})


async def test_standin_refuses_a_second_active_response():
    async with OpenAIStandIn(OpenAIScript(greeting_ms=2000)) as standin:
        headers = {"Authorization": "Bearer sk-standin"}
        async with connect(standin.url + "?model=gpt-realtime", additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "response.create"}))
            await ws.send(json.dumps({"type": "response.create"}))
            seen = []
            async with asyncio.timeout(5):
                while not {"error", "response.output_item.added"} <= {m["type"] for m in seen}:
                    seen.append(json.loads(await ws.recv()))
    (error,) = [m["error"] for m in seen if m["type"] == "error"]
    assert error["code"] == "conversation_already_has_active_response"
    assert [m["type"] for m in seen].count("response.created") == 1
    assert len(standin.replies) == 1


async def test_after_a_tool_call_the_model_speaks_again_without_the_caller(tmp_path):
    # record_result during a reply: the output goes back at once, and the follow-up
    # response.create only after that response's response.done (else the service refuses it
    # and the caller hears nothing until they speak again).
    options = {**OPTIONS, "results": "outcome"}
    script = CallerScript().pause(100).say(tone8k(400)).wait_for_bot(500, timeout_s=6)
    tool = ("record_result", {"name": "outcome", "value": "confirmed"})
    async with OpenAIStandIn(OpenAIScript(greeting_ms=500, tool_call=tool)) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        async with gateway(engine, tmp_path, plan_file(tmp_path, options)) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    assert conn.errors_sent == []
    outputs = [i for i in conn.items_created if i.get("type") == "function_call_output"]
    assert json.loads(outputs[0]["output"]) == {"result": "recorded"}
    assert len(standin.replies) == 1  # the reply after the tool call, unprompted by the caller
    assert report.bot_audio_played_s == pytest.approx(0.5, abs=0.06)
