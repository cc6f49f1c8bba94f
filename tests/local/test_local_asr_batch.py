"""Whisper batches across calls: requests whose previous-text prompts differ in length
(one call mid-conversation, another on its first words) must still be recognised together."""

from __future__ import annotations

import numpy as np

from engine.local.asr import AsrRequest, WhisperRecognizer
from tests.conftest import load_pcm


def test_asr_transcribes_batch_with_prompts_of_different_lengths(
    whisper: WhisperRecognizer,
) -> None:
    audio = load_pcm("speech/pocketsphinx/cards_001.wav", 16000).astype(np.float32) / 32768
    requests = [
        AsrRequest(audio),
        AsrRequest(audio, prompt="Which card would you like?"),
        AsrRequest(audio, prompt="Pick a card, any card, and tell me which one it is, please."),
        AsrRequest(audio, prompt="Which card would you like?"),
    ]
    texts = [t.text.lower() for t in whisper.transcribe(requests)]
    assert len(texts) == len(requests)
    assert all("clubs" in text for text in texts), texts
