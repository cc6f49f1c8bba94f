"""In-band DTMF: the dual tones of ITU-T Q.23, for carriers that cannot signal digits.

A Twilio bidirectional Media Stream cannot send DTMF events (REFERENCE.md 1.3), and updating
the call with ``<Play digits>`` would end the stream, so the gateway plays the tones as audio.
"""

from __future__ import annotations

import numpy as np

#: The keypad: a key's row sounds the low tone, its column the high one.
_ROWS = ("123A", "456B", "789C", "*0#D")
_LOW = {key: hz for row, hz in zip(_ROWS, (697, 770, 852, 941), strict=True) for key in row}
_HIGH = {row[i]: hz for row in _ROWS for i, hz in enumerate((1209, 1336, 1477, 1633))}


def dtmf_pcm(digits: str, rate: int = 8000, tone_ms: int = 100, gap_ms: int = 100) -> bytes:
    """int16 PCM of ``digits`` (``0-9*#A-D``; ``w`` pauses 500 ms), each tone then a gap.

    Raises ValueError on any other character, naming it.
    """
    tone_n = rate * tone_ms // 1000
    gap = np.zeros(rate * gap_ms // 1000, dtype=np.int16)
    t = np.arange(tone_n) / rate
    parts: list[np.ndarray] = []
    for digit in digits.upper():
        if digit == "W":
            parts.append(np.zeros(rate // 2, dtype=np.int16))
            continue
        if digit not in _LOW:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        # Each tone at -9 dBFS so the pair stays clear of clipping after mu-law.
        wave = 0.35 * (np.sin(2 * np.pi * _LOW[digit] * t) + np.sin(2 * np.pi * _HIGH[digit] * t))
        parts.append((wave * 32767).astype(np.int16))
        parts.append(gap)
    return np.concatenate(parts).tobytes() if parts else b""
