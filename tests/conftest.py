"""Shared fixtures: the real recordings in ../shared/data, skipped cleanly when absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

#: A real PostgreSQL server (``postgres``, ``pg_dsn``) for the store tests.
pytest_plugins = ["pgserver"]

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"recording {relative} not found under {DATA} (the shared data set)")
    return path


def load_pcm(relative: str, rate: int) -> np.ndarray:
    """A shared recording as mono int16 at ``rate``."""
    path = shared_file(relative)
    audio, source_rate = soundfile.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if source_rate != rate:
        mono = soxr.resample(mono, source_rate, rate)
    return (np.clip(mono, -1, 1) * 32767).astype(np.int16)


@pytest.fixture
def speech_8k() -> np.ndarray:
    """A real utterance ("ten of clubs"), 8 kHz."""
    return load_pcm("speech/pocketsphinx/cards_001.wav", 8000)
