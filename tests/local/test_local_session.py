"""The local engine's sessions with stand-in models: flows spoken through the session, DTMF,
the phrase cache, interruption bookkeeping, and that a slow model never holds up another call.

The VAD is an energy fake, the recogniser answers scripted words, the voice renders tones:
the workers, the controller and the session are the real ones.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import localkit as lk
import pytest
from localkit import Call, until

from engine.base import (
    Audio,
    CallContext,
    Commit,
    EngineUnavailable,
    Hangup,
    Hold,
    Interrupt,
    Metric,
    Release,
    Transcript,
)
from engine.local import LocalEngine
from engine.local.session import LocalSession

DEMO = Path(__file__).resolve().parents[2] / "dialplans" / "flows" / "demo.yaml"


@pytest.fixture
def voice() -> lk.ToneVoice:
    return lk.ToneVoice()


@pytest.fixture
def words() -> dict[str, str]:
    """What the fake recogniser hears next (``text``), settable by each test."""
    return {"text": ""}


@pytest.fixture
async def engine(voice: lk.ToneVoice, words: dict[str, str]):
    def hear(seconds: float) -> str:
        """As many words as the audio after the pre-roll (250 ms) could hold at a brisk 7 a
        second: a partial hears the start of the sentence, as Whisper would."""
        said = words["text"].split()
        return " ".join(said[: max(1, round((seconds - 0.25) * 7))])

    recognizer = lk.ScriptedRecognizer(hear)
    eng = LocalEngine(flow=str(DEMO), recognizer=recognizer, synthesizer=voice, vad=lk.EnergyVad())
    yield eng
    await eng.aclose()


async def _open(engine: LocalEngine, **params: str) -> Call:
    session = await engine.open(CallContext("CA" + "0" * 32, parameters=params))
    assert isinstance(session, LocalSession)
    return Call(session)


async def _let_greeting_play(call: Call) -> None:
    """Feed silence until the bot's opening lines have played (on the caller's clock)."""
    await until(lambda: len(call.of(Audio)) >= 2, "the greeting audio")
    while call.session._samples < call.session._play_end + 8000:
        call.feed(lk.silence(0.2))
        await asyncio.sleep(0)


async def test_session_greets_from_the_prerendered_cache(engine: LocalEngine, voice) -> None:
    rendered = list(voice.rendered)
    assert "Would you like to book a table, or check on an order?" in rendered
    call = await _open(engine)
    await until(lambda: len(call.of(Audio)) >= 2, "the greeting audio")
    assert call.said() == [
        "Thanks for calling Luigi's.",
        "Would you like to book a table, or check on an order?",
    ]
    assert voice.rendered == rendered  # every opening phrase came from the cache
    await call.close()


async def test_session_caches_a_routes_greeting_after_first_use(engine: LocalEngine, voice) -> None:
    first = await _open(engine, greeting="Good evening, Luigi's here.")
    await until(lambda: len(first.of(Audio)) >= 2, "the first call's greeting")
    second = await _open(engine, greeting="Good evening, Luigi's here.")
    await until(lambda: len(second.of(Audio)) >= 2, "the second call's greeting")
    assert voice.rendered.count("Good evening, Luigi's here.") == 1
    await first.close()
    await second.close()


async def test_session_voice_turn_moves_the_flow_on(engine: LocalEngine, words) -> None:
    call = await _open(engine)
    await _let_greeting_play(call)
    words["text"] = "I would like to book a table."
    call.feed(lk.tone(1.0))
    call.feed(lk.silence(0.6))
    await until(lambda: "What name" in " ".join(call.said()), "the flow's next question")
    assert Transcript("caller", "I would like to book a table.", final=True) in call.events
    metrics = {m.name for m in call.of(Metric)}
    assert {"turn.decision_ms", "turn.first_audio_ms", "asr.ms"} <= metrics
    await call.close()


async def test_session_dtmf_interrupts_and_answers(engine: LocalEngine) -> None:
    call = await _open(engine)
    await until(lambda: len(call.of(Audio)) >= 2, "the greeting audio")
    call.session.dtmf("2")  # 2 = an order, while the menu is still playing
    await until(lambda: "What's the order number?" in call.said(), "the order question")
    assert len(call.of(Interrupt)) == 1
    for key in "427#":
        call.session.dtmf(key)
    await until(lambda: any("Order 4 2 7" in s for s in call.said()), "the order status")
    await call.close()


async def test_session_keeps_only_what_was_heard_of_a_cut_turn(engine: LocalEngine, words) -> None:
    call = await _open(engine)
    await until(lambda: len(call.of(Audio)) >= 2, "the greeting audio")
    words["text"] = "Hang on, I need to check something first."
    call.feed(lk.tone(0.3))
    await until(lambda: call.of(Hold), "the hold")
    call.feed(lk.tone(1.0))
    await until(lambda: call.of(Commit), "the commit")
    call.session.played(500)  # as the gateway reports it: 0.5 s of "Thanks for calling..."
    call.feed(lk.silence(0.6))  # the caller's turn ends: what the bot said is settled
    await until(
        lambda: any(e.role == "bot" and e.final for e in call.of(Transcript)), "the cut transcript"
    )
    (cut,) = [e.text for e in call.of(Transcript) if e.role == "bot" and e.final]
    assert cut == "Thanks ..."  # 0.5 s of a 1.1 s phrase: its first word
    await call.close()


async def test_session_releases_a_hold_after_a_backchannel(engine: LocalEngine, words) -> None:
    call = await _open(engine)
    await until(lambda: len(call.of(Audio)) >= 2, "the greeting audio")
    words["text"] = "Yeah."
    call.feed(lk.tone(0.3))
    call.feed(lk.silence(0.4))
    await until(lambda: call.of(Release), "the release")
    holds = call.of(Hold)
    assert holds[0] == Hold(soft=True)  # a duck first; a deep hold only once it sounds like speech
    assert len(call.of(Release)) == 1 and call.of(Commit) == [] and call.of(Interrupt) == []
    assert not any(e.role == "caller" and e.final for e in call.of(Transcript))
    await call.close()


async def test_session_commit_on_a_backchannel_keeps_the_bots_place(voice) -> None:
    recognizer = lk.ScriptedRecognizer(lambda seconds: "Okay.")
    engine = LocalEngine(
        flow=str(DEMO), recognizer=recognizer, synthesizer=voice, vad=lk.EnergyVad()
    )
    try:
        call = await _open(engine)
        await until(lambda: len(call.of(Audio)) >= 2, "the greeting audio")
        recognizer.gate.clear()  # the words come too late to be judged inside the hold
        call.feed(lk.tone(0.6))  # too long to be released as a short sound
        call.feed(lk.silence(1.6))
        await until(lambda: call.of(Commit), "the commit on the hold's time limit")
        call.session.played(500)  # as the gateway reports it
        emitted = len(call.of(Audio))
        recognizer.gate.set()
        call.feed(lk.silence(0.4))
        await until(
            lambda: any(e.name == "barge_in.carried_on" for e in call.of(Metric)), "carrying on"
        )
        await until(lambda: len(call.of(Audio)) > emitted, "the rest of the greeting")
        first = call.of(Audio)[0].pcm
        # The bot goes on from 0.5 s into its first phrase with the audio it had: not a new
        # rendering, nothing the caller heard said twice.
        assert call.of(Audio)[emitted].pcm == first[2 * 8000 :]
        assert voice.rendered.count(voice.rendered[0]) == 1
        assert not any(e.role == "caller" and e.final for e in call.of(Transcript))
        await call.close()
    finally:
        recognizer.gate.set()
        await engine.aclose()


async def test_session_slow_recognition_delays_no_other_call(voice, words) -> None:
    recognizer = lk.ScriptedRecognizer(lambda seconds: "I would like to book a table.")
    engine = LocalEngine(
        flow=str(DEMO), recognizer=recognizer, synthesizer=voice, vad=lk.EnergyVad()
    )
    try:
        slow, other = await _open(engine), await _open(engine)
        await _let_greeting_play(slow)
        recognizer.gate.clear()  # the recogniser now hangs until released
        recognizer.entered.clear()
        slow.feed(lk.tone(1.0))
        slow.feed(lk.silence(0.5))
        await until(lambda: recognizer.entered.is_set(), "the held recognition")
        await until(lambda: len(other.of(Audio)) >= 2, "the other call's greeting")
        other.feed(lk.tone(0.3))  # talks over its greeting: VAD only, no recognition needed
        await until(lambda: other.of(Hold), "the other call's hold")
        assert not recognizer.gate.is_set()  # it happened while recognition was held
        assert not any(e.role == "caller" and e.final for e in slow.of(Transcript))
        recognizer.gate.set()
        await until(lambda: "What name" in " ".join(slow.said()), "the held call's answer")
        await slow.close()
        await other.close()
    finally:
        recognizer.gate.set()
        await engine.aclose()


async def test_session_continuation_revises_the_callers_line(engine: LocalEngine, words) -> None:
    call = await _open(engine)
    await _let_greeting_play(call)
    words["text"] = "I would like to check."
    call.feed(lk.tone(1.0))
    call.feed(lk.silence(0.3))
    first = Transcript("caller", "I would like to check.", final=True)
    await until(lambda: first in call.events, "the first part answered")
    words["text"] = "On my order, please."  # the caller had only paused, and goes on
    call.feed(lk.tone(0.8))
    call.feed(lk.silence(0.8))
    merged = Transcript("caller", "I would like to check. On my order, please.", revises=True)
    await until(lambda: merged in call.events, "the whole utterance, revising the first line")
    await until(lambda: "order number" in " ".join(call.said()), "the answer to all of it")
    await call.close()


async def test_session_goodbye_plays_out_whatever_the_caller_says(
    engine: LocalEngine, words
) -> None:
    call = await _open(engine)
    await _let_greeting_play(call)
    for key in "2427#":  # an order, its number: the status, then "anything else?"
        call.session.dtmf(key)
    await until(lambda: any("anything else" in s for s in call.said()), "the last question")
    await _let_greeting_play(call)
    words["text"] = "No."
    call.feed(lk.tone(0.5))
    call.feed(lk.silence(0.4))
    await until(lambda: call.of(Hangup), "the goodbye and hang-up")
    interrupts = len(call.of(Interrupt))
    words["text"] = "Thanks, bye."  # said over the goodbye
    call.feed(lk.tone(0.8))
    call.feed(lk.silence(0.8))
    await asyncio.sleep(0.05)
    assert len(call.of(Interrupt)) == interrupts  # the goodbye was not cut
    assert "Goodbye" in " ".join(call.said())
    await call.close()


async def test_engine_keeps_the_last_good_flow_when_its_file_breaks(
    engine: LocalEngine, tmp_path: Path
) -> None:
    flow = tmp_path / "hi.yaml"
    flow.write_text('name: hi\nstart: a\nstates:\n  a: {say: "Hello there.", hangup: true}\n')
    first = await _open(engine, flow=str(flow))
    await until(lambda: "Hello there." in first.said(), "the flow's line")
    await first.close()
    flow.write_text("name: hi\nstates: {}\n")  # broken: no start
    os.utime(flow, (1, 1))  # a different mtime, whatever the file system's resolution
    second = await _open(engine, flow=str(flow))
    await until(lambda: "Hello there." in second.said(), "the last good version's line")
    await second.close()
    fresh = tmp_path / "new.yaml"
    fresh.write_text("name: new\nstates: {}\n")
    with pytest.raises(EngineUnavailable, match="cannot run"):
        await _open(engine, flow=str(fresh))
