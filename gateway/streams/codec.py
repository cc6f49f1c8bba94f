"""The carrier's wire encoding <-> the call core's 8 kHz mu-law, one call's two directions.

The call core (:mod:`gateway.call.session`) speaks 20 ms frames of 8 kHz G.711 mu-law, as
Twilio and SIP do. Carriers that stream A-law or linear PCM (L16, 8 or 16 kHz) are transcoded
here, at the edge: A-law <-> mu-law through two 256-byte tables (``bytes.translate``, one C
pass per frame); L16 through the G.711 codec and, at 16 kHz, the project's streaming FIR
resampler (``gateway.audio.resample``, ~4 ms held back). L16 on an RTP-payload wire is
network byte order (RFC 3551 section 4.5.11); raw PCM wires are little-endian: the carrier
says which.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass

from gateway.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from gateway.audio.resample import StreamResampler

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["Encoding", "WireCodec", "WireFormat"]

CORE_RATE = 8000
_ALL = bytes(range(256))
_ULAW_TO_ALAW = alaw_encode(ulaw_decode(_ALL))
_ALAW_TO_ULAW = ulaw_encode(alaw_decode(_ALL))


class Encoding(enum.Enum):
    ULAW = "ulaw"
    ALAW = "alaw"
    L16 = "l16"


@dataclass(frozen=True, slots=True)
class WireFormat:
    """One carrier media format: encoding, rate, and for L16 the byte order."""

    encoding: Encoding
    rate: int = 8000
    big_endian: bool = False

    def __post_init__(self) -> None:
        if self.rate not in (8000, 16000):
            raise ValueError(f"unsupported sample rate {self.rate}")
        if self.encoding is not Encoding.L16 and self.rate != 8000:
            raise ValueError("G.711 is 8 kHz only")

    @property
    def bytes_per_20ms(self) -> int:
        width = 2 if self.encoding is Encoding.L16 else 1
        return self.rate // 50 * width


class WireCodec:
    """Transcodes one call's audio both ways; keeps the resamplers' state between frames."""

    __slots__ = ("format", "_in", "_out", "_out_fresh")

    def __init__(self, wire: WireFormat) -> None:
        self.format = wire
        wideband = wire.encoding is Encoding.L16 and wire.rate != CORE_RATE
        self._in = StreamResampler(wire.rate, CORE_RATE) if wideband else None
        self._out = StreamResampler(CORE_RATE, wire.rate) if wideband else None
        #: The outbound resampler holds back its filter delay (~4 ms) on its first frame.
        self._out_fresh = True

    def to_core(self, payload: bytes) -> bytes:
        """Wire payload -> 8 kHz mu-law."""
        wire = self.format
        if wire.encoding is Encoding.ULAW:
            return payload
        if wire.encoding is Encoding.ALAW:
            return payload.translate(_ALAW_TO_ULAW)
        if len(payload) % 2:
            payload = payload[:-1]  # half a sample: the peer's framing bug, not worth a call
        if wire.big_endian:
            payload = audioop.byteswap(payload, 2)
        if self._in is not None:
            payload = self._in.process(payload)
        return ulaw_encode(payload)

    def from_core(self, ulaw: bytes) -> bytes:
        """8 kHz mu-law -> wire payload."""
        wire = self.format
        if wire.encoding is Encoding.ULAW:
            return ulaw
        if wire.encoding is Encoding.ALAW:
            return ulaw.translate(_ULAW_TO_ALAW)
        pcm = ulaw_decode(ulaw)
        if self._out is not None:
            pcm = self._out.process(pcm)
            if self._out_fresh:
                # Lead the first frame with the filter's delay in silence, so every frame on
                # the wire is whole (carriers refuse media under 20 ms) and the timeline holds.
                self._out_fresh = False
                want = len(ulaw) * 2 * wire.rate // CORE_RATE
                if len(pcm) < want:
                    pcm = bytes(want - len(pcm)) + pcm
        return audioop.byteswap(pcm, 2) if wire.big_endian else pcm

    def cleared(self) -> None:
        """The outbound audio was cleared: the resampler's held-back tail is stale."""
        if self._out is not None:
            self._out.reset()
            self._out_fresh = True
