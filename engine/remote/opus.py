"""Opus through libopus, as bundled with PyAV (``av``, a maintained PyPI package whose wheels
carry libopus): 16-bit mono PCM in and out at 24 kHz, Moshi's rate.

Packets only: the Ogg framing is :mod:`engine.remote.ogg`'s. The encoder takes exactly one
frame (``frame_ms`` of audio, 80 ms by default as Moshi's own client sends) per call and
returns its packet(s); :meth:`OpusEncoder.head` is the ``OpusHead`` packet (RFC 7845 5.1) that
starts a stream, with the encoder's real pre-skip. FFmpeg's libopus decoder always outputs
48 kHz, so the decoder resamples to 24 kHz (an exact 2:1, libswresample).

The decoder is given no ``OpusHead``: like Kyutai's ``sphn`` reader it decodes every sample of
every packet (pre-skip not dropped), so one 80 ms packet gives exactly 80 ms of audio and the
output timeline stays aligned with the server's frames.
"""

from __future__ import annotations

import struct

import av
import numpy as np

__all__ = ["OPUS_TAGS", "OpusDecoder", "OpusEncoder"]

RATE = 24000
FRAME_MS = (20, 40, 60, 80)
#: The comment header (RFC 7845 5.2): vendor string, no comments.
OPUS_TAGS = b"OpusTags" + struct.pack("<I", 8) + b"overtalk" + struct.pack("<I", 0)


class OpusEncoder:
    """int16 mono PCM frames at 24 kHz -> Opus packets."""

    def __init__(self, frame_ms: int = 80, bitrate: int = 32000) -> None:
        if frame_ms not in FRAME_MS:
            raise ValueError(f"frame_ms must be one of {FRAME_MS}")
        ctx = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = RATE
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.bit_rate = bitrate
        ctx.options = {"application": "voip", "frame_duration": str(frame_ms)}
        ctx.open()
        self._ctx = ctx
        self.frame_samples = RATE * frame_ms // 1000
        self.frame_bytes = self.frame_samples * 2
        self._pts = 0

    def head(self) -> bytes:
        """The ``OpusHead`` packet for this encoder (channel count, pre-skip, input rate)."""
        return bytes(self._ctx.extradata)

    def encode(self, pcm: bytes) -> list[bytes]:
        """One frame of PCM (``frame_bytes`` long) -> the packets it completes."""
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        self._pts += samples.shape[1]
        return [bytes(packet) for packet in self._ctx.encode(frame)]


class OpusDecoder:
    """Opus packets -> int16 mono PCM at 24 kHz."""

    def __init__(self) -> None:
        ctx = av.CodecContext.create("libopus", "r")
        ctx.layout = "mono"
        self._ctx = ctx
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)

    def decode(self, packet: bytes) -> bytes:
        out = bytearray()
        for frame in self._ctx.decode(av.Packet(packet)):
            for resampled in self._resampler.resample(frame):
                out += resampled.to_ndarray().tobytes()
        return bytes(out)
