"""Turn-taking: when the caller has finished, when they are really interrupting, and when not.

The controller is pure and synchronous. Its clock is the caller's audio: every input carries
``t``, the sample count (at :attr:`TurnConfig.rate`) of caller audio received when it applies,
so a test drives it with VAD probabilities and transcripts alone, no models and no clock.

It sees both channels:

- the caller's, one VAD window at a time (:meth:`TurnController.window`): the speech
  probability, and how much of the window the bot's own echo explains (``echo_db``: the level
  of what remains once the echo of the bot's recent audio is taken out, relative to the window;
  0 dB when nothing is explained, -20 dB when it is all echo);
- the bot's, as spans of the caller's timeline during which the bot is audible
  (:meth:`TurnController.bot_audible_until`), from the engine's model of playback (the gateway
  plays at 1x from about when audio is emitted);
- the words, as transcripts of caller speech it asked for (:class:`Transcribe` ->
  :meth:`TurnController.transcript`).

Ends of turn are decided from words and pause together: a pause after a complete answer (a
yes/no to a yes/no question, a number to "how many?", a sentence with a full stop) ends the
turn as soon as the transcript is in, about a tenth of a second after the caller stops; words
that could go on ("four", with no question asked) wait a little longer; a pause after "I'd like
a table for" (a dangling word, a trailing comma or dash) waits well past a thinking pause.
Interruptions are two-staged. Speech that the echo does not explain, held for a few windows (a
bark or a knock is not speech to the VAD), opens a hold (:class:`Interrupt`), at its soft level:
the bot is only ducked, so a sound judged harmless costs the caller a dip, not a gap. The hold
goes deep (:class:`Deepen`: the bot silenced at an exact sample) once the sound is speech beyond
doubt for ``deep_windows`` in a row: the VAD sure of it, and the loudness kept within
``deep_within_db`` of the sound's loudest (a cough or a laugh bursts and decays within a window
or two; a voice holds its level from syllable to syllable). A deep hold whose sound then falls
``burst_drop_db`` below its loudest for ``burst_end_windows`` (the burst is over: 96 ms, not the
VAD's 128 ms of silence plus its lag) goes back to soft (:class:`Soften`), and deep again at
the next window of sure speech. The sound is judged on its evidence, fastest first:

- a sound that ends within ``short_sound_ms`` of speech is released at once (:class:`Resume`),
  before its words are in: a cough, a sneeze, a knock the VAD took for speech;
- while it goes on, its words are asked for ``first_partial_ms`` after its onset and every
  ``partial_every_ms`` after that (streaming partials), and each answer is judged: words that
  take the floor commit (:class:`InterruptConfirmed`); sounds a voice makes that are not words
  ("hahaha", "hmm", "oof": :func:`nlu.is_vocal_sound`) release at once; no words, words the
  recogniser doubts, more words than the sound could hold (a recogniser inventing "I'm so
  sorry" for a cough), words that are gone when it reads the sound again primed for sounds
  that are not words ("Two!" for a sneeze reads "Ha ha" primed), a word or two it is unsure of
  ("What?" for a bark), or a backchannel ("uh-huh") release once the sound ends;
- speech past ``backchannel_max_ms``, or a hold past ``confirm_ms``, releases if its words were
  judged (they did not take the floor); if none came back yet (the recogniser is behind), it
  commits when the hold is deep (sure speech: the caller has been at it a while) and releases
  when it is soft (a laugh, a noise the VAD half believes).

A release is provisional: the segment stays open and its later words are still judged, so a
release that was really an interruption ("Oh, wait, that's wrong") commits as soon as the words
arrive. A commit whose words turn out to be a backchannel or no words at all ends in
:class:`Backchannel` or :class:`Discard`, after which the bot carries on from where the caller
stopped hearing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.local import nlu

__all__ = [
    "Backchannel",
    "Decision",
    "Deepen",
    "Discard",
    "EndOfTurn",
    "Interrupt",
    "InterruptConfirmed",
    "Partial",
    "Resume",
    "Soften",
    "SpeechStarted",
    "Transcribe",
    "TurnConfig",
    "TurnController",
]


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """Thresholds and timings (ms unless named otherwise); the defaults are tuned on the
    recordings in the benchmark (tests/bench/bench_local.py)."""

    rate: int = 16000
    window: int = 512
    #: VAD probability at or above which a window is speech, and below which it is silence.
    speech_prob: float = 0.5
    silence_prob: float = 0.35
    #: Windows quieter than this are silence whatever the VAD says (line noise, far talkers).
    min_level_db: float = -55.0
    #: A window whose residual after removing the bot's echo is below this is echo, not speech.
    echo_db: float = -6.0
    #: Consecutive speech windows that start a caller utterance while the bot is silent...
    onset_windows: int = 2
    #: ...and that interrupt the bot while it is audible.
    barge_windows: int = 2
    #: Silence before the words so far are transcribed (the pause might be the end): one VAD
    #: window. Asking at the first silent window rather than the second took 45 ms off the
    #: response p50 (one call at a time, two runs each: 262 / 260 ms against 306 / 315) and
    #: cost no capacity measurable through the overload benchmark's noise; a request in
    #: flight still holds back the next, so a word gap asks at most once per recognition.
    pause_ms: int = 32
    #: A held sound goes deep (the bot silenced, not only ducked) after this many consecutive
    #: windows of speech beyond doubt: VAD probability at or above ``deep_prob`` and loudness
    #: within ``deep_within_db`` of the sound's loudest so far. Speech holds its level from
    #: syllable to syllable; a cough or a laugh bursts and decays within a window or two.
    deep_prob: float = 0.9
    deep_windows: int = 2
    deep_within_db: float = 12.0
    #: A deep hold on a sound no longer than ``short_sound_ms`` is lifted back to soft once the
    #: sound has stayed this far below its loudest for this many windows (a burst's end, seen
    #: in 96 ms rather than after the VAD's 128 ms of silence and its lag); speech that goes on
    #: deepens it again.
    burst_drop_db: float = 20.0
    burst_end_windows: int = 3
    #: ...after which this many windows of sure speech make it deep again (the sound has
    #: already shown it is speech-like: a gap between words is not a new sound).
    redeep_windows: int = 1
    #: Silence that ends the turn, by how finished the words look. Unsure words (no closing
    #: punctuation, no dangling word) wait only a little longer than finished ones: a wrong
    #: early end costs an acknowledgement the caller talks over, and their continuation is
    #: merged back into the turn (``continuation_ms``); waiting a second costs every such turn.
    complete_gap_ms: int = 100
    unsure_gap_ms: int = 200
    incomplete_gap_ms: int = 1600
    #: A segment whose words are empty (noise) is dropped after this much silence.
    empty_gap_ms: int = 300
    #: Speech longer than this in a hold, with no words judged yet, commits.
    backchannel_max_ms: int = 900
    #: A sound over the bot that ends within this much speech is released before its words
    #: are in (they still decide: words that take the floor commit when they arrive).
    short_sound_ms: int = 400
    #: ...once it has been followed by this much silence (longer than the gap between two
    #: words: "Go ... forward" is not a short sound).
    short_pause_ms: int = 128
    #: While a held sound goes on, its words are asked for this long after its onset, then
    #: this often (streaming partials): a laugh or a cough is judged while it lasts.
    first_partial_ms: int = 200
    partial_every_ms: int = 320
    #: Words the recogniser is unsure of take the floor only this many at a time: one or two
    #: are what it makes of a bark or a cough ("What?", "No!"); a caller going on says more.
    sure_words: int = 3
    #: More words per second of speech than a person says (fast speech is 6-7 syllables a
    #: second): the recogniser made them up from a cough or a laugh.
    max_words_per_s: float = 8.0
    #: Silence after a backchannel before the bot carries on: "Right," may lead into more.
    backchannel_gap_ms: int = 200
    #: A released sound followed by this much silence is over, its words in or not.
    released_close_ms: int = 700
    #: A hold not judged within this (from the Interrupt) commits; it must stay inside the
    #: gateway's limit on a hold (3 s).
    confirm_ms: int = 1400
    #: Audio kept before an onset, so the first syllable reaches the recogniser.
    pre_roll_ms: int = 250
    #: Speech resumed this soon after an answered turn's end continues that turn: the answer
    #: is taken back and the words are read again as one utterance.
    continuation_ms: int = 1000
    #: An utterance this long is ended and answered even without a pause.
    max_utterance_s: float = 25.0

    def samples(self, ms: float) -> int:
        return int(ms * self.rate / 1000)


# -------------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """A caller utterance began at sample ``onset`` (``barge_in``: over the bot)."""

    segment: int
    onset: int
    barge_in: bool


@dataclass(frozen=True, slots=True)
class Transcribe:
    """Transcribe caller audio ``[start, end)`` and report it with :meth:`transcript`;
    ``primed``: a sound over the bot, to be read a second time primed for sounds that are not
    words (see :mod:`engine.local.asr`), which its judgement weighs."""

    segment: int
    start: int
    end: int
    primed: bool = False


@dataclass(frozen=True, slots=True)
class Partial:
    """Words so far of an utterance still in progress."""

    segment: int
    text: str


@dataclass(frozen=True, slots=True)
class EndOfTurn:
    """The caller has finished: answer ``text``. ``speech_end`` is when they stopped speaking,
    ``at`` when this was decided (both samples)."""

    segment: int
    text: str
    speech_end: int
    at: int
    barge_in: bool


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Hold the bot now: caller speech from ``onset`` (decided at ``at``) is being judged."""

    onset: int
    at: int


@dataclass(frozen=True, slots=True)
class Deepen:
    """The held sound is speech-like: silence the bot (the hold's second level)."""

    at: int


@dataclass(frozen=True, slots=True)
class Soften:
    """The deep hold's sound burst has ended: back to the soft level while it is judged."""

    at: int


@dataclass(frozen=True, slots=True)
class InterruptConfirmed:
    """The interruption is a turn: commit (hold again first if it had been released)."""

    at: int


@dataclass(frozen=True, slots=True)
class Resume:
    """Release the hold: the bot carries on (provisionally: later words may still commit)."""

    at: int
    reason: str  # "short", "long", "vocal", "noise", "unsure" or "backchannel"
    text: str = ""


@dataclass(frozen=True, slots=True)
class Backchannel:
    """The caller acknowledged ("uh-huh") without taking the turn."""

    segment: int
    text: str


@dataclass(frozen=True, slots=True)
class Discard:
    """A segment that was not words (noise, breath): no turn."""

    segment: int
    text: str


Decision = (
    SpeechStarted
    | Transcribe
    | Partial
    | EndOfTurn
    | Interrupt
    | Deepen
    | Soften
    | InterruptConfirmed
    | Resume
    | Backchannel
    | Discard
)


@dataclass(slots=True)
class _Segment:
    """A caller utterance in progress."""

    id: int
    onset: int
    last_speech: int
    barge_in: bool
    speech_samples: int = 0
    #: Transcript request in flight: the end sample it covers (None: none in flight).
    asked_until: int | None = None
    #: Latest transcript, the end sample it covers, and whether the recogniser doubted it.
    text: str = ""
    text_until: int = -1
    doubtful: bool = False
    sure: bool = True
    #: The latest primed reading (None: not asked for, or not in yet).
    primed: str | None = None
    #: A barge-in held while it is judged.
    pending_interrupt: bool = False
    interrupt_at: int = 0
    #: A barge-in released while its words may still commit it.
    released: bool = False
    #: The judgement of its latest words (see TurnController._verdict), "" before any.
    verdict: str = ""
    #: The hold's level and its evidence: the loudest window so far (dBFS), consecutive
    #: windows of sure speech, consecutive windows fallen ``burst_drop_db`` below the loudest.
    deep: bool = False
    softened: bool = False
    peak_db: float = -120.0
    sure_run: int = 0
    low_run: int = 0


@dataclass
class TurnController:
    """One call's turn-taking state. Feed :meth:`window` every VAD window in order."""

    config: TurnConfig = field(default_factory=TurnConfig)
    #: What the bot's last question asked for; a short fitting answer ends the turn early.
    expectation: nlu.Expectation = field(default_factory=nlu.Expectation)

    def __post_init__(self) -> None:
        self.t = 0
        self._run = 0  # consecutive speech windows outside a segment
        # ...their loudest window, and how many of the latest are sure speech (see deep_prob).
        self._run_peak = -120.0
        self._run_sure = 0
        self._bot_until = 0
        self._segment: _Segment | None = None
        self._next_id = 0

    # -- the bot's channel -------------------------------------------------------------------

    def bot_audible_until(self, end: int) -> None:
        """The bot will be audible until caller-sample ``end`` (extends, never shortens)."""
        self._bot_until = max(self._bot_until, end)

    def bot_stopped(self, t: int) -> None:
        """The bot's audio was cut at ``t`` (after an Interrupt)."""
        self._bot_until = min(self._bot_until, t)

    def bot_audible(self, t: int) -> bool:
        return t < self._bot_until

    @property
    def bot_until(self) -> int:
        return self._bot_until

    @property
    def in_utterance(self) -> bool:
        """A caller utterance is open (speaking or pausing): not the time to prompt them."""
        return self._segment is not None

    # -- the caller's channel ----------------------------------------------------------------

    def window(
        self, t: int, prob: float, echo_db: float = 0.0, level_db: float = 0.0
    ) -> list[Decision]:
        """One VAD window ending at sample ``t``."""
        cfg = self.config
        self.t = t
        out: list[Decision] = []
        loud = level_db >= cfg.min_level_db
        speech = loud and prob >= cfg.speech_prob and echo_db > cfg.echo_db
        seg = self._segment
        if seg is None:
            self._run = self._run + 1 if speech else 0
            self._run_peak = max(self._run_peak, level_db) if speech else -120.0
            sure = (
                speech and prob >= cfg.deep_prob and level_db >= self._run_peak - cfg.deep_within_db
            )
            self._run_sure = self._run_sure + 1 if sure else 0
            barge = self.bot_audible(t)
            need = cfg.barge_windows if barge else cfg.onset_windows
            if self._run >= need:
                onset = t - self._run * cfg.window
                seg = self._open(onset, t, barge, out)
                seg.peak_db, seg.sure_run = self._run_peak, self._run_sure
                self._run = 0
                if seg.pending_interrupt:
                    self._level(seg, out)
            return out
        if speech:
            seg.last_speech = t
            seg.speech_samples += cfg.window
        elif prob >= cfg.silence_prob and loud and echo_db > cfg.echo_db:
            seg.last_speech = t  # between thresholds: still in the word, not yet a pause
        if seg.pending_interrupt:
            seg.peak_db = max(seg.peak_db, level_db) if speech else seg.peak_db
            sure = speech and prob >= cfg.deep_prob and level_db >= seg.peak_db - cfg.deep_within_db
            seg.sure_run = seg.sure_run + 1 if sure else 0
            seg.low_run = seg.low_run + 1 if level_db <= seg.peak_db - cfg.burst_drop_db else 0
            self._level(seg, out)
        if seg.pending_interrupt or seg.released:
            self._judge_sound(seg, out)
            if self._segment is None:
                return out
        gap = t - seg.last_speech
        if (
            gap >= cfg.samples(cfg.pause_ms)
            and seg.asked_until is None
            and seg.text_until < seg.last_speech
        ):
            self._ask(seg, out)
        elif (
            gap == 0 and t - seg.onset >= cfg.max_utterance_s * cfg.rate and seg.asked_until is None
        ):
            self._ask(seg, out)
        self._decide(seg, out)
        return out

    def transcript(
        self,
        segment: int,
        end: int,
        text: str,
        doubtful: bool = False,
        sure: bool = True,
        primed: str | None = None,
    ) -> list[Decision]:
        """The words of a :class:`Transcribe` request (for the segment, up to ``end``);
        ``doubtful``: the recogniser doubts it heard speech at all (an interruption by such
        words is taken for noise); ``sure``: it is confident of the words (a word or two it
        is not sure of does not take the floor from the bot); ``primed``: the primed reading,
        if it was asked for (words there too, or the sound is not a turn)."""
        out: list[Decision] = []
        seg = self._segment
        if seg is None or seg.id != segment:
            return out
        seg.asked_until = None
        seg.text, seg.text_until, seg.doubtful = text.strip(), end, doubtful
        seg.sure, seg.primed = sure, primed
        if seg.pending_interrupt or seg.released:
            self._judge_words(seg, out)
            if self._segment is None:
                return out
        if seg.text and not (seg.pending_interrupt or seg.released):  # not while it may be noise
            out.append(Partial(seg.id, seg.text))
        if seg.text_until < seg.last_speech and t_gap(
            self.t, seg.last_speech
        ) >= self.config.samples(self.config.pause_ms):
            self._ask(seg, out)  # speech went on while we transcribed and has paused again
        self._decide(seg, out)
        return out

    # -- internals ---------------------------------------------------------------------------

    def _ask(self, seg: _Segment, out: list[Decision]) -> None:
        """Ask for the words of the segment so far (with the pre-roll before its onset)."""
        seg.asked_until = self.t
        start = max(0, seg.onset - self.config.samples(self.config.pre_roll_ms))
        out.append(Transcribe(seg.id, start, self.t, seg.pending_interrupt or seg.released))

    def _open(self, onset: int, t: int, barge: bool, out: list[Decision]) -> _Segment:
        seg = _Segment(self._next_id, onset, t, barge, speech_samples=t - onset)
        self._next_id += 1
        self._segment = seg
        out.append(SpeechStarted(seg.id, onset, barge))
        if barge:
            seg.pending_interrupt = True
            seg.interrupt_at = t
            self._bot_until = min(self._bot_until, t)
            out.append(Interrupt(onset, t))
        return seg

    def _level(self, seg: _Segment, out: list[Decision]) -> None:
        """A held sound's level: deep on sustained sure speech, soft again when it bursts out."""
        cfg = self.config
        need = cfg.redeep_windows if seg.softened else cfg.deep_windows
        if not seg.deep and seg.sure_run >= need:
            seg.deep = True
            seg.low_run = 0
            out.append(Deepen(self.t))
        elif (
            seg.deep
            and seg.low_run >= cfg.burst_end_windows
            and seg.speech_samples <= cfg.samples(cfg.short_sound_ms)
        ):  # a burst is short: a pause after longer speech is a gap between words
            seg.deep = False
            seg.softened = True
            seg.sure_run = 0
            out.append(Soften(self.t))

    def _judge_sound(self, seg: _Segment, out: list[Decision]) -> None:
        """Per window of a held or released barge-in: partials, and the decisions that need no
        new words (a short sound's end, a long sound, a hold gone on too long, a judged end)."""
        cfg = self.config
        t = self.t
        gap = t - seg.last_speech
        words_in = seg.text_until >= seg.last_speech
        if (
            seg.pending_interrupt
            and gap == 0
            and seg.asked_until is None
            and (
                t - seg.text_until >= cfg.samples(cfg.partial_every_ms)
                if seg.text_until >= 0
                else t - seg.onset >= cfg.samples(cfg.first_partial_ms)
            )
        ):
            self._ask(seg, out)
        if seg.pending_interrupt:
            if (
                not words_in
                and gap >= cfg.samples(cfg.short_pause_ms)
                and seg.speech_samples <= cfg.samples(cfg.short_sound_ms)
            ):
                self._release(seg, "short", out)
            elif seg.speech_samples > cfg.samples(cfg.backchannel_max_ms) or t - (
                seg.interrupt_at
            ) >= cfg.samples(cfg.confirm_ms):
                # Words that take the floor commit as they come: what is left here is a long
                # sound whose words are not a turn (release), or one with no words yet because
                # the recogniser is behind: a turn if it is speech beyond doubt now (the hold
                # is deep: commit, the caller has been at it a while), a laugh or a noise if
                # not (release; its words, when they come, still commit if they take the floor).
                if seg.verdict:
                    self._release(seg, seg.verdict, out)
                elif seg.deep:
                    self._commit(seg, out)
                else:
                    self._release(seg, "long", out)
        elif (words_in and gap >= cfg.samples(cfg.backchannel_gap_ms)) or gap >= cfg.samples(
            cfg.released_close_ms
        ):
            # Released, and ended: its words in for all of it, or a pause long enough that what
            # comes next is a new sound (words still owed for this one are not waited for: on
            # a busy recogniser they would glue the next "uh-huh" to this one). Not a turn.
            self._segment = None
            if seg.verdict == "backchannel":
                out.append(Backchannel(seg.id, seg.text))
            else:
                out.append(Discard(seg.id, seg.text))

    def _judge_words(self, seg: _Segment, out: list[Decision]) -> None:
        """New words for a held or released barge-in: commit, release, or wait for more."""
        verdict = seg.verdict = self._verdict(seg)
        if verdict == "floor":
            self._commit(seg, out)
        elif seg.pending_interrupt and (
            verdict == "vocal" or seg.text_until >= seg.last_speech
        ):  # a backchannel or no words: only once the sound is over ("Yeah, but..." goes on)
            self._release(seg, verdict, out)

    def _verdict(self, seg: _Segment) -> str:
        """What the words so far make of the sound: "floor" (a turn), "vocal" (a laugh, a
        cough), "noise" (no words, doubted words, or more words than the sound could hold),
        "unsure" (a word or two the recogniser is not sure of), "backchannel", or "" (words
        the primed reading of a sound still going on takes back: not judged yet)."""
        cfg = self.config
        text = seg.text
        if nlu.completeness(text, self.expectation) is nlu.Completeness.EMPTY or seg.doubtful:
            return "noise"
        short = seg.speech_samples <= cfg.samples(cfg.backchannel_max_ms)
        if nlu.is_backchannel(text) and short:
            return "backchannel"
        if nlu.is_vocal_sound(text):
            return "vocal"
        # The words may start a little before the onset (the pre-roll): allow a syllable.
        spoken_s = seg.speech_samples / cfg.rate + 0.1
        count = len(nlu.words(text))
        if count >= 2 and count > cfg.max_words_per_s * spoken_s:
            return "noise"
        primed = seg.primed
        if primed is not None and (
            nlu.completeness(primed) is nlu.Completeness.EMPTY
            or nlu.is_backchannel(primed)
            or nlu.is_vocal_sound(primed)
        ):
            # Read again primed to write non-words as such, the words are gone. That holds
            # them back from the floor at once; it releases only on a reading of the whole
            # sound: primed, the first syllables of a sentence still going on ("Lord, ...",
            # "For the ...") read as "Ah" too often. Until then, no judgement ("").
            if seg.text_until < seg.last_speech:
                return ""
            if nlu.completeness(primed) is nlu.Completeness.EMPTY:
                return "noise"
            if nlu.is_backchannel(primed) and short:
                return "backchannel"
            return "vocal"
        if not seg.sure and count < cfg.sure_words:
            return "unsure"  # "What?" from a bark: a word or two the recogniser doubts
        return "floor"

    def _release(self, seg: _Segment, reason: str, out: list[Decision]) -> None:
        seg.pending_interrupt = seg.deep = False
        seg.released = True
        out.append(Resume(self.t, reason, seg.text))

    def _commit(self, seg: _Segment, out: list[Decision]) -> None:
        seg.pending_interrupt = seg.released = seg.deep = False
        out.append(InterruptConfirmed(self.t))

    def _decide(self, seg: _Segment, out: list[Decision]) -> None:
        """End the turn (or drop the segment) once the pause is long enough for the words."""
        cfg = self.config
        long_enough = t_gap(self.t, seg.onset) >= cfg.max_utterance_s * cfg.rate
        if seg.pending_interrupt or seg.released:
            return  # judged by _judge_sound and _judge_words
        if seg.text_until < seg.last_speech and not long_enough:
            return  # words not in yet for all that was said
        if seg.text_until < 0:
            return
        gap = self.t - seg.last_speech
        kind = nlu.completeness(seg.text, self.expectation)
        if kind is nlu.Completeness.EMPTY or nlu.is_vocal_sound(seg.text):
            if gap >= cfg.samples(cfg.empty_gap_ms):
                out.append(Discard(seg.id, seg.text))
                self._segment = None
            return
        if (
            seg.barge_in
            and nlu.is_backchannel(seg.text)
            and seg.speech_samples <= cfg.samples(cfg.backchannel_max_ms)
        ):
            # "Uh-huh" over the bot after the interruption stood (it was slow to judge): still
            # not a turn, and the bot carries on from where the caller stopped hearing it.
            if gap >= cfg.samples(cfg.backchannel_gap_ms):
                out.append(Backchannel(seg.id, seg.text))
                self._segment = None
            return
        need = {
            nlu.Completeness.COMPLETE: cfg.complete_gap_ms,
            nlu.Completeness.UNSURE: cfg.unsure_gap_ms,
            nlu.Completeness.INCOMPLETE: cfg.incomplete_gap_ms,
        }[kind]
        if gap >= cfg.samples(need) or long_enough:
            out.append(EndOfTurn(seg.id, seg.text, seg.last_speech, self.t, seg.barge_in))
            self._segment = None


def t_gap(t: int, since: int) -> int:
    """Samples from ``since`` to ``t`` (never negative)."""
    return max(0, t - since)
