"""A media stream serves only a call the gateway announced, once, and never names a file, a
REST resource or a log line with anything but a Twilio SID (issue 13, findings 1, 2, 5, 6)."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from pathlib import Path

import httpx
import orjson
import pytest
import websockets
from websockets.asyncio.client import connect

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.carriers.twilio.aio import _TwilioTransport
from gateway.carriers.twilio.control import TwilioRestControl
from gateway.carriers.twilio.stream import TwilioStream
from gateway.carriers.twilio.stream_token import TOKEN_PARAMETER, StreamTokens
from gateway.config import Settings
from gateway.ids import InvalidIdentifier
from gateway.ops.server import serve

SECRET = "binding-tests-stream-secret"
TOKENS = StreamTokens(SECRET.encode())
STREAM = "MZ" + "d" * 32
FRAME = base64.b64encode(b"\xff" * 160).decode()


def call_sid(n: int) -> str:
    return f"CA{n:032x}"


def start(call: str, params: dict[str, str] | None = None, stream: str = STREAM) -> str:
    return orjson.dumps(
        {
            "event": "start",
            "streamSid": stream,
            "start": {"streamSid": stream, "callSid": call, "customParameters": params or {}},
        }
    ).decode()


def signed(call: str, **params: str) -> dict[str, str]:
    return {**params, TOKEN_PARAMETER: TOKENS.issue(call, params, time.time())}


def media(stream: str = STREAM) -> str:
    return '{"event":"media","streamSid":"' + stream + '","media":{"payload":"' + FRAME + '"}}'


def refusals(app, kind: str) -> int:
    return app.state.metrics.refusals[kind]


@pytest.fixture
async def gateway(tmp_path):
    records = tmp_path / "records"
    settings = Settings(
        records_dir=str(records),
        recordings_dir=str(tmp_path / "recordings"),
        stream_secret=SECRET,
        start_timeout=2.0,
        first_media_timeout=0.6,
        media_silence_timeout=0.6,
    )
    app = create_app(settings, EchoEngine(rate=8000))
    async with serve(app) as url:
        yield url.replace("http", "ws") + "/twilio/media", app, tmp_path


async def closed_with(ws) -> int | None:
    with pytest.raises(websockets.ConnectionClosed):
        for _ in range(1000):
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code


@pytest.mark.parametrize(
    "bad",
    ["../outside", "/tmp/absolute", "CA" + "0" * 31 + "\x00", "CA1\nINFO forged"],
)
async def test_gateway_media_start_naming_no_call_writes_nothing_anywhere(gateway, bad):
    url, app, tmp = gateway

    def written() -> list[Path]:  # records and recordings; the call store's own files aside
        return sorted(p for p in tmp.rglob("*") if p.suffix in (".json", ".wav", ".part"))

    before = written()
    async with connect(url) as ws:
        await ws.send(start(bad, signed(bad)))
        assert await closed_with(ws) == 1008
    assert written() == before  # no record, no recording, inside or out
    assert not app.state.calls.active
    assert refusals(app, "bad-identifier") == 1


async def test_gateway_media_stream_without_a_token_is_refused(gateway):
    url, app, tmp = gateway
    async with connect(url) as ws:
        await ws.send(start(call_sid(1), {"from": "+15005550006"}))
        assert await closed_with(ws) == 1008
    assert refusals(app, "stream-token") == 1 and not app.state.calls.active
    assert not list((tmp / "records").glob("*.json"))  # no record of a call that never was


async def test_gateway_media_token_of_another_call_is_refused(gateway):
    url, app, _ = gateway
    async with connect(url) as ws:
        await ws.send(start(call_sid(2), signed(call_sid(3))))
        assert await closed_with(ws) == 1008
    assert refusals(app, "stream-token") == 1


async def test_gateway_media_second_stream_for_a_live_call_is_refused(gateway):
    url, app, tmp = gateway
    call = call_sid(4)
    async with connect(url) as first:
        await first.send(start(call, signed(call)))

        async def feed() -> None:  # audio keeps flowing, as Twilio's would
            while True:
                await first.send(media())
                await asyncio.sleep(0.02)

        feeder = asyncio.create_task(feed())
        for _ in range(200):
            if call in app.state.calls.active:
                break
            await asyncio.sleep(0.01)
        async with connect(url) as second:
            await second.send(start(call, signed(call), stream="MZ" + "e" * 32))
            assert await closed_with(second) == 1008
        assert list(app.state.calls.active) == [call]  # the first call is untouched
        feeder.cancel()
        await first.send('{"event":"stop","streamSid":"' + STREAM + '"}')
        await closed_with(first)
    for _ in range(200):
        if (tmp / "records" / f"{call}.json").exists():
            break
        await asyncio.sleep(0.01)
    record = orjson.loads((tmp / "records" / f"{call}.json").read_bytes())
    assert record["outcome"] == "completed" and not app.state.calls.active
    assert refusals(app, "duplicate-stream") == 1


async def test_gateway_media_start_then_nothing_is_closed(gateway):
    url, app, tmp = gateway
    call = call_sid(5)
    async with connect(url) as ws:
        await ws.send(start(call, signed(call)))
        assert await closed_with(ws) == 1008
    await asyncio.sleep(0.1)
    record = orjson.loads((tmp / "records" / f"{call}.json").read_bytes())
    assert record["outcome"] == "media-timeout"
    assert refusals(app, "first-media-timeout") == 1 and not app.state.calls.active


async def test_gateway_media_silence_after_audio_is_closed(gateway):
    url, app, tmp = gateway
    call = call_sid(6)
    async with connect(url) as ws:
        await ws.send(start(call, signed(call)))
        for _ in range(5):
            await ws.send(media())
        assert await closed_with(ws) == 1008
    assert refusals(app, "media-silence-timeout") == 1


async def test_gateway_media_invalid_utf8_fails_that_stream_with_1007_quietly(gateway, caplog):
    url, app, _ = gateway
    call = call_sid(7)
    with caplog.at_level(logging.INFO):
        async with connect(url) as ws:
            await ws.send(start(call, signed(call)))
            await ws.send(b'{"event":"media","x":"\xff\xfe"}', text=True)
            assert await closed_with(ws) == 1007
        for _ in range(200):
            if not app.state.calls.active:
                break
            await asyncio.sleep(0.01)
    assert not app.state.calls.active
    assert refusals(app, "invalid-utf8") == 1
    assert not [r for r in caplog.records if r.exc_info], "a peer's garbage logged a traceback"


async def test_gateway_media_writer_ends_quietly_when_the_peer_is_gone():
    class GoneSocket:
        async def send_text(self, text: str) -> None:
            raise RuntimeError('Cannot call "send" once a close message has been sent.')

    stream = TwilioStream()
    stream.receive_message(start(call_sid(8)), 0.0)
    transport = _TwilioTransport(stream, GoneSocket())  # type: ignore[arg-type]
    stream.send_audio(b"\xff" * 160)
    transport.flush()
    await asyncio.wait_for(transport.run_writer(), 1)  # returns; raised into the TaskGroup before


def test_rest_control_refuses_a_sid_that_would_reach_another_resource():
    for sid in (call_sid(9) + "/../../IncomingPhoneNumbers/PN" + "0" * 32, "../x", ""):
        with pytest.raises(InvalidIdentifier):
            TwilioRestControl(object(), sid)  # type: ignore[arg-type]


def test_stream_token_expires_and_attempt_tokens_serve_once():
    tokens = StreamTokens(b"k" * 32, ttl=60)
    call = call_sid(10)
    token = tokens.issue(call, {"route": "sales"}, now=1000.0)
    params = {"route": "sales", TOKEN_PARAMETER: token}
    assert tokens.verify(call, params, 1030.0) is None
    assert tokens.verify(call, params, 1061.0) == "stream token expired"
    assert tokens.verify(call, {**params, "route": "admin"}, 1030.0) is not None
    outbound = {"attempt": "spring:1:1"}
    outbound[TOKEN_PARAMETER] = tokens.issue("attempt:spring:1:1", outbound, 1000.0)
    assert tokens.verify(call_sid(11), outbound, 1001.0) is None
    assert tokens.verify(call_sid(12), outbound, 1002.0) == "stream token already used"


async def test_gateway_voice_webhook_refuses_a_call_sid_that_is_not_one():
    app = create_app(Settings(stream_secret=SECRET), EchoEngine())
    async with serve(app) as url, httpx.AsyncClient() as client:
        bad = await client.post(url + "/twilio/voice", data={"CallSid": "CA1/../x\n"})
        good = await client.post(url + "/twilio/voice", data={"CallSid": call_sid(13)})
    assert bad.status_code == 400
    assert good.status_code == 200 and TOKEN_PARAMETER in good.text


async def test_gateway_media_logs_a_peers_garbage_bounded_on_one_line(gateway, caplog):
    url, app, _ = gateway
    call = call_sid(14)
    with caplog.at_level(logging.WARNING, logger="overtalk.twilio"):
        async with connect(url) as ws:
            await ws.send(start(call, signed(call)))
            await ws.send(orjson.dumps({"event": "x\nFORGED " + "A" * 7000}).decode())
            await ws.send(media())
            await ws.send('{"event":"stop","streamSid":"' + STREAM + '"}')
            await closed_with(ws)
    lines = [r.getMessage() for r in caplog.records if "ignored message" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and len(lines[0]) < 400


async def test_gateway_metrics_report_each_refusal_by_kind(gateway):
    url, app, _ = gateway
    async with connect(url) as ws:
        await ws.send(start(call_sid(15)))
        await closed_with(ws)
    base = url.replace("ws", "http", 1).removesuffix("/twilio/media")
    async with httpx.AsyncClient() as client:
        text = (await client.get(base + "/metrics")).text
    assert 'overtalk_refusals_total{kind="stream-token"} 1.0' in text
