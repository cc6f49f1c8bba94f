"""An energy voice-activity segmenter: the listening half of the test engines.

Deliberately simple (frame RMS against a threshold, with onset and hangover counts) and pure:
it is fed audio and counts its own time in samples, so engines built on it are deterministic
and need no clock. The embedded engine uses a real VAD; this is for tests and benchmarks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class Edge(enum.Enum):
    ONSET = "onset"
    END = "end"


@dataclass(frozen=True, slots=True)
class SpeechEdge:
    edge: Edge
    #: Sample index (at the segmenter's rate) where the edge happened.
    at_sample: int


class EnergySegmenter:
    """Finds speech onsets and ends in 20 ms windows.

    Speech starts after ``onset_ms`` of windows above ``threshold_dbfs`` and ends after
    ``hangover_ms`` below it. The onset is dated to the first loud window, the end to the
    last loud one.
    """

    def __init__(
        self,
        rate: int,
        *,
        threshold_dbfs: float = -38.0,
        onset_ms: int = 40,
        hangover_ms: int = 400,
    ) -> None:
        self.rate = rate
        self.window = rate // 50
        self.threshold = 32768.0 * 10 ** (threshold_dbfs / 20.0)
        self.onset_windows = max(1, onset_ms // 20)
        self.hangover_windows = max(1, hangover_ms // 20)
        self.speaking = False
        self.samples = 0  # samples consumed so far: the segmenter's clock
        self._buffer = np.zeros(0, dtype=np.int16)
        self._loud_run = 0
        self._quiet_run = 0
        self._first_loud = 0
        self._last_loud = 0

    def feed(self, pcm: bytes) -> list[SpeechEdge]:
        """Consume audio; return the edges it completes, in order."""
        audio = np.frombuffer(pcm, dtype=np.int16)
        if len(self._buffer):
            audio = np.concatenate((self._buffer, audio))
        edges: list[SpeechEdge] = []
        window = self.window
        whole = len(audio) - len(audio) % window
        if whole:
            frames = audio[:whole].astype(np.float32).reshape(-1, window)
            rms = np.sqrt(np.mean(frames * frames, axis=1))
            for loud in (rms > self.threshold).tolist():
                self._step(loud, edges)
                self.samples += window
        self._buffer = audio[whole:].copy()
        return edges

    def _step(self, loud: bool, edges: list[SpeechEdge]) -> None:
        if loud:
            if self._loud_run == 0:
                self._first_loud = self.samples
            self._loud_run += 1
            self._quiet_run = 0
            self._last_loud = self.samples + self.window
            if not self.speaking and self._loud_run >= self.onset_windows:
                self.speaking = True
                edges.append(SpeechEdge(Edge.ONSET, self._first_loud))
        else:
            self._loud_run = 0
            self._quiet_run += 1
            if self.speaking and self._quiet_run >= self.hangover_windows:
                self.speaking = False
                edges.append(SpeechEdge(Edge.END, self._last_loud))
