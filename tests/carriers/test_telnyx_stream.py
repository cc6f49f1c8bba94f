"""The Telnyx media stream core, its TeXML and its signature check: no sockets, no loop."""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ET

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from gateway.audio.g711 import alaw_decode, ulaw_encode
from gateway.carriers.telnyx import texml
from gateway.carriers.telnyx.signature import Ed25519Checker
from gateway.carriers.telnyx.stream import TelnyxStream
from gateway.streams.events import (
    CallerAudio,
    DigitPressed,
    LocalProtocolError,
    PlayedUpTo,
    RemoteProtocolError,
    StreamEnded,
    StreamOpened,
    Violation,
)

CCID = "v3:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ"
SID = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"


def start(encoding: str = "PCMU", rate: int = 8000, **over: object) -> str:
    msg = {
        "event": "start",
        "sequence_number": "1",
        "start": {
            "call_control_id": CCID,
            "from": "+13122011111",
            "to": "+13122011112",
            "custom_parameters": {"route": "main", "stream_token": "t"},
            "media_format": {"encoding": encoding, "sample_rate": rate, "channels": 1},
        },
        "stream_id": SID,
    }
    msg.update(over)
    return orjson.dumps(msg).decode()


def media(payload: bytes) -> str:
    return orjson.dumps(
        {
            "event": "media",
            "media": {"track": "inbound", "payload": base64.b64encode(payload).decode()},
            "stream_id": SID,
        }
    ).decode()


def message(event: str, **body: object) -> str:
    return orjson.dumps({"event": event, "stream_id": SID, **body}).decode()


def started(**kw: object) -> TelnyxStream:
    stream = TelnyxStream()
    stream.receive_message('{"event":"connected","version":"1.0.0"}', 0.0)
    stream.receive_message(start(**kw), 0.0)  # type: ignore[arg-type]
    return stream


def test_telnyx_start_opens_the_call_with_its_ids_and_parameters() -> None:
    stream = started()
    (opened,) = stream.events_received()
    assert isinstance(opened, StreamOpened)
    assert opened.call_id == opened.control_id == CCID and opened.stream_id == SID
    assert opened.parameters == {
        "route": "main",
        "stream_token": "t",
        "from": "+13122011111",
        "to": "+13122011112",
    }
    assert stream.streaming


@pytest.mark.parametrize(
    ("field", "value"),
    [("stream_id", "../../etc"), ("stream_id", None), ("call_control_id", "v3:../x")],
)
def test_telnyx_start_with_a_foreign_id_ends_the_call(field: str, value: object) -> None:
    msg = orjson.loads(start())
    if field == "stream_id":
        msg["stream_id"] = value
    else:
        msg["start"][field] = value
    with pytest.raises(RemoteProtocolError) as caught:
        TelnyxStream().receive_message(orjson.dumps(msg).decode(), 0.0)
    assert caught.value.kind == "bad-identifier"


@pytest.mark.parametrize(("encoding", "rate"), [("OPUS", 16000), ("PCMU", 16000), ("L16", 44100)])
def test_telnyx_start_with_a_format_we_cannot_decode_ends_the_call(
    encoding: str, rate: int
) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        TelnyxStream().receive_message(start(encoding, rate), 0.0)
    assert caught.value.kind == "bad-format"


def test_telnyx_media_mark_dtmf_stop_become_events() -> None:
    stream = started(encoding="PCMA")
    stream.events_received()
    stream.receive_message(media(b"\xd5" * 160), 0.02)  # A-law silence
    stream.receive_message(message("mark", mark={"name": "1:40"}), 0.03)
    stream.receive_message(message("dtmf", dtmf={"digit": "5"}), 0.04)
    stream.receive_message(message("stop", stop={}), 0.05)
    audio, mark, digit, stop = stream.events_received()
    assert isinstance(audio, CallerAudio)
    assert audio.ulaw == ulaw_encode(alaw_decode(b"\xd5" * 160))  # transcoded to mu-law
    assert mark == PlayedUpTo("1:40") and digit == DigitPressed("5") and stop == StreamEnded()
    assert not stream.streaming


def test_telnyx_l16_is_network_byte_order_at_16k() -> None:
    stream = started(encoding="L16", rate=16000)
    stream.events_received()
    stream.send_audio(b"\x00" * 160)  # mu-law 0x00 is the loudest negative sample
    (message,) = stream.messages_to_send()
    payload = base64.b64decode(orjson.loads(message)["media"]["payload"])
    assert len(payload) == 640


def test_telnyx_garbage_is_a_violation_per_message_and_the_call_goes_on() -> None:
    stream = started()
    stream.events_received()
    garbage: list[str | bytes] = [
        b"\x00\x01",
        "{",
        "[]",
        '{"event":"nope"}',
        media(b"")[:-2] + "}",
        message("media", media={"payload": "***"}),
        message("dtmf", dtmf={"digit": "X"}),
        '{"event":"mark","stream_id":"other","mark":{"name":"x"}}',
        '{"event":"error","payload":{"code":100003,"title":"malformed_frame"}}',
    ]
    for bad in garbage:
        stream.receive_message(bad, 0.1)
    events = stream.events_received()
    assert all(isinstance(e, Violation) for e in events) and len(events) == 9
    assert stream.streaming


def test_telnyx_oversize_and_flood_end_the_call() -> None:
    stream = started()
    with pytest.raises(RemoteProtocolError) as caught:
        stream.receive_message("x" * 20000, 0.1)
    assert caught.value.kind == "oversize"
    stream = TelnyxStream(max_rate=10, burst=5)
    with pytest.raises(RemoteProtocolError) as caught:
        for _ in range(10):
            stream.receive_message("{}", 0.0)
    assert caught.value.kind == "flood"


def test_telnyx_clear_goes_ahead_of_queued_media_and_marks() -> None:
    stream = started()
    with pytest.raises(LocalProtocolError):
        TelnyxStream().send_audio(b"\xff" * 160)
    stream.send_audio(b"\xff" * 160)
    stream.send_mark("1:20")
    stream.send_clear()
    stream.send_audio(b"\xff" * 160)
    clear, after = stream.messages_to_send()
    assert clear == '{"event":"clear"}' and stream.is_clear(clear)
    assert orjson.loads(after)["event"] == "media"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=50),
            st.text(max_size=200),
            st.recursive(
                st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(
                            [
                                "event",
                                "media",
                                "payload",
                                "stream_id",
                                "start",
                                "mark",
                                "name",
                                "dtmf",
                                "digit",
                                "media_format",
                                "encoding",
                            ]
                        ),
                        inner,
                        max_size=4,
                    )
                ),  # fmt: skip
                max_leaves=12,
            ).map(lambda v: orjson.dumps(v).decode()),
        ),
        max_size=8,
    )
)
def test_telnyx_stream_fuzz_raises_only_remote_errors(messages: list[str | bytes]) -> None:
    for stream in (TelnyxStream(), started()):
        for message in messages:
            try:
                stream.receive_message(message, 0.0)
            except RemoteProtocolError:
                break
        for event in stream.events_received():
            assert isinstance(
                event, (StreamOpened, CallerAudio, DigitPressed, PlayedUpTo, StreamEnded, Violation)
            )


KEY = SigningKey.generate()
PUBLIC = base64.b64encode(bytes(KEY.verify_key)).decode()


def sign(body: bytes, ts: str) -> str:
    return base64.b64encode(KEY.sign(ts.encode() + b"|" + body).signature).decode()


def test_telnyx_signature_accepts_in_window_and_refuses_outside() -> None:
    checker = Ed25519Checker(PUBLIC)
    now = time.time()
    ts = str(int(now))
    assert checker.check(b"a=1", sign(b"a=1", ts), ts, now) is None
    assert checker.check(b"a=2", sign(b"a=1", ts), ts, now) == "signature does not match"
    assert "window" in (checker.check(b"a=1", sign(b"a=1", ts), ts, now + 301) or "")
    assert checker.check(b"a=1", None, ts, now) is not None


def test_telnyx_public_key_must_be_32_bytes_of_base64() -> None:
    with pytest.raises(ValueError):
        Ed25519Checker("not base64!")
    with pytest.raises(ValueError):
        Ed25519Checker(base64.b64encode(b"short").decode())


@given(st.binary(max_size=200), st.one_of(st.none(), st.text(max_size=100)),
       st.one_of(st.none(), st.text(max_size=20)))  # fmt: skip
def test_telnyx_signature_fuzz_never_raises(body: bytes, sig: str | None, ts: str | None) -> None:
    assert Ed25519Checker(PUBLIC).check(body, sig, ts, 1e9) is not None


def test_texml_stream_answer_is_bidirectional_rtp_with_parameters() -> None:
    doc = ET.fromstring(texml.connect_stream("wss://h/telnyx/media", {"a": "1"}, "PCMA"))
    stream = doc.find("Connect/Stream")
    assert stream is not None and stream.get("bidirectionalMode") == "rtp"
    assert stream.get("bidirectionalCodec") == stream.get("codec") == "PCMA"
    assert [(p.get("name"), p.get("value")) for p in stream] == [("a", "1")]
    with pytest.raises(ValueError):
        texml.connect_stream("wss://h", {}, "OPUS")
    assert ET.fromstring(texml.busy()).find("Reject").get("reason") == "busy"  # type: ignore[union-attr]
