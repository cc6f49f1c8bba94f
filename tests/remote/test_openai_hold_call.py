"""The openai engine's hold over a real call (simulated Twilio -> gateway -> stand-in) with
``interrupt_response: false``: a cough over the reply is released and the caller hears the
whole reply, nothing truncated; words over it commit, cancel and truncate the reply, and are
answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from remotekit import gateway, level_samples, plan_file, settle, tone8k, voice_track
from standins.openai import OpenAIScript, OpenAIStandIn

from engine.remote.openai import OpenAIRealtimeEngine
from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript

OPTIONS = {
    "silence_duration_ms": 300,
    "transcription_model": "gpt-4o-mini-transcribe",
    "interrupt_response": "false",
}
REPLY_MS = 4000  # generated at 1.5x: still active when the sound over it has stopped


def record(tmp_path: Path) -> dict:
    """The call record the gateway wrote."""
    (path,) = tmp_path.glob("CA*.json")
    return json.loads(path.read_text())


def script() -> CallerScript:
    return (
        CallerScript()
        .pause(200)
        .say(tone8k(600, 400), "question")
        .barge_in(600, tone8k(300, 500), "sound")
        .wait_for_bot(silence_ms=800, timeout_s=12)
    )


async def test_call_a_cough_over_the_reply_is_released_and_heard_in_full(tmp_path):
    standin_script = OpenAIScript(reply_ms=REPLY_MS, transcripts={2: "[cough]"})
    async with OpenAIStandIn(standin_script) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        async with gateway(engine, tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script(), auth_token=None, record=tmp_path / "c.wav")
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    (reply,) = standin.replies  # the cough got no reply of its own
    assert conn.answers_skipped == 1 and not reply.cancelled
    assert conn.truncates == [] and "response.cancel" not in conn.types()
    held = record(tmp_path)
    assert (held["holds"], held["releases"], held["commits"]) == (1, 1, 0)
    # The caller heard the whole reply once: held at a sample, carried on from it.
    _, bot = voice_track(tmp_path / "c.wav")
    assert len(level_samples(bot, reply.level)) / 8 == pytest.approx(REPLY_MS, abs=20)


async def test_call_words_over_the_reply_commit_cancel_truncate_and_are_answered(tmp_path):
    standin_script = OpenAIScript(reply_ms=REPLY_MS, transcripts={2: "Wait, I said Tuesday."})
    async with OpenAIStandIn(standin_script) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        async with gateway(engine, tmp_path, plan_file(tmp_path, OPTIONS)) as url:
            report = await place_call(url, script(), auth_token=None, record=tmp_path / "c.wav")
        await settle(standin)

    assert report.ok, report.format()
    (conn,) = standin.connections
    first, second = standin.replies
    assert first.cancelled and conn.errors_sent == []
    assert [item for item, _ in conn.truncates] == [first.item_id]
    _, end_ms = conn.truncates[0]
    _, bot = voice_track(tmp_path / "c.wav")
    heard_ms = len(level_samples(bot, first.level)) / 8
    assert end_ms == pytest.approx(heard_ms, abs=40) and end_ms < REPLY_MS
    types = conn.types()
    assert types.index("response.cancel") < types.index("conversation.item.truncate")
    assert len(level_samples(bot, second.level)) > 0  # the caller's words were answered
    held = record(tmp_path)
    assert (held["holds"], held["releases"], held["commits"]) == (1, 0, 1)
