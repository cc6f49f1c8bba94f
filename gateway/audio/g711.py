"""G.711 mu-law and A-law, bit-exact with the reference ``audioop`` (C) implementation.

``audioop`` is in the standard library up to Python 3.12 and provided by ``audioop-lts`` from
3.13; its G.711 conversions are C loops over the buffer, the fastest option per 20 ms frame.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

#: mu-law byte for digital silence (encodes 0).
ULAW_SILENCE = 0xFF
#: A-law byte for digital silence.
ALAW_SILENCE = 0xD5


def ulaw_decode(data: bytes) -> bytes:
    """mu-law bytes -> int16 little-endian PCM (twice the length)."""
    return audioop.ulaw2lin(data, 2)


def ulaw_encode(pcm: bytes) -> bytes:
    """int16 little-endian PCM -> mu-law bytes (half the length)."""
    return audioop.lin2ulaw(pcm, 2)


def alaw_decode(data: bytes) -> bytes:
    """A-law bytes -> int16 little-endian PCM."""
    return audioop.alaw2lin(data, 2)


def alaw_encode(pcm: bytes) -> bytes:
    """int16 little-endian PCM -> A-law bytes."""
    return audioop.lin2alaw(pcm, 2)
