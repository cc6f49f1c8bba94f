"""Turn-taking decisions: first on invented VAD scores and words (pure), then on recordings
through a telephone round trip with the real VAD, echo check and recogniser.

Times are caller samples at 16 kHz (the controller's only clock), so every assertion about
"how soon" is about the decision logic, not about how fast this machine is.
"""

from __future__ import annotations

from collections.abc import Callable

import localkit as lk
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.local import controller as ctl
from engine.local.asr import AsrRequest
from engine.local.echo import EchoMonitor
from engine.local.nlu import Expectation
from engine.local.vad import WINDOW, VadState

MS = 16  # samples per millisecond


class Driver:
    """Feeds a controller window by window; answers Transcribe requests after ``delay``
    windows (standing in for the recogniser's time) with ``words(start, end)``."""

    def __init__(self, words: Callable[[int, int], str], delay: int = 2, **config: object) -> None:
        self.c = ctl.TurnController(ctl.TurnConfig(**config))  # type: ignore[arg-type]
        self.words = words
        self.delay = delay
        self.t = 0
        self.log: list[ctl.Decision] = []
        self._due: list[tuple[int, ctl.Transcribe]] = []

    def window(self, prob: float, echo_db: float = 0.0, level_db: float = -20.0) -> None:
        self.t += WINDOW
        self._take(self.c.window(self.t, prob, echo_db, level_db))
        for due, req in [d for d in self._due if d[0] <= self.t]:
            self._due.remove((due, req))
            self._take(self.c.transcript(req.segment, req.end, self.words(req.start, req.end)))

    def run(self, probs: list[float], **kw: float) -> None:
        for p in probs:
            self.window(p, **kw)

    def _take(self, decisions: list[ctl.Decision]) -> None:
        for d in decisions:
            self.log.append(d)
            if isinstance(d, ctl.Transcribe):
                self._due.append((self.t + self.delay * WINDOW, d))

    def of(self, kind: type) -> list:
        return [d for d in self.log if isinstance(d, kind)]


SPEECH, QUIET = 0.95, 0.02


# ---------------------------------------------------------------------- invented inputs


def test_controller_ends_a_complete_answer_quickly() -> None:
    d = Driver(lambda s, e: "Yes, that's right.")
    d.run([QUIET] * 5 + [SPEECH] * 30 + [QUIET] * 20)
    (eot,) = d.of(ctl.EndOfTurn)
    assert eot.text == "Yes, that's right."
    assert eot.at - eot.speech_end <= 200 * MS  # pause detection + transcript, no more


def test_controller_waits_through_a_pause_after_unfinished_words() -> None:
    words = {True: "I'd like a table for", False: "I'd like a table for four people."}
    d = Driver(lambda s, e: words[e < 60 * WINDOW])
    d.run([SPEECH] * 30 + [QUIET] * 25)  # an 800 ms pause after "for"
    assert d.of(ctl.EndOfTurn) == []
    d.run([SPEECH] * 20 + [QUIET] * 20)
    (eot,) = d.of(ctl.EndOfTurn)
    assert eot.text == "I'd like a table for four people."


def test_controller_uses_the_expected_answer_to_end_early() -> None:
    d = Driver(lambda s, e: "four")
    d.c.expectation = Expectation("number")
    d.run([SPEECH] * 12 + [QUIET] * 6)
    assert len(d.of(ctl.EndOfTurn)) == 1
    free = Driver(lambda s, e: "four")  # no question asked: one word could go on...
    free.run([SPEECH] * 12 + [QUIET] * 6)
    assert free.of(ctl.EndOfTurn) == []
    free.run([QUIET] * 6)  # ...but not for long
    assert len(free.of(ctl.EndOfTurn)) == 1


def test_controller_waits_long_after_a_trailing_dash_or_comma() -> None:
    for text in ("to consider how much—", "Lord, but I am glad to see you again,"):
        d = Driver(lambda s, e, text=text: text)
        d.run([SPEECH] * 30 + [QUIET] * 30)  # a 960 ms pause
        assert d.of(ctl.EndOfTurn) == [], text


def test_controller_drops_segments_without_words() -> None:
    d = Driver(lambda s, e: "")
    d.run([SPEECH] * 8 + [QUIET] * 20)
    assert d.of(ctl.EndOfTurn) == [] and len(d.of(ctl.Discard)) == 1


def paced(text: str, per_second: float = 3.0) -> Callable[[int, int], str]:
    """A recogniser stand-in that hears as many of ``text``'s words as the audio could hold."""
    ws = text.split()
    return lambda s, e: " ".join(ws[: max(1, int((e - s) / (1000 * MS) * per_second))])


def test_controller_interrupts_the_bot_on_speech_and_confirms_with_words() -> None:
    d = Driver(paced("Sorry, can you hold on a second?", 6.0))
    d.c.bot_audible_until(10_000 * MS)
    d.run([QUIET] * 5 + [SPEECH] * d.c.config.barge_windows)
    (interrupt,) = d.of(ctl.Interrupt)
    assert interrupt.at - interrupt.onset == d.c.config.barge_windows * WINDOW
    assert not d.c.bot_audible(d.t)
    d.run([SPEECH] * 30 + [QUIET] * 10)
    assert len(d.of(ctl.InterruptConfirmed)) == 1 and d.of(ctl.Resume) == []
    assert d.of(ctl.InterruptConfirmed)[0].at <= d.of(ctl.Interrupt)[0].at + 16 * WINDOW
    (eot,) = d.of(ctl.EndOfTurn)
    assert eot.barge_in


def test_controller_ignores_a_blip_over_the_bot() -> None:
    d = Driver(lambda s, e: "hm")
    d.c.bot_audible_until(10_000 * MS)
    d.run([SPEECH] * (d.c.config.barge_windows - 1) + [QUIET] * 3 + [SPEECH, QUIET] * 5)
    assert d.of(ctl.Interrupt) == [] and d.of(ctl.SpeechStarted) == []


def test_controller_ignores_the_bots_echo() -> None:
    d = Driver(lambda s, e: "the bot's own words")
    d.c.bot_audible_until(10_000 * MS)
    d.run([SPEECH] * 40, echo_db=-20.0)
    assert d.of(ctl.SpeechStarted) == []


def test_controller_releases_a_backchannel() -> None:
    d = Driver(lambda s, e: "Uh-huh.")
    d.c.bot_audible_until(10_000 * MS)
    d.run([SPEECH] * 12 + [QUIET] * 8)
    assert [
        type(x) for x in d.log if not isinstance(x, ctl.Transcribe | ctl.Deepen | ctl.Soften)
    ] == [
        ctl.SpeechStarted,
        ctl.Interrupt,
        ctl.Resume,
        ctl.Backchannel,
    ]
    assert d.of(ctl.Resume)[0].reason in ("short", "backchannel")


def test_controller_releases_a_short_sound_before_its_words_are_in() -> None:
    d = Driver(lambda s, e: "", delay=6)  # the recogniser is slow
    d.c.bot_audible_until(10_000 * MS)
    d.run([SPEECH] * 6 + [QUIET] * 3)  # 192 ms of "speech", then 96 ms: a gap between words
    assert d.of(ctl.Resume) == []
    d.run([QUIET])  # 128 ms: the sound has ended
    (release,) = d.of(ctl.Resume)
    assert release.reason == "short" and release.at == d.t  # at the pause, not at the words
    d.run([QUIET] * 12)
    assert len(d.of(ctl.Discard)) == 1 and d.of(ctl.InterruptConfirmed) == []


def test_controller_release_that_was_an_interruption_commits_when_words_arrive() -> None:
    said = {"text": "Right."}
    d = Driver(lambda s, e: said["text"])
    d.c.bot_audible_until(10_000 * MS)
    d.run([SPEECH] * 8 + [QUIET] * 4)  # "Right," and a 128 ms pause: released
    assert d.of(ctl.Interrupt) and len(d.of(ctl.Resume)) == 1
    said["text"] = "Right, lift up."
    d.run([SPEECH] * 10 + [QUIET] * 12)  # it led into more words: they take the floor
    assert len(d.of(ctl.InterruptConfirmed)) == 1
    assert d.of(ctl.EndOfTurn)[0].text == "Right, lift up."


def test_controller_releases_noise_the_recogniser_doubts() -> None:
    c = ctl.TurnController()
    c.bot_audible_until(10_000 * MS)
    t, out = 0, []
    for p in [SPEECH] * 16 + [QUIET] * 12:  # too long to be released as short
        t += WINDOW
        for d in c.window(t, p, 0.0, -20.0):
            out.append(d)
            if isinstance(d, ctl.Transcribe):  # doubted words, answered at once
                out += c.transcript(d.segment, d.end, "I'm not going to be able to do it.", True)
    kinds = [type(x) for x in out if not isinstance(x, ctl.Transcribe | ctl.Deepen | ctl.Soften)]
    assert kinds == [ctl.SpeechStarted, ctl.Interrupt, ctl.Resume, ctl.Discard]
    assert out[[type(x) for x in out].index(ctl.Resume)].reason == "noise"


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Hahahaha.", "vocal"),
        ("Ooh-hoo!", "vocal"),
        ("(coughs)", "vocal"),
        ("I'm so sorry.", "noise"),  # three words in a third of a second: made up
        ("No, I said Tuesday.", "floor"),
        ("Wait.", "floor"),
        ("Yeah.", "backchannel"),
    ],
)
def test_controller_judges_the_words_of_a_held_sound(text: str, verdict: str) -> None:
    d = Driver(lambda s, e: text, delay=3)
    d.c.bot_audible_until(10_000 * MS)
    windows = 40 if verdict == "floor" and len(text) > 10 else 8
    d.run([SPEECH] * windows + [QUIET] * 12)
    if verdict == "floor":
        assert len(d.of(ctl.InterruptConfirmed)) == 1 and d.of(ctl.EndOfTurn)
    else:
        assert d.of(ctl.InterruptConfirmed) == [] and d.of(ctl.EndOfTurn) == []
        closing = d.of(ctl.Backchannel) if verdict == "backchannel" else d.of(ctl.Discard)
        assert len(closing) == 1


def test_controller_long_laughter_is_released_on_its_partial_words() -> None:
    d = Driver(lambda s, e: "Ha ha ha ha.")
    d.c.bot_audible_until(10_000 * MS)
    d.run([SPEECH] * 60 + [QUIET] * 12)  # 1.9 s of laughter, judged while it goes on
    assert d.of(ctl.InterruptConfirmed) == [] and d.of(ctl.EndOfTurn) == []
    release = d.of(ctl.Resume)[0]
    assert release.reason == "vocal"
    assert release.at - d.of(ctl.Interrupt)[0].at <= 16 * WINDOW  # within about half a second


def test_controller_a_long_interruption_stands_whatever_the_words() -> None:
    d = Driver(lambda s, e: "yeah", delay=100)  # words come very late
    d.c.bot_audible_until(10_000 * MS)
    d.run([SPEECH] * 40)
    assert len(d.of(ctl.InterruptConfirmed)) == 1 and d.of(ctl.Resume) == []


# ------------------------------------------------------------------ recorded audio


class Pipeline:
    """The real listening path on one call, synchronously: Silero VAD and the echo monitor
    per window, Whisper for transcripts (answered two windows later)."""

    def __init__(self, silero, whisper) -> None:
        self.silero, self.whisper = silero, whisper
        self.state = VadState()
        self.echo = EchoMonitor()

    def run(self, caller: np.ndarray, bot: np.ndarray | None = None, bot_at: float = 0.0) -> Driver:
        if bot is not None:
            start = int(bot_at * lk.RATE)
            self.echo.add_reference(bot, start)
        heard = caller

        def words(start: int, end: int) -> str:
            return self.whisper.transcribe([AsrRequest(heard[start:end])])[0].text

        d = Driver(words)
        if bot is not None:
            d.c.bot_audible_until(start + len(bot))
        for i in range(0, len(caller) - WINDOW + 1, WINDOW):
            w = caller[i : i + WINDOW]
            prob = float(self.silero.forward(w[None], [self.state])[0])
            echo_db = self.echo.assess(w, i + WINDOW)
            level = 10 * np.log10(np.mean(w.astype(np.float64) ** 2) + 1e-12)
            d.window(prob, echo_db, level)
        return d


@pytest.fixture
def pipeline(silero, whisper) -> Pipeline:
    return Pipeline(silero, whisper)


def _call(*parts: np.ndarray) -> np.ndarray:
    return lk.phone(np.concatenate(parts))


def _voice_onset(audio: np.ndarray) -> int:
    """First 10 ms frame above -35 dBFS: where the recording's speech begins."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 10 ** (-35 / 20))
    return int(loud[0]) * 160


def test_controller_on_recordings_ends_the_turn_after_a_sentence(pipeline: Pipeline) -> None:
    speech = lk.load("speech/cmu-arctic-pyroomacoustics/cmu_arctic_us_axb_a0005.wav")
    d = pipeline.run(_call(lk.silence(0.5), speech, lk.silence(1.5)))
    (eot,) = d.of(ctl.EndOfTurn)
    assert "forget it" in eot.text.lower()
    assert d.of(ctl.Interrupt) == []
    assert eot.at - eot.speech_end <= 250 * MS


def test_controller_on_recordings_interrupts_for_speech_over_the_bot(pipeline: Pipeline) -> None:
    bot = lk.load("speech/librispeech-arm-mlek/another_door.wav")
    caller = lk.load("speech/librispeech-arm-mlek/i_tell_you.wav")
    d = pipeline.run(_call(lk.silence(1.0), caller, lk.silence(1.5)), bot=bot, bot_at=0.2)
    (interrupt,) = d.of(ctl.Interrupt)
    onset = int(1.0 * lk.RATE) + _voice_onset(caller)
    assert abs(interrupt.onset - onset) <= 100 * MS
    assert interrupt.at - onset <= 200 * MS  # speech onset to the decision to stop
    assert d.of(ctl.Resume) == [] and len(d.of(ctl.InterruptConfirmed)) == 1
    assert "poison" in d.of(ctl.EndOfTurn)[0].text.lower()


@pytest.mark.parametrize(
    "noise",
    [
        "noise/ibm-max-audio-samples/typing.wav",
        "noise/doggy-daycare-ambience/629986__flem0527__knocking-on-wood-door-2.ogg",
        "noise/doggy-daycare-dogs/20240222_094422_34_charlie.ogg",
        "noise/ibm-max-audio-samples/snoring.wav",
        "noise/speech-commands-bg-pyroomacoustics/doing_the_dishes.wav",
    ],
)
def test_controller_on_recordings_no_interruption_by_noise(pipeline: Pipeline, noise: str) -> None:
    bot = lk.load("speech/librispeech-arm-mlek/another_door.wav")
    d = pipeline.run(_call(lk.silence(0.5), lk.load(noise, seconds=3.0)), bot=bot, bot_at=0.2)
    assert d.of(ctl.Interrupt) == [] or d.of(ctl.Resume)  # never stopped, or carried on


def test_controller_on_recordings_no_interruption_by_echo(pipeline: Pipeline) -> None:
    bot = lk.load("speech/cmu-arctic-pyroomacoustics/cmu_arctic_us_aew_a0003.wav")
    delay = int(0.25 * lk.RATE)
    line = np.zeros(len(bot) + delay + lk.RATE, np.float32)
    line[delay : delay + len(bot)] = bot * 10 ** (-10 / 20)  # -10 dB, 250 ms late
    d = pipeline.run(lk.phone(line), bot=bot, bot_at=0.0)
    assert d.of(ctl.SpeechStarted) == []


def test_controller_on_recordings_interrupts_through_the_echo(pipeline: Pipeline) -> None:
    bot = lk.load("speech/cmu-arctic-pyroomacoustics/cmu_arctic_us_aew_a0003.wav")
    caller = lk.load("speech/librispeech-arm-mlek/i_tell_you.wav")
    delay = int(0.2 * lk.RATE)
    line = np.zeros(len(caller) + 2 * lk.RATE, np.float32)
    line[delay : delay + len(bot)] += bot[: len(line) - delay] * 10 ** (-10 / 20)
    line[lk.RATE : lk.RATE + len(caller)] += caller
    d = pipeline.run(lk.phone(line), bot=bot, bot_at=0.0)
    (interrupt,) = d.of(ctl.Interrupt)
    assert interrupt.onset >= int(0.9 * lk.RATE)  # the caller, not the echo before them


@pytest.mark.parametrize("word", ["Yeah.", "Right."])
def test_controller_on_recordings_backchannel_does_not_take_the_turn(
    pipeline: Pipeline, piper, word: str
) -> None:
    bot = lk.load("speech/librispeech-arm-mlek/another_door.wav")
    said = np.frombuffer(piper.synthesize(word), "<i2").astype(np.float32) / 32768
    d = pipeline.run(_call(lk.silence(1.0), said, lk.silence(1.5)), bot=bot, bot_at=0.2)
    assert d.of(ctl.EndOfTurn) == [] and d.of(ctl.InterruptConfirmed) == []
    assert d.of(ctl.Interrupt) == [] or {r.reason for r in d.of(ctl.Resume)} <= {
        "short",
        "backchannel",
    }


@pytest.mark.parametrize(("sure", "commits"), [(False, 0), (True, 1)])
def test_controller_a_word_the_recogniser_is_unsure_of_does_not_take_the_floor(
    sure: bool, commits: int
) -> None:
    c = ctl.TurnController()
    c.bot_audible_until(10_000 * MS)
    t, out = 0, []
    for p in [SPEECH] * 16 + [QUIET] * 12:  # a bark too long to be released as short
        t += WINDOW
        for d in c.window(t, p, 0.0, -20.0):
            out.append(d)
            if isinstance(d, ctl.Transcribe):
                out += c.transcript(d.segment, d.end, "What?", sure=sure)
    assert len([d for d in out if isinstance(d, ctl.InterruptConfirmed)]) == commits
    if not sure:
        kinds = [
            type(x) for x in out if not isinstance(x, ctl.Transcribe | ctl.Deepen | ctl.Soften)
        ]
        assert kinds == [ctl.SpeechStarted, ctl.Interrupt, ctl.Resume, ctl.Discard]


def _barge(words: str, primed: str | None, windows: int = 16) -> tuple[list, list]:
    """A sound over the bot, every request answered at once with ``words`` and, when the
    request asks for it, the primed reading ``primed``; the decisions and the requests."""
    c = ctl.TurnController()
    c.bot_audible_until(10_000 * MS)
    t, out, asked = 0, [], []
    for p in [SPEECH] * windows + [QUIET] * 12:  # too long to be released as a short sound
        t += WINDOW
        for d in c.window(t, p, 0.0, -20.0):
            out.append(d)
            if isinstance(d, ctl.Transcribe):
                asked.append(d)
                out += c.transcript(d.segment, d.end, words, primed=primed if d.primed else None)
    return out, asked


@pytest.mark.parametrize(
    ("primed", "commits", "reason"),
    [
        ("Ha ha, ooh.", 0, "vocal"),
        ("Uh-huh.", 0, "backchannel"),
        ("", 0, "noise"),
        ("Two.", 1, None),
    ],
)
def test_controller_words_gone_when_read_primed_do_not_take_the_floor(
    primed: str, commits: int, reason: str | None
) -> None:
    """ "Two!" for a sneeze, which the primed reading writes as a sound: released; words that
    stay words when primed take the floor."""
    out, asked = _barge("Two!", primed)
    # Over the bot every reading is primed; after a commit the words are a turn's, read plainly.
    assert asked[0].primed and all(r.primed for r in asked) == (commits == 0)
    assert len([d for d in out if isinstance(d, ctl.InterruptConfirmed)]) == commits
    assert [r.reason for r in out if isinstance(r, ctl.Resume)] == ([reason] if reason else [])


def _held_sound(readings: Callable[[int], tuple[str, str]], speech: int = 48) -> list:
    """A sound over the bot of ``speech`` windows and then a pause, each request answered
    128 ms later with ``readings(end)``: (plain words, primed words)."""
    c = ctl.TurnController()
    c.bot_audible_until(10_000 * MS)
    t, out, due = 0, [], []
    for k in range(speech + 12):
        t += WINDOW
        out += c.window(t, SPEECH if k < speech else QUIET, 0.0, -20.0)
        for d in [d for d in out if isinstance(d, ctl.Transcribe) and d not in due]:
            due.append(d)
        for d in [d for d in due if d.end + 4 * WINDOW == t]:
            plain, primed = readings(d.end)
            out += c.transcript(d.segment, d.end, plain, primed=primed)
    return out


def test_controller_a_primed_reading_of_speech_still_going_on_does_not_release() -> None:
    """Primed, the first syllables of a sentence read as "Ah." too: a reading the speech has
    gone on past neither releases nor commits, and the sentence commits when it is read."""
    sentence = "Lord, but I am glad to see you."
    out = _held_sound(lambda end: ("Lord,", "Ah.") if end < 30 * WINDOW else (sentence, sentence))
    assert not any(isinstance(d, ctl.Resume) for d in out)
    assert any(isinstance(d, ctl.InterruptConfirmed) for d in out)


def test_controller_a_primed_reading_holds_invented_words_back_from_the_floor() -> None:
    """A laugh read "I love!" while it goes on, "Ha ha" primed: no commit on the partial, and
    the reading of the whole laugh releases it."""
    out = _held_sound(lambda end: ("I love!", "Ha ha."), speech=20)
    assert not any(isinstance(d, ctl.InterruptConfirmed) for d in out)
    assert [d.reason for d in out if isinstance(d, ctl.Resume)] == ["vocal"]


def test_controller_reads_primed_only_over_the_bot() -> None:
    d = Driver(lambda s, e: "Ten of clubs.")
    d.run([QUIET] * 5 + [SPEECH] * 30 + [QUIET] * 20)
    asked = d.of(ctl.Transcribe)
    assert asked and not any(r.primed for r in asked)
    assert d.of(ctl.EndOfTurn)


# ---------------------------------------------------------------- the hold's two levels


def _levels(d: Driver, windows: list[tuple[float, float]]) -> None:
    for prob, level in windows:
        d.window(prob, level_db=level)


def test_controller_sustained_sure_speech_deepens_the_hold() -> None:
    d = Driver(lambda s, e: "", delay=50)  # no words yet: the sound alone decides the level
    d.c.bot_audible_until(10_000 * MS)
    _levels(d, [(0.7, -20.0)] * 2)  # speech the VAD is not sure of: the soft level only
    assert d.of(ctl.Interrupt) and not d.of(ctl.Deepen)
    _levels(d, [(SPEECH, -21.0)])
    assert not d.of(ctl.Deepen)
    _levels(d, [(SPEECH, -22.0)])
    (deep,) = d.of(ctl.Deepen)
    assert deep.at == 4 * WINDOW  # two windows of sure speech at a steady level


def test_controller_a_decaying_burst_stays_soft() -> None:
    d = Driver(lambda s, e: "", delay=50)
    d.c.bot_audible_until(10_000 * MS)
    # A cough: sure enough to the VAD, but 14 dB and more down each window from its peak.
    _levels(d, [(SPEECH, -8.0), (SPEECH, -22.0), (SPEECH, -33.0), (SPEECH, -40.0)])
    _levels(d, [(QUIET, -60.0)] * 5)
    assert d.of(ctl.Interrupt) and d.of(ctl.Deepen) == []
    (release,) = d.of(ctl.Resume)
    assert release.reason == "short"


def test_controller_a_burst_that_ends_goes_back_to_soft_and_speech_deepens_it_again() -> None:
    d = Driver(lambda s, e: "", delay=50)
    d.c.bot_audible_until(10_000 * MS)
    _levels(d, [(SPEECH, -15.0)] * 3)
    assert len(d.of(ctl.Deepen)) == 1  # with the soft hold, at once: sure from the start
    _levels(d, [(SPEECH, -40.0)] * 2)  # fallen 25 dB: not yet (a stop consonant is this long)
    assert d.of(ctl.Soften) == []
    _levels(d, [(SPEECH, -40.0)])
    (soft,) = d.of(ctl.Soften)
    assert soft.at == d.t
    _levels(d, [(SPEECH, -16.0)])  # the voice again: deep at once
    assert len(d.of(ctl.Deepen)) == 2 and d.of(ctl.Resume) == []


def test_controller_words_that_take_the_floor_commit_from_the_soft_level() -> None:
    d = Driver(lambda s, e: "Wait, no, I said Tuesday.", delay=1)
    d.c.bot_audible_until(10_000 * MS)
    # Speech the VAD is not sure of (0.6): never deep, yet its words take the floor.
    _levels(d, [(0.6, -20.0)] * 30)
    assert d.of(ctl.Deepen) == []
    assert len(d.of(ctl.InterruptConfirmed)) == 1 and d.of(ctl.Resume) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(-90.0, 0.0)), max_size=80))
def test_controller_hold_levels_alternate_and_end_with_the_hold(windows) -> None:
    d = Driver(lambda s, e: "", delay=4)
    d.c.bot_audible_until(100_000 * MS)
    _levels(d, windows)
    level = 0  # 0: no hold, 1: soft, 2: deep
    for x in d.log:
        if isinstance(x, ctl.Interrupt):
            assert level == 0
            level = 1
        elif isinstance(x, ctl.Deepen):
            assert level == 1
            level = 2
        elif isinstance(x, ctl.Soften):
            assert level == 2
            level = 1
        elif isinstance(x, ctl.Resume | ctl.InterruptConfirmed):
            level = 0
        elif isinstance(x, ctl.EndOfTurn | ctl.Discard | ctl.Backchannel):
            assert level == 0  # a segment never ends with its hold still open


def test_controller_a_released_sound_ends_after_a_long_pause_even_with_words_owed() -> None:
    d = Driver(lambda s, e: "Uh-huh.", delay=40)  # a recogniser far behind
    d.c.bot_audible_until(10_000 * MS)
    d.run([SPEECH] * 6 + [QUIET] * 5)  # a short sound: released before its words
    assert len(d.of(ctl.Resume)) == 1
    d.run([QUIET] * 18)  # 0.7 s after it: over, so the next sound is a new segment
    assert len(d.of(ctl.Discard)) == 1
    d.run([SPEECH] * 3)
    assert len(d.of(ctl.SpeechStarted)) == 2


def test_controller_a_long_sound_the_vad_half_believes_is_released_while_words_are_owed() -> None:
    d = Driver(lambda s, e: "", delay=200)  # the recogniser is far behind
    d.c.bot_audible_until(10_000 * MS)
    d.run([0.7] * 40)  # 1.3 s the VAD is not sure of (a laugh): never deep
    assert d.of(ctl.Deepen) == [] and d.of(ctl.InterruptConfirmed) == []
    (release,) = d.of(ctl.Resume)
    assert release.reason == "long"
    sure = Driver(lambda s, e: "", delay=200)
    sure.c.bot_audible_until(10_000 * MS)
    sure.run([SPEECH] * 40)  # sure speech as long: a turn, words or not
    assert sure.of(ctl.Deepen) and len(sure.of(ctl.InterruptConfirmed)) == 1
