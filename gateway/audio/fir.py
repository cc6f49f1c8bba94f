"""Low-delay streaming resampling for the integer ratios telephony uses (8 <-> 16/24 kHz).

soxr's streaming modes hold 15-30 ms of audio back (see ``resample.py``), and that lag lands
in every turn twice: on the caller's speech going in and on the bot's speech coming out. A
linear-phase Kaiser low-pass cut for the telephone band (pass to 3.4 kHz, stop from 4 kHz,
80 dB) needs only about 4 ms of delay at these ratios, and its output is realigned so that
output sample n is input time n / rate, as soxr's is: positions on a call's timeline do not
move with the resampler chosen.
"""

from __future__ import annotations

import math

import numpy as np

#: Telephone band: what survives a G.711 call.
PASS_HZ = 3400.0
STOP_HZ = 4000.0
ATTENUATION_DB = 80.0


def _kaiser_lowpass(rate: int, multiple: int) -> np.ndarray:
    """Taps at ``rate`` with (len - 1) / 2 a multiple of ``multiple`` (whole output samples)."""
    transition = 2 * math.pi * (STOP_HZ - PASS_HZ) / rate
    taps = math.ceil((ATTENUATION_DB - 8.0) / (2.285 * transition)) + 1
    half = math.ceil((taps - 1) / 2 / multiple) * multiple
    n = np.arange(-half, half + 1)
    cutoff = (PASS_HZ + STOP_HZ) / 2 / rate  # cycles per sample
    beta = 0.1102 * (ATTENUATION_DB - 8.7)
    h: np.ndarray = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(2 * half + 1, beta)
    unit_gain: np.ndarray = h / h.sum()
    return unit_gain.astype(np.float32)


class IntegerResampler:
    """int16 chunks at ``in_rate`` -> ``out_rate``, where one divides the other."""

    __slots__ = ("up", "down", "_h", "_history", "_skip", "_phase", "_in", "_out", "_delay")

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if out_rate % in_rate == 0:
            self.up, self.down = out_rate // in_rate, 1
        elif in_rate % out_rate == 0:
            self.up, self.down = 1, in_rate // out_rate
        else:
            raise ValueError(f"{in_rate} -> {out_rate} Hz is not an integer ratio")
        high = max(in_rate, out_rate)
        self._h = _kaiser_lowpass(high, self.down)
        self._delay = (len(self._h) - 1) // 2  # samples at the high rate
        self.reset()

    def reset(self) -> None:
        self._history = np.zeros(len(self._h) - 1, dtype=np.float32)
        # The filter's delay, in output samples, is dropped from the front of the stream.
        self._skip = self._delay // self.down
        self._phase = 0  # index of the next kept sample among the filtered high-rate ones
        self._in = 0
        self._out = 0

    @property
    def pending(self) -> bool:
        return self._in > 0 and self._out < self._in * self.up // self.down

    def process(self, pcm: bytes) -> bytes:
        x = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
        self._in += len(x)
        return self._run(x)

    def flush(self) -> bytes:
        """Release what the filter holds (the stream's last ~4 ms) and start afresh."""
        owed = self._in * self.up // self.down - self._out
        if owed <= 0:
            self.reset()
            return b""
        zeros = np.zeros(math.ceil(self._delay / self.up) + 1, dtype=np.float32)
        out = np.frombuffer(self._run(zeros), dtype=np.int16)[:owed]
        self.reset()
        return out.tobytes()

    def _run(self, x: np.ndarray) -> bytes:
        up = self.up
        if up > 1:
            stuffed = np.zeros(len(x) * up, dtype=np.float32)
            stuffed[::up] = x * up  # zero-stuffing divides the level by the factor
            x = stuffed
        full = np.concatenate((self._history, x))
        self._history = full[len(full) - len(self._history) :]
        y = np.convolve(full, self._h, mode="valid")
        if self.down > 1:
            y = y[self._phase :: self.down]
            self._phase = (self._phase - len(x)) % self.down
        if self._skip:
            dropped = min(self._skip, len(y))
            y = y[dropped:]
            self._skip -= dropped
        self._out += len(y)
        # In place, by ufuncs: np.clip's Python wrapper costs more than the rounding itself.
        np.rint(y, out=y)
        np.minimum(y, 32767.0, out=y)
        np.maximum(y, -32768.0, out=y)
        return y.astype(np.int16).tobytes()
