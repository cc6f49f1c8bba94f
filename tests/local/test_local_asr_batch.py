"""Whisper batches across calls: requests whose previous-text prompts differ in length
(one call mid-conversation, another on its first words) must still be recognised together."""

from __future__ import annotations

import numpy as np

from engine.local import nlu
from engine.local.asr import PRIMED_WORDS, AsrRequest, WhisperRecognizer
from tests.conftest import load_pcm
from tests.local.localkit import phone


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


def _heard(relative: str) -> np.ndarray:
    """A shared recording as the engine hears it: after a telephone round trip, 250 ms of
    silence before it (the recogniser's pre-roll)."""
    audio = load_pcm(relative, 16000).astype(np.float32) / 32768
    return np.concatenate([np.zeros(4000, np.float32), phone(audio)])


def test_primed_readings_share_the_batch_and_keep_each_requests_place(
    whisper: WhisperRecognizer,
) -> None:
    """Primed and plain requests with prompts of different lengths in one batch (one encoder
    pass, a decoder pass per prompt length and one primed): each answer is the one the request
    gets alone, in the request's place, and only primed requests have a primed reading."""
    speech = _heard("speech/pocketsphinx/cards_001.wav")
    sneeze = _heard("noise/scratch14-media/sneeze_male.wav")
    requests = [
        AsrRequest(sneeze, primed=True),
        AsrRequest(speech, prompt="Which card would you like?"),
        AsrRequest(speech, primed=True),
        AsrRequest(sneeze),
    ]
    batch = whisper.transcribe(requests)
    alone = [whisper.transcribe([r])[0] for r in requests]
    assert [t.text for t in batch] == [t.text for t in alone]
    assert [t.primed for t in batch] == [t.primed for t in alone]
    assert [t.primed is None for t in batch] == [False, True, False, True]
    assert "clubs" in (batch[2].primed or "").lower()  # speech keeps its words primed


def test_primed_reading_writes_vocal_sounds_as_sounds(whisper: WhisperRecognizer) -> None:
    """What the primer is for: a sneeze and a cough the plain reading makes words of read as
    sounds that are not words when primed; a short spoken interruption stays words."""
    clips = {
        "noise/scratch14-media/sneeze_male.wav": False,
        "noise/chemwarfare-coughs/ritalin_cough5.wav": False,
        "speech/pocketsphinx/cards_001.wav": True,
    }
    requests = [AsrRequest(_heard(path), primed=True) for path in clips]
    for (path, words), heard in zip(clips.items(), whisper.transcribe(requests), strict=True):
        primed = heard.primed or ""
        assert (not nlu.is_vocal_sound(primed) and bool(nlu.words(primed))) == words, (path, heard)


def test_a_long_reading_is_not_read_again_primed(whisper: WhisperRecognizer) -> None:
    """A sentence over the bot is a turn whatever the primer makes of it: decoding it twice
    only costs time (see PRIMED_WORDS)."""
    sentence = _heard("speech/librispeech-arm-mlek/another_door.wav")
    (heard,) = whisper.transcribe([AsrRequest(sentence, primed=True)])
    assert len(heard.text.split()) > PRIMED_WORDS
    assert heard.primed is None
