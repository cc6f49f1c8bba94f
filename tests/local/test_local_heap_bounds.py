"""Native caches that grew with every new input shape (issue 13, finding 8): Whisper's input
lengths come in whole seconds, and oneDNN keeps a bounded number of primitives."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from engine.local.asr import RATE, AsrRequest, WhisperRecognizer
from engine.local.heap import PRIMITIVE_CACHE, cap_primitive_cache

CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def test_primitive_cache_is_capped_unless_the_operator_chose(monkeypatch) -> None:
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    cap_primitive_cache()
    assert os.environ[CACHE_VARIABLE] == str(PRIMITIVE_CACHE)
    monkeypatch.setenv(CACHE_VARIABLE, "7")
    cap_primitive_cache()
    assert os.environ[CACHE_VARIABLE] == "7"


def test_the_recognizer_capped_the_cache_before_loading(whisper: WhisperRecognizer) -> None:
    assert CACHE_VARIABLE in os.environ


class _Recording:
    """The model, recording the shape of each batch of features it encodes."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.n_mels = model.n_mels
        self.frames: list[int] = []

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        self.frames.append(int(np.asarray(features).shape[-1]))
        return self._model.encode(features, *args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self._model.generate(*args, **kwargs)


@pytest.mark.parametrize(
    ("seconds", "frames"), [((0.7,), 600), ((5.3,), 700), ((7.45, 2.0), 900), ((4.99,), 600)]
)
def test_input_lengths_come_in_whole_seconds(
    whisper: WhisperRecognizer, monkeypatch, seconds: tuple[float, ...], frames: int
) -> None:
    """5.3 s of speech plus the 1 s tail is a 7 s input, not 6.3 s: a few shapes, not one each."""
    recording = _Recording(whisper.model)
    monkeypatch.setattr(whisper, "model", recording)
    rng = np.random.default_rng(0)
    requests = [
        AsrRequest((0.01 * rng.standard_normal(int(s * RATE))).astype(np.float32)) for s in seconds
    ]
    assert len(whisper.transcribe(requests)) == len(requests)
    assert recording.frames == [frames]
