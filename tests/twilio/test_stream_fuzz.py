"""Property-based fuzzing of the Media Streams protocol: every field of every message.

Whatever a peer sends, ``TwilioStream`` yields typed events or raises its one documented
fatal error (``RemoteProtocolError``); what it lets through is fit for a file name, a log line
and the playout ledger.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.call.playout import Playout
from gateway.carriers.twilio.stream import (
    AudioChunk,
    MarkReached,
    ProtocolViolation,
    RemoteProtocolError,
    StreamStarted,
    TwilioStream,
)
from gateway.ids import CALL_SID, STREAM_SID, is_twilio_sid

SID = "MZ" + "0" * 32
CALL = "CA" + "1" * 32

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["inf", "0:inf", "../x", "CA" + "f" * 32, "8000", "\x00", "\n"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def fuzzed(base: dict[str, object]) -> st.SearchStrategy[dict[str, object]]:
    """``base`` with any of its fields, at any depth, replaced by an arbitrary JSON value."""

    def mutate(value: object) -> st.SearchStrategy[object]:
        if isinstance(value, dict):
            return st.fixed_dictionaries({k: mutate(v) for k, v in value.items()})
        return st.one_of(st.just(value), json_values)

    return mutate(base)  # type: ignore[return-value]


START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": SID,
    "start": {
        "accountSid": "AC" + "2" * 32,
        "streamSid": SID,
        "callSid": CALL,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"route": "bot", "stream_token": "x"},
    },
}
MEDIA = {
    "event": "media",
    "streamSid": SID,
    "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": "/////w=="},
}
MARK = {"event": "mark", "streamSid": SID, "mark": {"name": "0:40"}}
DTMF = {"event": "dtmf", "streamSid": SID, "dtmf": {"track": "inbound_track", "digit": "5"}}
STOP = {"event": "stop", "streamSid": SID, "stop": {"callSid": CALL}}
messages = st.one_of(*(fuzzed(m) for m in (START, MEDIA, MARK, DTMF, STOP)))


def check(event: object) -> None:
    match event:
        case StreamStarted():
            assert is_twilio_sid(event.call_sid, CALL_SID)
            assert is_twilio_sid(event.stream_sid, STREAM_SID)
            assert all(isinstance(v, str) for v in event.custom_parameters.values())
        case AudioChunk():
            assert len(event.payload) <= 640 and isinstance(event.timestamp, int)
        case MarkReached():
            assert len(event.name) <= 64
        case ProtocolViolation():
            assert "\n" not in event.reason and len(event.reason) < 400


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=8), st.booleans())
def test_server_receive_fuzzed_messages_yield_events_or_one_documented_error(
    sequence: list[dict[str, object]], started: bool
) -> None:
    stream = TwilioStream()
    playout = Playout(lead=1.0, mark_every=1)
    if started:
        stream.receive_message(orjson.dumps(START).decode(), 0.0)
        stream.events_received()
        for i in range(4):
            playout.enqueue(b"\xff" * 160, 20.0 * (i + 1))
        playout.poll(0.0)
    now = 0.0
    for message in sequence:
        now += 0.02
        try:
            stream.receive_message(json.dumps(message), now)
        except RemoteProtocolError as exc:
            assert exc.close_code in (1008, 1009) and "\n" not in exc.reason
            return
        for event in stream.events_received():
            check(event)
            if isinstance(event, MarkReached):
                playout.mark_echoed(event.name, now)
    heard = playout.clear(now).heard_ms  # a peer's mark never poisons the ledger
    assert 0.0 <= heard <= 80.0


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_server_receive_arbitrary_frames_never_raise_anything_else(frame: str | bytes) -> None:
    stream = TwilioStream()
    try:
        stream.receive_message(frame, 0.0)
    except RemoteProtocolError:
        return
    for event in stream.events_received():
        check(event)


@pytest.mark.parametrize("field", ["sampleRate", "channels"])
@pytest.mark.parametrize("value", ["abc", "8000.5", [], {}, 1e400, True, "9" * 400])
def test_server_receive_start_with_a_garbage_media_format_is_a_violation(
    field: str, value: object
) -> None:
    start = orjson.loads(orjson.dumps(START))
    start["start"]["mediaFormat"][field] = value if value != 1e400 else "1e400"
    stream = TwilioStream()
    stream.receive_message(orjson.dumps(start).decode(), 0.0)  # raised ValueError before
    (event,) = stream.events_received()
    assert isinstance(event, ProtocolViolation) and event.kind == "bad-start"


@pytest.mark.parametrize(
    "call_sid",
    [
        "../x",
        "/tmp/evil",
        "CA" + "0" * 31 + "\x00",
        "CA" + "1" * 32 + "/../../IncomingPhoneNumbers/PN1",
        "CA1\nINFO forged line",
    ],
)
def test_server_receive_start_naming_no_twilio_call_is_refused(call_sid: str) -> None:
    start = orjson.loads(orjson.dumps(START))
    start["start"]["callSid"] = call_sid
    stream = TwilioStream()
    with pytest.raises(RemoteProtocolError) as info:
        stream.receive_message(orjson.dumps(start).decode(), 0.0)
    assert info.value.kind == "bad-identifier" and stream.call_sid is None
    assert "\n" not in info.value.reason
