"""Kyutai's Moshi server websocket (``/api/chat``), sans I/O.

Sources: kyutai-labs/moshi ``moshi/moshi/server.py`` (the server sends the handshake
``b"\\x00"`` first, then reads binary messages whose first byte is the kind: ``1`` audio,
an Ogg-Opus stream slice; it answers with ``1`` audio and ``2`` text, a UTF-8 piece of the
model's own words), ``moshi/moshi/client.py`` (24 kHz mono, 1920-sample = 80 ms frames through
``sphn.OpusStreamWriter``/``OpusStreamReader``) and ``client/src/protocol/encoder.ts`` (the
full kind table: ``0`` handshake with optional version and model bytes, ``3`` control, ``4``
metadata, ``5`` error, ``6`` ping) and ``rust/protocol.md`` ("Messages with an unknown message
type should be discarded": newer servers add kinds, such as ``7``, coloured text, so any other
kind is dropped quietly and counted in ``ignored``, never as a violation).

Moshi is full-duplex by nature: it listens and speaks at once and decides turn-taking itself,
stopping when talked over. Its server produces one output frame per input frame, so output
follows input in real time; the gateway streams both ways and plays what comes, and there is
no interruption protocol to speak (no ``Interrupt``, nothing to truncate).

Opus coding goes through a :class:`Codec` seam (libopus via PyAV in production); the Ogg
framing is :mod:`engine.remote.ogg`. A new connection is a new Ogg stream (new serial number,
``OpusHead`` and ``OpusTags`` pages first) and a fresh Moshi conversation: the server keeps no
state between connections.
"""

from __future__ import annotations

import enum
import secrets
from collections import deque
from collections.abc import Callable
from typing import Protocol

from engine.base import Audio, EngineEvent, Transcript
from engine.remote.errors import LocalProtocolError, VendorError
from engine.remote.ogg import OggReader, OggWriter
from engine.remote.opus import OPUS_TAGS

__all__ = ["Codec", "MoshiProtocol", "Phase"]

RATE = 24000
KIND_HANDSHAKE, KIND_AUDIO, KIND_TEXT = 0x00, 0x01, 0x02
KIND_CONTROL, KIND_METADATA, KIND_ERROR, KIND_PING = 0x03, 0x04, 0x05, 0x06
#: Caller audio held while no connection is ready: 10 s at 24 kHz, 16-bit.
MAX_PENDING_BYTES = 10 * RATE * 2
#: The bot's words are one transcript once its audio has gone this long without a new word.
TRANSCRIPT_GAP_MS = 1000.0


class Phase(enum.Enum):
    CONNECTING = "connecting"
    HANDSHAKE = "handshake"  # socket open, waiting for the server's 0x00
    READY = "ready"


class Encoder(Protocol):
    frame_bytes: int

    def head(self) -> bytes: ...

    def encode(self, pcm: bytes) -> list[bytes]: ...


class Decoder(Protocol):
    def decode(self, packet: bytes) -> bytes: ...


class Codec(Protocol):
    """Makes the Opus encoder and decoder of one connection."""

    def encoder(self) -> Encoder: ...

    def decoder(self) -> Decoder: ...


class MoshiProtocol:
    """One call's Moshi conversation(s). Same contract as the other remote protocols, plus
    :meth:`encode_ready` (the writer runs it: Opus encoding stays off the per-frame path)."""

    def __init__(self, codec: Codec, *, serial: Callable[[], int] | None = None) -> None:
        self._codec = codec
        self._serial = serial or (lambda: secrets.randbits(32))
        self.phase = Phase.CONNECTING
        self.outbox: deque[bytes] = deque()
        self._pcm = bytearray()  # caller audio not yet encoded
        self._encoder: Encoder | None = None
        self._decoder: Decoder | None = None
        self._writer: OggWriter | None = None
        self._reader = OggReader()
        self._granule = 0
        self._header_sent = False
        self._words: list[str] = []
        self._since_word_ms = 0.0
        self.connections = 0
        self.violations = 0
        self.last_violation = ""
        self.audio_dropped_ms = 0.0
        #: Messages of kinds this client does not use (discarded, as protocol.md says).
        self.ignored = 0
        self.fatal: VendorError | None = None

    # -- connection lifecycle ----------------------------------------------------------------

    def connection_made(self) -> None:
        if self.phase is not Phase.CONNECTING:
            raise LocalProtocolError(f"connection_made in phase {self.phase.value}")
        self.connections += 1
        self.phase = Phase.HANDSHAKE
        self.fatal = None
        self.outbox.clear()
        self._encoder = self._codec.encoder()
        self._decoder = self._codec.decoder()
        self._writer = OggWriter(self._serial())
        self._reader = OggReader()
        self._granule = 0
        self._header_sent = False

    def connection_lost(self) -> None:
        self.phase = Phase.CONNECTING
        self.outbox.clear()

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    # -- caller -> model ---------------------------------------------------------------------

    def append(self, pcm: bytes) -> bool:
        """Buffer caller PCM; True when a whole frame is ready for :meth:`encode_ready`."""
        self._pcm += pcm
        if len(self._pcm) > MAX_PENDING_BYTES:
            excess = len(self._pcm) - MAX_PENDING_BYTES
            excess -= excess % 2
            del self._pcm[:excess]
            self.audio_dropped_ms += excess / (2 * RATE / 1000)
        encoder = self._encoder
        return (
            self.phase is Phase.READY
            and encoder is not None
            and len(self._pcm) >= encoder.frame_bytes
        )

    def encode_ready(self) -> None:
        """Encode every whole frame buffered into Ogg pages on the outbox."""
        encoder, writer = self._encoder, self._writer
        if self.phase is not Phase.READY or encoder is None or writer is None:
            return
        size = encoder.frame_bytes
        while len(self._pcm) >= size:
            frame = bytes(self._pcm[:size])
            del self._pcm[:size]
            pages = b""
            if not self._header_sent:
                pages = writer.page(encoder.head(), 0, first=True) + writer.page(OPUS_TAGS, 0)
                self._header_sent = True
            for packet in encoder.encode(frame):
                self._granule += size // 2 * (48000 // RATE)  # granules count 48 kHz samples
                pages += writer.page(packet, self._granule)
            if pages:
                self.outbox.append(bytes([KIND_AUDIO]) + pages)

    # -- model -> caller ---------------------------------------------------------------------

    def _violation(self, reason: str) -> list[EngineEvent]:
        self.violations += 1
        self.last_violation = reason
        return []

    def receive(self, data: str | bytes, now: float = 0.0) -> list[EngineEvent]:
        if isinstance(data, str):
            return self._violation("text frame (Moshi speaks binary messages)")
        if not data:
            return self._violation("empty message")
        kind, payload = data[0], data[1:]
        if kind == KIND_AUDIO:
            return self._on_audio(payload)
        if kind == KIND_TEXT:
            text = payload.decode("utf-8", errors="replace")
            self._words.append(text)
            self._since_word_ms = 0.0
            return []
        if kind == KIND_HANDSHAKE:
            if self.phase is Phase.HANDSHAKE:
                self.phase = Phase.READY
            return []
        if kind == KIND_ERROR:
            self.fatal = VendorError(payload.decode("utf-8", errors="replace") or "error")
            return []
        self.ignored += 1  # ping, control, metadata, and kinds newer than this client
        return []

    def _on_audio(self, payload: bytes) -> list[EngineEvent]:
        decoder = self._decoder
        if self.phase is not Phase.READY or decoder is None:
            return self._violation("audio before the handshake")
        reader = self._reader
        seen = reader.violations
        events: list[EngineEvent] = []
        for packet in reader.feed(payload):
            if packet.startswith((b"OpusHead", b"OpusTags")):
                continue
            try:
                pcm = decoder.decode(packet)
            except ValueError as exc:  # av raises its errors as ValueError subclasses
                self._violation(f"undecodable Opus packet: {exc}")
                continue
            if pcm:
                events.append(Audio(pcm))
                events.extend(self._advance(len(pcm) / (2 * RATE / 1000)))
        if reader.violations > seen:
            self._violation(reader.last_violation)
        return events

    def _advance(self, ms: float) -> list[EngineEvent]:
        """Bot audio went by: words followed by a long enough gap make one transcript."""
        if not self._words:
            return []
        self._since_word_ms += ms
        if self._since_word_ms < TRANSCRIPT_GAP_MS:
            return []
        text = "".join(self._words).strip()
        self._words.clear()
        return [Transcript("bot", text)] if text else []
