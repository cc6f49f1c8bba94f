"""Helpers for the local engine's tests (imported as ``localkit``): recordings through a
telephone round trip, and fakes for the models (energy VAD, scripted recogniser, tone voice)."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from engine.base import Transcript
from engine.local.asr import AsrRequest, Transcription
from engine.local.session import LocalSession
from engine.local.vad import VadState

with warnings.catch_warnings():  # stdlib on 3.11/3.12, the audioop-lts package from 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RATE = 16000


def shared(relative: str) -> Path:
    """A file of the shared data set, or a skip that says where it was looked for."""
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"shared recording {relative} not found under {DATA}")
    return path


def load(relative: str, *, seconds: float | None = None) -> np.ndarray:
    """A shared recording as float32 mono at 16 kHz (headerless .raw is 16 kHz s16le)."""
    path = shared(relative)
    if path.suffix == ".raw":
        audio = np.frombuffer(path.read_bytes(), "<i2").astype(np.float32) / 32768
        rate = RATE
    else:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        audio = data.mean(axis=1)
    if seconds is not None:
        audio = audio[: int(seconds * rate)]
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE)
    return np.ascontiguousarray(audio, dtype=np.float32)


def phone(audio: np.ndarray) -> np.ndarray:
    """What a call does to audio: 16 kHz -> 8 kHz mu-law -> 16 kHz."""
    narrow = soxr.resample(audio, RATE, 8000)
    pcm = (np.clip(narrow, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()
    back = np.frombuffer(audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2), "<i2")
    return soxr.resample(back.astype(np.float32) / 32768, 8000, RATE).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def tone(seconds: float, freq: float = 300.0, level: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * freq * t) * level).astype(np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()


class EnergyVad:
    """A VAD fake: speech is any window louder than -40 dBFS."""

    def forward(self, windows: np.ndarray, states: list[VadState]) -> np.ndarray:
        rms = np.sqrt(np.mean(windows.astype(np.float64) ** 2, axis=1))
        return np.where(rms > 0.01, 0.95, 0.02).astype(np.float32)


class ScriptedRecognizer:
    """A recogniser fake: answers each request with ``respond(audio seconds)``; it can be held
    (``gate`` cleared) to stand for a slow model."""

    def __init__(self, respond: Callable[[float], str] | None = None) -> None:
        self.respond = respond or (lambda seconds: "")
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.requests: list[AsrRequest] = []

    def transcribe(self, requests: Sequence[AsrRequest]) -> list[Transcription]:
        self.entered.set()
        self.gate.wait(30)
        self.requests.extend(requests)
        return [Transcription(self.respond(len(r.audio) / RATE)) for r in requests]


class ToneVoice:
    """A synthesiser fake: 40 ms of tone per character at 16 kHz; records what it rendered."""

    rate = RATE
    name = "tone-voice"

    def __init__(self) -> None:
        self.rendered: list[str] = []

    def synthesize(self, text: str) -> bytes:
        self.rendered.append(text)
        return pcm16(tone(0.04 * max(1, len(text)), 500.0, 0.1))


FRAME = 320  # 20 ms at 16 kHz


async def until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


class Call:
    """A session and the events it has put out so far."""

    def __init__(self, session: LocalSession) -> None:
        self.session = session
        self.events: list = []
        self.task = asyncio.get_running_loop().create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self.session.events():
            self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def said(self) -> list[str]:
        return [e.text for e in self.of(Transcript) if e.role == "bot" and not e.final]

    def feed(self, audio) -> None:
        pcm = pcm16(audio)
        for i in range(0, len(pcm), 2 * FRAME):
            self.session.send_audio(pcm[i : i + 2 * FRAME])

    async def close(self) -> None:
        await self.session.close()
        await self.task
