"""The caller script: audio builders, and the pure runner driven with invented times."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from simkit import audioop, shared, silence, tone

from gateway.sim.media import PlayedAudio
from gateway.sim.script import (
    SILENCE_FRAME,
    BotActivity,
    CallerScript,
    ScriptRunner,
    is_voiced,
    load_audio,
    synthesize,
)

BOT_TALK = audioop.lin2ulaw(tone(20), 2)  # one voiced 20 ms frame of bot audio
BOT_QUIET = b"\xff" * 160


def run(runner: ScriptRunner, bot: BotActivity, start: float, ticks: int) -> list:
    """Tick the runner every 20 ms from ``start``; returns (time, frame) pairs."""
    out = []
    for k in range(ticks):
        now = start + k * 0.02
        frame = runner.next_frame(now, bot)
        if runner.done:  # the caller sends nothing on the tick the script ends
            break
        out.append((now, frame))
    return out


def bot_plays(bot: BotActivity, start: float, ms: int, voiced: bool = True) -> None:
    frame = BOT_TALK if voiced else BOT_QUIET
    bot.feed(PlayedAudio(start + k * 0.02, frame) for k in range(ms // 20))


# ----------------------------------------------------------------------------- builders


def test_script_load_wav_resamples_to_8k() -> None:
    path = shared("speech/pocketsphinx/cards_001.wav")  # 16 kHz, 1.095 s
    pcm = load_audio(path)
    assert soundfile.info(str(path)).samplerate == 16000
    assert len(pcm) // 2 == pytest.approx(soundfile.info(str(path)).frames / 2, abs=2)
    samples = np.frombuffer(pcm, dtype="<i2")
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 100  # real speech survived


def test_script_load_stereo_ogg_downmixes_and_resamples() -> None:
    path = shared("noise/doggy-daycare-dogs/20240222_094422_34_charlie_2.ogg")  # 48 kHz stereo
    pcm = load_audio(path)
    assert len(pcm) // 2 == pytest.approx(1.393 * 8000, abs=8)


def test_script_synthesize_gives_non_silent_8k_speech() -> None:
    pcm = synthesize("Hello, I would like to book a table.")
    seconds = len(pcm) / 2 / 8000
    assert 1.0 < seconds < 5.0  # 8 kHz: at 22.05 kHz this would read ~2.8x longer
    ulaw = audioop.lin2ulaw(pcm, 2)
    frames = [ulaw[i : i + 160] for i in range(0, len(ulaw) - 159, 160)]
    assert sum(is_voiced(f) for f in frames) > len(frames) // 2


def test_script_from_text_builds_say_and_wait_steps() -> None:
    script = CallerScript.from_text(["Hi there."], silence_ms=300)
    kinds = [type(s).__name__ for s in script.steps]
    assert kinds == ["Say", "WaitForBot"]
    assert script.steps[0].label == "Hi there."  # type: ignore[union-attr]
    assert script.steps[1].silence_ms == 300  # type: ignore[union-attr]


def test_script_say_rejects_float_arrays() -> None:
    with pytest.raises(TypeError, match="int16"):
        CallerScript().say(np.zeros(10, dtype=np.float32))


# ------------------------------------------------------------------------------- runner


def test_runner_say_sends_frames_and_records_speech_span() -> None:
    script = CallerScript().say(silence(40) + tone(100) + silence(60), "hi")
    runner = ScriptRunner(script)
    sent = run(runner, BotActivity(), 10.0, 50)
    assert len(sent) == 10  # 200 ms, then the script is over
    assert runner.done
    assert [f.voiced for _, f in sent] == [False] * 2 + [True] * 5 + [False] * 3
    (turn,) = runner.turns
    assert turn.speech_start == pytest.approx(10.04)
    assert turn.speech_end == pytest.approx(10.12)
    assert turn.finished == pytest.approx(10.18)


def test_runner_say_pads_last_frame_with_silence() -> None:
    runner = ScriptRunner(CallerScript().say(tone(30)))
    sent = run(runner, BotActivity(), 0.0, 10)
    assert len(sent) == 2
    assert all(len(f.ulaw) == 160 for _, f in sent)
    assert sent[1][1].ulaw.endswith(b"\xff" * 80)


def test_runner_pause_sends_silence_frames() -> None:
    runner = ScriptRunner(CallerScript().pause(100))
    sent = run(runner, BotActivity(), 0.0, 20)
    assert [f.ulaw for _, f in sent] == [SILENCE_FRAME] * 5


def test_runner_wait_for_bot_waits_for_speech_then_silence() -> None:
    runner = ScriptRunner(CallerScript().wait_for_bot(silence_ms=200, timeout_s=5).hang_up())
    bot = BotActivity()
    assert len(run(runner, bot, 0.0, 10)) == 10  # bot silent: still waiting at 0.18
    bot_plays(bot, 0.2, 300)  # bot speaks 0.20-0.50
    runner.next_frame(0.6, bot)  # bot heard, but only 100 ms of silence since
    assert not runner.done
    runner.next_frame(0.69, bot)
    assert not runner.done
    runner.next_frame(0.71, bot)  # 200 ms of silence after 0.50: on to the hang-up
    assert runner.done
    assert runner.notes == []


def test_runner_wait_for_bot_ignores_speech_heard_before_the_step() -> None:
    script = CallerScript().say(tone(20)).wait_for_bot(silence_ms=100, timeout_s=5).hang_up()
    runner = ScriptRunner(script)
    bot = BotActivity()
    bot_plays(bot, 0.0, 100)  # the bot spoke before the caller's turn
    assert runner.next_frame(1.0, bot).voiced  # the say frame; the wait starts at 1.0
    runner.next_frame(2.0, bot)
    assert not runner.done  # the earlier speech does not count as an answer
    bot_plays(bot, 2.0, 100)
    runner.next_frame(2.3, bot)
    assert runner.done


def test_runner_wait_for_bot_times_out_with_note() -> None:
    runner = ScriptRunner(CallerScript().wait_for_bot(silence_ms=100, timeout_s=1.0))
    sent = run(runner, BotActivity(), 0.0, 100)
    assert len(sent) == 50 and runner.done
    assert runner.notes == ["step 1 wait_for_bot: timed out after 1.0 s (bot silent)"]


def test_runner_barge_in_starts_after_bot_speech_begins() -> None:
    script = CallerScript().barge_in(after_ms=200, pcm=tone(60), label="stop")
    runner = ScriptRunner(script)
    bot = BotActivity()
    assert not runner.next_frame(0.0, bot).voiced
    bot_plays(bot, 1.0, 1000)  # bot talks 1.0-2.0 (fed ahead: played audio with play times)
    assert not runner.next_frame(1.18, bot).voiced  # 180 ms into the bot's speech
    first = runner.next_frame(1.20, bot)
    assert first.voiced
    (turn,) = runner.turns
    assert turn.kind == "barge_in" and turn.speech_start == pytest.approx(1.20)


def test_runner_barge_in_waits_while_bot_silent_then_times_out() -> None:
    runner = ScriptRunner(CallerScript().barge_in(after_ms=100, pcm=tone(60), timeout_s=0.5))
    bot = BotActivity()
    bot_plays(bot, 0.0, 500, voiced=False)  # audio that is silence is not bot speech
    sent = run(runner, bot, 0.0, 100)
    assert not any(f.voiced for _, f in sent)
    assert runner.done and runner.turns[0].note == "bot never heard speaking"


def test_runner_dtmf_emits_digit_once_then_silence() -> None:
    runner = ScriptRunner(CallerScript().dtmf("7", ms=60).pause(20))
    sent = run(runner, BotActivity(), 0.0, 10)
    assert [f.dtmf for _, f in sent] == [("7",), (), (), ()]
    assert runner.dtmf_sent == 1


def test_runner_hang_up_ends_before_later_steps() -> None:
    runner = ScriptRunner(CallerScript().pause(40).hang_up().say(tone(100)))
    sent = run(runner, BotActivity(), 0.0, 20)
    assert len(sent) == 2 and runner.done  # two pause frames; the hang-up tick sends nothing
    assert not any(f.voiced for _, f in sent)


def test_bot_activity_tracks_spurts_across_short_gaps() -> None:
    bot = BotActivity()
    bot_plays(bot, 0.0, 200)
    bot_plays(bot, 0.4, 100)  # 200 ms gap: same spurt
    assert bot.spurt_start == 0.0
    bot_plays(bot, 1.0, 100)  # 500 ms gap: a new spurt
    assert bot.spurt_start == 1.0
    assert bot.talking(1.2) and not bot.talking(1.5)
