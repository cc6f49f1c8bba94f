"""Hostile SIP, without sockets: control bytes in header values are refused 400 (RFC 3261
25.1 allows no CTL but HTAB there), the parser fails only with its documented error on any
input (property-based fuzzing), and behind a registrar the dialled number comes from To."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.carriers.sip.errors import RemoteProtocolError
from gateway.carriers.sip.message import SipFramer, SipLimits, SipMessage, check_request
from gateway.carriers.sip.ua import IncomingCall
from tests.sip.uakit import A, B, agent

DATA = Path(__file__).parent / "data"
INVITE = (DATA / "invite_trunk.sip").read_bytes()
CONTROL = [bytes([c]) for c in [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F] if c != 0x0D]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _with_header(raw: bytes, line: bytes) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    return head + b"\r\n" + line + b"\r\n\r\n" + body


@pytest.mark.parametrize("control", [*CONTROL, b"\r"], ids=lambda c: f"0x{c[0]:02x}")
def test_parser_refuses_control_byte_in_header_value_with_400(control: bytes) -> None:
    raw = _with_header(INVITE, b"Subject: hello" + control + b"X-Forged: 1")
    with pytest.raises(RemoteProtocolError) as caught:
        SipMessage.parse(raw)
    assert caught.value.status == 400
    assert caught.value.partial is not None and caught.value.partial.method == "INVITE"


def test_parser_keeps_htab_inside_header_value() -> None:
    msg = SipMessage.parse(_with_header(INVITE, b"Subject: a\tb"))
    assert msg.get("Subject") == "a\tb"


@pytest.mark.parametrize("where", [b"From: ", b"Call-ID: ", b"To: "])
def test_uas_answers_400_to_invite_with_nul_in_a_header(where: bytes) -> None:
    raw = INVITE.replace(where, where + b"\x00", 1)
    assert raw != INVITE
    ua = agent(B)
    ua.receive(raw, A, 0.0)
    sent = [SipMessage.parse(data) for data, _ in ua.datagrams_to_send()]
    assert [m.status for m in sent] == [400]
    assert not [e for e in ua.events() if isinstance(e, IncomingCall)]
    assert ua.bad_messages == 1


def test_uas_takes_called_number_from_to_when_request_uri_is_our_contact() -> None:
    ua = agent(B, registrar="sip:registrar.example.com")
    raw = INVITE.replace(
        INVITE.split(b" ", 2)[1], b"sip:overtalk@10.0.0.2:5060", 1
    )  # the registrar retargeted the call to the contact we registered
    ua.receive(raw, A, 0.0)
    (call,) = [e for e in ua.events() if isinstance(e, IncomingCall)]
    assert call.called == SipMessage.parse(raw).to.uri.user
    assert call.called != "overtalk"


def test_uas_keeps_request_uri_number_from_a_trunk() -> None:
    ua = agent(B)
    msg = SipMessage.parse(INVITE)
    msg.set("To", "<sip:+15550000000@10.0.0.2>")  # a trunk may leave the first number in To
    ua.receive(msg.serialize(), A, 0.0)
    (call,) = [e for e in ua.events() if isinstance(e, IncomingCall)]
    assert call.called == SipMessage.parse(INVITE).uri.split(":")[1].split("@")[0]


def _accepted_only_clean(msg: SipMessage) -> None:
    for name, value in msg.headers:
        assert not any(ord(c) < 0x20 and c != "\t" or c == "\x7f" for c in value), name
    again = SipMessage.parse(msg.serialize())
    assert again.headers == [(n, v) for n, v in msg.headers if n != "Content-Length"] + (
        [("Content-Length", str(len(msg.body)))]
    )


@FUZZ
@given(st.binary(max_size=2048))
def test_parser_fuzz_raw_bytes_fail_only_with_remote_protocol_error(data: bytes) -> None:
    try:
        msg = SipMessage.parse(data, SipLimits(max_size=1500, max_headers=32, max_line=512))
        if msg.is_request:
            check_request(msg)
    except RemoteProtocolError as exc:
        assert exc.status in (None, 400, 505, 513)
        return
    _accepted_only_clean(msg)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(INVITE)), st.binary(min_size=1, max_size=8)),
        min_size=1,
        max_size=6,
    )
)
def test_parser_fuzz_mutated_invite_fails_only_with_remote_protocol_error(
    edits: list[tuple[int, bytes]],
) -> None:
    data = bytearray(INVITE)
    for at, chunk in edits:
        data[at : at + len(chunk)] = chunk
    ua = agent(B)
    ua.receive(bytes(data), A, 0.0)  # never raises: answered, dropped or taken
    for wire, _ in ua.datagrams_to_send():
        assert SipMessage.parse(wire).status in (100, 180, 400, 405, 415, 416, 420, 481, 482,
                                                 500, 501, 505)  # fmt: skip
    try:
        msg = SipMessage.parse(bytes(data))
        check_request(msg)
    except RemoteProtocolError:
        return
    _accepted_only_clean(msg)


@FUZZ
@given(st.lists(st.binary(max_size=600), max_size=8))
def test_framer_fuzz_stream_fails_only_with_remote_protocol_error(chunks: list[bytes]) -> None:
    framer = SipFramer(SipLimits(max_size=2000))
    try:
        for chunk in chunks:
            for message in framer.feed(chunk):
                assert len(message) <= 2000
    except RemoteProtocolError as exc:
        assert exc.status in (400, 513)
