"""The echo engine: plays each caller utterance back, and stops when talked over.

A tiny but genuine duplex engine for tests, demos and benchmarks: it listens while it speaks,
and a caller speech onset during its playback is an interruption (``Interrupt``); the gateway
then reports what was heard (``played``), which the engine records.

``mode="stream"`` instead returns every frame at once, unsegmented: the benchmark's engine,
whose echo delay is the gateway's own round trip.
"""

from __future__ import annotations

from typing import ClassVar

from engine.base import Audio, CallContext, Engine, EngineSession, Interrupt, Transcript
from engine.energy import Edge, EnergySegmenter


class EchoSession(EngineSession):
    """See the module docstring. Time is counted in caller samples received."""

    def __init__(self, rate: int, mode: str, max_utterance_s: float) -> None:
        super().__init__(rate)
        self.stream = mode == "stream"
        self.segmenter = EnergySegmenter(rate)
        self.max_utterance_bytes = int(max_utterance_s * rate) * 2
        self._utterance = bytearray()
        self._pre_roll = bytearray()  # audio just before the onset window
        #: Sample time (caller clock) at which the current playback will have finished.
        self._playing_until = 0
        #: Positions reported by the gateway at each interruption (for tests).
        self.heard: list[int] = []
        self.dtmf_digits: list[str] = []

    def send_audio(self, pcm: bytes) -> None:
        if self.stream:
            self.channel.put(Audio(pcm))
            return
        seg = self.segmenter
        was_speaking = seg.speaking
        edges = seg.feed(pcm)
        if was_speaking or seg.speaking or edges:
            self._utterance += pcm
            if len(self._utterance) > self.max_utterance_bytes:
                self._play()
        else:
            # keep 60 ms before an onset so the echo does not clip the first syllable
            self._pre_roll = (self._pre_roll + pcm)[-self.sample_rate * 2 * 60 // 1000 :]
        for edge in edges:
            if edge.edge is Edge.ONSET:
                if seg.samples < self._playing_until:
                    self._playing_until = 0
                    self.channel.put(Interrupt())
                self._utterance = bytearray(self._pre_roll) + self._utterance
            else:
                self._play()

    def _play(self) -> None:
        audio = bytes(self._utterance)
        self._utterance = bytearray()
        self._pre_roll = bytearray()
        if not audio:
            return
        start = max(self.segmenter.samples, self._playing_until)
        self._playing_until = start + len(audio) // 2
        self.channel.put(Transcript("caller", f"<{len(audio) / 2 / self.sample_rate:.2f} s>"))
        self.channel.put(Audio(audio))

    def played(self, ms: int) -> None:
        self.heard.append(ms)

    def dtmf(self, digit: str) -> None:
        self.dtmf_digits.append(digit)


class EchoEngine(Engine):
    """Factory of :class:`EchoSession` at ``rate`` Hz."""

    name: ClassVar[str] = "echo"

    def __init__(self, rate: int = 16000, mode: str = "utterance", max_utterance_s: float = 10.0):
        if mode not in ("utterance", "stream"):
            raise ValueError(f"echo mode must be 'utterance' or 'stream', not {mode!r}")
        self.rate = rate
        self.mode = mode
        self.max_utterance_s = max_utterance_s

    async def open(self, context: CallContext) -> EngineSession:
        return EchoSession(self.rate, self.mode, self.max_utterance_s)
