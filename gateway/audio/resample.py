"""Streaming sample-rate conversion for one direction of one call.

A streaming resampler keeps its filter state between frames, so 20 ms chunks join without the
clicks and phase jumps that resampling each frame alone produces.

Latency decides the choice. soxr's default streaming mode buffers output in blocks of ~100 ms
(measured here: nothing for the first five 20 ms chunks, then 1660 samples at once); its
variable-rate mode (``vr=True``) returns every chunk's worth at once but still holds back a
fixed 30 ms going 8->16 kHz, 15 ms going 16->8 kHz and 25 ms going 24->8 kHz. For the integer
ratios calls use (8 kHz <-> 16 or 24 kHz), ``fir.IntegerResampler`` holds back about 4 ms with
80 dB of stopband: every turn's latency is 35-45 ms shorter. Other ratios (a TTS voice at
22.05 kHz, say) use soxr's variable-rate mode. Both keep a 6 kHz tone going to 8 kHz far below
audibility (tests/audio/test_resample.py), where ``audioop.ratecv`` leaks it at about -2 dB.
"""

from __future__ import annotations

import numpy as np
import soxr

from gateway.audio.fir import IntegerResampler


class _SoxrStream:
    """soxr's variable-rate streaming engine behind the IntegerResampler interface."""

    __slots__ = ("in_rate", "out_rate", "_stream", "pending")

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.reset()

    def reset(self) -> None:
        self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="int16", vr=True)
        self.pending = False

    def process(self, pcm: bytes) -> bytes:
        self.pending = True
        out: bytes = self._stream.resample_chunk(np.frombuffer(pcm, dtype=np.int16)).tobytes()
        return out

    def flush(self) -> bytes:
        if not self.pending:
            return b""
        out: bytes = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True).tobytes()
        self.reset()
        return out


class StreamResampler:
    """int16 PCM bytes at ``in_rate`` -> int16 PCM bytes at ``out_rate``, chunk by chunk.

    When the rates are equal it passes bytes through untouched (no copy, no delay). Output is
    aligned with input (sample n is time n / rate) and lags it by the filter's delay;
    :meth:`flush` releases that tail at the end of an utterance and :meth:`reset` discards it
    (after a ``clear``, the tail is stale audio).
    """

    __slots__ = ("in_rate", "out_rate", "_engine")

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._engine: IntegerResampler | _SoxrStream | None
        if in_rate == out_rate:
            self._engine = None
        elif in_rate % out_rate == 0 or out_rate % in_rate == 0:
            self._engine = IntegerResampler(in_rate, out_rate)
        else:
            self._engine = _SoxrStream(in_rate, out_rate)

    @property
    def pending(self) -> bool:
        """True while the filter holds input that :meth:`flush` would release."""
        return self._engine is not None and self._engine.pending

    def process(self, pcm: bytes) -> bytes:
        """Resample the next chunk (a little less than the ratio implies at first)."""
        engine = self._engine
        return pcm if engine is None else engine.process(pcm)

    def flush(self) -> bytes:
        """Drain what the filter still holds (end of stream); the next chunk starts afresh."""
        engine = self._engine
        return b"" if engine is None else engine.flush()

    def reset(self) -> None:
        """Forget buffered input: the next chunk starts a fresh stream."""
        if self._engine is not None:
            self._engine.reset()
