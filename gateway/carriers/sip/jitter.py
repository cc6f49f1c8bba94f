"""A small adaptive jitter buffer for one inbound RTP stream, pure and with time passed in.

Packets go in with :meth:`JitterBuffer.push` (``now`` = arrival time) and come out in sequence
order with :meth:`JitterBuffer.pop` once their playout time has come: the arrival time of the
stream's anchor packet plus the media time since it plus the current delay. What it does:

- reorders by extended sequence number (16-bit wraparound handled), drops duplicates and
  packets arriving after their slot was played (``late``);
- reports a gap bounded by later packets as :class:`Frame` entries with ``payload=None`` (the
  receiver conceals them), but never invents audio past the last packet received: a sender
  that stops (silence suppression, hold) is not "lost";
- adapts: the delay starts at ``min_delay``; each late packet raises it by its lateness (up to
  ``max_delay``), and at each talk-spurt start (marker bit, buffer empty) it is re-aimed at
  three times the RFC 3550 6.4.1 interarrival jitter, which lets it come back down;
- resets on an SSRC change or a jump beyond ``max_dropout`` (RFC 3550 A.1), keeping the
  receive clock (:attr:`Frame.timestamp_ms`) continuous across the reset.

Model: aiortc ``jitterbuffer.py`` (sequence-indexed, wraparound-safe) and RFC 3550 A.1/A.8.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Frame", "JitterBuffer"]


@dataclass(frozen=True, slots=True)
class Frame:
    """Audio released for playout: ``samples`` long, starting at ``timestamp_ms`` on the
    call's receive clock; ``payload`` None marks lost audio to conceal."""

    timestamp_ms: int
    samples: int
    payload: bytes | None


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    lost_packets: int = 0
    reordered: int = 0
    resets: int = 0
    #: RFC 3550 interarrival jitter estimate, in timestamp units.
    jitter: float = 0.0
    #: Extended highest sequence number received.
    highest: int = 0
    #: First extended sequence number of the current source, and packets received from it
    #: (RTCP's cumulative loss is expected minus received, RFC 3550 A.3).
    base_seq: int = 0
    source_received: int = 0


class JitterBuffer:
    def __init__(
        self,
        *,
        clock_rate: int = 8000,
        min_delay: float = 0.020,
        max_delay: float = 0.200,
        capacity: int = 128,
        max_dropout: int = 3000,
    ) -> None:
        self.clock_rate = clock_rate
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.capacity = capacity
        self.max_dropout = max_dropout
        self.delay = min_delay
        self.stats = JitterStats()
        self._packets: dict[int, tuple[int, bytes]] = {}  # ext seq -> (ext ts, payload)
        self._ssrc: int | None = None
        self._next_seq = 0  # next extended sequence number to release
        self._next_ts = 0  # its expected extended timestamp
        self._anchor_ts = 0
        self._anchor_time = 0.0
        # Receive clock: media ms at _epoch_ts, and the end of what was released.
        self._epoch_ms = 0.0
        self._epoch_ts = 0
        self._released_end_ms = 0.0
        self._released_at = 0.0
        # RFC 3550 A.8 state.
        self._last_transit: float | None = None
        # Recently played sequence numbers: a copy of one is a duplicate, anything else that
        # arrives after its slot is late.
        self._played: deque[int] = deque(maxlen=128)
        self._released = False

    @property
    def started(self) -> bool:
        return self._ssrc is not None

    def __len__(self) -> int:
        return len(self._packets)

    def _unwrap(self, value: int, reference: int, bits: int) -> int:
        """The extended value nearest ``reference`` whose low ``bits`` are ``value``."""
        modulus = 1 << bits
        delta = (value - reference) % modulus
        if delta >= modulus // 2:
            delta -= modulus
        return reference + delta

    def push(
        self,
        sequence: int,
        timestamp: int,
        payload: bytes,
        now: float,
        *,
        ssrc: int,
        marker: bool = False,
    ) -> bool:
        """Take one packet; False when it was dropped (duplicate or late)."""
        stats = self.stats
        if self._ssrc != ssrc:
            self._reset(sequence, timestamp, ssrc, now)
        ext = self._unwrap(sequence, self._next_seq, 16)
        ts = self._unwrap(timestamp, self._next_ts, 32)
        if abs(ext - self._next_seq) > self.max_dropout:
            self._reset(sequence, timestamp, ssrc, now)  # the sender restarted: re-anchor
            ext, ts = self._next_seq, self._next_ts
        self._jitter(ts, now)
        if ext < self._next_seq and not self._released:
            # Nothing played yet: the stream simply starts earlier than its first arrival.
            self._next_seq, self._next_ts = ext, ts
        if ext < self._next_seq:
            if ext in self._played:
                stats.duplicates += 1  # a copy of a packet already played
            else:
                # It missed its slot: the delay is too short for this network.
                stats.late += 1
                lateness = now - self._due(ts)
                self.delay = min(self.max_delay, self.delay + max(0.010, lateness))
            return False
        if ext in self._packets:
            stats.duplicates += 1
            return False
        if marker and not self._packets and ext == self._next_seq:
            self._reanchor(ts, now)
        if ext < stats.highest:
            stats.reordered += 1
        stats.highest = max(stats.highest, ext)
        stats.received += 1
        stats.source_received += 1
        self._packets[ext] = (ts, payload)
        if len(self._packets) > self.capacity:
            self._skip_to(min(self._packets))
        return True

    def pop(self, now: float) -> list[Frame]:
        """Everything due for playout by ``now``, in order, lost spans marked."""
        out: list[Frame] = []
        packets = self._packets
        while packets:
            entry = packets.get(self._next_seq)
            if entry is None:
                first = min(packets)
                ts, _ = packets[first]
                if self._due(ts) > now:
                    break
                # Everything before the first packet present is lost: conceal the gap.
                gap = ts - self._next_ts
                if gap > 0:
                    out.append(Frame(self._ms(self._next_ts), gap, None))
                self._give_up(first)
                self._next_seq, self._next_ts = first, ts
                continue
            ts, payload = entry
            if self._due(ts) > now:
                break
            del packets[self._next_seq]
            self._played.append(self._next_seq)
            self._released = True
            out.append(Frame(self._ms(ts), len(payload), payload))
            self._next_seq += 1
            self._next_ts = ts + len(payload)
            self._released_end_ms = self._ms(self._next_ts)
            self._released_at = now
        return out

    # -- internals ---------------------------------------------------------------------------

    def _due(self, ts: int) -> float:
        return self._anchor_time + (ts - self._anchor_ts) / self.clock_rate + self.delay

    def _ms(self, ts: int) -> int:
        return round(self._epoch_ms + (ts - self._epoch_ts) * 1000 / self.clock_rate)

    def _reanchor(self, ts: int, now: float) -> None:
        target = 3 * self.stats.jitter / self.clock_rate
        self.delay = max(self.min_delay, min(self.max_delay, target))
        self._anchor_ts, self._anchor_time = ts, now

    def _reset(self, sequence: int, timestamp: int, ssrc: int, now: float) -> None:
        if self._ssrc is not None:
            self.stats.resets += 1
            # Keep the receive clock running through the switch: the new stream continues
            # where the old one's released audio ends, plus the wall time since then.
            self._epoch_ms = self._released_end_ms + max(0.0, now - self._released_at) * 1000
        # Reception statistics (RTCP) describe the current source.
        self.stats.base_seq = sequence
        self.stats.highest = sequence - 1
        self.stats.source_received = 0
        self._played.clear()
        self._released = False
        self._packets.clear()
        self._ssrc = ssrc
        self._next_seq, self._next_ts = sequence, timestamp
        self._epoch_ts = timestamp
        self._released_end_ms, self._released_at = self._epoch_ms, now
        self._last_transit = None
        self._anchor_ts, self._anchor_time = timestamp, now

    def _skip_to(self, ext: int) -> None:
        """Overflow: give up on everything before ``ext``."""
        ts, _ = self._packets[ext]
        self._give_up(ext)
        self._next_seq, self._next_ts = ext, ts

    def _give_up(self, until: int) -> None:
        """Packets from the next expected up to ``until`` are lost (unless they turn up late)."""
        self.stats.lost_packets += until - self._next_seq

    def _jitter(self, ts: int, now: float) -> None:
        transit = now * self.clock_rate - ts
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            self.stats.jitter += (d - self.stats.jitter) / 16
        self._last_transit = transit
