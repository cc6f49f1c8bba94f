"""The moshi engine end to end: simulated Twilio -> real gateway -> Moshi stand-in (which
decodes and encodes with Kyutai's own ``sphn``, so the engine's Ogg-Opus meets the real one)."""

from __future__ import annotations

import numpy as np
import pytest
from remotekit import gateway, plan_file, settle, tone8k, voice_track
from standins.moshi import REPLY_FREQ, MoshiScript, MoshiStandIn

from engine.base import CallContext, EngineUnavailable
from engine.remote.moshi import MoshiEngine
from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript


def loud_ms(track: np.ndarray, rate: int, freq: float, threshold: float) -> float:
    """Milliseconds of ``track`` in 40 ms windows that are loud and peak at ``freq``."""
    win = rate // 25
    total = 0
    for start in range(0, len(track) - win, win):
        w = track[start : start + win].astype(np.float64)
        if np.sqrt(np.mean(w * w)) < threshold:
            continue
        peak = np.argmax(np.abs(np.fft.rfft(w * np.hanning(win)))) * rate / win
        if abs(peak - freq) < 50:
            total += 40
    return total


async def test_audio_both_ways_through_ogg_opus_and_the_model_answers(tmp_path):
    script = CallerScript().pause(300).say(tone8k(600, 400), "hello").wait_for_bot(500, 6)
    async with MoshiStandIn(MoshiScript(reply_ms=1200)) as standin:
        async with gateway(MoshiEngine(url=standin.url), tmp_path, plan_file(tmp_path, {})) as url:
            report = await place_call(url, script, auth_token=None, record=tmp_path / "c.wav")
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    assert conn.kinds_in == {1}
    # The server decoded the caller's 600 ms at 400 Hz from the engine's Ogg-Opus stream.
    assert loud_ms(conn.caller_audio(), 24000, 400, 0.05) == pytest.approx(600, abs=80)
    # 80 ms frames, paced in real time: about as many as the call lasted.
    assert conn.frames_in == pytest.approx(report.frames_sent * 20 / 80, abs=4)
    _, bot = voice_track(tmp_path / "c.wav")
    assert loud_ms(bot, 8000, REPLY_FREQ, 2000) == pytest.approx(1200, abs=80)
    assert report.turns[0].response_ms is not None
    ledger = next(tmp_path.glob("*.json")).read_text()
    assert "reply 1" in ledger


async def test_talked_over_the_model_stops_by_itself(tmp_path):
    script = CallerScript().pause(200).say(tone8k(500)).barge_in(300, tone8k(800, 700)).pause(600)
    async with MoshiStandIn(MoshiScript(reply_ms=3000)) as standin:
        async with gateway(MoshiEngine(url=standin.url), tmp_path, plan_file(tmp_path, {})) as url:
            report = await place_call(url, script, auth_token=None, record=tmp_path / "c.wav")
        await settle(standin)

    assert report.ok, report.format()
    assert standin.connections[0].yielded == 1
    _, bot = voice_track(tmp_path / "c.wav")
    assert loud_ms(bot, 8000, REPLY_FREQ, 2000) < 1200  # not the 3 s it would have said


async def test_error_mid_call_reconnects_and_the_call_goes_on(tmp_path):
    script = CallerScript().pause(800).say(tone8k(500)).wait_for_bot(500, 6)
    async with MoshiStandIn(MoshiScript(reply_ms=600, error_after_frames=5)) as standin:
        async with gateway(MoshiEngine(url=standin.url), tmp_path, plan_file(tmp_path, {})) as url:
            report = await place_call(url, script, auth_token=None)
        await settle(standin)

    assert report.ok, report.format()
    assert len(standin.connections) == 2
    assert standin.connections[1].replies == 1


async def test_busy_server_is_unavailable():
    async with MoshiStandIn(MoshiScript(busy=True)) as standin:
        engine = MoshiEngine(url=standin.url, ready_timeout=0.5)
        with pytest.raises(EngineUnavailable, match="timed out"):
            await engine.open(CallContext("CA1"))
