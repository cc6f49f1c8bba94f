"""Metrics, per-call records and stereo recordings, end to end over the simulator."""

from __future__ import annotations

import json
import time
import wave

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript


def speech_like(ms: int, freq: float = 300.0) -> bytes:
    t = np.arange(ms * 8) / 8000
    return (np.sin(2 * np.pi * freq * t) * 9000).astype("<i2").tobytes()


def barge_in_script() -> CallerScript:
    # The bot echoes 1.5 s; the caller talks over it 400 ms in.
    return (
        CallerScript()
        .say(speech_like(1500), "long")
        .barge_in(400, speech_like(500, 500), "interrupt")
        .wait_for_bot(300, timeout_s=5)
    )


def samples(metrics_text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_gateway_metrics_count_calls_clears_and_lateness(tmp_path):
    app = create_app(Settings(records_dir=str(tmp_path)), EchoEngine(rate=16000))
    async with serve(app) as url:
        report = await place_call(url, barge_in_script(), auth_token=None)
        async with httpx.AsyncClient() as http:
            text = (await http.get(url + "/metrics")).text
    assert report.clears_received == 1
    got = samples(text)
    assert got[("overtalk_calls_total", (("outcome", "completed"),))] == 1
    assert got[("overtalk_active_calls", ())] == 0
    assert got[("overtalk_clear_latency_seconds_count", ())] == 1
    assert got[("overtalk_frame_lateness_seconds_count", ())] > 10  # one per pacing tick
    record = json.loads((tmp_path / f"{report.call_sid}.json").read_text())
    kinds = [kind for _, kind, _ in record["events"]]
    bot = [k for k in kinds if k in ("bot-start", "clear", "bot-stop")]
    assert bot == ["bot-start", "clear", "bot-start", "bot-stop"]
    assert kinds[-1] == "end"
    assert record["frame_lateness"]["counts"] and record["outcome"] == "completed"


async def test_gateway_metrics_count_protocol_errors_by_kind(tmp_path):
    from websockets.asyncio.client import connect

    app = create_app(Settings(), EchoEngine())
    stream, call = "MZ" + "1" * 32, "CA" + "1" * 32
    token = app.state.stream_tokens.issue(call, {}, time.time())
    async with serve(app) as url:
        async with connect(url.replace("http", "ws") + "/twilio/media") as ws:
            await ws.send(json.dumps({"event": "start", "start": {
                "streamSid": stream, "callSid": call, "customParameters": {"stream_token": token},
            }}))  # fmt: skip
            await ws.send("{oops")
            await ws.send(json.dumps({"event": "teleport", "streamSid": stream}))
            await ws.send(json.dumps({"event": "stop", "streamSid": stream}))
            await ws.wait_closed()
        async with httpx.AsyncClient() as http:
            text = (await http.get(url + "/metrics")).text
    got = samples(text)
    assert got[("overtalk_websocket_errors_total", (("kind", "malformed-json"),))] == 1
    assert got[("overtalk_websocket_errors_total", (("kind", "unknown-event"),))] == 1


async def test_gateway_records_what_the_caller_heard_in_stereo(tmp_path):
    app = create_app(Settings(recordings_dir=str(tmp_path)), EchoEngine(rate=16000))
    async with serve(app) as url:
        report = await place_call(url, barge_in_script(), auth_token=None)
    with wave.open(str(tmp_path / f"{report.call_sid}.wav")) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        audio = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    caller, bot = audio[:, 0].astype(float), audio[:, 1].astype(float)

    def loud(x: np.ndarray) -> np.ndarray:  # 20 ms windows above -30 dBFS
        frames = x[: len(x) // 160 * 160].reshape(-1, 160)
        return np.sqrt((frames**2).mean(axis=1)) > 1000

    caller_on, bot_on = loud(caller), loud(bot)
    assert caller_on.sum() >= 90  # 1.5 s + 0.5 s of caller speech
    # The bot echoed the first 1.5 s but was cut by the barge-in: less than 1.5 s was heard
    # before its second reply, and the caller's 300 Hz / bot channels are not the same signal.
    first_bot = np.argmax(bot_on)
    assert first_bot > 0
    heard_first = np.argmax(~bot_on[first_bot:])
    assert 5 <= heard_first < 75


async def test_gateway_calls_show_renders_timeline_of_a_real_call(tmp_path):
    import xml.etree.ElementTree as ET

    from gateway.cli import main

    app = create_app(
        Settings(records_dir=str(tmp_path), recordings_dir=str(tmp_path)), EchoEngine(rate=16000)
    )
    async with serve(app) as url:
        report = await place_call(url, barge_in_script(), auth_token=None)
    out = tmp_path / "timeline.html"
    code = main(["calls", "show", report.call_sid, "--records-dir", str(tmp_path),
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    page = out.read_text()
    svg = ET.fromstring(page[page.index("<svg") : page.index("</svg>") + 6])
    ns = "{http://www.w3.org/2000/svg}"
    clears = [el for el in svg.iter(ns + "line") if el.get("stroke") == "#e53e3e"]
    assert len(clears) == 1  # the one barge-in
    bars = [el for el in svg.iter(ns + "rect") if el.get("fill") in ("#2b6cb0", "#2f855a")]
    assert len(bars) > 50  # both channels' loudness, from the recording
    marks = [el for el in svg.iter(ns + "line") if el.get("stroke") == "#a0aec0"]
    assert (
        len(marks) == json.loads((tmp_path / f"{report.call_sid}.json").read_text())["marks_echoed"]
    )
    assert "interrupt -&gt; clear written" in page


def test_gateway_calls_show_missing_record_fails_clearly(tmp_path, capsys):
    from gateway.cli import main

    assert main(["calls", "show", "CAnope", "--records-dir", str(tmp_path)]) == 1
    assert "cannot read the record of call CAnope" in capsys.readouterr().err
