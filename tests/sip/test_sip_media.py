"""RTP media without sockets: pacing by pulled frames, latching, jitter, loss, PCMA."""

from __future__ import annotations

import random
from pathlib import Path

from gateway.audio.g711 import alaw_encode, ulaw_decode
from gateway.carriers.sip.jitter import JitterBuffer
from gateway.carriers.sip.media import RtpStream
from gateway.carriers.sip.rtp import RtpPacket
from gateway.carriers.sip.sdp import MediaParams

DATA = Path(__file__).parent / "data"
PEER = ("10.0.0.2", 4000)
PCMU = MediaParams("10.0.0.2", 4000, 0, "PCMU", 101, "sendrecv")
VOICE = bytes(range(0, 160))  # a distinct, non-silent mu-law frame


def stream(params: MediaParams = PCMU, **kw: object) -> RtpStream:
    return RtpStream(params, 0.0, rng=random.Random(1), **kw)  # type: ignore[arg-type]


class Source:
    """The session's side of the media clock: frames handed out as each slot is packed."""

    def __init__(self, *frames: bytes) -> None:
        self.frames = list(frames)
        self.pulled: list[float] = []

    def __call__(self, now: float) -> bytes | None:
        self.pulled.append(now)
        return self.frames.pop(0) if self.frames else None


def run_ticks(
    s: RtpStream, frames: int, start: float = 0.0, source: Source | None = None
) -> list[RtpPacket]:
    packets: list[RtpPacket] = []
    for k in range(frames):
        packets += [RtpPacket.parse(p) for p in s.tick(start + k * 0.02, source)]
    return packets


def test_stream_sends_one_packet_per_20ms_with_continuous_seq_and_ts() -> None:
    s = stream()
    packets = run_ticks(s, 10, source=Source(VOICE))
    assert len(packets) == 10
    seqs = [p.sequence for p in packets]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    assert all(b.timestamp - a.timestamp == 160 for a, b in zip(packets, packets[1:], strict=False))
    assert len({p.ssrc for p in packets}) == 1
    assert packets[0].payload == VOICE and packets[1].payload == b"\xff" * 160  # comfort silence


def test_stream_marker_on_first_packet_and_each_talk_spurt() -> None:
    s = stream()
    packets = run_ticks(s, 3)
    more = run_ticks(s, 4, 0.06, Source(VOICE, VOICE))
    assert [p.marker for p in packets + more] == [True, False, False, True, False, False, False]


def test_stream_pulls_one_frame_per_slot_as_it_packs_it() -> None:
    s = stream()
    source = Source(VOICE, VOICE, VOICE)
    assert len(s.tick(0.0, source)) == 1 and source.pulled == [0.0]
    assert s.tick(0.0, source) == [] and source.pulled == [0.0]  # sent: nothing more due
    s.tick(0.02, source)
    assert source.pulled == [0.0, 0.02] and len(source.frames) == 1


def test_stream_catches_up_after_a_stall_but_not_beyond_the_window() -> None:
    s = stream()
    s.tick(0.0)
    out = s.tick(0.065)  # three frames owed
    assert len(out) == 3
    out = s.tick(1.0)  # a long stall: at most five, the timestamp skips the rest
    packets = [RtpPacket.parse(p) for p in out]
    assert len(packets) == 5 and s.stats.skipped_frames > 0


def test_stream_pcma_encodes_and_decodes() -> None:
    s = stream(MediaParams("10.0.0.2", 4000, 8, "PCMA", None))
    (packet,) = s.tick(0.0, Source(VOICE))
    assert RtpPacket.parse(packet).payload == alaw_encode(ulaw_decode(VOICE))
    captured = (DATA / "rtp_pcma_30ms_first.bin").read_bytes()
    s.receive(captured, PEER, 0.0)
    ((ulaw, ts),) = s.audio_ready(1.0)
    assert len(ulaw) == 240 and ts == 0  # a 30 ms packet, converted to mu-law


def test_stream_latches_first_source_and_drops_strangers() -> None:
    s = stream()
    nat = ("192.0.2.7", 31000)
    s.receive(bytes(RtpPacket(0, 1, 160, 5, VOICE)), nat, 0.0)
    assert s.remote == nat  # symmetric RTP: replies go where packets come from
    s.receive(bytes(RtpPacket(0, 2, 320, 5, VOICE)), ("203.0.113.9", 4000), 0.01)
    assert s.stats.wrong_source == 1 and s.stats.packets_received == 1


def test_stream_counts_garbage_and_unknown_payload_types() -> None:
    s = stream()
    for name in ("rtp_truncated_csrc.bin", "rtp_version1.bin", "rtp_bad_padding.bin"):
        s.receive((DATA / name).read_bytes(), PEER, 0.0)
    s.receive(bytes(RtpPacket(13, 1, 0, 5, b"\x40")), PEER, 0.0)  # comfort noise
    assert s.stats.bad_packets == 3 and s.stats.unknown_payload == 1


def test_stream_dtmf_reported_once_despite_repeats_and_other_ssrc() -> None:
    s = stream(MediaParams("10.0.0.2", 4000, 8, "PCMA", 101))
    s.receive((DATA / "rtp_pcma_30ms_first.bin").read_bytes(), PEER, 0.0)
    s.receive((DATA / "rtp_dtmf_start.bin").read_bytes(), PEER, 0.01)
    for _ in range(3):
        s.receive((DATA / "rtp_dtmf_end.bin").read_bytes(), PEER, 0.02)
    assert s.dtmf_received() == ["1"]


def test_stream_on_hold_sends_nothing_but_keeps_the_clock() -> None:
    s = stream()
    before = run_ticks(s, 2)
    s.update(MediaParams("10.0.0.2", 4000, 0, "PCMU", 101, "recvonly"))
    source = Source(VOICE)
    packets = run_ticks(s, 3, 0.04, source)
    assert packets == [] and source.frames == []  # the call's audio runs on, unsent
    s.update(PCMU)
    (after,) = run_ticks(s, 1, 0.1)
    assert after.timestamp - before[-1].timestamp == 4 * 160
    assert after.sequence == (before[-1].sequence + 1) % 65536


def _feed(jb: JitterBuffer, order: list[int], arrival: float = 0.0, gap: float = 0.02) -> None:
    for i, seq in enumerate(order):
        jb.push(seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, bytes([seq % 256]) * 160,
                arrival + i * gap, ssrc=1)  # fmt: skip


def test_jitter_reorders_and_drops_duplicates_across_wraparound() -> None:
    jb = JitterBuffer(min_delay=0.06)
    start = 65534
    _feed(jb, [start, start + 2, start + 1, start + 1, start + 3], gap=0.005)
    frames = jb.pop(1.0)
    assert [f.payload[0] for f in frames if f.payload] == [
        s % 256 for s in range(start, start + 4)
    ]  # fmt: skip
    assert jb.stats.duplicates == 1 and jb.stats.reordered == 1
    assert [f.timestamp_ms for f in frames] == [0, 20, 40, 60]


def test_jitter_conceals_a_burst_of_loss_bounded_by_later_packets() -> None:
    jb = JitterBuffer()
    loss = {3, 4, 5, 9}  # deterministic loss pattern
    for seq in range(12):
        if seq not in loss:
            jb.push(seq, seq * 160, b"\x10" * 160, seq * 0.02, ssrc=1)
    frames = jb.pop(10.0)
    lost = [(f.timestamp_ms, f.samples) for f in frames if f.payload is None]
    assert lost == [(60, 480), (180, 160)]
    assert jb.stats.lost_packets == 4
    assert sum(f.samples for f in frames) == 12 * 160


def test_jitter_late_packet_raises_the_delay_and_is_dropped() -> None:
    jb = JitterBuffer(min_delay=0.02, max_delay=0.2)
    jb.push(0, 0, b"a" * 160, 0.0, ssrc=1)
    jb.push(2, 320, b"c" * 160, 0.04, ssrc=1)
    jb.pop(0.1)  # 1 is given up
    assert not jb.push(1, 160, b"b" * 160, 0.1, ssrc=1)
    assert jb.stats.late == 1 and jb.delay > 0.02


def test_jitter_holds_until_due_and_resets_on_new_ssrc_keeping_the_clock() -> None:
    jb = JitterBuffer(min_delay=0.04)
    jb.push(10, 1000, b"a" * 160, 0.0, ssrc=1)
    assert jb.pop(0.03) == [] and len(jb.pop(0.04)) == 1
    jb.push(500, 99999, b"b" * 160, 1.0, ssrc=2)  # a new source, a second later
    (frame,) = jb.pop(2.0)
    # The new source continues where the old one's audio ended (20 ms) plus the 0.96 s since.
    assert jb.stats.resets == 1 and frame.timestamp_ms == 980
