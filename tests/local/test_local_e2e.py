"""The local engine on a real gateway, called over the simulated Twilio: the demo flow holds a
short conversation, with the real VAD, recogniser and voice, and hangs up at the end."""

from __future__ import annotations

import json
from pathlib import Path

import localkit as lk
import pytest
import soxr

from gateway.app import create_app
from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript

DEMO = Path(__file__).resolve().parents[2] / "dialplans" / "flows" / "demo.yaml"


def _record(records: Path) -> dict:
    """The call record the gateway wrote."""
    (record,) = records.glob("*.json")
    return json.loads(record.read_text())


@pytest.fixture(scope="module")
def engine():
    from engine.local import LocalEngine

    return LocalEngine(flow=str(DEMO))


async def test_local_e2e_demo_flow_conversation(engine, tmp_path: Path) -> None:
    script = (
        CallerScript()
        .wait_for_bot(silence_ms=800, timeout_s=15)
        .say_text("I would like to check on my order.")
        .wait_for_bot(timeout_s=15)
        .say_text("It is order number four two seven.")
        .wait_for_bot(timeout_s=15)
        .say_text("No, thanks.")
        .wait_for_bot(timeout_s=15)
        .pause(3000)
    )
    app = create_app(Settings(records_dir=str(tmp_path)), engine=engine)
    async with serve(app) as url:
        report = await place_call(url, script, auth_token=None)
    assert report.violations == []
    assert report.ended_by == "gateway" and report.close_code in (1000, 1001)  # the bot hung up
    assert len(report.response_latencies_ms) == 3  # every answer was spoken
    record = _record(tmp_path)
    transcript = [tuple(t) for t in record["transcript"]]
    bot = " ".join(text for role, text in transcript if role == "bot")
    caller = [text for role, text in transcript if role == "caller"]
    assert "Order 4 2 7 is out for delivery" in bot
    assert "Goodbye" in bot
    assert any("427" in text or "four two seven" in text.lower() for text in caller)
    assert record["results"]["order"] == "427"  # what the call settled, in plain form


async def test_local_e2e_a_cough_does_not_cut_the_bot_and_words_do(tmp_path: Path) -> None:
    """Over the simulated line, a recorded cough over the bot's reading leaves it talking (held
    at most, then released from where it stopped), and a recorded spoken interruption cuts it
    and gets the turn."""
    from engine.local import LocalEngine

    talk = LocalEngine(flow=str(DEMO.parent / "local-bench-talk.yaml"))
    cough = lk.load("noise/chemwarfare-coughs/maccas_cough1.wav")
    words = lk.load("speech/pocketsphinx/goforward.raw")
    script = (
        CallerScript()
        .barge_in(800, lk.pcm16(soxr.resample(cough, 16000, 8000)), "cough", timeout_s=15)
        .pause(2500)
        .barge_in(600, lk.pcm16(soxr.resample(words, 16000, 8000)), "words", timeout_s=15)
        .wait_for_bot(timeout_s=15)
    )
    app = create_app(Settings(records_dir=str(tmp_path)), engine=talk)
    try:
        async with serve(app) as url:
            report = await place_call(url, script, auth_token=None)
    finally:
        await talk.aclose()
    cough_turn, words_turn = [t for t in report.turns if t.kind == "barge_in"]
    assert words_turn.barge_in_ms is not None  # the interruption cut the bot
    record = _record(tmp_path)
    # The cough was released (or never held): one commit in the call, the interruption's.
    assert record["commits"] == 1 and record["releases"] == record["holds"] - 1
    caller = [text for role, text in record["transcript"] if role == "caller"]
    assert len(caller) == 1 and "forward" in caller[0].lower()  # only the words took a turn
    # The words were said over the bot's reading (the script waits for it): it went on.
    assert cough_turn.speech_start_ms is not None and words_turn.speech_start_ms is not None
