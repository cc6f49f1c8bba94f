"""How much of the caller's channel is the bot's own voice coming back down the line.

On a phone call the bot's audio can return on the caller's channel (line echo, a speakerphone)
some 100-300 ms later and 10 dB or more quieter. To a VAD that echo is speech; to the turn-taking
it must not be an interruption. The engine knows what it said and about when the caller heard
it, so it can ask: is this window of caller audio explained by a delayed, scaled copy of the
bot's recent audio?

:class:`EchoMonitor` keeps the bot's audio (the reference) on the caller's timeline, where the
engine expects it to be heard, and the caller's recent audio. It finds the echo path's delay by
normalised cross-correlation over a range of lags (FFT, only when something unexplained is
heard while the reference is not silent), then scores each window by what is left once the
best-scaled delayed reference is removed. The reference is band-limited to the telephone band
first, because the echo has been through 8 kHz while the bot's audio has not.

Pure numpy; time is the caller-sample position passed in. Not thread-safe: one owner (the VAD
worker) feeds it.
"""

from __future__ import annotations

import bisect

import numpy as np
import soxr

__all__ = ["EchoMonitor"]

_RING = 1 << 16  # 4 s at 16 kHz: longer than any lag plus estimation span


class EchoMonitor:
    """Scores caller windows by how much of them the bot's echo explains (see module doc)."""

    def __init__(
        self,
        rate: int = 16000,
        *,
        max_delay_ms: int = 800,
        estimate_ms: int = 256,
        estimate_every: int = 4,
        floor_db: float = -65.0,
        line_rate: int = 8000,
    ) -> None:
        self.rate = rate
        self.max_delay = rate * max_delay_ms // 1000
        self.estimate_len = rate * estimate_ms // 1000
        self.estimate_every = estimate_every
        self.floor = 10 ** (floor_db / 10)
        self.line_rate = line_rate
        # The reference as (start, audio) pieces in start order: a reply is placed up to tens
        # of seconds ahead of now, further than any ring of recent audio would reach.
        self._pieces: list[tuple[int, np.ndarray]] = []
        self._near = np.zeros(_RING, np.float32)
        self._near_end = 0
        self._windows_since_estimate = estimate_every
        #: Delay of the echo path in samples (None until found).
        self.delay: int | None = None

    # -- feeding -----------------------------------------------------------------------------

    def add_reference(self, audio: np.ndarray, start: int) -> None:
        """Bot audio (float32 at ``rate``) the caller is expected to hear from sample ``start``."""
        if self.line_rate < self.rate and len(audio):
            band = soxr.resample(audio, self.rate, self.line_rate)
            audio = soxr.resample(band, self.line_rate, self.rate)[: len(audio)]
        bisect.insort(self._pieces, (start, audio.astype(np.float32, copy=False)), key=_start)

    def cut_reference(self, at: int) -> None:
        """The bot's audio stopped at caller sample ``at``: nothing after it will come back."""
        self._pieces = [(start, audio[: at - start]) for start, audio in self._pieces if start < at]

    def assess(self, window: np.ndarray, end: int) -> float:
        """dB of ``window`` (caller audio ending at sample ``end``) left unexplained by echo.

        0.0 when the window is silent, when no bot audio is near, or when none of it is echo;
        strongly negative (-15 dB and below) when the window is the bot's echo alone.
        """
        n = len(window)
        _write(self._near, end - n, window)
        self._near_end = end
        horizon = end - 2 * (self.max_delay + self.estimate_len)
        while self._pieces and self._pieces[0][0] + len(self._pieces[0][1]) < horizon:
            self._pieces.pop(0)
        self._windows_since_estimate += 1
        x = window.astype(np.float64)
        e_near = float(x @ x) / n
        if e_near < self.floor:
            return 0.0
        far = self._read_ref(end - n - self.max_delay, end)
        if float(far @ far) / len(far) < self.floor:
            return 0.0
        ratio = self._residual(x, far) if self.delay is not None else 1.0
        if ratio > 0.25 and self._windows_since_estimate >= self.estimate_every:
            self._estimate(end)
            ratio = min(ratio, self._residual(x, far))
        return 10.0 * float(np.log10(max(ratio, 1e-4)))

    # -- internals ---------------------------------------------------------------------------

    def _residual(self, x: np.ndarray, far: np.ndarray) -> float:
        """1 - rho^2 of the window against the reference at the current delay."""
        if self.delay is None:
            return 1.0
        n = len(x)
        lo = self.max_delay - self.delay
        f = far[lo : lo + n].astype(np.float64)
        ff = float(f @ f)
        if ff <= 0.0:
            return 1.0
        xf = float(x @ f)
        return max(0.0, 1.0 - xf * xf / (float(x @ x) * ff))

    def _estimate(self, end: int) -> None:
        """Find the lag in [0, max_delay] that best explains the recent caller audio."""
        self._windows_since_estimate = 0
        length, lags = self.estimate_len, self.max_delay
        y = _read(self._near, end - length, end, self._near_end).astype(np.float64)
        f = self._read_ref(end - length - lags, end).astype(np.float64)
        ey = float(y @ y)
        if ey <= 0.0:
            return
        size = 1 << int(np.ceil(np.log2(len(f) + length)))
        corr = np.fft.irfft(np.fft.rfft(f, size) * np.conj(np.fft.rfft(y, size)), size)[: lags + 1]
        sq = np.concatenate(([0.0], np.cumsum(f * f)))
        ef = sq[length : length + lags + 1] - sq[: lags + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(ef > 1e-9, corr / np.sqrt(ey * ef), 0.0)
        k = int(np.argmax(rho))
        if rho[k] > 0.5:
            self.delay = lags - k

    def _read_ref(self, lo: int, hi: int) -> np.ndarray:
        out = np.zeros(hi - lo, np.float32)
        for start, audio in self._pieces:
            if start >= hi:
                break
            a, b = max(lo, start), min(hi, start + len(audio))
            if a < b:
                out[a - lo : b - lo] += audio[a - start : b - start]
        return out


def _start(piece: tuple[int, np.ndarray]) -> int:
    return piece[0]


def _write(ring: np.ndarray, start: int, data: np.ndarray) -> None:
    n = len(data)
    if n >= _RING:
        data, start, n = data[-_RING:], start + n - _RING, _RING
    i = start % _RING
    first = min(n, _RING - i)
    ring[i : i + first] = data[:first]
    if first < n:
        ring[: n - first] = data[first:]


def _read(ring: np.ndarray, lo: int, hi: int, written_end: int) -> np.ndarray:
    """Samples [lo, hi) of the timeline; zeros before 0, after what was written, or overwritten."""
    out = np.zeros(hi - lo, np.float32)
    a, b = max(lo, 0, written_end - _RING), min(hi, written_end)
    if a < b:
        i = a % _RING
        n = b - a
        first = min(n, _RING - i)
        out[a - lo : a - lo + first] = ring[i : i + first]
        if first < n:
            out[a - lo + first : b - lo] = ring[: n - first]
    return out
