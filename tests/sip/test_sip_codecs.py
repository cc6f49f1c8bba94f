"""Wire codecs without sockets: vector tables drive both parse and serialize, captured packets
are files, and fuzzed input may only raise the documented errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gateway.carriers.sip.digest import Challenge, Credentials, authorization
from gateway.carriers.sip.errors import RemoteProtocolError
from gateway.carriers.sip.headers import Address, CSeq, Uri, Via
from gateway.carriers.sip.message import SipFramer, SipLimits, SipMessage
from gateway.carriers.sip.rtp import (
    ReceiverReport,
    ReportBlock,
    RtcpBye,
    RtpError,
    RtpPacket,
    SenderReport,
    TelephoneEvent,
    parse_rtcp,
)
from gateway.carriers.sip.sdp import NoCommonCodec, SessionDescription, accept_answer, answer, offer

DATA = Path(__file__).parent / "data"

# (wire form in canonical spelling, method/status, a header to check)
MESSAGES = [
    (
        b"OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK1;rport\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: c1\r\n"
        b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        "OPTIONS",
        ("Call-ID", "c1"),
    ),
    (
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\n"
        b"To: <sip:b@h>;tag=2\r\nCall-ID: c2\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n",
        180,
        ("CSeq", "7 INVITE"),
    ),
    (
        b"BYE sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKy\r\nFrom: <sip:a@h>;tag=1\r\n"
        b"To: <sip:b@h>;tag=2\r\nCall-ID: c3\r\nCSeq: 2 BYE\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 5\r\n\r\nhello",
        "BYE",
        ("Content-Type", "text/plain"),
    ),
]


@pytest.mark.parametrize(("wire", "kind", "header"), MESSAGES)
def test_message_parse_vectors(wire: bytes, kind: object, header: tuple[str, str]) -> None:
    msg = SipMessage.parse(wire)
    assert (msg.method if isinstance(kind, str) else msg.status) == kind
    assert msg.get(header[0]) == header[1]


@pytest.mark.parametrize(("wire", "kind", "header"), MESSAGES)
def test_message_serialize_vectors(wire: bytes, kind: object, header: object) -> None:
    assert SipMessage.parse(wire).serialize() == wire


def test_message_parse_compact_folded_and_lf_only() -> None:
    raw = (
        b"INVITE sip:b@h SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bK1\nf: <sip:a@h>;tag=1\n"
        b"t: <sip:b@h>\ni: abc\nSubject: one\n two\nCSeq: 1 INVITE\nl: 0\n\n"
    )
    msg = SipMessage.parse(raw)
    assert msg.get("Via") == "SIP/2.0/UDP h;branch=z9hG4bK1"
    assert msg.call_id == "abc"
    assert msg.get("subject") == "one two"


def test_message_parse_multi_value_via() -> None:
    msg = SipMessage.parse(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n"
        b'Contact: "A, B" <sip:x@y>, <sip:z@w>\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n'
    )
    assert [Via.parse(v).host for v in msg.get_all("Via")] == ["a", "b"]
    assert len(msg.get_all("Contact")) == 2


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"\x00\xff garbage", None),
        (b"INVITE sip:x SIP/2.0\r\nBad Header Line\r\n\r\n", 400),
        (b"INVITE sip:x SIP/2.0\r\nContent-Length: 99\r\n\r\nshort", 400),
        (b"INVITE sip:x SIP/2.0\r\nContent-Length: x\r\n\r\n", 400),
        (b"SIP/2.0 99 Odd\r\n\r\n", None),
        (b"SIP/2.0 200 OK\r\nBad Header\r\n\r\n", None),  # a bad response is dropped
        (b"", None),
    ],
)
def test_message_parse_garbled(raw: bytes, status: int | None) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        SipMessage.parse(raw)
    assert info.value.status == status


def test_message_parse_limits_are_arguments() -> None:
    limits = SipLimits(max_size=200, max_headers=3)
    with pytest.raises(RemoteProtocolError) as big:
        SipMessage.parse(b"OPTIONS sip:x SIP/2.0\r\n" + b"X: y\r\n" * 40 + b"\r\n", limits)
    assert big.value.status == 513
    with pytest.raises(RemoteProtocolError) as many:
        SipMessage.parse(b"OPTIONS sip:x SIP/2.0\r\n" + b"X: y\r\n" * 4 + b"\r\n", limits)
    assert many.value.status == 400


def test_message_parse_captured_invite_file() -> None:
    msg = SipMessage.parse((DATA / "invite_trunk.sip").read_bytes())
    assert msg.method == "INVITE" and msg.cseq == CSeq(314159, "INVITE")
    assert msg.via.branch == "z9hG4bK776asdhds" and "rport" in msg.via.params
    assert SessionDescription.parse(msg.body).media[0].formats == ["0", "8", "18", "101"]
    with pytest.raises(RemoteProtocolError) as info:
        SipMessage.parse((DATA / "invite_truncated.sip").read_bytes())
    assert info.value.status == 400 and info.value.partial is not None


def test_framer_splits_stream_and_counts_pings() -> None:
    one, two = MESSAGES[2][0], MESSAGES[0][0]
    framer = SipFramer()
    stream = b"\r\n\r\n" + one + two
    out: list[bytes] = []
    for i in range(0, len(stream), 7):  # arbitrary chunking
        out += framer.feed(stream[i : i + 7])
    assert out == [one, two]
    assert framer.pings == 1


def test_framer_rejects_stream_without_content_length() -> None:
    with pytest.raises(RemoteProtocolError):
        SipFramer().feed(b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n")


def test_message_parse_fuzz_raises_only_remote_errors() -> None:
    rng = random.Random(7)
    seeds = [m[0] for m in MESSAGES] + [(DATA / "invite_trunk.sip").read_bytes()]
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        try:
            msg = SipMessage.parse(bytes(data))
            for name in ("Via", "From", "To", "CSeq"):
                if msg.get(name):
                    _ = (msg.via, msg.from_, msg.to, msg.cseq)
        except RemoteProtocolError:
            pass


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice:pw@example.com:5080;transport=tcp;lr?subject=x",
        "sips:[2001:db8::1]:5061",
        "tel:+15551230000;phone-context=example.com",
        "sip:+15551230000@203.0.113.10",
    ],
)
def test_uri_round_trip(text: str) -> None:
    assert str(Uri.parse(text)) == text


def test_address_forms() -> None:
    named = Address.parse('"Bot, Inc" <sip:bot@h:5060;transport=tcp>;tag=abc')
    assert named.tag == "abc" and named.uri.transport == "tcp" and named.display == '"Bot, Inc"'
    bare = Address.parse("sip:a@h;tag=9")  # the tag belongs to the header, not the URI
    assert bare.tag == "9" and bare.uri.params == {}
    with pytest.raises(RemoteProtocolError) as info:
        Address.parse("<mailto:a@h>")
    assert info.value.status == 416


# -- digest ------------------------------------------------------------------------------------


def test_digest_rfc2617_vector() -> None:
    challenge = Challenge.parse(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = authorization(
        challenge,
        Credentials("Mufasa", "Circle Of Life"),
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
        nonce_count=1,
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert "qop=auth" in value and "nc=00000001" in value


# -- SDP ---------------------------------------------------------------------------------------

SIPP_PCAP_OFFER = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n"
)


def test_sdp_answer_pcma_only_offer_and_event_type_reused() -> None:
    ours, params = answer(
        SessionDescription.parse(SIPP_PCAP_OFFER), host="10.0.0.1", port=4000,
        session_id=1, version=1,
    )  # fmt: skip
    assert params.codec == "PCMA" and params.payload_type == 8
    assert params.dtmf_payload_type == 101
    assert ours.media[0].formats == ["8", "101"] and ours.media[0].port == 4000
    assert str(SessionDescription.parse(str(ours))) == str(ours)


def test_sdp_answer_reuses_odd_event_type_and_keeps_m_lines() -> None:
    text = SIPP_PCAP_OFFER.replace("101", "96") + "m=video 5000 RTP/AVP 31\r\n"
    ours, params = answer(SessionDescription.parse(text), host="h", port=1, session_id=1, version=1)
    assert params.dtmf_payload_type == 96
    assert [m.port for m in ours.media] == [1, 0]


def test_sdp_answer_no_common_codec_is_488() -> None:
    text = SIPP_PCAP_OFFER.replace("RTP/AVP 8 101", "RTP/AVP 18").replace(
        "a=rtpmap:8 PCMA/8000", "a=rtpmap:18 G729/8000"
    )
    with pytest.raises(NoCommonCodec) as info:
        answer(SessionDescription.parse(text), host="h", port=1, session_id=1, version=1)
    assert info.value.status == 488


@pytest.mark.parametrize(
    ("offered", "ours", "sending"),
    [
        ("sendonly", "recvonly", False),
        ("inactive", "inactive", False),
        ("sendrecv", "sendrecv", True),
    ],
)
def test_sdp_answer_direction_complement(offered: str, ours: str, sending: bool) -> None:
    _, params = answer(
        SessionDescription.parse(SIPP_PCAP_OFFER + f"a={offered}\r\n"),
        host="h", port=1, session_id=1, version=1,
    )  # fmt: skip
    assert params.direction == ours and params.sending is sending


def test_sdp_offer_and_answer_accepted() -> None:
    ours = offer(host="127.0.0.1", port=4000, session_id=5, version=1)
    theirs, _ = answer(ours, host="127.0.0.2", port=5000, session_id=6, version=1)
    params = accept_answer(theirs)
    assert (params.remote_host, params.remote_port, params.codec) == ("127.0.0.2", 5000, "PCMU")


def test_sdp_parse_garbage() -> None:
    for text in ("hello", "v=1\r\n", "v=0\r\nm=audio x RTP/AVP 0\r\n"):
        with pytest.raises(RemoteProtocolError):
            SessionDescription.parse(text)


# -- RTP / RTCP --------------------------------------------------------------------------------

RTP_VECTORS = [
    (bytes.fromhex("80000001000000a0deadbeef") + b"\xff" * 160, 0, 1, 160, False),
    (bytes.fromhex("80880002000001400badf00d") + b"\xd5" * 160, 8, 2, 320, True),
]


@pytest.mark.parametrize(("wire", "pt", "seq", "ts", "marker"), RTP_VECTORS)
def test_rtp_parse_and_bytes_vectors(wire: bytes, pt: int, seq: int, ts: int, marker: bool) -> None:
    packet = RtpPacket.parse(wire)
    assert (packet.payload_type, packet.sequence, packet.timestamp, packet.marker) == (
        pt, seq, ts, marker,
    )  # fmt: skip
    assert bytes(packet) == wire


def test_rtp_csrc_extension_padding_round_trip() -> None:
    packet = RtpPacket(
        0, 65535, 2**32 - 1, 7, b"abc", True, (1, 2), (0xBEDE, b"\x01\x02\x03\x04"), 4
    )
    assert RtpPacket.parse(bytes(packet)) == packet


def test_rtp_parse_captured_sipp_packets() -> None:
    audio = RtpPacket.parse((DATA / "rtp_pcma_30ms_first.bin").read_bytes())
    assert audio.payload_type == 8 and len(audio.payload) == 240 and audio.marker
    start = RtpPacket.parse((DATA / "rtp_dtmf_start.bin").read_bytes())
    end = RtpPacket.parse((DATA / "rtp_dtmf_end.bin").read_bytes())
    assert start.payload_type == 101 and start.marker and start.ssrc != audio.ssrc
    assert start.timestamp == end.timestamp
    event = TelephoneEvent.parse(end.payload)
    assert event.digit == "1" and event.end
    assert bytes(event) == end.payload


@pytest.mark.parametrize(
    "name", ["rtp_truncated_csrc.bin", "rtp_version1.bin", "rtp_bad_padding.bin"]
)
def test_rtp_parse_captured_invalid_packets(name: str) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse((DATA / name).read_bytes())


def test_rtp_parse_size_limit_is_an_argument() -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(bytes(RtpPacket(0, 1, 1, 1, b"\xff" * 400)), max_size=300)


def test_rtcp_compound_round_trip() -> None:
    block = ReportBlock(9, 12, -3, 70000, 44, 5, 6)
    sr = SenderReport(1, 2**63 + 5, 160, 10, 1600, (block,))
    rr = ReceiverReport(2, (block,))
    assert parse_rtcp(bytes(sr) + bytes(rr) + bytes(RtcpBye((1,)))) == [sr, rr, RtcpBye((1,))]
    with pytest.raises(RtpError):
        parse_rtcp(bytes(sr)[:-3])


def test_rtp_fuzz_raises_only_rtp_errors() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        for parse in (RtpPacket.parse, parse_rtcp):
            try:
                parse(data)
            except RtpError:
                pass
