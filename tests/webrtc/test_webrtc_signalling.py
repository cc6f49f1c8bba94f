"""The browser phone's wire formats: the offer, the page's data-channel messages and the events
sent back. Vector tables drive the parse tests; hypothesis fuzzes both parsers, which may only
raise the documented RemoteProtocolError (offer) or return an event (data channel)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.carriers.webrtc.errors import RemoteProtocolError
from gateway.carriers.webrtc.signalling import (
    MAX_MESSAGE_BYTES,
    Dtmf,
    HangupRequested,
    Ignored,
    Offer,
    PageChannel,
    ended_message,
    parse_offer,
    state_message,
    transcript_message,
)

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


def body(**fields: object) -> bytes:
    return json.dumps({"type": "offer", "sdp": SDP, **fields}).encode()


GOOD = [
    (body(), Offer(SDP, "")),
    (body(route="everyone"), Offer(SDP, "everyone")),
    (body(route=None), Offer(SDP, "")),
    (body(route="sales.eu_2-b"), Offer(SDP, "sales.eu_2-b")),
]

BAD = [
    (b"not json", 400, "not JSON"),
    (b"[1, 2]", 400, "not a JSON object"),
    (json.dumps({"sdp": SDP}).encode(), 400, '"type": "offer"'),
    (json.dumps({"type": "answer", "sdp": SDP}).encode(), 400, '"type": "offer"'),
    (body(sdp=5), 400, "no SDP"),
    (body(sdp="m=audio 9"), 400, "no SDP"),
    (body(sdp="v=0\r\nm=video 9 RTP/AVP 96\r\n"), 400, "no audio"),
    (body(sdp=SDP + "\x00"), 400, "no audio"),
    (body(route="../etc"), 400, "route"),
    (body(route="a" * 65), 400, "route"),
    (body(route=7), 400, "route"),
    (body(route="x\nforged log line"), 400, "route"),
]


@pytest.mark.parametrize(("data", "expected"), GOOD)
def test_server_parse_offer_accepts(data: bytes, expected: Offer) -> None:
    assert parse_offer(data, max_bytes=65536) == expected


@pytest.mark.parametrize(("data", "status", "fragment"), BAD)
def test_server_parse_offer_refuses(data: bytes, status: int, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_offer(data, max_bytes=65536)
    assert caught.value.status == status
    assert fragment in caught.value.reason


def test_server_parse_offer_refuses_oversized_with_413() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_offer(body(pad="x" * 2000), max_bytes=1024)
    assert caught.value.status == 413


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_server_parse_offer_fuzz_bytes_only_documented_errors(data: bytes) -> None:
    try:
        offer = parse_offer(data, max_bytes=1024)
    except RemoteProtocolError as exc:
        assert exc.status in (400, 413)
    else:
        assert offer.sdp.startswith("v=0")


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["offer", "answer"]) | JSONISH,
            "sdp": st.sampled_from([SDP, "v=0\r\n"]) | JSONISH,
            "route": JSONISH,
        },
    )
)
def test_server_parse_offer_fuzz_structure(message: dict[str, object]) -> None:
    try:
        offer = parse_offer(json.dumps(message).encode(), max_bytes=65536)
    except RemoteProtocolError as exc:
        assert exc.status == 400
    else:
        assert message.get("type") == "offer" and offer.sdp == message["sdp"]
        assert offer.route == (message.get("route") or "")


# -- the data channel -----------------------------------------------------------------------

MESSAGES = [
    ('{"type": "hangup"}', HangupRequested()),
    ('{"type": "dtmf", "digits": "12#"}', Dtmf("12#")),
    (b'{"type": "dtmf", "digits": "A*"}', Dtmf("A*")),
    ('{"type": "dtmf", "digits": ""}', Ignored("malformed-message", "dtmf needs 1-32 digits")),
    ('{"type": "dtmf", "digits": "9x"}',
     Ignored("malformed-message", "dtmf digits are 0-9, *, #, A-D")),
    ('{"type": "dtmf"}', Ignored("malformed-message", "dtmf needs 1-32 digits")),
    ('{"type": "reboot"}', Ignored("unknown-message", "unknown message type")),
    ("[]", Ignored("malformed-message", "message is not a JSON object")),
    ("{", Ignored("malformed-json", "message is not JSON")),
]  # fmt: skip


@pytest.mark.parametrize(("data", "event"), MESSAGES)
def test_server_receive_page_message(data: str | bytes, event: object) -> None:
    assert PageChannel().receive(data, 0.0) == event


def test_server_receive_page_message_oversized_ignored() -> None:
    event = PageChannel().receive("x" * (MAX_MESSAGE_BYTES + 1), 0.0)
    assert isinstance(event, Ignored) and event.kind == "oversized"


def test_server_receive_page_flood_ignored_then_recovers() -> None:
    channel = PageChannel(rate=10.0, burst=5.0)
    hangup = '{"type": "hangup"}'
    events = [channel.receive(hangup, 0.0) for _ in range(8)]
    assert events[:5] == [HangupRequested()] * 5
    assert all(isinstance(e, Ignored) and e.kind == "flood" for e in events[5:])
    assert channel.receive(hangup, 0.5) == HangupRequested()  # tokens refill with time


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=1500), st.text(max_size=1500)), st.floats(0, 1e6))
def test_server_receive_page_message_fuzz_never_raises(data: str | bytes, now: float) -> None:
    event = PageChannel().receive(data, now)
    assert isinstance(event, HangupRequested | Dtmf | Ignored)


def test_server_events_are_json_for_the_page() -> None:
    line = json.loads(transcript_message("bot", "x" * 5000, False))
    assert line == {"type": "transcript", "role": "bot", "text": "x" * 2000, "final": False}
    assert json.loads(state_message("interrupted")) == {"type": "state", "state": "interrupted"}
    ended = json.loads(ended_message("browser-1", "caller hung up", "/calls/browser-1"))
    assert ended["timeline"] == "/calls/browser-1" and ended["reason"] == "caller hung up"
    assert json.loads(ended_message("browser-1", "x", None))["timeline"] is None
