"""The Exotel Voicebot core, with no socket and no loop: frames in, events and frames out."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audio.g711 import ulaw_decode, ulaw_encode
from gateway.carriers.exotel.stream import ExotelStream, pack_route
from gateway.ids import is_exotel_sid
from gateway.streams import (
    CallerAudio,
    DigitPressed,
    LocalProtocolError,
    PlayedUpTo,
    RemoteProtocolError,
    StreamEnded,
    StreamOpened,
    Violation,
)

SID = "MZ" + "a" * 30
CALL = "b" * 32
START = {
    "event": "start",
    "sequence_number": "1",
    "stream_sid": SID,
    "start": {
        "stream_sid": SID,
        "call_sid": CALL,
        "account_sid": "acme1",
        "from": "+919876543210",
        "to": "+918047491899",
        "custom_parameters": {"dialplan": "main/otherwise/abc123/", "stream_token": "v1.1.x"},
        "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
    },
}


def media(pcm: bytes, seq: int = 3) -> str:
    payload = base64.b64encode(pcm).decode()
    return json.dumps(
        {
            "event": "media",
            "sequence_number": str(seq),
            "stream_sid": SID,
            "media": {"chunk": "2", "timestamp": "200", "payload": payload},
        }
    )


def started() -> ExotelStream:
    stream = ExotelStream()
    stream.receive_message('{"event":"connected"}', 0.0)
    stream.receive_message(json.dumps(START), 0.0)
    return stream


def test_gateway_receive_start_names_the_call_and_unpacks_the_route():
    stream = started()
    params = {
        "route": "main",
        "branch": "otherwise",
        "plan": "abc123",
        "stream_token": "v1.1.x",
        "from": "+919876543210",
        "to": "+918047491899",
    }
    assert stream.events_received() == [StreamOpened(CALL, SID, CALL, params, "exotel l16-le@8000")]


def test_pack_route_round_trips_and_keeps_within_three_parameters():
    names = {"route": "main", "branch": "#2", "plan": "0f" * 6, "path": "fallback.then"}
    packed = pack_route({**names, "stream_token": "v1.1.x"})
    assert set(packed) == {"dialplan", "stream_token"}
    start = json.loads(json.dumps(START))
    start["start"]["custom_parameters"] = packed
    stream = ExotelStream()
    stream.receive_message(json.dumps(start), 0.0)
    [opened] = stream.events_received()
    assert isinstance(opened, StreamOpened)
    assert {k: opened.parameters[k] for k in names} == names


def test_gateway_receive_start_with_a_path_for_a_sid_is_fatal():
    bad = json.loads(json.dumps(START))
    bad["start"]["call_sid"] = "../../etc"
    with pytest.raises(RemoteProtocolError):
        ExotelStream().receive_message(json.dumps(bad), 0.0)


def test_gateway_receive_start_at_another_rate_is_refused():
    bad = json.loads(json.dumps(START))
    bad["start"]["media_format"]["sample_rate"] = "16000"
    stream = ExotelStream()
    stream.receive_message(json.dumps(bad), 0.0)
    [event] = stream.events_received()
    assert isinstance(event, Violation) and event.kind == "bad-start"


def test_gateway_receive_media_dtmf_mark_stop():
    stream = started()
    stream.events_received()
    pcm = b"\x00\x10" * 800
    stream.receive_message(media(pcm), 0.1)
    stream.receive_message(
        json.dumps({"event": "dtmf", "stream_sid": SID, "dtmf": {"digit": "5", "duration": "100"}}),
        0.2,
    )
    stream.receive_message(
        json.dumps({"event": "mark", "stream_sid": SID, "mark": {"name": "0:100"}}), 0.3
    )
    stream.receive_message(
        json.dumps({"event": "stop", "stream_sid": SID, "stop": {"reason": "callended"}}), 0.4
    )
    assert stream.events_received() == [
        CallerAudio(ulaw_encode(pcm), 200),
        DigitPressed("5"),
        PlayedUpTo("0:100"),
        StreamEnded(),
    ]
    assert not stream.streaming


@pytest.mark.parametrize(
    "message",
    [
        b"\x00\x00",
        "{",
        media(b"\x00" * 3),  # odd: not 16-bit samples
        media(b"\x00" * 20000),  # over a second
        json.dumps({"event": "media", "stream_sid": SID, "media": {"payload": "@@@"}}),
        json.dumps({"event": "media", "stream_sid": "other", "media": {"payload": "AAAA"}}),
        json.dumps({"event": "dtmf", "stream_sid": SID, "dtmf": {"digit": "x"}}),
        json.dumps({"event": "mark", "stream_sid": SID, "mark": {}}),
        json.dumps({"event": "nope"}),
        json.dumps(START),  # a second start
    ],
)
def test_gateway_receive_garbage_is_one_violation_and_the_call_goes_on(message):
    stream = started()
    stream.events_received()
    stream.receive_message(message, 0.1)
    [event] = stream.events_received()
    assert isinstance(event, Violation)
    stream.receive_message(media(b"\x00\x00" * 160), 0.2)
    assert stream.events_received() == [CallerAudio(ulaw_encode(b"\x00\x00" * 160), 200)]


def test_gateway_receive_flood_is_fatal():
    stream = ExotelStream(max_rate=10, burst=5)
    with pytest.raises(RemoteProtocolError) as flood:
        for _ in range(10):
            stream.receive_message('{"event":"connected"}', 1.0)
    assert flood.value.kind == "flood"


def test_gateway_send_gathers_frames_into_one_chunk_per_mark():
    stream = started()
    for _ in range(5):
        stream.send_audio(b"\xff" * 160)
    assert stream.messages_to_send() == []  # still gathering
    stream.send_mark("0:100")
    chunk, mark = (orjson.loads(m) for m in stream.messages_to_send())
    assert chunk["event"] == "media" and chunk["stream_sid"] == SID
    assert len(base64.b64decode(chunk["media"]["payload"])) == 1600
    assert mark == {"stream_sid": SID, "event": "mark", "mark": {"name": "0:100"}}


def test_gateway_send_closes_a_chunk_at_its_cap_and_refuses_part_frames():
    stream = ExotelStream(max_chunk_frames=3)
    stream.receive_message(json.dumps(START), 0.0)
    for _ in range(3):
        stream.send_audio(b"\xff" * 160)
    [chunk] = stream.messages_to_send()
    pcm = base64.b64decode(orjson.loads(chunk)["media"]["payload"])
    assert len(pcm) == 960 and pcm == ulaw_decode(b"\xff" * 480)
    with pytest.raises(LocalProtocolError):
        stream.send_audio(b"\xff" * 50)


def test_gateway_send_clear_drops_the_open_chunk_and_goes_first():
    stream = started()
    stream.send_audio(b"\xff" * 160)
    stream.send_mark("0:20")
    stream.send_audio(b"\xff" * 160)
    stream.send_clear()
    message = stream.next_message()
    assert message is not None and stream.is_clear(message)
    assert orjson.loads(message) == {"stream_sid": SID, "event": "clear"}
    assert stream.next_message() is None
    stream.send_mark("1:40")
    assert len(stream.messages_to_send()) == 1  # the dropped frame did not come back


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=30)
    | st.sampled_from([SID, CALL, "8000", "../x", "\x00", "AAAA"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


def fuzzed(base: dict[str, object]) -> st.SearchStrategy[object]:
    """``base`` with any field at any depth replaced by an arbitrary JSON value."""
    if isinstance(base, dict):
        return st.fixed_dictionaries({k: fuzzed(v) for k, v in base.items()})  # type: ignore[arg-type]
    return st.one_of(st.just(base), json_values)


messages = (
    fuzzed(START).map(json.dumps)
    | fuzzed(json.loads(media(b"\x00" * 320))).map(json.dumps)
    | fuzzed({"event": "mark", "stream_sid": SID, "mark": {"name": "0:20"}}).map(json.dumps)
    | fuzzed({"event": "dtmf", "stream_sid": SID, "dtmf": {"digit": "1"}}).map(json.dumps)
    | fuzzed({"event": "stop", "stream_sid": SID, "stop": {"reason": "x"}}).map(json.dumps)
    | st.text(max_size=100)
    | st.binary(max_size=100)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(messages, max_size=15))
def test_fuzz_gateway_receive_yields_events_or_the_one_fatal_error(frames):
    stream = ExotelStream()
    try:
        for i, frame in enumerate(frames):
            stream.receive_message(frame, i * 0.1)
            for event in stream.events_received():
                match event:
                    case StreamOpened(stream_id=sid, call_id=call, parameters=params):
                        assert is_exotel_sid(sid) and is_exotel_sid(call) and len(params) <= 18
                    case CallerAudio(ulaw=ulaw):
                        assert len(ulaw) <= stream.max_payload_bytes // 2
                    case PlayedUpTo(name=name):
                        assert len(name) <= 64
                    case DigitPressed(digit=digit):
                        assert digit in "0123456789*#"
                    case StreamEnded() | Violation():
                        pass
                    case _:
                        raise AssertionError(event)
    except RemoteProtocolError as exc:
        assert exc.close_code in (1008, 1009)
