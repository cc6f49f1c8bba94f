"""RTP and RTCP on the wire (RFC 3550), and RFC 4733 telephone-events: symmetric codecs.

``RtpPacket.parse(data)`` pairs with ``bytes(packet)``, ``TelephoneEvent.parse`` with
``bytes(event)``, and :func:`parse_rtcp` with ``bytes()`` of each report. Parsers honour every
header bit (CSRC count, extension, padding) and raise :class:`RtpError` for anything they
cannot read; the media layer drops such packets and counts them, a bad datagram never ends a
call.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "MAX_RTP_SIZE",
    "ReceiverReport",
    "ReportBlock",
    "RtcpBye",
    "RtpError",
    "RtpPacket",
    "SenderReport",
    "TelephoneEvent",
    "is_rtcp",
    "parse_rtcp",
]

#: A datagram larger than this is not telephone audio (1500-byte Ethernet MTU).
MAX_RTP_SIZE = 1500
_HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """A packet that is not valid RTP/RTCP (or exceeds the size limit)."""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. ``extension`` is ``(profile, data)`` when the X bit is set."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes, max_size: int = MAX_RTP_SIZE) -> RtpPacket:
        if len(data) > max_size:
            raise RtpError(f"packet of {len(data)} bytes exceeds {max_size}")
        if len(data) < 12:
            raise RtpError(f"packet of {len(data)} bytes is shorter than an RTP header")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != 2:
            raise RtpError(f"RTP version {first >> 6}")
        count = first & 0x0F
        offset = 12 + 4 * count
        if len(data) < offset:
            raise RtpError("packet shorter than its CSRC list")
        csrc = struct.unpack_from(f"!{count}I", data, 12) if count else ()
        extension = None
        if first & 0x10:
            if len(data) < offset + 4:
                raise RtpError("packet shorter than its extension header")
            profile, words = struct.unpack_from("!HH", data, offset)
            end = offset + 4 + 4 * words
            if len(data) < end:
                raise RtpError("packet shorter than its extension")
            extension = (profile, bytes(data[offset + 4 : end]))
            offset = end
        padding = 0
        end = len(data)
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or offset + padding > end:
                raise RtpError(f"bad padding length {padding}")
            end -= padding
        return cls(
            second & 0x7F,
            sequence,
            timestamp,
            ssrc,
            bytes(data[offset:end]),
            bool(second & 0x80),
            tuple(csrc),
            extension,
            padding,
        )

    def __bytes__(self) -> bytes:
        first = 0x80 | len(self.csrc)
        if self.extension is not None:
            first |= 0x10
        if self.padding:
            first |= 0x20
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        out = _HEADER.pack(
            first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc
        )
        if self.csrc:
            out += struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        if self.extension is not None:
            profile, data = self.extension
            data += b"\x00" * (-len(data) % 4)
            out += struct.pack("!HH", profile, len(data) // 4) + data
        out += self.payload
        if self.padding:
            out += b"\x00" * (self.padding - 1) + bytes([self.padding])
        return out


#: RFC 4733 3.2: event codes 0-15 are the DTMF keys, in this order.
DTMF_EVENTS = "0123456789*#ABCD"


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """An RFC 4733 event payload: ``event | E R volume | duration``."""

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise RtpError(f"telephone-event payload of {len(payload)} bytes")
        event, flags, duration = struct.unpack_from("!BBH", payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return struct.pack("!BBH", self.event, flags, self.duration & 0xFFFF)

    @property
    def digit(self) -> str | None:
        return DTMF_EVENTS[self.event] if self.event < len(DTMF_EVENTS) else None


# -- RTCP (RFC 3550 6.4) ---------------------------------------------------------------------

RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE = 200, 201, 202, 203
_BLOCK = struct.Struct("!IB3sIIII")


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 4: payload types 64-95 with the marker set are RTCP's 192-223."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception statistics for one source (6.4.1)."""

    ssrc: int
    fraction_lost: int  # of 256
    cumulative_lost: int
    highest_sequence: int  # extended
    jitter: int  # timestamp units
    last_sr: int = 0
    delay_since_last_sr: int = 0

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        cumulative = int.from_bytes(lost, "big", signed=True)
        return cls(ssrc, fraction, cumulative, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        lost = max(-(2**23), min(2**23 - 1, self.cumulative_lost))
        return _BLOCK.pack(
            self.ssrc,
            self.fraction_lost & 0xFF,
            lost.to_bytes(3, "big", signed=True),
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.last_sr,
            self.delay_since_last_sr,
        )


def _rtcp_header(count: int, kind: int, body_len: int) -> bytes:
    return struct.pack("!BBH", 0x80 | count, kind, (body_len + 4) // 4 - 1)


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_time: int  # 64-bit NTP timestamp
    rtp_time: int
    packets: int
    octets: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = struct.pack(
            "!IQIII", self.ssrc, self.ntp_time, self.rtp_time & 0xFFFFFFFF, self.packets,
            self.octets,
        )  # fmt: skip
        body += b"".join(bytes(r) for r in self.reports)
        return _rtcp_header(len(self.reports), RTCP_SR, len(body)) + body


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(bytes(r) for r in self.reports)
        return _rtcp_header(len(self.reports), RTCP_RR, len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpBye:
    sources: tuple[int, ...] = field(default_factory=tuple)

    def __bytes__(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.sources)
        return _rtcp_header(len(self.sources), RTCP_BYE, len(body)) + body


RtcpPacket = SenderReport | ReceiverReport | RtcpBye


def parse_rtcp(data: bytes, max_size: int = MAX_RTP_SIZE) -> list[RtcpPacket]:
    """The reports of a compound RTCP packet; other packet types (SDES, APP) are skipped."""
    if len(data) > max_size:
        raise RtpError(f"RTCP packet of {len(data)} bytes exceeds {max_size}")
    out: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise RtpError("truncated RTCP header")
        first, kind, words = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != 2:
            raise RtpError(f"RTCP version {first >> 6}")
        end = offset + 4 * (words + 1)
        if end > len(data):
            raise RtpError("RTCP packet longer than the datagram")
        count = first & 0x1F
        if kind == RTCP_SR:
            if end - offset < 28 + 24 * count:
                raise RtpError("truncated sender report")
            ssrc, ntp, rtp_time, packets, octets = struct.unpack_from("!IQIII", data, offset + 4)
            blocks = tuple(ReportBlock.parse(data, offset + 28 + 24 * i) for i in range(count))
            out.append(SenderReport(ssrc, ntp, rtp_time, packets, octets, blocks))
        elif kind == RTCP_RR:
            if end - offset < 8 + 24 * count:
                raise RtpError("truncated receiver report")
            (ssrc,) = struct.unpack_from("!I", data, offset + 4)
            blocks = tuple(ReportBlock.parse(data, offset + 8 + 24 * i) for i in range(count))
            out.append(ReceiverReport(ssrc, blocks))
        elif kind == RTCP_BYE:
            if end - offset < 4 + 4 * count:
                raise RtpError("truncated BYE")
            out.append(RtcpBye(struct.unpack_from(f"!{count}I", data, offset + 4)))
        elif not 192 <= kind <= 223:
            raise RtpError(f"not an RTCP packet type: {kind}")
        offset = end
    if not out and not data:
        raise RtpError("empty RTCP packet")
    return out
