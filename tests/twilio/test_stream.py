"""The Twilio Media Streams protocol, message by message, with no sockets."""

import base64

import orjson
import pytest

from gateway.carriers.twilio.stream import (
    AudioChunk,
    Dtmf,
    LocalProtocolError,
    MarkReached,
    ProtocolViolation,
    RemoteProtocolError,
    StreamStarted,
    StreamState,
    StreamStopped,
    TwilioStream,
)

SID = "MZ" + "0" * 32
CALL = "CA" + "1" * 32


def msg(**fields) -> str:
    return orjson.dumps(fields).decode()


def start_msg(**params) -> str:
    return msg(
        event="start",
        sequenceNumber="1",
        streamSid=SID,
        start={
            "accountSid": "AC" + "2" * 32,
            "streamSid": SID,
            "callSid": CALL,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": params,
        },
    )


def media_msg(payload: bytes = b"\xff" * 160, ts: int = 0, sid: str = SID) -> str:
    return msg(
        event="media",
        sequenceNumber="3",
        streamSid=sid,
        media={
            "track": "inbound",
            "chunk": "1",
            "timestamp": str(ts),
            "payload": base64.b64encode(payload).decode(),
        },
    )


@pytest.fixture
def started() -> TwilioStream:
    s = TwilioStream()
    s.receive_message(msg(event="connected", protocol="Call", version="1.0.0"), 0.0)
    s.receive_message(start_msg(route="main"), 0.0)
    assert s.events_received() == [StreamStarted(SID, CALL, "AC" + "2" * 32, {"route": "main"})]
    return s


def test_server_receive_start_enters_streaming(started):
    assert started.state is StreamState.STREAMING
    assert started.call_sid == CALL


def test_server_receive_media_decodes_payload_and_timestamp(started):
    started.receive_message(media_msg(b"\x01\x02" * 80, ts=40), 0.0)
    assert started.events_received() == [AudioChunk(b"\x01\x02" * 80, 40)]


def test_server_receive_dtmf_mark_stop(started):
    started.receive_message(
        msg(event="dtmf", streamSid=SID, dtmf={"track": "inbound_track", "digit": "5"}), 0.0
    )
    started.receive_message(msg(event="mark", streamSid=SID, mark={"name": "0:40"}), 0.0)
    started.receive_message(msg(event="stop", streamSid=SID, stop={"callSid": CALL}), 0.0)
    assert started.events_received() == [Dtmf("5"), MarkReached("0:40"), StreamStopped()]
    assert started.state is StreamState.STOPPED


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "not a JSON object"),
        (msg(event="bogus", streamSid=SID), "unknown event"),
        (msg(event="media", streamSid=SID), "without a media object"),
        (msg(event="media", streamSid=SID, media={"payload": "***"}), "not valid base64"),
        (msg(event="media", streamSid=SID, media={"payload": ""}), "without a payload"),
        (media_msg(sid="MZother"), "for stream"),
        (msg(event="dtmf", streamSid=SID, dtmf={"digit": "x"}), "'dtmf' with digit"),
        (msg(event="mark", streamSid=SID, mark={}), "without a name"),
        (start_msg(), "second 'start'"),
    ],
)
def test_server_receive_garbage_is_ignored_with_reason(started, message, reason):
    started.receive_message(message, 0.0)
    events = started.events_received()
    assert len(events) == 1 and isinstance(events[0], ProtocolViolation)
    assert reason in events[0].reason
    # the stream carries on
    started.receive_message(media_msg(), 0.0)
    assert isinstance(started.events_received()[0], AudioChunk)


def test_server_receive_oversized_payload_is_dropped(started):
    started.receive_message(media_msg(b"\xff" * 2000), 0.0)
    (event,) = started.events_received()
    assert isinstance(event, ProtocolViolation) and "too large" in event.reason


def test_server_receive_binary_frame_is_a_violation(started):
    started.receive_message(b"\x00\x01", 0.0)
    assert isinstance(started.events_received()[0], ProtocolViolation)


def test_server_receive_media_before_start_is_a_violation():
    s = TwilioStream()
    s.receive_message(media_msg(), 0.0)
    (event,) = s.events_received()
    assert isinstance(event, ProtocolViolation) and "before 'start'" in event.reason


def test_server_receive_oversized_message_is_fatal_with_1009(started):
    with pytest.raises(RemoteProtocolError) as info:
        started.receive_message("x" * 70000, 0.0)
    assert info.value.close_code == 1009


def test_server_receive_flood_is_fatal():
    s = TwilioStream(max_rate=100, burst=50)
    with pytest.raises(RemoteProtocolError, match="flood"):
        for _ in range(60):
            s.receive_message(media_msg(), 0.0)  # 60 messages in no time


def test_server_receive_steady_rate_is_not_a_flood():
    s = TwilioStream(max_rate=100, burst=50)
    for i in range(1000):
        s.receive_message(msg(event="connected"), i * 0.02)  # 50 per second


def test_server_receive_endless_garbage_is_fatal(started):
    with pytest.raises(RemoteProtocolError, match="bad messages"):
        for _ in range(started.max_violations + 1):
            started.receive_message("{", 0.0)


def test_server_send_media_mark_clear_shapes(started):
    started.send_audio(b"\x7f" * 160)
    started.send_mark("3:120")
    sent = [orjson.loads(m) for m in started.messages_to_send()]
    assert sent[0] == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(b"\x7f" * 160).decode()},
    }
    assert sent[1] == {"event": "mark", "streamSid": SID, "mark": {"name": "3:120"}}


def test_server_send_clear_jumps_ahead_of_unwritten_media(started):
    started.send_audio(b"\xff" * 160)
    started.send_mark("0:20")
    started.send_audio(b"\xff" * 160)
    first = started.next_message()
    started.send_clear()
    rest = [orjson.loads(m) for m in started.messages_to_send()]
    assert orjson.loads(first)["event"] == "media"  # was already being written
    assert rest == [{"event": "clear", "streamSid": SID}]  # nothing stale after it


def test_server_send_before_start_is_local_error():
    with pytest.raises(LocalProtocolError):
        TwilioStream().send_audio(b"\xff" * 160)


def test_server_receive_start_with_hostile_stream_sid_is_refused():
    s = TwilioStream()
    with pytest.raises(RemoteProtocolError) as info:
        s.receive_message(
            msg(event="start", start={"streamSid": 'MZ"},"x":{"', "callSid": CALL}), 0.0
        )
    assert info.value.kind == "bad-identifier" and s.state is StreamState.AWAITING_START
