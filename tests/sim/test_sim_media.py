"""The simulated Twilio Media Stream, driven with invented times: no sockets, no event loop."""

from __future__ import annotations

import base64

import orjson
import pytest

from gateway.sim.media import (
    FRAME_BYTES,
    Inbound,
    LogKind,
    MarkEcho,
    MediaStreamSim,
)

SID = "MZ" + "0" * 32
TONE = bytes(range(0, 160))  # arbitrary non-silent mu-law


def started(t: float = 0.0, **kwargs: object) -> MediaStreamSim:
    sim = MediaStreamSim(stream_sid=SID, **kwargs)  # type: ignore[arg-type]
    sim.connected()
    sim.start(t)
    return sim


def js(obj: object) -> str:
    return orjson.dumps(obj).decode()


def media_msg(payload: bytes, sid: str = SID) -> str:
    return js({"event": "media", "streamSid": sid, "media": {"payload": b64(payload)}})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def mark_msg(name: str) -> str:
    return orjson.dumps({"event": "mark", "streamSid": SID, "mark": {"name": name}}).decode()


CLEAR = orjson.dumps({"event": "clear", "streamSid": SID}).decode()


# ----------------------------------------------------------------------- Twilio -> gateway


def test_twilio_connected_shape() -> None:
    msg = orjson.loads(MediaStreamSim().connected())
    assert msg == {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def test_twilio_start_carries_ids_format_and_parameters() -> None:
    sim = MediaStreamSim(custom_parameters={"route": "bot", "lang": "en-US"})
    msg = orjson.loads(sim.start(10.0))
    start = msg["start"]
    assert msg["event"] == "start"
    assert msg["sequenceNumber"] == "1"
    assert msg["streamSid"] == start["streamSid"] == sim.stream_sid
    for key, prefix in (("streamSid", "MZ"), ("callSid", "CA"), ("accountSid", "AC")):
        assert start[key].startswith(prefix) and len(start[key]) == 34
        int(start[key][2:], 16)  # 32 hex digits
    assert start["tracks"] == ["inbound"]
    assert start["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert start["customParameters"] == {"route": "bot", "lang": "en-US"}


def test_twilio_media_counts_as_strings_from_stream_start() -> None:
    sim = started(100.0)
    msgs = [orjson.loads(sim.media(TONE, 100.0 + k * 0.02)) for k in range(3)]
    assert [m["sequenceNumber"] for m in msgs] == ["2", "3", "4"]
    assert [m["media"]["chunk"] for m in msgs] == ["1", "2", "3"]
    assert [m["media"]["timestamp"] for m in msgs] == ["0", "20", "40"]
    assert all(m["media"]["track"] == "inbound" and m["streamSid"] == SID for m in msgs)
    assert base64.b64decode(msgs[0]["media"]["payload"]) == TONE


def test_twilio_sequence_increases_over_every_message_kind() -> None:
    sim = started()
    sim.receive(mark_msg("m"), 0.0)  # nothing buffered: echo due at once
    (echo,) = sim.advance(0.0).echoes
    out = [sim.media(TONE, 0.0), sim.dtmf("5", 0.01), sim.echo_message(echo), sim.stop(0.02)]
    seqs = [orjson.loads(m)["sequenceNumber"] for m in out]
    assert seqs == ["2", "3", "4", "5"]


def test_twilio_dtmf_and_stop_shapes() -> None:
    sim = started()
    dtmf = orjson.loads(sim.dtmf("#", 1.0))
    assert dtmf["event"] == "dtmf" and dtmf["streamSid"] == SID
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "#"}
    stop = orjson.loads(sim.stop(2.0))
    assert stop["event"] == "stop"
    assert stop["stop"] == {"accountSid": sim.account_sid, "callSid": sim.call_sid}


def test_twilio_dtmf_rejects_non_digit() -> None:
    with pytest.raises(ValueError, match="DTMF"):
        started().dtmf("x", 0.0)


def test_twilio_media_before_start_is_local_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        MediaStreamSim().media(TONE, 0.0)


# ------------------------------------------------------------------------------- playout


def test_twilio_playout_starts_on_arrival_and_plays_in_real_time() -> None:
    sim = started()
    sim.receive(media_msg(TONE * 3), 1.0)  # 60 ms arrives at t=1.0
    assert sim.advance(1.0).audio == []
    first = sim.advance(1.02).audio
    assert [(p.time, len(p.ulaw)) for p in first] == [(1.0, 160)]
    second = sim.advance(1.05).audio
    assert [(p.time, len(p.ulaw)) for p in second] == [(1.02, 240)]  # 1.02-1.05
    assert sim.buffered_seconds == pytest.approx(0.01)


def test_twilio_playout_waits_when_dry_and_restarts_on_next_audio() -> None:
    sim = started()
    sim.receive(media_msg(TONE), 1.0)
    assert b"".join(p.ulaw for p in sim.advance(2.0).audio) == TONE  # played 1.00-1.02
    sim.receive(media_msg(TONE), 3.0)
    (piece,) = sim.advance(3.5).audio
    assert piece.time == 3.0  # the clock waited: no catch-up burst


def test_twilio_playout_appends_any_size_in_order() -> None:
    sim = started()
    sim.receive(media_msg(b"\x01" * 50), 0.0)
    sim.receive(media_msg(b"\x02" * 300), 0.001)
    played = b"".join(p.ulaw for p in sim.advance(1.0).audio)
    assert played == b"\x01" * 50 + b"\x02" * 300


def test_twilio_playout_has_no_drift_over_a_long_run() -> None:
    sim = started()
    sim.receive(media_msg(TONE * 3000), 0.0)  # 60 s
    total = 0
    now = 0.0
    for _ in range(2999):
        now += 0.02
        total += sum(len(p.ulaw) for p in sim.advance(now).audio)
    assert total == 2999 * FRAME_BYTES


def test_twilio_mark_echoed_when_playback_reaches_it() -> None:
    sim = started()
    sim.receive(media_msg(TONE), 0.0)
    sim.receive(mark_msg("a"), 0.0)
    sim.receive(media_msg(TONE), 0.0)
    sim.receive(mark_msg("b"), 0.0)
    assert sim.advance(0.019).echoes == []
    assert sim.advance(0.02).echoes == [MarkEcho("a", 0.02)]
    assert sim.advance(0.039).echoes == []
    assert sim.advance(0.05).echoes == [MarkEcho("b", 0.04)]


def test_twilio_marks_echoed_in_order_when_reached_together() -> None:
    sim = started()
    for name in ("1", "2", "3"):
        sim.receive(media_msg(TONE), 0.0)
        sim.receive(mark_msg(name), 0.0)
    echoes = sim.advance(1.0).echoes
    assert [e.name for e in echoes] == ["1", "2", "3"]
    assert [e.time for e in echoes] == pytest.approx([0.02, 0.04, 0.06])
    assert not any(e.cleared for e in echoes)


def test_twilio_mark_echoed_at_once_when_buffer_empty() -> None:
    sim = started()
    result = sim.receive(mark_msg("idle"), 5.0)
    assert result == Inbound("mark", name="idle")
    assert sim.advance(5.0).echoes == [MarkEcho("idle", 5.0)]


def test_twilio_mark_after_played_out_audio_echoed_at_once() -> None:
    sim = started()
    sim.receive(media_msg(TONE), 0.0)
    sim.receive(mark_msg("late"), 1.0)  # the audio finished at 0.02
    echoes = sim.advance(1.0).echoes
    assert echoes == [MarkEcho("late", 1.0)]


def test_twilio_clear_drops_audio_and_echoes_pending_marks_at_once() -> None:
    sim = started()
    for name in ("1", "2", "3"):
        sim.receive(media_msg(TONE), 0.0)
        sim.receive(mark_msg(name), 0.0)
    played = sim.advance(0.03)
    assert [e.name for e in played.echoes] == ["1"]
    assert sim.receive(CLEAR, 0.03) == Inbound("clear")
    out = sim.advance(0.03)
    assert out.echoes == [MarkEcho("2", 0.03, cleared=True), MarkEcho("3", 0.03, cleared=True)]
    assert sim.buffered_seconds == 0
    assert sim.advance(1.0).audio == []  # the cleared audio never plays
    assert sim.bytes_cleared == 3 * 160 - 240
    assert [e.kind for e in sim.log if e.kind is LogKind.CLEAR] == [LogKind.CLEAR]


def test_twilio_clear_then_new_audio_plays_from_arrival() -> None:
    sim = started()
    sim.receive(media_msg(TONE * 10), 0.0)
    sim.receive(CLEAR, 0.05)
    sim.receive(media_msg(b"\x05" * 160), 0.06)
    (piece,) = sim.advance(0.1).audio[-1:]
    assert piece.time == pytest.approx(0.06) and piece.ulaw == b"\x05" * 160


def test_twilio_echo_message_shape() -> None:
    sim = started()
    msg = orjson.loads(sim.echo_message(MarkEcho("item:17", 0.0)))
    assert msg == {
        "event": "mark",
        "sequenceNumber": "2",
        "streamSid": SID,
        "mark": {"name": "item:17"},
    }


def test_twilio_log_records_receipts_and_echoes_with_times() -> None:
    sim = started()
    sim.receive(media_msg(TONE), 0.5)
    sim.receive(mark_msg("m"), 0.5)
    sim.advance(1.0)
    kinds = [(e.time, e.kind) for e in sim.log]
    assert kinds == [(0.5, LogKind.MEDIA), (0.5, LogKind.MARK), (0.52, LogKind.MARK_ECHO)]


# ----------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (js({"event": "play", "streamSid": SID}), "unknown event"),
        (js({"streamSid": SID}), "unknown event"),
        (js({"event": "clear"}), "missing streamSid"),
        (js({"event": "clear", "streamSid": "MZother"}), "wrong streamSid"),
        (js({"event": "media", "streamSid": SID, "media": {}}), "missing media.payload"),
        (js({"event": "media", "streamSid": SID, "media": {"payload": "@@@"}}), "base64"),
        (media_msg(b"RIFF\x24\x00\x00\x00WAVEfmt "), "WAV header"),
        (js({"event": "mark", "streamSid": SID, "mark": {"name": 5}}), "mark.name"),
    ],
)
def test_gateway_message_invalid_recorded_as_violation(message: str, reason: str) -> None:
    sim = started()
    result = sim.receive(message, 1.0)
    assert result.event == "invalid"
    assert len(sim.violations) == 1 and reason in sim.violations[0]
    assert sim.buffered_seconds == 0 and sim.media_received == 0
    # The stream carries on: a good message right after is accepted.
    assert sim.receive(media_msg(TONE), 1.0).event == "media"


def test_gateway_message_before_start_is_violation() -> None:
    sim = MediaStreamSim(stream_sid=SID)
    assert sim.receive(CLEAR, 0.0).event == "invalid"
    assert "before start" in sim.violations[0]


def test_gateway_binary_frame_is_violation() -> None:
    sim = started()
    assert sim.receive(media_msg(TONE).encode(), 0.0, binary=True).event == "invalid"
    assert "binary" in sim.violations[0]


def test_gateway_message_after_stop_is_ignored() -> None:
    sim = started()
    sim.stop(1.0)
    assert sim.receive(media_msg(TONE), 1.1) == Inbound("ignored")
    assert sim.violations == [] and sim.media_received == 0
