"""Ogg pages (RFC 3533) for streaming Opus, sans I/O: a symmetric page codec, a stream reader
that reassembles packets from bytes cut anywhere, and a one-packet-per-page writer.

Why our own: Moshi's websocket carries an Ogg-Opus *stream* in arbitrary slices (Kyutai's
``sphn`` ``OpusStreamWriter`` emits the ``OpusHead`` and ``OpusTags`` pages, then one page per
80 ms packet, kyutai-labs/sphn ``src/opus.rs``), and a low-latency bridge needs each packet the
moment its page is complete. A container demuxer that reads from a file-like object blocks for
more input; this reader never does. Opus itself is coded by libopus through PyAV
(:mod:`engine.remote.opus`).

Page layout (RFC 3533 section 6): ``"OggS"``, version 0, header type (1 continued packet,
2 beginning of stream, 4 end of stream), 64-bit granule position, serial number, page sequence
number, CRC-32 (polynomial 0x04C11DB7, initial 0, not reflected, over the page with the CRC
field zeroed), segment count, lacing values, body. A packet ends at the first lacing value
below 255.

Garbage is handled per page: bytes before a capture pattern are skipped and a page whose CRC
does not match is dropped; both are counted in :attr:`OggReader.violations`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from engine.remote.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["CONTINUED", "FIRST", "LAST", "OggPage", "OggReader", "OggWriter", "crc32"]

CAPTURE = b"OggS"
CONTINUED, FIRST, LAST = 0x01, 0x02, 0x04
_HEADER = struct.Struct("<4sBBqIIIB")  # capture .. segment count: 27 bytes
MAX_SEGMENTS = 255
MAX_PACKET = MAX_SEGMENTS * 255 - 1  # one packet on one page
#: Largest page: header, full segment table, 255 * 255 bytes of body.
MAX_PAGE = _HEADER.size + MAX_SEGMENTS + MAX_SEGMENTS * 255


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_TABLE = _crc_table()


def crc32(data: bytes | bytearray | memoryview) -> int:
    """Ogg's CRC-32 (not zlib's: this one is unreflected)."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


@dataclass(frozen=True, slots=True)
class OggPage:
    """One page: header fields, lacing values and body."""

    header_type: int
    granule: int
    serial: int
    sequence: int
    lacing: bytes
    body: bytes

    @classmethod
    def parse(cls, data: bytes | bytearray, offset: int = 0) -> tuple[OggPage, int] | None:
        """The page at ``offset`` and its length, or None if ``data`` ends before it does.

        Raises RemoteProtocolError for a malformed page (bad capture, version or CRC).
        """
        if len(data) - offset < _HEADER.size:
            return None
        capture, version, kind, granule, serial, seq, crc, nseg = _HEADER.unpack_from(data, offset)
        if capture != CAPTURE:
            raise RemoteProtocolError("no Ogg capture pattern")
        if version != 0:
            raise RemoteProtocolError(f"Ogg version {version}")
        table_end = offset + _HEADER.size + nseg
        if len(data) < table_end:
            return None
        lacing = bytes(data[offset + _HEADER.size : table_end])
        end = table_end + sum(lacing)
        if len(data) < end:
            return None
        raw = bytearray(data[offset:end])
        raw[22:26] = b"\0\0\0\0"
        if crc32(raw) != crc:
            raise RemoteProtocolError("Ogg page CRC mismatch")
        return cls(kind, granule, serial, seq, lacing, bytes(data[table_end:end])), end - offset

    def __bytes__(self) -> bytes:
        head = _HEADER.pack(
            CAPTURE, 0, self.header_type, self.granule, self.serial, self.sequence, 0,
            len(self.lacing),
        )  # fmt: skip
        page = bytearray(head + self.lacing + self.body)
        page[22:26] = struct.pack("<I", crc32(page))
        return bytes(page)


def _lacing(size: int) -> bytes:
    return b"\xff" * (size // 255) + bytes([size % 255])


class OggWriter:
    """One logical stream, one packet per page (as sphn writes it: every packet is sent the
    moment it is encoded)."""

    def __init__(self, serial: int) -> None:
        self.serial = serial
        self._sequence = 0

    def page(self, packet: bytes, granule: int, *, first: bool = False) -> bytes:
        if len(packet) > MAX_PACKET:
            raise LocalProtocolError(f"packet of {len(packet)} bytes does not fit one page")
        page = OggPage(FIRST if first else 0, granule, self.serial, self._sequence,
                       _lacing(len(packet)), packet)  # fmt: skip
        self._sequence += 1
        return bytes(page)


class OggReader:
    """Bytes in, whole packets out, whatever the slicing. One logical stream is followed: the
    first page's serial number, or a new one announced by a beginning-of-stream page."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._packet = bytearray()  # a packet continued onto the next page
        self._serial: int | None = None
        self.violations = 0
        self.last_violation = ""
        self.pages = 0

    def _violation(self, reason: str) -> None:
        self.violations += 1
        self.last_violation = reason

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        packets: list[bytes] = []
        pos = 0
        resyncing = False  # skipping the rest of a page already counted as bad
        while True:
            start = buf.find(CAPTURE, pos)
            if start < 0:
                keep = max(pos, len(buf) - 3)  # a capture pattern may be cut in two
                if keep > pos and not resyncing:
                    self._violation("bytes outside any Ogg page")
                pos = keep
                break
            if start > pos and not resyncing:
                self._violation("bytes outside any Ogg page")
            resyncing = False
            try:
                parsed = OggPage.parse(buf, start)
            except RemoteProtocolError as exc:
                self._violation(str(exc))
                pos = start + 1  # resynchronise on the next capture pattern
                resyncing = True
                continue
            if parsed is None:
                pos = start
                if len(buf) - start > MAX_PAGE:
                    self._violation("Ogg page longer than the format allows")
                    pos = start + 1
                    continue
                break
            page, length = parsed
            pos = start + length
            self.pages += 1
            packets.extend(self._packets(page))
        del buf[:pos]
        return packets

    def _packets(self, page: OggPage) -> list[bytes]:
        if page.header_type & FIRST or self._serial is None:
            self._serial = page.serial
            self._packet.clear()
        elif page.serial != self._serial:
            self._violation(f"page of another stream ({page.serial})")
            return []
        if page.header_type & CONTINUED and not self._packet:
            continued = True  # the start of that packet was lost: skip its rest
        else:
            continued = False
        out: list[bytes] = []
        body = page.body
        at = 0
        for value in page.lacing:
            if not continued:
                self._packet += body[at : at + value]
            at += value
            if value < 255:
                if not continued:
                    out.append(bytes(self._packet))
                self._packet.clear()
                continued = False
        return out
