"""One call's RTP stream, sans-I/O: paced sending, latching, jitter buffer, DTMF, RTCP.

:class:`RtpStream` is driven by the gateway's own 20 ms clock: each :meth:`RtpStream.tick`
(``now`` passed in) returns the RTP datagrams due, pulling each slot's audio from the call
(:meth:`~gateway.call.session.CallSession.pull_frame`) as it packs it. The stream keeps no
queue of the bot's audio: the session's playout is the only buffer and the RTP clock its only
pacer, so what the session hands over is on the wire, and a clear has nothing here to drop.

Outbound (RFC 3550, 3551): one SSRC, a random first sequence number and timestamp, both
continuous for the whole call (talk spurts, silence, re-INVITEs, hold); the timestamp follows
the clock even while nothing is sent. Comfort silence fills the gaps between the bot's speech
so that NAT bindings and the far end's RTP timers stay alive; the marker bit is set on the
first packet and on the first packet of each bot talk spurt after silence.

DTMF goes out as RFC 4733 events when the peer offered telephone-event: each key a 100 ms
event (packets every 20 ms, one start timestamp, the marker on the first, the duration growing
by 160 per packet, the end packet sent three times, 2.5.1.4), then 100 ms before the next key;
a ``W`` pauses 500 ms. While an event is sent the bot's audio waits (it is not dropped).

Inbound: the first valid packet latches the remote address (symmetric RTP, RFC 4961: the far
end may sit behind NAT, so its SDP address can be wrong); packets from elsewhere are dropped
and counted. Audio passes through the :class:`~gateway.carriers.sip.jitter.JitterBuffer`; A-law
is converted to mu-law with ``gateway.audio.g711``; lost packets are concealed by repeating
the previous packet at half level once, then silence. Telephone-events are reported once per
event (deduplicated by SSRC and timestamp: the end packet comes three times, and SIPp sends
them from another SSRC).
"""

from __future__ import annotations

import random
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.audio.g711 import (
    ULAW_SILENCE,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from gateway.call.commands import PAUSE_SECONDS
from gateway.carriers.sip.jitter import JitterBuffer
from gateway.carriers.sip.rtp import (
    ReceiverReport,
    ReportBlock,
    RtpError,
    RtpPacket,
    SenderReport,
    TelephoneEvent,
    parse_rtcp,
)
from gateway.carriers.sip.sdp import MediaParams

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["FRAME_SAMPLES", "RtpStats", "RtpStream"]

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_SECONDS = 0.020
#: After a stall, at most this many overdue packets are sent at once; older ones are skipped.
MAX_CATCH_UP = 5
RTCP_INTERVAL = 5.0
#: RFC 4733 2.5.1.4: the final packet of an event is sent three times.
END_REPEATS = 3
DTMF_FRAMES = 5  # 100 ms per digit
#: Slots between one key's last end packet and the next key: with the two end repeats, 100 ms
#: from the end of one tone to the start of the next (the in-band tones' gap).
DTMF_GAP_FRAMES = 3
#: A ``W`` in a DTMF string: slots with no event.
PAUSE_FRAMES = round(PAUSE_SECONDS / FRAME_SECONDS)
#: DTMF characters queued at most (keys and pauses); more is refused.
MAX_DTMF_QUEUE = 256
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970
DTMF_KEYS = "0123456789*#ABCD"  # RFC 4733 event codes 0-15

Address = tuple[str, int]
#: Where a slot's audio comes from: the next mu-law frame at ``now``, or None for silence.
FrameSource = Callable[[float], bytes | None]


@dataclass(slots=True)
class RtpStats:
    packets_sent: int = 0
    octets_sent: int = 0
    packets_received: int = 0
    bad_packets: int = 0
    wrong_source: int = 0
    unknown_payload: int = 0
    concealed_ms: int = 0
    dtmf_sent: int = 0
    dtmf_received: int = 0
    rtcp_received: int = 0
    rtcp_sent: int = 0
    skipped_frames: int = 0


class RtpStream:
    """See the module docstring. All times are seconds on the caller's monotonic clock."""

    def __init__(
        self,
        params: MediaParams,
        now: float,
        *,
        rng: random.Random | None = None,
        jitter: JitterBuffer | None = None,
        max_packet: int = 1500,
    ) -> None:
        rng = rng or random.Random()
        self.params = params
        self.ssrc = rng.getrandbits(32)
        self._seq = rng.getrandbits(16)
        self._ts = rng.getrandbits(32)
        self.remote: Address = (params.remote_host, params.remote_port)
        self.remote_rtcp: Address = (params.remote_host, params.remote_port + 1)
        self.latched = False
        self.jitter = jitter or JitterBuffer()
        self.max_packet = max_packet
        self.stats = RtpStats()
        self._next_tick = now
        self._first = True
        self._talking = False  # the last packet carried queued (bot) audio
        self._dtmf_out: deque[str] = deque()
        self._event: tuple[int, int, int] | None = None  # (event code, start ts, frames sent)
        self._gap_frames = 0
        self._dtmf_in: list[str] = []
        self._seen_events: deque[tuple[int, int]] = deque(maxlen=32)
        self._last_payload = b""
        self._concealing = 0
        self._next_rtcp = now + RTCP_INTERVAL
        self._last_sr: tuple[int, float] | None = None  # (middle 32 bits of NTP, when)
        self._remote_ssrc: int | None = None
        self._silence = self._encode(bytes([ULAW_SILENCE]) * FRAME_SAMPLES)

    # -- outbound ----------------------------------------------------------------------------

    def send_dtmf(self, digits: str) -> bool:
        """Queue DTMF (``0-9*#A-D``, ``W`` a pause) to send as RFC 4733 events.

        False when the call did not agree telephone-events (the caller may play them in-band).
        Raises ValueError on any other character, or past :data:`MAX_DTMF_QUEUE` queued.
        """
        digits = digits.upper()
        bad = [d for d in digits if d not in DTMF_KEYS and d != "W"]
        if bad:
            raise ValueError(f"not DTMF digits: {''.join(bad)!r}")
        if self.params.dtmf_payload_type is None:
            return False
        if len(self._dtmf_out) + len(digits) > MAX_DTMF_QUEUE:
            raise ValueError(f"more than {MAX_DTMF_QUEUE} DTMF digits queued")
        self._dtmf_out.extend(digits)
        return True

    def update(self, params: MediaParams) -> None:
        """New parameters from a re-INVITE/UPDATE: codec, direction, maybe a new address.

        Sequence numbers and timestamps continue (RFC 3550 5.1); a new address is latched
        again from the next packet, and what the far end sends meanwhile is not refused.
        """
        if (params.remote_host, params.remote_port) != (
            self.params.remote_host,
            self.params.remote_port,
        ):
            self.remote = (params.remote_host, params.remote_port)
            self.remote_rtcp = (params.remote_host, params.remote_port + 1)
            self.latched = False
        self.params = params
        self._silence = self._encode(bytes([ULAW_SILENCE]) * FRAME_SAMPLES)

    def next_tick(self) -> float:
        return self._next_tick

    def tick(self, now: float, source: FrameSource | None = None) -> list[bytes]:
        """The packets due by ``now``; each slot not taken by a DTMF event carries the frame
        ``source(now)`` gives as it is packed (comfort silence when None or no source)."""
        packets: list[bytes] = []
        overdue = int((now - self._next_tick) / FRAME_SECONDS) + 1
        if overdue <= 0:
            return packets
        if overdue > MAX_CATCH_UP:
            # A stall longer than the catch-up window: skip, keeping the timestamp on the clock.
            skipped = overdue - MAX_CATCH_UP
            self._ts += skipped * FRAME_SAMPLES
            self._next_tick += skipped * FRAME_SECONDS
            self.stats.skipped_frames += skipped
            overdue = MAX_CATCH_UP
        for _ in range(overdue):
            packet = self._one_frame(now, source)
            if packet is not None:
                packets.append(packet)
            self._next_tick += FRAME_SECONDS
        return packets

    def _one_frame(self, now: float, source: FrameSource | None) -> bytes | None:
        ts = self._ts
        self._ts += FRAME_SAMPLES
        if self._event is None and self._dtmf_out and not self._gap_frames:
            self._next_key(ts)
        if self._event is not None:
            self._talking = False
            return self._dtmf_packet()  # the bot's audio waits for the event
        if self._gap_frames:
            self._gap_frames -= 1
        # On hold (we may not send) the audio is still taken: the call's clock runs on.
        frame = source(now) if source is not None else None
        if not self.params.sending:
            self._talking = False
            return None
        if frame is None:
            payload = self._silence
            marker = self._first
            self._talking = False
        else:
            payload = self._encode(frame)
            marker = self._first or not self._talking
            self._talking = True
        self._first = False
        return self._packet(self.params.payload_type, ts, payload, marker)

    def _packet(self, pt: int, ts: int, payload: bytes, marker: bool) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFF
        data = bytes(RtpPacket(pt, self._seq, ts, self.ssrc, payload, marker))
        self.stats.packets_sent += 1
        self.stats.octets_sent += len(payload)
        return data

    def _next_key(self, ts: int) -> None:
        """Start the next queued key's event at timestamp ``ts``, or the pause a ``W`` asks."""
        if self.params.dtmf_payload_type is None:
            self._dtmf_out.clear()  # a re-offer dropped telephone-event: nothing to send them in
            return
        key = self._dtmf_out.popleft()
        if key == "W":
            self._gap_frames = PAUSE_FRAMES
            return
        self._event = (DTMF_KEYS.index(key), ts, 0)
        self.stats.dtmf_sent += 1

    def _dtmf_packet(self) -> bytes | None:
        """This slot's packet of the event being sent (None while we may not send)."""
        assert self._event is not None
        pt = self.params.dtmf_payload_type
        code, start, sent = self._event
        sent += 1
        end = sent >= DTMF_FRAMES
        duration = min(sent, DTMF_FRAMES) * FRAME_SAMPLES
        payload = bytes(TelephoneEvent(code, end, 10, duration))
        if end and sent < DTMF_FRAMES + END_REPEATS - 1:
            self._event = (code, start, sent)
        elif end:
            self._event = None
            self._gap_frames = DTMF_GAP_FRAMES
        else:
            self._event = (code, start, sent)
        if not self.params.sending or pt is None:
            return None
        # The marker starts the event; every packet of it carries the event's start time.
        return self._packet(pt, start, payload, sent == 1)

    # -- inbound -----------------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> None:
        """One datagram from the RTP socket. Garbage and strangers are dropped and counted."""
        stats = self.stats
        try:
            packet = RtpPacket.parse(data, self.max_packet)
        except RtpError:
            stats.bad_packets += 1
            return
        pt = packet.payload_type
        params = self.params
        if pt != params.payload_type and pt != params.dtmf_payload_type:
            stats.unknown_payload += 1  # comfort noise (13), a codec we did not agree...
            return
        if self.latched:
            if source != self.remote:
                stats.wrong_source += 1
                return
        else:
            self.remote = source  # symmetric RTP: answer where the packets come from
            self.remote_rtcp = (source[0], source[1] + 1)
            self.latched = True
        stats.packets_received += 1
        if pt == params.payload_type:
            self._remote_ssrc = packet.ssrc
            self.jitter.push(
                packet.sequence,
                packet.timestamp,
                packet.payload,
                now,
                ssrc=packet.ssrc,
                marker=packet.marker,
            )
            return
        try:
            event = TelephoneEvent.parse(packet.payload)
        except RtpError:
            stats.bad_packets += 1
            return
        key = (packet.ssrc, packet.timestamp)
        if key in self._seen_events or event.digit is None:
            return
        self._seen_events.append(key)
        stats.dtmf_received += 1
        self._dtmf_in.append(event.digit)

    def dtmf_received(self) -> list[str]:
        digits, self._dtmf_in = self._dtmf_in, []
        return digits

    def audio_ready(self, now: float) -> list[tuple[bytes, int]]:
        """Caller audio due by ``now`` as ``(mu-law, timestamp_ms)``, gaps concealed."""
        out: list[tuple[bytes, int]] = []
        alaw = self.params.codec == "PCMA"
        for frame in self.jitter.pop(now):
            if frame.payload is not None:
                ulaw = ulaw_encode(alaw_decode(frame.payload)) if alaw else frame.payload
                self._last_payload = ulaw
                self._concealing = 0
            else:
                ulaw = self._conceal(frame.samples)
                self.stats.concealed_ms += frame.samples // 8
            out.append((ulaw, frame.timestamp_ms))
        return out

    def _conceal(self, samples: int) -> bytes:
        """The previous packet once at half level, then silence (G.711 has no PLC of its own)."""
        out = bytearray()
        last = self._last_payload
        while len(out) < samples:
            need = samples - len(out)
            if self._concealing == 0 and last:
                quieter = ulaw_encode(audioop.mul(ulaw_decode(last), 2, 0.5))
                out += quieter[:need]
            else:
                out += bytes([ULAW_SILENCE]) * need
            self._concealing += 1
        return bytes(out)

    # -- RTCP --------------------------------------------------------------------------------

    def receive_rtcp(self, data: bytes, source: Address, now: float) -> None:
        if source[0] != self.remote[0]:
            self.stats.wrong_source += 1
            return
        try:
            reports = parse_rtcp(data, self.max_packet)
        except RtpError:
            self.stats.bad_packets += 1
            return
        self.remote_rtcp = source
        self.stats.rtcp_received += 1
        for report in reports:
            if isinstance(report, SenderReport):
                self._last_sr = ((report.ntp_time >> 16) & 0xFFFFFFFF, now)

    def rtcp_due(self, now: float, wall: float) -> bytes | None:
        """A sender report (with our reception report) every 5 s (RFC 3550 6.2, simplified)."""
        if now < self._next_rtcp:
            return None
        self._next_rtcp = now + RTCP_INTERVAL
        blocks: tuple[ReportBlock, ...] = ()
        if self._remote_ssrc is not None:
            stats = self.jitter.stats
            expected = stats.highest - stats.base_seq + 1
            lost = max(0, expected - stats.source_received)
            lsr, dlsr = 0, 0
            if self._last_sr is not None:
                lsr = self._last_sr[0]
                dlsr = int((now - self._last_sr[1]) * 65536)
            fraction = min(255, lost * 256 // expected) if expected > 0 else 0
            blocks = (
                ReportBlock(
                    self._remote_ssrc, fraction, lost, stats.highest, int(stats.jitter), lsr, dlsr
                ),
            )
        self.stats.rtcp_sent += 1
        if self.stats.packets_sent == 0:
            return bytes(ReceiverReport(self.ssrc, blocks))
        seconds = wall + NTP_EPOCH_OFFSET
        ntp = (int(seconds) << 32) | int((seconds % 1) * 2**32)
        return bytes(
            SenderReport(
                self.ssrc, ntp, self._ts, self.stats.packets_sent, self.stats.octets_sent, blocks
            )
        )

    # -- codec -------------------------------------------------------------------------------

    def _encode(self, ulaw: bytes) -> bytes:
        if self.params.codec == "PCMA":
            return alaw_encode(ulaw_decode(ulaw))
        return ulaw
