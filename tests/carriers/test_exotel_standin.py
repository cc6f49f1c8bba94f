"""The Exotel stand-in is as strict as Exotel: chunk sizes, stream ids, marks, clear, and the
dynamic URL's custom parameters."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.sim.carriers.exotel import ExotelDialer, ExotelMediaSim
from gateway.sim.report import CallReport


def sim() -> ExotelMediaSim:
    stand_in = ExotelMediaSim("c" * 32, "+911", "+912", {"stream_token": "t"})
    connected, start = stand_in.open_messages(0.0)
    assert json.loads(connected) == {"event": "connected"}
    body = json.loads(start)
    assert body["start"]["call_sid"] == "c" * 32 and body["sequence_number"] == "1"
    return stand_in


def media(stand_in: ExotelMediaSim, size: int) -> str:
    payload = base64.b64encode(b"\x00\x01" * (size // 2)).decode()
    return json.dumps(
        {"event": "media", "stream_sid": stand_in.stream_sid, "media": {"payload": payload}}
    )


def test_standin_plays_chunks_and_echoes_marks_in_order():
    stand_in = sim()
    assert stand_in.receive(media(stand_in, 1600), 0.0).event == "media"
    mark = {"event": "mark", "stream_sid": stand_in.stream_sid, "mark": {"name": "0:100"}}
    stand_in.receive(json.dumps(mark), 0.0)
    assert stand_in.advance(0.05).echoes == []
    [echo] = stand_in.advance(0.11).echoes
    assert json.loads(stand_in.echo_message(echo))["mark"] == {"name": "0:100"}
    assert stand_in.short_chunks == 0


@pytest.mark.parametrize("size", [100, 330, 100_320])
def test_standin_refuses_chunks_exotel_cannot_play(size):
    stand_in = sim()
    assert stand_in.receive(media(stand_in, size), 0.0).event == "invalid"


def test_standin_counts_short_chunks_and_needs_the_stream_sid():
    stand_in = sim()
    stand_in.receive(media(stand_in, 640), 0.0)
    assert stand_in.short_chunks == 1
    other = json.dumps({"event": "clear", "stream_sid": "x"})
    assert stand_in.receive(other, 0.0).event == "invalid"
    assert stand_in.receive(b"\x00", 0.0, binary=True).event == "invalid"


def test_standin_clear_drops_audio_and_marks_without_echo():
    stand_in = sim()
    stand_in.receive(media(stand_in, 3200), 0.0)
    mark = {"event": "mark", "stream_sid": stand_in.stream_sid, "mark": {"name": "0:200"}}
    stand_in.receive(json.dumps(mark), 0.0)
    clear = json.dumps({"event": "clear", "stream_sid": stand_in.stream_sid})
    assert stand_in.receive(clear, 0.05).event == "clear"
    assert stand_in.advance(1.0).echoes == [] and stand_in.bytes_cleared > 0


def test_dialer_takes_the_stream_url_and_holds_exotel_to_three_parameters():
    dialer = ExotelDialer("key:token")
    report = CallReport(caller="+911", called="+912")
    hook = dialer.webhook(report, "http://gw")
    assert hook.headers["authorization"] == "Basic " + base64.b64encode(b"key:token").decode()
    ok = {"url": "ws://gw/exotel/media?sample-rate=8000&dialplan=a%2Fb%2Fc%2F&stream_token=t"}
    plan = dialer.answer(json.dumps(ok), "http://gw", report, keep_media_log=False)
    assert plan is not None and plan.path == "/exotel/media"
    assert isinstance(plan.sim, ExotelMediaSim)
    assert plan.sim.custom_parameters == {"dialplan": "a/b/c/", "stream_token": "t"}
    for bad in (
        {"url": "https://gw/x"},
        {"url": "ws://gw/x?a=1&b=2&c=3&d=4"},
        {"url": "ws://gw/x?t=" + "x" * 300},
        {"url": "ws://gw/x?sample-rate=16000"},
        ["ws://gw/x"],
    ):
        with pytest.raises(ValueError):
            dialer.answer(json.dumps(bad), "http://gw", report, keep_media_log=False)
