"""Streaming sample-rate conversion with soxr, for one direction of one call.

A streaming resampler keeps its filter state between frames, so 20 ms chunks join without the
clicks and phase jumps that resampling each frame alone produces. soxr's default streaming mode
buffers output in blocks of ~100 ms (it returned nothing for the first five 20 ms chunks, then
1660 samples at once, measured here), which would add that much latency and jitter to every
turn. Its variable-rate engine (``vr=True``) returns every chunk's worth at once, with a fixed
lag (8->16 kHz: 30 ms; 16->8 kHz: 15 ms; 24->8 kHz: 25 ms), and still keeps a 6 kHz tone
going to 8 kHz at the int16 noise floor (about -85 dB, tests/audio/test_resample.py), where
``audioop.ratecv`` leaks it at about -2 dB.
"""

from __future__ import annotations

import numpy as np
import soxr


class StreamResampler:
    """int16 PCM bytes at ``in_rate`` -> int16 PCM bytes at ``out_rate``, chunk by chunk.

    When the rates are equal it passes bytes through untouched (no copy, no delay).
    Output lags input by the filter's group delay; :meth:`flush` drains it at the end of an
    utterance and :meth:`reset` discards it (after a ``clear``, the tail is stale audio).
    """

    __slots__ = ("in_rate", "out_rate", "_stream", "pending")

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = self._new_stream()
        #: True while the filter holds input that :meth:`flush` would release.
        self.pending = False

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.in_rate == self.out_rate:
            return None
        return soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="int16", vr=True)

    def process(self, pcm: bytes) -> bytes:
        """Resample the next chunk; may return fewer samples than the ratio implies at first."""
        stream = self._stream
        if stream is None:
            return pcm
        self.pending = True
        out = stream.resample_chunk(np.frombuffer(pcm, dtype=np.int16))
        return out.tobytes()

    def flush(self) -> bytes:
        """Drain what the filter still holds (end of stream)."""
        stream = self._stream
        if stream is None or not self.pending:
            return b""
        out = stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._stream = self._new_stream()
        self.pending = False
        return out.tobytes()

    def reset(self) -> None:
        """Forget buffered input: the next chunk starts a fresh stream."""
        self._stream = self._new_stream()
        self.pending = False
