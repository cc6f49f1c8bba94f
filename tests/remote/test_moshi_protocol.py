"""Ogg framing and the Moshi protocol object alone (no sockets); Opus by libopus via PyAV, and
Kyutai's ``sphn`` as the independent peer for the Ogg-Opus stream."""

from __future__ import annotations

import numpy as np
import pytest
import sphn

from engine.base import Audio, Transcript
from engine.remote.moshi_protocol import MoshiProtocol
from engine.remote.ogg import CONTINUED, FIRST, OggPage, OggReader, OggWriter, crc32
from engine.remote.opus import OpusDecoder, OpusEncoder

TONE = (3000 * np.sin(np.arange(1920 * 10) / 24000 * 2 * np.pi * 440)).astype("<i2").tobytes()


class Codec:
    def encoder(self) -> OpusEncoder:
        return OpusEncoder()

    def decoder(self) -> OpusDecoder:
        return OpusDecoder()


def test_crc_is_ogg_s_unreflected_crc32():
    assert crc32(b"") == 0
    assert crc32(b"123456789") == 0x89A1897F  # CRC-32/MPEG-2 without the final xor: Ogg's


def test_page_parse_and_serialize_are_inverse():
    page = OggPage(FIRST, 1234, 42, 7, bytes([255, 10]), b"x" * 265)
    data = bytes(page)
    assert OggPage.parse(data) == (page, len(data))
    assert OggPage.parse(data[:-1]) is None  # incomplete: wait for more


def test_reader_reassembles_packets_across_pages_and_arbitrary_slices():
    writer = OggWriter(9)
    big = bytes(range(256)) * 3  # 768 bytes
    pages = writer.page(b"head", 0, first=True) + writer.page(big, 960)
    # A packet continued onto a second page, as a foreign muxer may write it.
    first = OggPage(0, -1, 9, 2, bytes([255]), b"a" * 255)
    second = OggPage(CONTINUED, 1920, 9, 3, bytes([5]), b"bbbbb")
    data = pages + bytes(first) + bytes(second)
    reader = OggReader()
    packets = []
    for i in range(0, len(data), 7):
        packets += reader.feed(data[i : i + 7])
    assert packets == [b"head", big, b"a" * 255 + b"bbbbb"]
    assert reader.violations == 0


def test_reader_drops_garbage_and_corrupt_pages_and_resynchronises():
    writer = OggWriter(1)
    good1, bad, good2 = (writer.page(p, 0) for p in (b"one", b"two", b"three"))
    bad = bad[:-1] + bytes([bad[-1] ^ 0xFF])
    reader = OggReader()
    assert reader.feed(b"junk" + good1 + bad + good2) == [b"one", b"three"]
    assert reader.violations == 2


def test_kyutai_sphn_reads_our_stream_and_we_read_its():
    protocol = MoshiProtocol(Codec(), serial=lambda: 77)
    protocol.connection_made()
    protocol.receive(b"\x00", 0.0)
    assert protocol.append(TONE[: 3840 * 4])
    protocol.encode_ready()
    reader = sphn.OpusStreamReader(24000)
    decoded = np.concatenate([reader.append_bytes(m[1:]) for m in protocol.outbox])
    assert all(m[0] == 1 for m in protocol.outbox)
    assert len(decoded) == 1920 * 4 and np.abs(decoded[1920:]).max() > 0.05

    writer = sphn.OpusStreamWriter(24000)
    pcm = (0.2 * np.sin(np.arange(1920 * 3) / 24000 * 2 * np.pi * 440)).astype(np.float32)
    stream = b"".join(bytes(writer.append_pcm(pcm[i : i + 1920])) for i in range(0, 5760, 1920))
    events = protocol.receive(b"\x01" + stream, 0.1)
    audio = b"".join(e.pcm for e in events if isinstance(e, Audio))
    assert len(audio) // 2 == pytest.approx(5760, abs=40) and protocol.violations == 0


def test_words_become_one_transcript_after_a_second_of_audio_without_words():
    protocol = MoshiProtocol(Codec(), serial=lambda: 1)
    protocol.connection_made()
    protocol.receive(b"\x00", 0.0)
    protocol.receive(b"\x02 Hello", 0.0)
    protocol.receive(b"\x02 there", 0.0)
    writer = sphn.OpusStreamWriter(24000)
    silence = np.zeros(1920, np.float32)
    events = []
    for _ in range(14):  # 14 x 80 ms
        events += protocol.receive(b"\x01" + bytes(writer.append_pcm(silence)), 0.0)
    assert [e for e in events if isinstance(e, Transcript)] == [Transcript("bot", "Hello there")]


def test_handshake_first_then_kinds_errors_and_garbage():
    protocol = MoshiProtocol(Codec(), serial=lambda: 1)
    protocol.connection_made()
    assert not protocol.append(TONE[:3840])  # no handshake yet: buffered, nothing to write
    protocol.receive(b"\x00\x00\x00", 0.0)  # version and model bytes are optional
    assert protocol.ready
    assert protocol.receive(b"\x06", 0.0) == [] and protocol.violations == 0
    protocol.receive("text frame", 0.0)
    assert protocol.violations == 1
    protocol.receive(b"\x05no free slot", 0.0)
    assert protocol.fatal is not None and "no free slot" in str(protocol.fatal)


def test_server_kind_7_and_unknown_kinds_are_dropped_quietly():
    # rust/protocol.md: "Messages with an unknown message type should be discarded."
    protocol = MoshiProtocol(Codec(), serial=lambda: 1)
    protocol.connection_made()
    protocol.receive(b"\x00", 0.0)
    for message in (b"\x07\x01coloured words", b"\x09?", b"\xff", b"\x04{}", b"\x03\x01"):
        assert protocol.receive(message, 0.0) == []
    assert protocol.violations == 0 and protocol.fatal is None
    assert protocol.ignored == 5
