"""The shared media-stream plumbing's pure parts: wire codecs, the pacing clock's echoes,
the bounds."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audio.g711 import alaw_encode, ulaw_decode, ulaw_encode
from gateway.streams.codec import Encoding, WireCodec, WireFormat
from gateway.streams.events import RatePolicer, RemoteProtocolError, bounded_parameters
from gateway.streams.heard import PacedEchoes


def tone_ulaw(ms: int, freq: float = 440.0) -> bytes:
    t = np.arange(ms * 8) / 8000
    return ulaw_encode((np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes())


@given(st.binary(max_size=400))
def test_codec_ulaw_and_alaw_round_trip_through_core(frame: bytes) -> None:
    ulaw = WireCodec(WireFormat(Encoding.ULAW))
    assert ulaw.to_core(frame) == frame and ulaw.from_core(frame) == frame
    alaw = WireCodec(WireFormat(Encoding.ALAW))
    # Through A-law and back, each sample stays within one A-law step (1/16 of its size).
    before = np.frombuffer(ulaw_decode(frame), dtype="<i2").astype(int)
    after = np.frombuffer(ulaw_decode(alaw.to_core(alaw.from_core(frame))), dtype="<i2")
    assert np.all(np.abs(after - before) <= np.abs(before) // 16 + 16)


def test_codec_alaw_matches_the_reference_encoder() -> None:
    frame = tone_ulaw(20)
    assert WireCodec(WireFormat(Encoding.ALAW)).from_core(frame) == alaw_encode(ulaw_decode(frame))


@pytest.mark.parametrize("big_endian", [False, True])
def test_codec_l16_8k_byte_order(big_endian: bool) -> None:
    codec = WireCodec(WireFormat(Encoding.L16, 8000, big_endian))
    frame = tone_ulaw(20)
    wire = codec.from_core(frame)
    assert len(wire) == 320
    pcm = np.frombuffer(wire, dtype=">i2" if big_endian else "<i2")
    assert np.array_equal(pcm, np.frombuffer(ulaw_decode(frame), dtype="<i2"))
    assert codec.to_core(wire) == frame


def test_codec_l16_16k_resamples_both_ways_and_keeps_the_tone() -> None:
    codec = WireCodec(WireFormat(Encoding.L16, 16000))
    frames = [codec.from_core(tone_ulaw(20)) for _ in range(10)]
    assert all(len(f) == 640 for f in frames)  # whole 20 ms frames of 16 kHz int16, from the first
    codec.cleared()
    assert len(codec.from_core(tone_ulaw(20))) == 640  # and again after a clear
    back = b"".join(codec.to_core(f) for f in frames)
    pcm = np.frombuffer(ulaw_decode(back[800:]), dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.argmax(spectrum) * 8000 / len(pcm) - 440) < 20


def test_codec_odd_l16_payload_drops_the_half_sample() -> None:
    codec = WireCodec(WireFormat(Encoding.L16, 8000))
    assert len(codec.to_core(b"\x00" * 321)) == 160


def test_wire_format_refuses_rates_the_carriers_do_not_send() -> None:
    with pytest.raises(ValueError):
        WireFormat(Encoding.ULAW, 16000)
    with pytest.raises(ValueError):
        WireFormat(Encoding.L16, 44100)
    assert WireFormat(Encoding.L16, 16000, True).bytes_per_20ms == 640


def test_paced_echoes_release_marks_when_real_time_playback_reaches_them() -> None:
    echoes = PacedEchoes()
    for k in range(5):  # five frames written at once at t=10, a mark after the second
        echoes.sent_audio(0.02, 10.0)
        if k == 1:
            echoes.sent_mark("m1", 10.0)
    echoes.sent_mark("m2", 10.0)
    assert echoes.next_due() == pytest.approx(10.04)
    assert echoes.due(10.039) == []
    assert echoes.due(10.04) == ["m1"]
    assert echoes.next_due() == pytest.approx(10.10)
    assert echoes.due(11.0) == ["m2"]
    assert echoes.next_due() is None


def test_paced_echoes_restart_after_the_player_ran_dry_and_drop_on_clear() -> None:
    echoes = PacedEchoes()
    echoes.sent_audio(0.02, 0.0)
    echoes.sent_audio(0.02, 5.0)  # dry since 0.02: this frame plays from 5.0
    echoes.sent_mark("a", 5.0)
    assert echoes.next_due() == pytest.approx(5.02)
    echoes.cleared()
    assert echoes.next_due() is None and echoes.due(9.0) == []
    echoes.sent_mark("b", 6.0)  # nothing queued: reached at once
    assert echoes.due(6.0) == ["b"]


def test_rate_policer_allows_a_burst_then_refuses_a_flood() -> None:
    policer = RatePolicer(max_rate=50, burst=10)
    for _ in range(10):
        policer.take(0.0)
    with pytest.raises(RemoteProtocolError) as caught:
        policer.take(0.0)
    assert caught.value.kind == "flood"
    policer = RatePolicer(max_rate=50, burst=10)
    for k in range(500):  # 50 a second for 10 s: fine
        policer.take(k * 0.02)


@given(
    st.one_of(
        st.none(), st.integers(), st.dictionaries(st.text(), st.one_of(st.text(), st.integers()))
    )
)
def test_bounded_parameters_keeps_only_short_string_pairs(raw: object) -> None:
    kept, dropped = bounded_parameters(raw, max_items=8, max_chars=20)
    assert len(kept) <= 8
    assert all(isinstance(v, str) and len(k) + len(v) <= 20 for k, v in kept.items())
    if isinstance(raw, dict) and len(kept) < len(raw):
        assert dropped


class _QuietStream:
    """A carrier core that echoes no marks: the transport must estimate them."""

    exact_heard = False
    streaming = True

    def __init__(self) -> None:
        self.out: list[str] = []

    def send_audio(self, ulaw: bytes) -> None:
        self.out.append("media")

    def send_mark(self, name: str) -> None:
        self.out.append("mark " + name)

    def send_clear(self) -> None:
        self.out[:] = ["clear"]

    def next_message(self) -> str | None:
        return self.out.pop(0) if self.out else None

    def is_clear(self, message: str | bytes) -> bool:
        return message == "clear"


class _Socket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)


class _Runner:
    def __init__(self) -> None:
        self.marks: list[str] = []
        self.got = asyncio.Event()

    def receive_mark(self, name: str) -> None:
        self.marks.append(name)
        self.got.set()

    def clear_written(self) -> None:
        pass


async def test_transport_estimates_mark_echoes_for_a_carrier_that_sends_none() -> None:
    from gateway.streams.serve import StreamTransport

    stream, ws, runner = _QuietStream(), _Socket(), _Runner()
    transport = StreamTransport(stream, ws)  # type: ignore[arg-type]
    transport.runner = runner  # type: ignore[assignment]
    writer = asyncio.create_task(transport.run_writer())
    for k in range(3):
        transport.send_frame(b"\xff" * 160)
        transport.send_mark(f"0:{(k + 1) * 20}")
    transport.flush()
    async with asyncio.timeout(5):
        while len(runner.marks) < 3:
            runner.got.clear()
            await runner.got.wait()
    assert runner.marks == ["0:20", "0:40", "0:60"]  # in order, each once its audio played
    assert ws.sent[:2] == ["media", "mark 0:20"]
    # A clear drops what the player holds: the marks in it are never echoed.
    transport.send_frame(b"\xff" * 160)
    transport.send_mark("1:80")
    transport.send_clear()
    assert transport.echoes is not None and transport.echoes.next_due() is None
    writer.cancel()
    transport.stop_echoes()
