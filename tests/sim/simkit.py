"""Helpers for the simulator's tests (imported as ``simkit``): tones, silence, shared recordings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

with warnings.catch_warnings():  # stdlib on 3.11/3.12, the audioop-lts package from 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["DATA", "audioop", "shared", "silence", "tone"]

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared(relative: str) -> Path:
    """A file of the shared data set, or a skip that says where it was looked for."""
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"shared recording {relative} not found under {DATA}")
    return path


def tone(ms: int, freq: float = 440.0, level: float = 0.3) -> bytes:
    """A sine at 8 kHz as int16 bytes: 'speech' that is unmistakably above the threshold."""
    t = np.arange(ms * 8) / 8000
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (ms * 8)
