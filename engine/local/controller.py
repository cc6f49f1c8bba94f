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
Interruptions are decided from speech that the echo does not explain, held for a few windows
(a bark or a knock is not speech to the VAD); the bot stops at once (:class:`Interrupt`), and
if the words then show a backchannel ("uh-huh") or nothing at all, the bot carries on where it
was cut (:class:`Resume`): fast barge-in without losing the turn to a cough.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.local import nlu

__all__ = [
    "Backchannel",
    "Decision",
    "Discard",
    "EndOfTurn",
    "Interrupt",
    "InterruptConfirmed",
    "Partial",
    "Resume",
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
    #: Silence before the words so far are transcribed (the pause might be the end).
    pause_ms: int = 64
    #: Silence that ends the turn, by how finished the words look. Unsure words (no closing
    #: punctuation, no dangling word) wait only a little longer than finished ones: a wrong
    #: early end costs an acknowledgement the caller talks over, and their continuation is
    #: merged back into the turn (``continuation_ms``); waiting a second costs every such turn.
    complete_gap_ms: int = 100
    unsure_gap_ms: int = 200
    incomplete_gap_ms: int = 1600
    #: A segment whose words are empty (noise) is dropped after this much silence.
    empty_gap_ms: int = 300
    #: Speech longer than this after an interruption is a real turn, whatever the words.
    backchannel_max_ms: int = 900
    #: Silence after a backchannel before the bot carries on: "Right," may lead into more.
    backchannel_gap_ms: int = 200
    #: An interruption not shown false within this (from the Interrupt) stands; it must stay
    #: inside the gateway's resume window (2 s).
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
    """Transcribe caller audio ``[start, end)`` and report it with :meth:`transcript`."""

    segment: int
    start: int
    end: int


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
    """Stop the bot now: caller speech from ``onset`` (decided at ``at``)."""

    onset: int
    at: int


@dataclass(frozen=True, slots=True)
class InterruptConfirmed:
    """The interruption was real: drop what the bot was going to say."""

    at: int


@dataclass(frozen=True, slots=True)
class Resume:
    """The interruption was false: let the bot carry on with what was cut."""

    at: int
    reason: str  # "noise" or "backchannel"
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
    #: A barge-in whose fate (real or false) is still open.
    pending_interrupt: bool = False
    interrupt_at: int = 0
    #: Its words are a backchannel: the bot carries on once the pause after them is long enough.
    backchannel: bool = False


@dataclass
class TurnController:
    """One call's turn-taking state. Feed :meth:`window` every VAD window in order."""

    config: TurnConfig = field(default_factory=TurnConfig)
    #: What the bot's last question asked for; a short fitting answer ends the turn early.
    expectation: nlu.Expectation = field(default_factory=nlu.Expectation)

    def __post_init__(self) -> None:
        self.t = 0
        self._run = 0  # consecutive speech windows outside a segment
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
            barge = self.bot_audible(t)
            need = cfg.barge_windows if barge else cfg.onset_windows
            if self._run >= need:
                onset = t - self._run * cfg.window
                seg = self._open(onset, t, barge, out)
                self._run = 0
            return out
        if speech:
            seg.last_speech = t
            seg.speech_samples += cfg.window
        elif prob >= cfg.silence_prob and loud and echo_db > cfg.echo_db:
            seg.last_speech = t  # between thresholds: still in the word, not yet a pause
        if seg.pending_interrupt:
            self._check_interrupt(seg, out)
            if seg.pending_interrupt and seg.backchannel and seg.text_until >= seg.last_speech:
                self._resume_after_backchannel(seg, out)  # if its pause is long enough now
            if self._segment is None:
                return out
        gap = t - seg.last_speech
        if (
            gap >= cfg.samples(cfg.pause_ms)
            and seg.asked_until is None
            and seg.text_until < seg.last_speech
        ):
            seg.asked_until = t
            out.append(Transcribe(seg.id, max(0, seg.onset - cfg.samples(cfg.pre_roll_ms)), t))
        elif (
            gap == 0 and t - seg.onset >= cfg.max_utterance_s * cfg.rate and seg.asked_until is None
        ):
            seg.asked_until = t
            out.append(Transcribe(seg.id, max(0, seg.onset - cfg.samples(cfg.pre_roll_ms)), t))
        self._decide(seg, out)
        return out

    def transcript(
        self, segment: int, end: int, text: str, doubtful: bool = False
    ) -> list[Decision]:
        """The words of a :class:`Transcribe` request (for the segment, up to ``end``);
        ``doubtful``: the recogniser doubts it heard speech at all (an interruption by such
        words is taken for noise)."""
        out: list[Decision] = []
        seg = self._segment
        if seg is None or seg.id != segment:
            return out
        seg.asked_until = None
        seg.text, seg.text_until, seg.doubtful = text.strip(), end, doubtful
        if seg.pending_interrupt and seg.text_until >= seg.last_speech:
            self._judge_interrupt(seg, out)
            if self._segment is None:
                return out
        if seg.text and not seg.pending_interrupt:  # not while it may yet be noise or "uh-huh"
            out.append(Partial(seg.id, seg.text))
        if seg.text_until < seg.last_speech and t_gap(
            self.t, seg.last_speech
        ) >= self.config.samples(self.config.pause_ms):
            # Speech went on while we transcribed and has paused again: ask for the rest.
            seg.asked_until = self.t
            start = max(0, seg.onset - self.config.samples(self.config.pre_roll_ms))
            out.append(Transcribe(seg.id, start, self.t))
        self._decide(seg, out)
        return out

    # -- internals ---------------------------------------------------------------------------

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

    def _check_interrupt(self, seg: _Segment, out: list[Decision]) -> None:
        """Long speech or a long wait settles a pending interruption as real."""
        cfg = self.config
        if seg.speech_samples > cfg.samples(
            cfg.backchannel_max_ms
        ) or self.t - seg.interrupt_at >= cfg.samples(cfg.confirm_ms):
            seg.pending_interrupt = False
            out.append(InterruptConfirmed(self.t))

    def _judge_interrupt(self, seg: _Segment, out: list[Decision]) -> None:
        """Words are in for the whole interrupting utterance: real, noise, or a backchannel."""
        cfg = self.config
        seg.backchannel = False
        kind = nlu.completeness(seg.text, self.expectation)
        if kind is nlu.Completeness.EMPTY or seg.doubtful:
            seg.pending_interrupt = False
            out.append(Resume(self.t, "noise", seg.text))
            out.append(Discard(seg.id, seg.text))
            self._segment = None
        elif nlu.is_backchannel(seg.text) and seg.speech_samples <= cfg.samples(
            cfg.backchannel_max_ms
        ):
            seg.backchannel = True  # still pending until its pause, or its next words
            self._resume_after_backchannel(seg, out)
        else:
            seg.pending_interrupt = False
            out.append(InterruptConfirmed(self.t))

    def _resume_after_backchannel(self, seg: _Segment, out: list[Decision]) -> None:
        """Let the bot carry on once the pause after a backchannel shows nothing follows."""
        if self.t - seg.last_speech < self.config.samples(self.config.backchannel_gap_ms):
            return
        seg.pending_interrupt = False
        out.append(Resume(self.t, "backchannel", seg.text))
        out.append(Backchannel(seg.id, seg.text))
        self._segment = None

    def _decide(self, seg: _Segment, out: list[Decision]) -> None:
        """End the turn (or drop the segment) once the pause is long enough for the words."""
        cfg = self.config
        long_enough = t_gap(self.t, seg.onset) >= cfg.max_utterance_s * cfg.rate
        if seg.pending_interrupt or (seg.text_until < seg.last_speech and not long_enough):
            return  # words not in yet for all that was said
        if seg.text_until < 0:
            return
        gap = self.t - seg.last_speech
        kind = nlu.completeness(seg.text, self.expectation)
        if kind is nlu.Completeness.EMPTY:
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
