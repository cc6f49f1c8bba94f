"""The Vonage websocket core, with no socket and no loop: frames in, events and frames out."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audio.g711 import ulaw_encode
from gateway.carriers.vonage.stream import VonageStream, content_type, frame_bytes
from gateway.ids import is_uuid
from gateway.streams import (
    CallerAudio,
    DigitPressed,
    LocalProtocolError,
    PlayedUpTo,
    RemoteProtocolError,
    StreamOpened,
    Violation,
)

CONNECTED = {
    "event": "websocket:connected",
    "content-type": "audio/l16;rate=16000",
    "call_uuid": "63f61863-4a51-4f6b-86e1-46edebcf9356",
    "stream_token": "v1.1.abc",
}


def connected(**extra: object) -> VonageStream:
    stream = VonageStream(16000)
    stream.receive_message(orjson.dumps({**CONNECTED, **extra}).decode(), 0.0)
    return stream


def test_gateway_receive_connected_gives_rate_and_headers():
    stream = connected()
    [event] = stream.events_received()
    uuid = CONNECTED["call_uuid"]
    assert event == StreamOpened(
        uuid, uuid, uuid, {"call_uuid": uuid, "stream_token": "v1.1.abc"}, "vonage l16-le@16000"
    )
    assert stream.max_payload_bytes == 4 * 640 and stream.streaming


def test_gateway_receive_connected_without_a_call_uuid_is_fatal():
    for call in (None, "../../v1/calls", 5):
        with pytest.raises(RemoteProtocolError) as refused:
            connected(call_uuid=call)
        assert refused.value.kind == "bad-identifier"


def test_gateway_receive_connected_at_another_rate_than_asked_is_fatal():
    stream = VonageStream(8000)
    with pytest.raises(RemoteProtocolError):
        stream.receive_message(orjson.dumps(CONNECTED).decode(), 0.0)


def test_gateway_receive_connected_without_l16_rate_is_fatal():
    stream = VonageStream(16000)
    with pytest.raises(RemoteProtocolError):
        stream.receive_message('{"event":"websocket:connected","content-type":"audio/x"}', 0.0)
    with pytest.raises(RemoteProtocolError):
        stream.receive_message(
            '{"event":"websocket:connected","content-type":"audio/l16;rate=44100"}', 0.0
        )


def test_gateway_receive_audio_before_connected_is_a_violation():
    stream = VonageStream()
    stream.receive_message(b"\x00" * 640, 0.0)
    [event] = stream.events_received()
    assert isinstance(event, Violation) and event.kind == "out-of-order"


def test_gateway_receive_binary_audio_dtmf_notify_cleared():
    stream = VonageStream(8000)
    stream.receive_message(json.dumps({**CONNECTED, "content-type": "audio/l16;rate=8000"}), 0)
    stream.events_received()
    pcm = b"\x00\x10" * 160
    stream.receive_message(pcm, 0.02)
    stream.receive_message('{"event":"websocket:dtmf","digit":"5","duration":260}', 0.03)
    stream.receive_message('{"event":"websocket:notify","payload":{"mark":"0:40"}}', 0.04)
    stream.receive_message('{"event":"websocket:cleared"}', 0.05)
    assert stream.events_received() == [
        CallerAudio(ulaw_encode(pcm)),
        DigitPressed("5"),
        PlayedUpTo("0:40"),
    ]


@pytest.mark.parametrize(
    "message",
    [
        b"\x00",  # odd: not 16-bit samples
        b"\x00" * (4 * 640 + 2),  # more than four frames
        "not json",
        "[1]",
        '{"event":"websocket:dtmf","digit":"55"}',
        '{"event":"websocket:notify","payload":"x"}',
        '{"event":"websocket:notify","payload":{"mark":"' + "9" * 65 + '"}}',
        '{"event":"websocket:what"}',
        orjson.dumps(CONNECTED).decode(),  # a second connected
    ],
)
def test_gateway_receive_garbage_is_one_violation_and_the_call_goes_on(message):
    stream = connected()
    stream.events_received()
    stream.receive_message(message, 0.1)
    [event] = stream.events_received()
    assert isinstance(event, Violation)
    stream.receive_message(b"\x00\x00" * 320, 0.12)
    [audio] = stream.events_received()
    assert isinstance(audio, CallerAudio) and audio.ulaw


def test_gateway_receive_oversize_and_flood_are_fatal():
    stream = connected()
    with pytest.raises(RemoteProtocolError) as big:
        stream.receive_message(b"\x00" * 9000, 0.1)
    assert big.value.kind == "oversize"
    stream = VonageStream(max_rate=10, burst=5)
    with pytest.raises(RemoteProtocolError) as flood:
        for _ in range(10):
            stream.receive_message(b"\x00\x00", 1.0)
    assert flood.value.kind == "flood"


def test_gateway_receive_headers_are_bounded():
    headers = {f"h{i}": "v" for i in range(40)}
    stream = connected(**headers, big="x" * 600, number=5)
    events = stream.events_received()
    opened = events[-1]
    assert isinstance(opened, StreamOpened)
    assert len(opened.parameters) <= 32 and "big" not in opened.parameters
    assert any(isinstance(e, Violation) for e in events)


def test_gateway_send_audio_marks_as_notify_and_clear_goes_first():
    stream = connected()
    for _ in range(3):
        stream.send_audio(b"\xff" * 160)  # 20 ms of mu-law silence
    stream.send_mark("0:60")
    *frames, mark = stream.messages_to_send()
    # Whole 20 ms frames of L16 at 16 kHz, the resampler's held-back samples waiting.
    assert frames and all(isinstance(f, bytes) and len(f) == 640 for f in frames)
    assert mark == '{"action":"notify","payload":{"mark":"0:60"}}'
    stream.send_audio(b"\xff" * 160)
    stream.send_mark("0:40")
    stream.send_clear()
    message = stream.next_message()
    assert message == '{"action":"clear"}' and stream.is_clear(message)
    assert stream.next_message() is None


def test_gateway_send_before_connected_is_our_bug():
    with pytest.raises(LocalProtocolError):
        VonageStream().send_audio(b"\xff" * 160)


def test_content_type_and_frame_size_follow_the_rate():
    assert content_type(8000) == "audio/l16;rate=8000" and frame_bytes(8000) == 320
    assert frame_bytes(16000) == 640
    with pytest.raises(ValueError):
        content_type(11025)
    with pytest.raises(ValueError):
        VonageStream(24000)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=30)
    | st.sampled_from(["websocket:connected", "websocket:dtmf", "audio/l16;rate=8000", "0:20"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
messages = (
    st.binary(max_size=3000)
    | st.text(max_size=200)
    | st.dictionaries(
        st.sampled_from(["event", "content-type", "digit", "payload", "call_uuid"])
        | st.text(max_size=6),
        json_values,
        max_size=5,
    ).map(json.dumps)
)


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(messages, max_size=20))
def test_fuzz_gateway_receive_yields_events_or_the_one_fatal_error(open_first, frames):
    stream = VonageStream(16000)
    if open_first:
        frames = [json.dumps(CONNECTED), *frames]
    now = 0.0
    try:
        for frame in frames:
            now += 0.02
            stream.receive_message(frame, now)
            for event in stream.events_received():
                match event:
                    case CallerAudio(ulaw=ulaw):
                        assert 0 <= len(ulaw) <= stream.max_payload_bytes // 4
                    case PlayedUpTo(name=name):
                        assert len(name) <= 64
                    case DigitPressed(digit=digit):
                        assert digit in "0123456789*#ABCD"
                    case StreamOpened(call_id=call, parameters=params):
                        assert is_uuid(call) and len(params) <= 32
                    case Violation():
                        pass
                    case _:
                        raise AssertionError(event)
    except RemoteProtocolError as exc:
        assert exc.close_code in (1008, 1009)
