"""The gemini engine end to end: simulated Twilio -> real gateway -> Gemini Live stand-in."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from remotekit import clear_times, gateway, plan_file, settle, tone8k, voice_track
from standins.gemini import GeminiScript, GeminiStandIn, reply_freq
from websockets.asyncio.client import connect

from engine.base import CallContext, EngineUnavailable
from engine.remote.gemini import GeminiLiveEngine
from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript

OPTIONS = {"silence_duration_ms": 300}
WINDOW = 320  # 40 ms at 8 kHz: 25 Hz resolution, enough to tell 100 Hz apart


def dominant(track: np.ndarray) -> list[tuple[int, float]]:
    """(start sample, peak frequency) of each 40 ms window that a tone fills.

    A window is judged only when each of its quarters is loud: one holding just the first
    or last few milliseconds of a tone has a spectrum too wide to name the tone (the end of
    a 500 Hz reply can peak at 400 Hz), so counting it would confuse one reply with another.
    """
    out = []
    for start in range(0, len(track) - WINDOW, WINDOW):
        w = track[start : start + WINDOW].astype(np.float64)
        quarters = w.reshape(4, -1)
        if np.sqrt(np.mean(quarters * quarters, axis=1)).min() < 500:
            continue
        spectrum = np.abs(np.fft.rfft(w * np.hanning(WINDOW)))
        out.append((start, float(np.argmax(spectrum) * 8000 / WINDOW)))
    return out


def heard(track: np.ndarray, freq: float, after: int = 0) -> int:
    """40 ms windows at or after sample ``after`` whose tone is ``freq`` (within 50 Hz)."""
    return sum(1 for s, f in dominant(track) if s >= after and abs(f - freq) < 50)


def engine_for(standin: GeminiStandIn) -> GeminiLiveEngine:
    return GeminiLiveEngine(url=standin.url, api_key=standin.script.api_key)


async def test_barge_in_during_generation_clears_and_no_stale_audio_follows(tmp_path):
    script = (
        CallerScript()
        .pause(200)
        .say(tone8k(500), "question")
        .barge_in(500, tone8k(500, 700), "interruption")
        .wait_for_bot(500, timeout_s=8)
    )
    async with GeminiStandIn(GeminiScript(reply_ms=2500)) as standin:
        async with gateway(engine_for(standin), tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None, record=tmp_path / "c.wav")
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    assert conn.setup["model"].startswith("models/")
    assert conn.mime_types == {"audio/pcm;rate=24000"}
    assert conn.interrupted == 1
    caller, bot = voice_track(tmp_path / "c.wav")
    (clear_at,) = clear_times(report)
    cut = round(clear_at * 8000) + 320  # one 40 ms window: the simulated Twilio plays out
    # on a 20 ms tick, so audio already under way when the clear lands may finish its tick
    assert heard(bot, reply_freq(1)) > 0
    assert heard(bot, reply_freq(1), after=cut) == 0
    assert heard(bot, reply_freq(2), after=cut) > 20  # the answer to the interruption
    assert report.turns[1].barge_in_ms is not None


async def test_session_survives_go_away_by_resuming_with_the_last_handle(tmp_path):
    script = (
        CallerScript()
        .pause(100)
        .say(tone8k(400), "one")
        .wait_for_bot(400, timeout_s=6)
        .pause(1200)
        .say(tone8k(400), "two")
        .wait_for_bot(400, timeout_s=6)
    )
    gemini = GeminiScript(reply_ms=1000, go_away_after_s=1.0, go_away_time_left_s=6.0)
    async with GeminiStandIn(gemini) as standin:
        async with gateway(engine_for(standin), tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None, record=tmp_path / "c.wav")
        await settle(standin)

    assert report.ok, report.format()
    assert len(standin.connections) >= 2
    for before, after in zip(standin.connections, standin.connections[1:], strict=False):
        assert before.go_away_sent
        assert after.resumed_from in before.handles_sent
    # The conversation went on where it was: the second answer is the model's second reply.
    assert standin.replies_started == [1, 2]
    _, bot = voice_track(tmp_path / "c.wav")
    assert heard(bot, reply_freq(1)) > 10 and heard(bot, reply_freq(2)) > 10
    # No caller audio was lost to the switches (replays may repeat some, never drop).
    assert standin.audio_ms >= report.frames_sent * 20 - 150
    ledger = next(tmp_path.glob("*.json")).read_text()
    assert "bot reply 1" in ledger and "bot reply 2" in ledger


async def test_connection_dropped_mid_call_is_resumed(tmp_path):
    script = CallerScript().pause(1500).say(tone8k(400)).wait_for_bot(400, timeout_s=6)
    async with GeminiStandIn(GeminiScript(reply_ms=600, drop_after_s=0.8)) as standin:
        async with gateway(engine_for(standin), tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    first, second = standin.connections[:2]
    assert second.resumed_from in first.handles_sent
    assert report.bot_audio_played_s == pytest.approx(0.6, abs=0.06)


async def test_talking_over_a_fully_generated_reply_still_stops_it(tmp_path):
    script = (
        CallerScript()
        .pause(100)
        .say(tone8k(400))
        .barge_in(400, tone8k(400, 700))
        .wait_for_bot(400, timeout_s=6)
    )
    # Generated 20x faster than real time: the client hears the caller over audio the server
    # finished generating and cuts it itself; the server's own interrupted (it holds
    # turnComplete for the play-out) comes later and must not clear the carrier twice.
    async with GeminiStandIn(GeminiScript(reply_ms=2000, speed=20)) as standin:
        async with gateway(engine_for(standin), tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    assert report.turns[1].barge_in_ms is not None and report.clears_received == 1
    # Two 2 s replies, the first cut about half a second in.
    assert report.bot_audio_played_s < 3.5


async def test_function_call_hangs_up_and_answers_the_model(tmp_path):
    script = CallerScript().pause(100).say(tone8k(400)).pause(3000)
    gemini = GeminiScript(tool_call=("end_call", {"reason": "done"}))
    async with GeminiStandIn(gemini) as standin:
        async with gateway(engine_for(standin), tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ended_by == "gateway" and report.close_code == 1000
    (response,) = standin.connections[0].tool_responses
    assert response["functionResponses"][0]["name"] == "end_call"
    assert response["functionResponses"][0]["response"] == {"result": "ok"}


async def test_bad_key_is_unavailable():
    async with GeminiStandIn() as standin:
        engine = GeminiLiveEngine(url=standin.url, api_key="nope")
        with pytest.raises(EngineUnavailable, match="1008 API key not valid"):
            await engine.open(CallContext("CA1"))


async def test_caller_keys_reach_the_model_as_realtime_text_and_it_answers(tmp_path):
    script = CallerScript().pause(300).dtmf("1").wait_for_bot(500, timeout_s=8)
    async with GeminiStandIn(GeminiScript(greeting_ms=600)) as standin:
        async with gateway(engine_for(standin), tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    assert conn.texts == ["The caller pressed 1 on the phone keypad."]  # after the 1.2 s gap
    assert report.bot_audio_played_s == pytest.approx(0.6, abs=0.06)


async def test_gemini_3_greeting_goes_as_realtime_text_and_is_answered(tmp_path):
    # A 3.x model closes the socket (1007) on a clientContent turn after setup.
    options = {**OPTIONS, "model": "gemini-3.1-flash-live-preview"}
    script = CallerScript().wait_for_bot(400, timeout_s=5)
    async with GeminiStandIn(GeminiScript(greeting_ms=600)) as standin:
        plan = plan_file(tmp_path, options, greeting="Thanks for calling")
        async with gateway(engine_for(standin), tmp_path, plan) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    assert conn.refused == "" and conn.client_content == []
    assert any("Thanks for calling" in t for t in conn.texts)
    assert report.bot_audio_played_s == pytest.approx(0.6, abs=0.06)


async def test_after_a_tool_response_the_model_goes_on_speaking(tmp_path):
    options = {**OPTIONS, "results": "outcome"}
    script = CallerScript().pause(100).say(tone8k(400)).wait_for_bot(400, timeout_s=6)
    tool = ("record_result", {"name": "outcome", "value": "confirmed"})
    async with GeminiStandIn(GeminiScript(reply_ms=600, tool_call=tool)) as standin:
        async with gateway(engine_for(standin), tmp_path, plan_file(tmp_path, options)) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    (response,) = standin.connections[0].tool_responses
    assert response["functionResponses"][0]["response"] == {"result": "recorded"}
    assert report.bot_audio_played_s == pytest.approx(0.6, abs=0.06)
    assert "confirmed" in next(tmp_path.glob("*.json")).read_text()


async def test_standin_with_activity_detection_off_answers_only_after_activity_signals():
    setup = {
        "model": "models/gemini-2.5-flash-native-audio-preview-12-2025",
        "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
    }
    loud = base64.b64encode(np.full(2400, 8000, "<i2").tobytes()).decode()  # 100 ms
    chunk = {"realtimeInput": {"audio": {"data": loud, "mimeType": "audio/pcm;rate=24000"}}}
    quiet = {"realtimeInput": {"audio": {"data": base64.b64encode(bytes(4800)).decode(),
                                         "mimeType": "audio/pcm;rate=24000"}}}  # fmt: skip
    async with GeminiStandIn(GeminiScript(reply_ms=200)) as standin:
        headers = {"x-goog-api-key": standin.script.api_key}
        async with connect(standin.url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"setup": setup}))
            assert "setupComplete" in json.loads(await ws.recv())
            for message in [chunk] * 5 + [quiet] * 10:  # speech, then a long silence
                await ws.send(json.dumps(message))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await ws.recv()  # no turn: nobody said when the caller spoke
            await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
            await ws.send(json.dumps(chunk))
            await ws.send(json.dumps({"realtimeInput": {"activityEnd": {}}}))
            kinds = []
            async with asyncio.timeout(5):
                while "turnComplete" not in kinds:
                    content = json.loads(await ws.recv()).get("serverContent", {})
                    kinds.extend(content)
    assert "modelTurn" in kinds and standin.connections[0].activity == ["start", "end"]
