"""The local engine, measured on the real recordings through the gateway and the simulator.

    python tests/bench/bench_local.py [--quick] [--calls 4,8,16]
        [--sections asr,primer,levels,latency,pause,barge,interaction,echo,load]
        [--hold clear|stop]
        [--duck DB] [--soft DB] [--probes FILE]

Every call goes through the whole path: ``create_app(Settings(), engine=LocalEngine(...))``
under ``gateway.ops.server.serve``, placed with ``gateway.sim.caller.place_call``, audio as 8 kHz
mu-law on the wire. Figures are taken where a carrier would see them (the simulator's report),
plus the engine's own ``Metric`` events where the wire cannot tell (when the answer behind an
acknowledgement was ready). Flows: ``dialplans/flows/local-bench-listen.yaml`` (answers every
utterance by repeating it, so each answer must be synthesised) and ``local-bench-talk.yaml``
(long readings to talk over).

Sections:

- asr: word error rate and time per utterance over the speech recordings after a telephone
  round trip (8 kHz mu-law), for the default recogniser and two other window settings;
- primer: per kind of sound, how many clips the recogniser reads as no words or as sounds that
  are not words, plainly and primed (see :func:`bench_primer`): deterministic, a minute;
- levels: the hold's soft and deep levels on the VAD's evidence alone (see :func:`bench_levels`):
  deterministic, seconds to run;
- latency: caller's end of speech -> first bot audio on the wire (p50, p90), and -> the answer's
  own first audio (behind the acknowledgement);
- pause: utterances spliced with a 0.5-1.0 s pause mid-sentence; how often bot audio starts in
  the pause, and how often it lasts 1 s or more there (Full-Duplex-Bench's "takes the turn");
- barge: speech over the bot: onset -> ``clear`` (p50) and the share caught;
- interaction: one table, a row per kind of sound played over the bot's reading (coughs,
  laughter, breaths, sneezes, each noise family, backchannels, real interruptions, and nothing
  at all as the baseline), measured on the wire from the call's stereo recording and its call
  record (see :func:`bench_interaction`); ``--hold stop`` runs it with holds that only stop
  sending (what the carrier has plays out), ``--duck DB`` with holds that duck;
- echo: the bot's own played audio fed back at -10 dB, 100/200/300 ms late (the simulator has
  no echo, so this benchmark adds it to the caller's frames from the played-out audio), with
  and without real barge-ins on top;
- load: concurrent calls placed from a second process, each answering three utterances:
  response latency and misses, the gateway process's CPU, the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import functools
import json
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import soxr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "local"))

import localkit as lk  # noqa: E402

import gateway.carriers.twilio.aio as twilio_aio  # noqa: E402
import gateway.sim.caller as sim_caller  # noqa: E402
from engine.base import CallContext, EventChannel, Metric  # noqa: E402
from engine.local import LocalEngine  # noqa: E402
from engine.local.asr import AsrRequest, WhisperRecognizer  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.call.playout import Playout  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.ops.server import serve  # noqa: E402
from gateway.sim.media import PlayedAudio  # noqa: E402
from gateway.sim.script import BotActivity, CallerScript, FrameOut, ScriptRunner  # noqa: E402
from gateway.sim.script import synthesize as piper_8k  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

FLOWS = ROOT / "dialplans" / "flows"
VOICED = int(32768 * 10 ** (-45 / 20))


# ------------------------------------------------------------------------------ data


def manifest() -> list[dict[str, str]]:
    path = lk.DATA / "manifest.csv"
    if not path.exists():
        sys.exit(f"the shared recordings are not under {lk.DATA}")
    with path.open() as f:
        return list(csv.DictReader(f))


def pcm8k(audio16: np.ndarray) -> bytes:
    """16 kHz float -> 8 kHz int16 bytes (what the caller script sends)."""
    return lk.pcm16(soxr.resample(audio16, 16000, 8000))


def trim(audio: np.ndarray, below_peak_db: float = 30.0, margin: float = 0.03) -> np.ndarray:
    """The recording's speech span: 10 ms frames within ``below_peak_db`` of its loudest, plus
    ``margin``, with the room noise outside replaced by silence.

    The simulator dates speech by a fixed level (-45 dBFS); several recordings have a noise
    floor above it, which would move "end of speech" to the end of the file and "onset" to its
    start. Trimming makes the wire's speech edges the speaker's.
    """
    hop = 160
    n = len(audio) // hop
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1))
    loud = np.flatnonzero(20 * np.log10(rms + 1e-9) > 20 * np.log10(rms.max()) - below_peak_db)
    pad = int(margin * 16000)
    lo, hi = max(0, loud[0] * hop - pad), min(len(audio), (loud[-1] + 1) * hop + pad)
    span = audio[lo:hi].copy()
    fade = min(160, len(span) // 2)
    span[:fade] *= np.linspace(0, 1, fade)
    span[-fade:] *= np.linspace(1, 0, fade)
    return span


def speech(min_s: float = 0.0, max_s: float = 99.0) -> list[tuple[str, str, np.ndarray]]:
    """(file, transcript, 16 kHz float audio trimmed to its speech) in a duration range."""
    out = []
    for row in manifest():
        if row["kind"] == "speech" and min_s <= float(row["duration"]) <= max_s:
            out.append((row["file"], row["transcript"], trim(lk.load(row["file"]))))
    return out


#: Noise families of the interaction table: manifest categories -> row.
FAMILIES = {
    "cough": "cough",
    "laughter": "laughter",
    "breath": "breath",
    "snoring_breathing": "breath",
    "sneeze": "sneeze",
    "dog_bark": "dogs",
    "door_open": "doors",
    "door_close": "doors",
    "door_creak": "doors",
    "door_knock": "doors",
    "window_close": "doors",
    "water_running": "water",
    "water_drip": "water",
    "music": "music",
    "babble_restaurant": "babble",
    "crowd_babble": "babble",
    "applause": "babble",
    "street_background": "babble",
    "curtain": "household",
    "sewing_machine": "household",
    "camera_shutter": "household",
    "electric_hum": "household",
    "slurp": "household",
    "household_kitchen": "household",
    "keyboard_typing": "household",
    "footsteps": "household",
    "baby_cry": "baby cry",
}


def sound_clips(per_family: int, max_s: float = 2.0) -> dict[str, list[np.ndarray]]:
    """Up to ``per_family`` clips of each family, cut to the sound (at most ``max_s``; long
    files give one excerpt), in manifest order."""
    out: dict[str, list[np.ndarray]] = {}
    for row in manifest():
        family = FAMILIES.get(row["category"])
        if row["kind"] != "noise" or family is None:
            continue
        clips = out.setdefault(family, [])
        if len(clips) >= per_family:
            continue
        audio = lk.load(row["file"], seconds=max_s + 4.0)
        if float(row["duration"]) > max_s + 1:  # an ambience: an excerpt from its middle
            audio = audio[len(audio) // 3 :][: int(max_s * 16000)]
        clip = trim(audio, below_peak_db=40.0)[: int(max_s * 16000)]
        if np.sqrt(np.mean(clip**2)) > 10 ** (-55 / 20):
            clips.append(clip)
    return out


# ------------------------------------------------------------------------------ words


_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _spell(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = "" if n % 100 == 0 else " " + _spell(n % 100)
        return _ONES[n // 100] + " hundred" + rest
    return _spell(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + _spell(n % 1000))


def norm(text: str) -> list[str]:
    text = text.lower().replace("mr.", "mister").replace("-", " ")
    text = re.sub(r"(\d+)(st|nd|rd|th)\b", lambda m: m.group(1), text)
    text = re.sub(r"\d+", lambda m: f" {_spell(int(m.group()))} ", text)
    return re.sub(r"[^a-z' ]", " ", text).split()


def edits(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, row[0] = row[:], i
        for j in range(1, len(hyp) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ref[i - 1] != hyp[j - 1]))
    return row[len(hyp)]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --------------------------------------------------------------------- engine and calls


class _TapChannel(EventChannel):
    """The session's event channel, also logging each event with the session's sample clock."""

    def __init__(self, session, log: list[tuple[int, object]]) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self._events = session.channel._events  # what the session put before the tap
        self.session, self.log = session, log
        for event in self._events:
            log.append((0, event))

    def put(self, event) -> None:  # type: ignore[no-untyped-def]
        self.log.append((self.session._samples, event))
        super().put(event)


class Tap:
    """Records every engine event of every call, with the caller-sample time it came at."""

    def __init__(self, engine: LocalEngine) -> None:
        self.calls: list[list[tuple[int, object]]] = []
        opener = engine.open

        async def open_and_tap(context: CallContext):  # type: ignore[no-untyped-def]
            session = await opener(context)
            events: list[tuple[int, object]] = []
            self.calls.append(events)
            session.channel = _TapChannel(session, events)
            return session

        engine.open = open_and_tap  # type: ignore[method-assign]

    def metrics(self, name: str) -> list[float]:
        return [
            e.value
            for call in self.calls
            for _, e in call
            if isinstance(e, Metric) and e.name == name
        ]

    def reset(self) -> None:
        self.calls.clear()


def engines(turn: dict[str, float]) -> tuple[LocalEngine, LocalEngine]:
    listen = LocalEngine(flow=str(FLOWS / "local-bench-listen.yaml"), turn=turn)
    talk = LocalEngine(
        flow=str(FLOWS / "local-bench-talk.yaml"),
        turn=turn,
        recognizer=listen.recognizer,
        synthesizer=listen.synthesizer,
        vad=listen.workers.vad.model,
    )
    return listen, talk


async def calls(url: str, scripts: list[CallerScript], *, record: Path | None = None):  # type: ignore[no-untyped-def]
    """Place the calls at once; reports in order (recordings as record/<i>.wav)."""
    return await asyncio.gather(
        *[
            sim_caller.place_call(
                url, s, auth_token=None, record=(record / f"{i}.wav") if record else None
            )
            for i, s in enumerate(scripts)
        ]
    )


def chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ------------------------------------------------------------------------------ echo


class EchoBotActivity(BotActivity):
    """BotActivity that also keeps the played-out audio, to send it back as echo."""

    def __init__(self) -> None:
        super().__init__()
        self.played: list[tuple[float, np.ndarray]] = []

    def feed(self, played) -> None:  # type: ignore[no-untyped-def]
        pieces: list[PlayedAudio] = list(played)
        super().feed(pieces)
        for p in pieces:
            self.played.append((p.time, np.frombuffer(p.pcm(), "<i2").astype(np.float32)))
        if len(self.played) > 400:
            del self.played[:200]

    def audio_at(self, start: float, n: int) -> np.ndarray:
        out = np.zeros(n, np.float32)
        for t, pcm in self.played[-60:]:
            offset = int(round((t - start) * 8000))
            lo, hi = max(0, offset), min(n, offset + len(pcm))
            if lo < hi:
                out[lo:hi] += pcm[lo - offset : hi - offset]
        return out


class EchoRunner(ScriptRunner):
    """Mixes the bot's played audio, ``delay`` s late at ``gain``, into every caller frame.

    The echo runs on its own sample clock (160 samples a frame from the first frame on), as a
    phone line's would: taking it from each frame's send time instead would jitter it by the
    sender's scheduling, a distortion no real echo path has.
    """

    delay = 0.2
    gain = 10 ** (-10 / 20)

    def next_frame(self, now: float, bot: BotActivity) -> FrameOut:
        out = super().next_frame(now, bot)
        if not isinstance(bot, EchoBotActivity):
            return out
        if not hasattr(self, "_echo_at"):
            self._echo_at = now - self.delay
        echo = bot.audio_at(self._echo_at, len(out.ulaw)) * self.gain
        self._echo_at += len(out.ulaw) / 8000
        caller = np.frombuffer(audioop.ulaw2lin(out.ulaw, 2), "<i2").astype(np.float32)
        mixed = np.clip(caller + echo, -32768, 32767).astype("<i2").tobytes()
        return FrameOut(audioop.lin2ulaw(mixed, 2), out.voiced, out.dtmf)


@contextlib.contextmanager
def echo_line(delay: float, gain_db: float = -10.0) -> Iterator[None]:
    """While inside, simulated callers send the bot's own audio back as echo."""
    EchoRunner.delay, EchoRunner.gain = delay, 10 ** (gain_db / 20)
    saved = sim_caller.BotActivity, sim_caller.ScriptRunner
    sim_caller.BotActivity, sim_caller.ScriptRunner = EchoBotActivity, EchoRunner  # type: ignore[misc]
    try:
        yield
    finally:
        sim_caller.BotActivity, sim_caller.ScriptRunner = saved  # type: ignore[misc]


# ---------------------------------------------------------------------------- sections


def bench_asr(quick: bool) -> list[str]:
    items = [(t, lk.phone(a)) for _, t, a in speech()]
    configs = [
        ("default: 6 s window, timestamps", {}),
        ("4 s window, timestamps", {"window_s": 4.0}),
        ("3 s window, timestamps", {"window_s": 3.0}),
        ("10 s window, no timestamps", {"window_s": 10.0, "timestamps": False}),
        ("30 s window (Whisper's own)", {"window_s": 30.0, "timestamps": False}),
    ]
    lines = []
    for label, options in configs[: 1 if quick else 5]:
        asr = WhisperRecognizer(**options)  # type: ignore[arg-type]
        asr.transcribe([AsrRequest(np.zeros(8000, np.float32))])
        errors = words = 0
        times = []
        for ref, audio in items:
            t0 = time.perf_counter()
            hyp = asr.transcribe([AsrRequest(audio)])[0].text
            times.append(time.perf_counter() - t0)
            errors += edits(norm(ref), norm(hyp))
            words += len(norm(ref))
        lines.append(
            f"  {label:34} WER {100 * errors / words:5.1f} %   time per utterance p50 "
            f"{1000 * pct(times, 50):4.0f} ms  p90 {1000 * pct(times, 90):4.0f} ms  "
            f"({len(items)} utterances, {words} words)"
        )
    batch = WhisperRecognizer()
    four = [AsrRequest(a) for _, a in items[:4]]
    t0 = time.perf_counter()
    batch.transcribe(four)
    lines.append(f"  batch of 4 in one pass: {1000 * (time.perf_counter() - t0):.0f} ms")
    return lines


def _said(words: str) -> np.ndarray:
    """Piper saying ``words``, trimmed, as 16 kHz float."""
    pcm = np.frombuffer(piper_8k(words), "<i2").astype(np.float32) / 32768
    return trim(soxr.resample(pcm, 8000, 16000))


#: Spoken backchannels and short interruptions (Piper) for the primer and interaction tables.
BACKCHANNELS = ("Uh-huh.", "Yeah.", "Right.", "Okay.", "Mm-hmm.")
SHORT_TURNS = (
    "Wait.", "Stop.", "No.", "Hold on.", "Excuse me.", "Two.", "What?", "Sorry?", "Hey.",
    "Yes, but", "Actually, no.", "Tuesday.", "Nope.", "Listen.", "Hang on.", "One moment.",
)  # fmt: skip


def bench_primer(quick: bool) -> list[str]:
    """The recogniser's two readings of a sound over the bot (engine.local.asr.PRIMER): per
    kind of sound, how many clips read as no words, a backchannel or sounds that are not words
    (what releases a hold), plainly and primed, after a telephone round trip with the 250 ms
    pre-roll the engine reads. Sounds should read as not words; sentences and short spoken
    interruptions as words. Deterministic (no gateway, no clock)."""
    from engine.local import nlu

    asr = WhisperRecognizer()
    families = {
        k: v for k, v in sound_clips(3 if quick else 16).items() if k not in ("baby cry", "water")
    }
    families["backchannel"] = [_said(w) for w in BACKCHANNELS + ("Hmm.", "Oh.", "Sure.", "Wow.")]
    families["sentence"] = [a for _, _, a in speech(1.0, 4.0)][: 6 if quick else 24]
    families["short turn"] = [_said(w) for w in SHORT_TURNS[: 6 if quick else None]]

    def words(text: str) -> bool:
        empty = nlu.completeness(text) is nlu.Completeness.EMPTY
        return not (empty or nlu.is_backchannel(text) or nlu.is_vocal_sound(text))

    pre = np.zeros(4000, np.float32)
    lines = []
    for name, clips in families.items():
        heard = [AsrRequest(np.concatenate([pre, lk.phone(c)]), primed=True) for c in clips]
        out = asr.transcribe(heard)
        # Where the plain reading has no words or many, no primed one is decoded (PRIMED_WORDS):
        # the plain reading stands, as it does in the engine.
        second = [t.text if t.primed is None else t.primed for t in out]
        plain = sum(not words(t.text) for t in out)
        primed = sum(not words(t) for t in second)
        kept = [t for t in second if words(t)]
        lines.append(
            f"  {name:12} {len(clips):3}  not words: plain {plain:2}  primed {primed:2}"
            f"   words primed: {'; '.join(str(k)[:24] for k in kept[:6])}"
        )
    return lines


async def bench_latency(url: str, tap: Tap, quick: bool) -> list[str]:
    items = speech(1.0, 8.0)[: 8 if quick else 24]
    scripts = []
    for group in chunks(items, 6):
        script = CallerScript().wait_for_bot(600, 10)
        for name, _, audio in group:
            script.say(pcm8k(audio), Path(name).name).wait_for_bot(700, 15)
        scripts.append(script)
    tap.reset()
    reports = []
    for script in scripts:  # one call at a time: latency, not load
        reports.extend(await calls(url, [script]))
    wire = [r for rep in reports for r in rep.response_latencies_ms]
    missed = sum(
        1 for rep in reports for t in rep.turns if t.kind == "say" and t.response_ms is None
    )
    first = tap.metrics("turn.first_audio_ms")
    answer = tap.metrics("turn.answer_audio_ms")
    decision = tap.metrics("turn.decision_ms")
    extra = [a - f for a, f in zip(answer, first, strict=False)]
    asr_ms = tap.metrics("asr.ms")
    slowest = sorted(
        ((t.response_ms, t.label) for rep in reports for t in rep.turns if t.response_ms),
        reverse=True,
    )[:4]
    return [
        f"  end of speech -> first bot audio on the wire: p50 {pct(wire, 50):.0f} ms, "
        f"p90 {pct(wire, 90):.0f} ms  ({len(wire)} turns, {missed} unanswered)",
        "  slowest: " + ", ".join(f"{label} {ms:.0f} ms" for ms, label in slowest),
        f"  engine clock: end of speech -> turn decided p50 {pct(decision, 50):.0f} ms, -> first "
        f"audio emitted p50 {pct(first, 50):.0f} ms, -> answer audio emitted p50 "
        f"{pct(answer, 50):.0f} ms / p90 {pct(answer, 90):.0f} ms",
        f"  answer behind the acknowledgement: ready {pct(extra, 50):.0f} ms (p50) after the "
        f"acknowledgement started, i.e. ~{pct(wire, 50) + pct(extra, 50):.0f} ms on the wire",
        f"  recognition per request in calls: p50 {pct(asr_ms, 50):.0f} ms, "
        f"p90 {pct(asr_ms, 90):.0f} ms",
    ]


def splice(audio: np.ndarray, pause: float) -> np.ndarray:
    """Insert ``pause`` s of silence at the quietest point of the utterance's middle third."""
    hop = 160
    frames = len(audio) // hop
    rms = np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    voiced = np.flatnonzero(rms > 10 ** (-40 / 20))
    lo, hi = voiced[0], voiced[-1]
    a, b = lo + (hi - lo) // 3, lo + 2 * (hi - lo) // 3
    smooth = np.convolve(rms, np.ones(5) / 5, mode="same")
    cut = (a + int(np.argmin(smooth[a:b]))) * hop
    return np.concatenate((audio[:cut], np.zeros(int(pause * 16000), np.float32), audio[cut:]))


def _voiced_frames(track: np.ndarray) -> np.ndarray:
    n = len(track) // 160
    frames = track[: n * 160].astype(np.float32).reshape(n, 160)
    return np.sqrt(np.mean(frames**2, axis=1)) > VOICED


async def bench_pause(url: str, quick: bool) -> list[str]:
    items = speech(2.5, 8.0)[: 6 if quick else 16]
    pauses = [0.5 + 0.1 * (i % 6) for i in range(len(items))]
    scripts = []
    for group in chunks(list(zip(items, pauses, strict=True)), 4):
        script = CallerScript().wait_for_bot(600, 10)
        for (name, _, audio), pause in group:
            script.say(pcm8k(splice(audio, pause)), Path(name).name).wait_for_bot(700, 15)
        scripts.append(script)
    any_audio = took = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, script in enumerate(scripts):
            (report,) = await calls(url, [script], record=Path(tmp) / str(i))
            stereo, _ = soundfile.read(str(Path(tmp) / str(i) / "0.wav"), dtype="int16")
            caller, bot = _voiced_frames(stereo[:, 0]), _voiced_frames(stereo[:, 1])
            for turn in report.turns:
                if turn.kind != "say" or turn.speech_start_ms is None:
                    continue
                a, b = int(turn.speech_start_ms / 20), int(turn.speech_end_ms / 20)
                gaps, run, start = [], 0, a
                for k in range(a, b):
                    if not caller[k]:
                        run, start = run + 1, start if run else k
                    else:
                        if run:
                            gaps.append((run, start))
                        run = 0
                if not gaps:
                    continue
                length, start = max(gaps)
                if length < 20:  # the spliced pause is >= 0.5 s; shorter ones are the speaker's
                    continue
                total += 1
                window = bot[start : start + length]
                if window.any():
                    any_audio += 1
                    first = int(np.argmax(window))
                    if window[first:].sum() >= 50:  # >= 1 s of bot audio in the pause
                        took += 1
    return [
        f"  bot audio starting in a 0.5-1.0 s mid-sentence pause: {any_audio}/{total} "
        f"({100 * any_audio / max(1, total):.0f} %); lasting >= 1 s there (takes the turn): "
        f"{took}/{total} ({100 * took / max(1, total):.0f} %)"
    ]


async def bench_barge(url: str, tap: Tap, quick: bool) -> list[str]:
    items = speech(1.0, 5.0)[: 8 if quick else 24]
    scripts = []
    for group in chunks(items, 4):
        script = CallerScript().pause(300)
        for k, (name, _, audio) in enumerate(group):
            script.barge_in(1200 + 400 * k, pcm8k(audio), Path(name).name, timeout_s=20)
            script.pause(2500)
        scripts.append(script)
    tap.reset()
    reports = []
    for script in scripts:
        reports.extend(await calls(url, [script]))
    turns = [t for rep in reports for t in rep.turns if t.kind == "barge_in" and t.speech_start_ms]
    caught = [t.barge_in_ms for t in turns if t.barge_in_ms is not None]
    released = len(tap.metrics("barge_in.released"))
    return [
        f"  speech onset over the bot -> clear: p50 {pct(caught, 50):.0f} ms, p90 "
        f"{pct(caught, 90):.0f} ms; caught {len(caught)}/{len(turns)} "
        f"({100 * len(caught) / max(1, len(turns)):.0f} %); holds released {released}"
    ]


def _talk_over(clips: list[np.ndarray], gap_ms: int = 1500) -> CallerScript:
    script = CallerScript().pause(800)
    for clip in clips:
        script.barge_in(600, pcm8k(clip), timeout_s=25).pause(gap_ms)
    return script


@dataclass
class Probe:
    """One sound played over the bot, and what the caller heard around it."""

    family: str
    index: int  # within its family: even indices are the tuning half, odd the held-out half
    played: bool = False
    #: Within 1.5 s of the sound's start, the bot fell silent (or ducked >= 20 dB) for 200 ms
    #: or more (the "none" row: how often the reading itself pauses that long there).
    silent_200: bool = False
    gave_up: bool = False  # the engine took it for a turn, or cut the bot for 1.5 s or more
    got_turn: bool = False  # the engine took the caller's words as a turn (interruptions)
    #: Caller onset (the sound's first 10 ms within 25 dB of its loudest) -> the bot silent to
    #: the caller (for 400 ms or more), when it was talking.
    silent_ms: float | None = None
    holds: int = 0  # holds opened (soft or deep)
    deep: int = 0  # deep spells (the bot silenced, or ducked by the deep depth)
    releases: int = 0
    clears: int = 0
    gaps: list[float] = field(default_factory=list)  # silence heard at each deep spell's end (s)
    #: The call record's events around the sound: (ms from the sound's start, kind, detail).
    trace: list[tuple[int, str, str]] = field(default_factory=list)


def _frames_db(track: np.ndarray) -> np.ndarray:
    n = len(track) // 160
    frames = track[: n * 160].astype(np.float64).reshape(n, 160)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-9)


def _onset(clip: np.ndarray) -> int:
    """Where a clip's sound starts (16 kHz samples): its first 10 ms within 25 dB of its
    loudest (a recording's quiet lead-in is not the start of speech)."""
    tens = clip[: len(clip) // 160 * 160].reshape(-1, 160).astype(np.float64)
    frames = 10 * np.log10(np.mean(tens**2, axis=1) + 1e-12)
    return int(np.flatnonzero(frames >= frames.max() - 25.0)[0]) * 160


def _measure(
    family: str, clips: list[np.ndarray], stereo: np.ndarray, record: dict, start: int
) -> list[Probe]:
    """Per probe, from the call's recording (caller left, bot right, 8 kHz, the sim's clock)
    and its call record (the gateway's timeline, from the same start within milliseconds)."""
    caller, bot = stereo[:, 0], _frames_db(stereo[:, 1])
    voiced = bot > 20 * np.log10(VOICED)
    ref = float(np.median(bot[voiced])) if voiced.any() else 20 * np.log10(VOICED)
    silent = bot < ref - 20.0  # a duck deeper than 20 dB counts as silence
    events = record.get("events", [])
    probes, pos = [], 0
    for k, clip in enumerate(clips):
        probe = Probe(family, start + k)
        probes.append(probe)
        nonzero = np.flatnonzero(caller[pos:])
        if not len(nonzero):
            continue
        a = pos + int(nonzero[0])
        b = a + len(clip) // 2  # the clip is at 16 kHz, the recording at 8
        pos = b + 8
        later = np.flatnonzero(caller[pos:])
        nxt = pos + int(later[0]) if len(later) else len(caller)
        fa, fb, fn = a // 160, b // 160, nxt // 160
        fs = (a + _onset(clip) // 2) // 160  # the sound's own start, past a quiet lead-in
        probe.played = True
        window = silent[fa : min(fa + 75, fn)]  # 1.5 s from the sound's start, for every row
        run = best = 0
        for quiet in window:
            run = run + 1 if quiet else 0
            best = max(best, run)
        probe.silent_200 = best >= 10
        # Onset -> silent only where the bot was talking when the caller began (after a commit
        # the bot's short reply may be over before the next sound: nothing to silence there).
        talking = fa >= 10 and voiced[fa - 10 : fa].mean() >= 0.5
        for f in range(fs, fb if talking else fs):
            if silent[f : f + 20].all() and f + 20 <= len(silent):
                probe.silent_ms = (f - fs) * 20.0
                break
        # A turn is looked for until 3 s after the sound, or 0.4 s into the next one (sooner
        # than any turn on the next sound can be decided: its speech, a pause, its words).
        t0, t1 = a / 8000 - 0.2, min(nxt, b + 12000) / 8000
        t2 = min(b / 8000 + 3.0, nxt / 8000 + 0.4)
        said = any(kind == "said-caller" and t0 <= t < t2 for t, kind, _ in events)
        cut = any(kind == "clear" and t0 <= t < t1 for t, kind, _ in events)
        resumed = voiced[fb : fb + 75].any() and not silent[fb : fb + 75].all()
        probe.got_turn = said
        # A cut (a commit, or the old single-stage clear) the bot did not come back from; a
        # reading that simply ended near the sound is not the bot giving up.
        probe.gave_up = said or (cut and not resumed)
        soft = deep = False  # a soft hold is open (a deep one after it is the same hold)
        for t, kind, detail in events:
            if t0 <= t < t2:
                probe.trace.append((round((t - a / 8000) * 1000), kind, detail))
            if t0 <= t < t1:
                if kind == "duck":
                    probe.holds += not soft
                    soft = True
                elif kind == "hold":
                    probe.holds += not soft
                    probe.deep += 1
                    deep = True
                elif kind in ("release", "unhold"):
                    probe.releases += kind == "release"
                    if deep:  # the silence at a deep spell's end (a soft one has none)
                        probe.gaps.append(float(detail) / 1000)
                    soft, deep = kind == "unhold", False
                elif kind == "clear":
                    probe.clears += 1
                    soft = deep = False
    return probes


def _row(label: str, probes: list[Probe], speech: bool) -> str:
    played = [p for p in probes if p.played]
    n = max(1, len(played))
    silent = sum(p.silent_200 for p in played)
    gave = sum(p.gave_up for p in played)
    gaps = [g for p in played for g in p.gaps]
    late = [p.silent_ms for p in played if p.silent_ms is not None]
    holds = sum(p.holds for p in played)
    cells = (
        f"  {label:14} {len(played):3}  gave up {100 * gave / n:3.0f} %  silent>=200ms "
        f"{100 * silent / n:3.0f} %  holds {holds:2} deep {sum(p.deep for p in played):2} "
        f"released {sum(p.releases for p in played):2} cleared {sum(p.clears for p in played):2}"
        f"  deep gap p50 {1000 * pct(gaps, 50):4.0f} ms p90 {1000 * pct(gaps, 90):4.0f} ms"
    )
    if speech:
        turn = sum(p.got_turn for p in played)
        cells += (
            f"  silent after onset p50 {pct(late, 50):4.0f} ms p90 {pct(late, 90):4.0f} ms "
            f"({len(late)}/{len(played)})  caller gets the turn {100 * turn / n:3.0f} %"
        )
    return cells


def bench_levels(quick: bool) -> list[str]:
    """The hold's level on the VAD's evidence alone, per kind of sound: the real controller
    driven window by window with Silero's probability and the window's level after a telephone
    round trip (no recogniser, no gateway, no clock: the same figures on every run). Per row:
    how many clips open a hold (soft), how many go deep, how long they are deep in all, and
    for speech the onset (its first 10 ms within 25 dB of its loudest) -> deep latency, to the
    end of the window that decided it, split into the clips the interaction table plays and the
    ones it does not (held out)."""
    from engine.local.controller import Deepen, Interrupt, Soften, TurnConfig, TurnController
    from engine.local.vad import WINDOW, SileroVad, VadState

    vad = SileroVad()
    families = sound_clips(3 if quick else 16)
    families["backchannel"] = [_said(w) for w in BACKCHANNELS]
    families["interruption"] = [a for _, _, a in speech(1.0, 4.0)][: 6 if quick else 24]
    pad = int(0.1 * 16000)
    lines = []
    for name, clips in families.items():
        opened, deep_ms, deep_at, deep_by_half = 0, [], [], [0, 0]
        for k, clip in enumerate(clips):
            heard = lk.phone(clip)
            x = np.concatenate([np.zeros(pad, np.float32), heard, np.zeros(8000, np.float32)])
            onset = pad + _onset(heard)
            control = TurnController(TurnConfig())
            control.bot_audible_until(len(x))
            state, deep_since, total, first = VadState(), None, 0, None
            for i in range(len(x) // WINDOW):
                w = x[i * WINDOW : (i + 1) * WINDOW]
                prob = float(vad.forward(w[None], [state])[0])
                level = 10 * np.log10(np.mean(w.astype(np.float64) ** 2) + 1e-12)
                t = (i + 1) * WINDOW
                for d in control.window(t, prob, 0.0, level):
                    if isinstance(d, Interrupt):
                        opened += 1
                    elif isinstance(d, Deepen):
                        deep_since = t
                        first = t if first is None else first
                    elif isinstance(d, Soften) and deep_since is not None:
                        total += t - deep_since
                        deep_since = None
            if deep_since is not None:
                total += len(x) // WINDOW * WINDOW - deep_since
            if first is not None:
                deep_by_half[k % 2] += 1
                deep_ms.append(total / 16)
                deep_at.append((first - onset) / 16)
        line = f"  {name:12} {len(clips):3}  held {opened:2}  deep {len(deep_ms):2}"
        if name == "interruption":
            played, held_out = deep_at[:12], deep_at[12:]
            line += (
                f"  onset -> deep p50/p90: played {pct(played, 50):.0f}/{pct(played, 90):.0f} ms"
                f", held out {pct(held_out, 50):.0f}/{pct(held_out, 90):.0f} ms"
                f" ({len(held_out)})"
            )
        elif deep_ms:
            line += f"  deep until the clip's end or a burst's end: {sorted(deep_ms)} ms"
        if name in ("cough", "laughter", "breath", "sneeze"):
            even, odd = (len(clips) + 1) // 2, len(clips) // 2
            line += (
                f"  (deep: tuning half {deep_by_half[0]}/{even}, held out {deep_by_half[1]}/{odd})"
            )
        lines.append(line)
    return lines


async def bench_interaction(
    url: str, records: Path, quick: bool, mode: str, dump: Path | None = None
) -> list[str]:
    """Sounds over the bot's reading, a call per family (three at a time), each measured on
    the wire (the call's stereo recording) and in its call record (holds, releases, gaps).

    Rows: each noise family of :data:`FAMILIES`; backchannels (Piper: "Uh-huh.", "Yeah.",
    "Right.", "Okay.", "Mm-hmm."); real interruptions (recorded speech, 1-4 s); and "none", a
    near-silent clip (-70 dBFS, under every threshold) as the baseline: how often the reading
    alone has a 200 ms pause in the same window. Columns: ``gave up`` (the engine took the
    sound for a turn, or cut the bot and it did not go on within 1.5 s of the sound's end),
    ``silent>=200ms`` (a run of 200 ms with the bot silent or ducked by 20 dB or more within
    1.5 s of the sound's start), holds and how they ended, the silence heard at each release
    (from the call record), and for speech: caller onset -> the bot silent to the caller (for
    400 ms or more), and whether the caller got the turn.
    """
    per = 3 if quick else 16
    families = sound_clips(per)
    families["backchannel"] = [_said(w) for w in BACKCHANNELS * (1 if quick else 2)]
    families["interruption"] = [a for _, _, a in speech(1.0, 4.0)][: 4 if quick else 12]
    rng = np.random.default_rng(11)
    families["none"] = [
        (rng.standard_normal(16000) * 10 ** (-70 / 20)).astype(np.float32)
        for _ in range(3 if quick else 8)
    ]
    probes: list[Probe] = []
    names = list(families)
    with tempfile.TemporaryDirectory() as tmp:
        for group in chunks(names, 3):
            reports = await calls(url, [_talk_over(families[f]) for f in group], record=Path(tmp))
            for i, (family, report) in enumerate(zip(group, reports, strict=True)):
                stereo, _ = soundfile.read(str(Path(tmp) / f"{i}.wav"), dtype="int16")
                record = _record(records, report)
                probes += _measure(family, families[family], stereo, record, 0)
    if dump is not None:  # every probe and its call-record trace, to see why a row is what it is
        text = "\n".join(json.dumps(p.__dict__) for p in probes) + "\n"
        await asyncio.to_thread(dump.write_text, text)
    lines = [f"  (holds: {mode})"]
    for name in names:
        mine = [p for p in probes if p.family == name]
        lines.append(_row(name, mine, name == "interruption"))
    vocal = [p for p in probes if p.family in ("cough", "laughter", "breath", "sneeze")]
    for half, label in ((0, "tuning half"), (1, "held-out half")):
        lines.append(_row(f"vocal {label}", [p for p in vocal if p.index % 2 == half], False))
    return lines


def _record(records: Path, report) -> dict:  # type: ignore[no-untyped-def]
    """The gateway's call record of the simulator's call (matched by call sid)."""
    path = records / f"{report.call_sid}.json"
    for _ in range(50):
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.02)
    return {}


async def bench_echo(url: str, records: Path, quick: bool) -> list[str]:
    lines = []
    barge = speech(1.5, 4.0)[:4]
    for delay in (0.1, 0.2, 0.3):
        with echo_line(delay):
            quiet = CallerScript().pause(8000 if quick else 20000)
            talk = CallerScript().pause(2000)
            for k, (name, _, audio) in enumerate(barge[: 2 if quick else 4]):
                talk.barge_in(1000 + 300 * k, pcm8k(audio), Path(name).name, timeout_s=20)
                talk.pause(3000)
            quiet_report, talk_report = await calls(url, [quiet, talk])
        turns = [t for t in talk_report.turns if t.kind == "barge_in" and t.speech_start_ms]
        caught = [t.barge_in_ms for t in turns if t.barge_in_ms is not None]
        quiet = _record(records, quiet_report)  # a hold clears too: count what it became
        lines.append(
            f"  echo {int(delay * 1000)} ms late at -10 dB: with the caller silent, cuts "
            f"{quiet.get('clears', 0)}, holds {quiet.get('holds', 0)} (released "
            f"{quiet.get('releases', 0)}) over "
            f"{quiet_report.bot_audio_played_s:.0f} s of bot speech; real barge-ins through the "
            f"echo caught {len(caught)}/{len(turns)}, p50 {pct(caught, 50):.0f} ms"
        )
    return lines


def _load_calls(url: str, n: int) -> tuple[list[float], int, int, int]:
    """The callers' process for :func:`bench_load`: ``n`` calls at once, each answering three
    utterances; the response latencies, unanswered turns, and caller frames late and sent."""
    items = speech(1.5, 5.0)
    scripts = []
    for i in range(n):
        script = CallerScript().pause(200 * (i % 10)).wait_for_bot(600, 15)
        for k in range(3):
            _, _, audio = items[(3 * i + k) % len(items)]
            script.say(pcm8k(audio)).wait_for_bot(700, 20)
        scripts.append(script)
    reports = asyncio.run(calls(url, scripts))
    resp = [r for rep in reports for r in rep.response_latencies_ms]
    missed = sum(
        1 for rep in reports for t in rep.turns if t.kind == "say" and t.response_ms is None
    )
    return (
        resp,
        missed,
        sum(rep.frames_late for rep in reports),
        sum(rep.frames_sent for rep in reports),
    )


async def bench_load(url: str, engine: LocalEngine, counts: list[int]) -> list[str]:
    """Concurrent calls placed from a second process (the callers' simulation does not share
    the gateway's interpreter, as a carrier's would not), so the CPU and latency figures are
    the gateway's and the engine's alone; the load average is given beside each row."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    lines = []
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as callers:
        for n in counts:
            vad, asr = engine.workers.vad, engine.workers.asr
            w0, f0, a0, c0 = vad.windows, vad.forwards, asr.busy_s, asr.calls
            load = os.getloadavg()[0]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            resp, missed, late, sent = await loop.run_in_executor(callers, _load_calls, url, n)
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
            load = max(load, os.getloadavg()[0])
            batch = (vad.windows - w0) / max(1, vad.forwards - f0)
            lines.append(
                f"  {n:3} calls: response p50 {pct(resp, 50):5.0f} ms p90 {pct(resp, 90):5.0f} ms, "
                f"unanswered {missed}/{3 * n}, caller frames late "
                f"{100 * late / max(1, sent):.1f} %, "
                f"gateway CPU {100 * cpu / wall:.0f} % of a core (both cores = 200 %), VAD batch "
                f"{batch:.1f}, ASR passes {asr.calls - c0} ({asr.busy_s - a0:.1f} s), "
                f"load average {load:.1f}"
            )
    return lines


async def run(
    sections: list[str],
    quick: bool,
    counts: list[int],
    turn: dict[str, float],
    mode: str,
    records: Path,
    dump: Path | None = None,
) -> None:
    out: dict[str, list[str]] = {}
    if "asr" in sections:
        print("asr ...", flush=True)
        out["recognition (telephone round trip)"] = bench_asr(quick)
    if "primer" in sections:
        print("primer ...", flush=True)
        out["the recogniser's plain and primed readings"] = bench_primer(quick)
    if "levels" in sections:
        print("levels ...", flush=True)
        out["hold levels on the VAD's evidence (no recogniser)"] = bench_levels(quick)
    listen, talk = engines(turn)
    listen_tap, talk_tap = Tap(listen), Tap(talk)
    async with (
        serve(create_app(Settings(), engine=listen)) as listen_url,
        serve(create_app(Settings(records_dir=str(records)), engine=talk)) as talk_url,
    ):
        steps = [
            ("latency", "response latency", lambda: bench_latency(listen_url, listen_tap, quick)),
            ("pause", "pause handling", lambda: bench_pause(listen_url, quick)),
            ("barge", "barge-in", lambda: bench_barge(talk_url, talk_tap, quick)),
            (
                "interaction",
                "sounds over the bot, per kind",
                lambda: bench_interaction(talk_url, records, quick, mode, dump),
            ),
            ("echo", "the bot's own echo", lambda: bench_echo(talk_url, records, quick)),
            ("load", "concurrent calls", lambda: bench_load(listen_url, listen, counts)),
        ]
        for key, title, step in steps:
            if key in sections:
                print(f"{key} ...", flush=True)
                out[title] = await step()
    await listen.aclose()
    await talk.aclose()
    print()
    for title, lines in out.items():
        print(title)
        for line in lines:
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    all_sections = "asr,primer,levels,latency,pause,barge,interaction,echo,load"
    parser.add_argument("--sections", default=all_sections)
    parser.add_argument("--quick", action="store_true", help="fewer items per section")
    parser.add_argument("--calls", default="4,8,16", help="concurrent calls for the load section")
    parser.add_argument(
        "--turn", default="", help="TurnConfig overrides, e.g. barge_windows=2,complete_gap_ms=150"
    )
    parser.add_argument(
        "--duck", type=float, default=None, help="hold by ducking this many dB (e.g. -12)"
    )
    parser.add_argument(
        "--hold",
        choices=("clear", "stop"),
        default="clear",
        help="a hold clears the carrier's buffer (the default) or only stops sending",
    )
    parser.add_argument(
        "--soft",
        type=float,
        default=-10.0,
        help="a soft hold ducks this many dB (the default -10), 0: no soft level",
    )
    parser.add_argument(
        "--probes", type=Path, help="write each interaction probe here (JSON lines)"
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.calls.split(",")]
    turn = {k: float(v) for k, v in (kv.split("=") for kv in args.turn.split(",") if kv)}
    turn = {k: int(v) if v.is_integer() else v for k, v in turn.items()}
    soft = args.soft or None
    clears = args.duck is None and args.hold == "clear"
    twilio_aio.Playout = functools.partial(  # type: ignore[misc]  # how the gateway's holds sound
        Playout, duck_db=args.duck, hold_clears=clears, soft_db=soft
    )
    mode = args.hold if args.duck is None else f"duck {args.duck} dB"
    mode += f", soft level {soft} dB" if soft else ", no soft level"
    with tempfile.TemporaryDirectory() as records:
        asyncio.run(
            run(
                args.sections.split(","), args.quick, counts, turn, mode, Path(records), args.probes
            )
        )


if __name__ == "__main__":
    main()
