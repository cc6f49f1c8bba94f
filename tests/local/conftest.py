"""Models shared by the local engine's tests: loaded once per test session (per xdist worker)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def silero():
    from engine.local.vad import SileroVad

    return SileroVad()


@pytest.fixture(scope="session")
def whisper():
    from engine.local.asr import WhisperRecognizer

    return WhisperRecognizer()


@pytest.fixture(scope="session")
def piper():
    from engine.local.tts import PiperSynthesizer

    return PiperSynthesizer()
