"""In-band DTMF: the dual tones of ITU-T Q.23, for carriers that cannot signal digits.

A Twilio bidirectional Media Stream cannot send DTMF events (REFERENCE.md 1.3), and updating
the call with ``<Play digits>`` would end the stream, so the gateway plays the tones as audio.
"""

from __future__ import annotations

import numpy as np

_LOW = {"1": 697, "2": 697, "3": 697, "A": 697, "4": 770, "5": 770, "6": 770, "B": 770,
        "7": 852, "8": 852, "9": 852, "C": 852, "*": 941, "0": 941, "#": 941, "D": 941}
_HIGH = {"1": 1209, "4": 1209, "7": 1209, "*": 1209, "2": 1336, "5": 1336, "8": 1336,
         "0": 1336, "3": 1477, "6": 1477, "9": 1477, "#": 1477, "A": 1633, "B": 1633,
         "C": 1633, "D": 1633}


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
