"""RFC 4733 DTMF out, without sockets: the packet sequence a peer receives for a DTMF string."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.carriers.sip.media import (
    DTMF_FRAMES,
    END_REPEATS,
    MAX_DTMF_QUEUE,
    PAUSE_FRAMES,
    RtpStream,
)
from gateway.carriers.sip.rtp import RtpPacket, TelephoneEvent
from gateway.carriers.sip.sdp import MediaParams

PCMU = MediaParams("10.0.0.2", 4000, 0, "PCMU", 101, "sendrecv")
VOICE = bytes(range(0, 160))


def stream(params: MediaParams = PCMU) -> RtpStream:
    return RtpStream(params, 0.0, rng=random.Random(7))


def slots(s: RtpStream, n: int, source=None) -> list[RtpPacket]:
    out: list[RtpPacket] = []
    for k in range(n):
        out += [RtpPacket.parse(p) for p in s.tick(k * 0.02, source)]
    return out


def events(packets: list[RtpPacket]) -> list[tuple[RtpPacket, TelephoneEvent]]:
    return [(p, TelephoneEvent.parse(p.payload)) for p in packets if p.payload_type == 101]


def test_stream_sends_one_key_as_rfc4733_packets() -> None:
    s = stream()
    assert s.send_dtmf("5")
    packets = slots(s, 10)
    sent = events(packets)
    # RFC 4733 2.5.1: 100 ms of event in 20 ms packets, then the end packet three times.
    assert len(sent) == DTMF_FRAMES + END_REPEATS - 1
    assert [e.digit for _, e in sent] == ["5"] * 7
    assert [e.end for _, e in sent] == [False] * 4 + [True] * 3
    assert [e.duration for _, e in sent] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.marker for p, _ in sent] == [True] + [False] * 6  # 2.5.1.1: marker starts it
    assert len({p.timestamp for p, _ in sent}) == 1  # 2.5.1.2: the event's start time
    seqs = [p.sequence for p in packets]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    # The event starts on the slot's own timestamp: the audio clock continues through it.
    assert sent[0][0].timestamp == packets[0].timestamp
    assert packets[7].timestamp - packets[0].timestamp == 7 * 160


def test_stream_spaces_keys_100_ms_and_a_w_pauses_500_ms() -> None:
    s = stream()
    assert s.send_dtmf("12w3")
    sent = events(slots(s, 60))
    starts = [p.timestamp for p, e in sent if p.marker]
    assert [e.digit for p, e in sent if p.marker] == ["1", "2", "3"]
    # key to key: 100 ms of tone, two end repeats, 100 ms after the tone ends.
    assert starts[1] - starts[0] == 10 * 160
    assert starts[2] - starts[1] == (10 + PAUSE_FRAMES) * 160


def test_stream_holds_the_bots_audio_while_an_event_is_sent() -> None:
    s = stream()
    frames = [bytes([i]) * 160 for i in range(1, 4)]
    pulled: list[bytes] = []

    def source(now: float) -> bytes | None:
        if frames:
            pulled.append(frames.pop(0))
            return pulled[-1]
        return None

    s.send_dtmf("9")
    packets = slots(s, 12, source)
    audio = [p.payload for p in packets if p.payload_type == 0]
    # Nothing of the bot's was taken during the event: every frame comes after it, in order.
    assert audio[:3] == [bytes([i]) * 160 for i in range(1, 4)]
    assert [p.payload_type for p in packets[:7]] == [101] * 7
    assert packets[7].marker  # the talk spurt after the event


def test_stream_without_telephone_event_refuses_and_sends_nothing() -> None:
    s = stream(MediaParams("10.0.0.2", 4000, 0, "PCMU", None))
    assert not s.send_dtmf("1")
    assert events(slots(s, 10)) == []


def test_stream_rejects_what_is_not_dtmf_and_bounds_the_queue() -> None:
    s = stream()
    with pytest.raises(ValueError, match="not DTMF"):
        s.send_dtmf("1x")
    assert s.send_dtmf("1" * MAX_DTMF_QUEUE)
    with pytest.raises(ValueError, match="queued"):
        s.send_dtmf("2")


def test_stream_drops_queued_dtmf_when_a_re_offer_removes_telephone_event() -> None:
    s = stream()
    s.send_dtmf("123")
    slots(s, 3)  # the first key under way
    s.update(MediaParams("10.0.0.2", 4000, 0, "PCMU", None))
    packets = slots(s, 30)
    assert all(p.payload_type == 0 for p in packets)


@given(st.text(alphabet="0123456789*#ABCDw", min_size=1, max_size=12))
def test_stream_any_dtmf_string_goes_out_key_for_key(digits: str) -> None:
    s = stream()
    assert s.send_dtmf(digits)
    keys = [d for d in digits.upper() if d != "W"]
    n = 10 * len(digits) + PAUSE_FRAMES * digits.lower().count("w") + 10
    sent = events(slots(s, n))
    assert [e.digit for p, e in sent if p.marker] == keys
    assert sum(1 for _, e in sent if e.end) == END_REPEATS * len(keys)
