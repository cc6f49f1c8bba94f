"""The Plivo audio stream core, its answer XML and its V3 check: no sockets, no loop."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.carriers.plivo import answer
from gateway.carriers.plivo.signature import V3Checker
from gateway.carriers.plivo.stream import PlivoStream
from gateway.sim.carriers.plivo import sign_v3
from gateway.streams.events import (
    CallerAudio,
    DigitPressed,
    PlayedUpTo,
    RemoteProtocolError,
    StreamEnded,
    StreamOpened,
    Violation,
)

CALL = "7e5c6bc6-7d5b-4a6b-9c3e-1f1e2d3c4b5a"
SID = "b2e4f7a0-1c2d-4e5f-8a9b-0c1d2e3f4a5b"


def start(encoding: str = "audio/x-mulaw", rate: int = 8000, **start_over: object) -> str:
    body = {
        "callId": CALL,
        "streamId": SID,
        "accountId": "MA123",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": encoding, "sampleRate": rate},
    }
    body.update(start_over)
    return orjson.dumps(
        {"event": "start", "sequenceNumber": 0, "start": body, "extra_headers": "{}"}
    ).decode()


def message(event: str, **body: object) -> str:
    return orjson.dumps({"event": event, "sequenceNumber": 1, "streamId": SID, **body}).decode()


def started(**kw: object) -> PlivoStream:
    stream = PlivoStream({"route": "main", "stream_token": "t"})
    stream.receive_message(start(**kw), 0.0)  # type: ignore[arg-type]
    return stream


def test_plivo_start_opens_the_call_with_the_url_parameters() -> None:
    stream = started()
    (opened,) = stream.events_received()
    assert isinstance(opened, StreamOpened)
    assert opened.call_id == opened.control_id == CALL and opened.stream_id == SID
    assert opened.parameters == {"route": "main", "stream_token": "t"}


@pytest.mark.parametrize(("field", "value"), [("callId", "../x"), ("streamId", 5)])
def test_plivo_start_with_a_foreign_id_ends_the_call(field: str, value: object) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        PlivoStream().receive_message(start(**{field: value}), 0.0)
    assert caught.value.kind == "bad-identifier"


@pytest.mark.parametrize(("encoding", "rate"), [("audio/x-mulaw", 16000), ("audio/opus", 8000)])
def test_plivo_start_with_a_format_we_cannot_decode_ends_the_call(encoding: str, rate: int) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        PlivoStream().receive_message(start(encoding, rate), 0.0)
    assert caught.value.kind == "bad-format"


def test_plivo_media_played_stream_dtmf_become_events() -> None:
    stream = started(encoding="audio/x-l16", rate=8000)
    stream.events_received()
    pcm = b"\x00\x00" * 160
    stream.receive_message(
        message(
            "media",
            media={
                "track": "inbound",
                "timestamp": "20",
                "chunk": 1,
                "payload": base64.b64encode(pcm).decode(),
            },
        ),  # fmt: skip
        0.02,
    )
    stream.receive_message(message("playedStream", name="1:40"), 0.03)
    stream.receive_message(message("clearedAudio"), 0.035)
    stream.receive_message(message("dtmf", dtmf={"track": "inbound", "digit": "#"}), 0.04)
    audio, played, digit = stream.events_received()
    assert isinstance(audio, CallerAudio) and audio.ulaw == b"\xff" * 160
    assert played == PlayedUpTo("1:40") and digit == DigitPressed("#")


def test_plivo_outbound_is_play_audio_checkpoint_and_clear_ahead_of_the_queue() -> None:
    stream = started(encoding="audio/x-l16", rate=16000)
    stream.send_audio(b"\xff" * 160)
    stream.send_mark("1:20")
    (media, checkpoint) = [orjson.loads(m) for m in stream.messages_to_send()]
    assert media["event"] == "playAudio"
    assert media["media"]["contentType"] == "audio/x-l16" and media["media"]["sampleRate"] == 16000
    assert len(base64.b64decode(media["media"]["payload"])) == 640
    assert checkpoint == {"event": "checkpoint", "streamId": SID, "name": "1:20"}
    stream.send_audio(b"\xff" * 160)
    stream.send_clear()
    (clear,) = stream.messages_to_send()
    assert orjson.loads(clear) == {"event": "clearAudio", "streamId": SID}


def test_plivo_garbage_is_a_violation_per_message() -> None:
    stream = started()
    stream.events_received()
    garbage: list[str | bytes] = [
        b"\x01",
        "nope",
        '{"event":"stop"}',
        message("media", media={"payload": "%%"}),
        message("dtmf", dtmf={"digit": "Z"}),
        message("playedStream"),
        orjson.dumps({"event": "media", "streamId": CALL, "media": {}}).decode(),
    ]
    for bad in garbage:
        stream.receive_message(bad, 0.1)
    events = stream.events_received()
    assert len(events) == 7 and all(isinstance(e, Violation) for e in events)
    assert stream.streaming


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.text(max_size=100),
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
                                "streamId",
                                "start",
                                "name",
                                "dtmf",
                                "digit",
                                "mediaFormat",
                                "callId",
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
def test_plivo_stream_fuzz_raises_only_remote_errors(messages: list[str | bytes]) -> None:
    for stream in (PlivoStream(), started()):
        for item in messages:
            try:
                stream.receive_message(item, 0.0)
            except RemoteProtocolError:
                break
        for event in stream.events_received():
            assert isinstance(
                event, (StreamOpened, CallerAudio, DigitPressed, PlayedUpTo, StreamEnded, Violation)
            )


def test_plivo_v3_checks_post_and_upgrade_signatures() -> None:
    checker = V3Checker("tok")
    url = "https://gw.example.com/plivo/answer"
    params = {"CallUUID": CALL, "From": "1415"}
    headers = sign_v3("tok", "POST", url, params)
    sig, nonce = headers["X-Plivo-Signature-V3"], headers["X-Plivo-Signature-V3-Nonce"]
    assert checker.check("POST", url, params, sig, nonce)
    assert not checker.check("POST", url, {**params, "From": "1416"}, sig, nonce)
    assert not V3Checker("other").check("POST", url, params, sig, nonce)
    ws = "https://gw.example.com/plivo/media?route=main&stream_token=x"
    up = sign_v3("tok", "GET", ws, {})
    assert checker.check(
        "GET", ws, {}, up["X-Plivo-Signature-V3"], up["X-Plivo-Signature-V3-Nonce"]
    )
    assert not checker.check("GET", ws + "1", {}, up["X-Plivo-Signature-V3"], "n")


@given(st.text(max_size=60), st.one_of(st.none(), st.text(max_size=80)),
       st.one_of(st.none(), st.text(max_size=30)),
       st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4))  # fmt: skip
def test_plivo_v3_fuzz_never_raises(url: str, sig: str | None, nonce: str | None,
                                    params: dict[str, str]) -> None:  # fmt: skip
    assert V3Checker("tok").check("POST", "https://h/" + url, params, sig, nonce) in (True, False)


def test_plivo_answer_streams_bidirectionally_and_keeps_the_call() -> None:
    doc = ET.fromstring(
        answer.stream("wss://h/plivo/media", {"a": "1 2"}, "audio/x-l16;rate=16000")
    )
    stream = doc.find("Stream")
    assert stream is not None and stream.text == "wss://h/plivo/media?a=1+2"
    assert stream.get("bidirectional") == stream.get("keepCallAlive") == "true"
    with pytest.raises(ValueError):
        answer.stream("wss://h", {}, "audio/x-wav")
    dial = ET.fromstring(answer.dial("sip:bob@example.com")).find("Dial/User")
    assert dial is not None and dial.text == "sip:bob@example.com"
