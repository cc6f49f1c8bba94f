"""The tone engine: answers each caller utterance with a tone, and stops when talked over.

For tests and benchmarks that need bot speech of known length and content (a pure tone is
easy to find on the wire and to measure latency against).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.base import Audio, CallContext, Engine, EngineSession, Interrupt
from engine.energy import Edge, EnergySegmenter


class ToneSession(EngineSession):
    def __init__(self, rate: int, frequency: float, seconds: float, level_dbfs: float) -> None:
        super().__init__(rate)
        self.segmenter = EnergySegmenter(rate)
        n = int(rate * seconds)
        amplitude = 32767 * 10 ** (level_dbfs / 20.0)
        wave = amplitude * np.sin(2 * np.pi * frequency * np.arange(n) / rate)
        self.tone = wave.astype(np.int16).tobytes()
        self._playing_until = 0
        self.heard: list[int] = []

    def send_audio(self, pcm: bytes) -> None:
        seg = self.segmenter
        for edge in seg.feed(pcm):
            if edge.edge is Edge.ONSET:
                if seg.samples < self._playing_until:
                    self._playing_until = 0
                    self.channel.put(Interrupt())
            else:
                self._playing_until = seg.samples + len(self.tone) // 2
                self.channel.put(Audio(self.tone))

    def played(self, ms: int) -> None:
        self.heard.append(ms)


class ToneEngine(Engine):
    name: ClassVar[str] = "tone"

    def __init__(
        self,
        rate: int = 16000,
        frequency: float = 440.0,
        seconds: float = 1.0,
        level_dbfs: float = -12.0,
    ) -> None:
        self.rate = rate
        self.frequency = frequency
        self.seconds = seconds
        self.level_dbfs = level_dbfs

    async def open(self, context: CallContext) -> EngineSession:
        return ToneSession(self.rate, self.frequency, self.seconds, self.level_dbfs)
