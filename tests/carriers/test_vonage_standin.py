"""The Vonage stand-in is as strict as Vonage: its wire rules and its reading of the NCCO."""

from __future__ import annotations

import json

import pytest

from gateway.sim.carriers.vonage import VonageDialer, VonageMediaSim
from gateway.sim.report import CallReport

HEADERS = {"call_uuid": "63f61863-4a51-4f6b-86e1-46edebcf9356", "stream_token": "t"}


def sim(rate: int = 8000) -> VonageMediaSim:
    stand_in = VonageMediaSim(f"audio/l16;rate={rate}", HEADERS)
    [connected] = stand_in.open_messages(0.0)
    assert json.loads(connected) == {
        "event": "websocket:connected",
        "content-type": f"audio/l16;rate={rate}",
        **HEADERS,
    }
    return stand_in


def test_standin_plays_whole_frames_and_echoes_notify_when_reached():
    stand_in = sim()
    assert stand_in.receive(b"\x00\x01" * 160, 0.0, binary=True).event == "media"
    stand_in.receive('{"action":"notify","payload":{"mark":"0:20"}}', 0.0)
    early = stand_in.advance(0.01)
    assert early.echoes == []
    late = stand_in.advance(0.03)
    [echo] = late.echoes
    assert json.loads(stand_in.echo_message(echo)) == {
        "event": "websocket:notify",
        "payload": {"mark": "0:20"},
    }


@pytest.mark.parametrize(
    "message, binary",
    [
        (b"\x00" * 100, True),  # not 20 ms at 8 kHz
        ("nonsense", False),
        ('{"action":"notify","payload":"x"}', False),
        ('{"action":"talk","text":"hi"}', False),
    ],
)
def test_standin_refuses_what_vonage_refuses(message, binary):
    stand_in = sim()
    assert stand_in.receive(message, 0.0, binary=binary).event == "invalid"
    assert len(stand_in.violations) == 1


def test_standin_clear_drops_audio_and_notifies_and_answers_cleared():
    stand_in = sim(16000)
    for _ in range(5):
        stand_in.receive(b"\x00\x01" * 320, 0.0, binary=True)
    stand_in.receive('{"action":"notify","payload":{"mark":"0:100"}}', 0.0)
    assert stand_in.receive('{"action":"clear"}', 0.02).event == "clear"
    [answer] = stand_in.advance(0.5).echoes
    assert stand_in.echo_message(answer) == b'{"event":"websocket:cleared"}'
    assert stand_in.marks_echoed == 0 and stand_in.bytes_cleared > 0


def test_dialer_reads_the_ncco_and_refuses_a_bad_one():
    report = CallReport(caller="+15005550006", called="+15005550001")
    dialer = VonageDialer("s" * 32)
    hook = dialer.webhook(report, "http://gw")
    assert hook.headers["authorization"].startswith("Bearer ")
    assert json.loads(hook.body)["uuid"] == report.call_sid
    ncco = [
        {
            "action": "connect",
            "from": "15005550001",
            "endpoint": [
                {
                    "type": "websocket",
                    "uri": "ws://gw/vonage/media",
                    "content-type": "audio/l16;rate=16000",
                    "headers": HEADERS,
                }
            ],
        }
    ]
    plan = dialer.answer(json.dumps(ncco), "http://gw", report, keep_media_log=False)
    assert plan is not None and plan.path == "/vonage/media"
    assert isinstance(plan.sim, VonageMediaSim) and plan.sim.rate == 16000
    assert dialer.answer("[]", "http://gw", report, keep_media_log=False) is None
    for bad in ('{"action":"talk"}', '[{"action":"dance"}]', '[{"action":"connect"}]'):
        with pytest.raises(ValueError):
            dialer.answer(bad, "http://gw", report, keep_media_log=False)
