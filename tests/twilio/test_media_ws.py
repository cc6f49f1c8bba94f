"""The Media Streams websocket through a real uvicorn server and a real websocket client."""

import asyncio
import base64
import json
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
import websockets
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.audio.g711 import ulaw_encode
from gateway.carriers.twilio.stream_token import TOKEN_PARAMETER, StreamTokens
from gateway.config import Settings
from gateway.ops.server import serve

SID = "MZ" + "c" * 32
#: The gateways under test share this stream-token key, so the caller can present tokens.
STREAM_SECRET = "stream-secret-for-tests"
TOKENS = StreamTokens(STREAM_SECRET.encode())


def call_sid(n: int) -> str:
    return f"CA{n:032d}"


def start(call: str, token: bool = True) -> str:
    """A ``start`` for ``call`` with the token the gateway's TwiML would have carried."""
    params = {"from": "+15005550006", "to": "+15005550001"}
    if token:
        params[TOKEN_PARAMETER] = TOKENS.issue(call, params, time.time())
    return orjson.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": SID,
            "start": {
                "accountSid": "AC" + "0" * 32,
                "streamSid": SID,
                "callSid": call,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": params,
            },
        }
    ).decode()


def media(payload: bytes, ts: int) -> str:
    return orjson.dumps(
        {
            "event": "media",
            "streamSid": SID,
            "media": {
                "track": "inbound",
                "timestamp": str(ts),
                "payload": base64.b64encode(payload).decode(),
            },
        }
    ).decode()


def frames(pcm: np.ndarray) -> list[bytes]:
    data = ulaw_encode(pcm.astype(np.int16).tobytes())
    data += b"\xff" * (-len(data) % 160)
    return [data[i : i + 160] for i in range(0, len(data), 160)]


SILENCE = [b"\xff" * 160] * 30  # 600 ms


async def wait_for(predicate, limit: float = 5.0):
    """Poll ``predicate`` until it is true; fail after ``limit`` seconds (never pass by luck)."""
    deadline = asyncio.get_running_loop().time() + limit
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def ledger(records: Path, call: str) -> dict:
    return json.loads((records / f"{call}.json").read_text())


@pytest.fixture
async def gateway(tmp_path):
    settings = Settings(records_dir=str(tmp_path), start_timeout=0.5, stream_secret=STREAM_SECRET)
    app = create_app(settings, EchoEngine(rate=16000))
    async with serve(app) as url:
        yield url.replace("http", "ws") + "/twilio/media", app, tmp_path


class Caller:
    """A minimal Twilio side: sends frames, collects what the gateway sends, echoes marks."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.received: list[dict] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = orjson.loads(raw)
                self.received.append(msg)
        except websockets.ConnectionClosed:
            pass

    def events(self, kind: str) -> list[dict]:
        return [m for m in self.received if m["event"] == kind]

    async def send_frames(self, chunks: list[bytes], ts: int = 0, realtime: bool = False) -> int:
        for chunk in chunks:
            await self.ws.send(media(chunk, ts))
            ts += 20
            if realtime:
                await asyncio.sleep(0.02)
        return ts

    async def echo_marks(self) -> None:
        for m in self.events("mark"):
            await self.ws.send(
                orjson.dumps({"event": "mark", "streamSid": SID, "mark": m["mark"]}).decode()
            )


async def test_gateway_media_echo_call_end_to_end(gateway, speech_8k):
    url, app, records = gateway
    async with connect(url) as ws:
        caller = Caller(ws)
        await ws.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        await ws.send(start(call_sid(1)))
        utterance = frames(speech_8k)
        ts = await caller.send_frames(SILENCE + utterance + SILENCE)
        await wait_for(lambda: len(caller.events("media")) >= len(utterance) - 3)
        await caller.echo_marks()
        await caller.send_frames(SILENCE, ts)
        assert all(
            len(base64.b64decode(m["media"]["payload"])) == 160 for m in caller.events("media")
        )
        assert all(m["mark"]["name"].startswith("0:") for m in caller.events("mark"))
        assert caller.events("clear") == []
        await ws.send(orjson.dumps({"event": "stop", "streamSid": SID, "stop": {}}).decode())
        await wait_for(lambda: (records / f"{call_sid(1)}.json").exists())
    record = ledger(records, call_sid(1))
    assert record["end_reason"] == "stream stopped"
    assert record["frames_in"] == 60 + len(utterance) + 30
    assert record["marks_echoed"] >= 1 and record["protocol_violations"] == 0
    assert not app.state.calls.active


async def test_gateway_media_barge_in_sends_clear_and_nothing_stale(gateway, speech_8k):
    url, _, records = gateway
    async with connect(url) as ws:
        caller = Caller(ws)
        await ws.send(start(call_sid(2)))
        long_speech = np.tile(speech_8k, 3)  # about 3 s of bot speech to talk over
        ts = await caller.send_frames(SILENCE + frames(long_speech) + SILENCE)
        await wait_for(lambda: len(caller.events("media")) >= 10)
        await caller.echo_marks()
        # The caller talks over the bot, in real time.
        await caller.send_frames(frames(speech_8k[:4000]), ts, realtime=True)
        await wait_for(lambda: caller.events("clear"))
        cleared_at = next(i for i, m in enumerate(caller.received) if m["event"] == "clear")
        # After the clear, only new-generation audio may follow (the caller's barge-in echoed).
        later_marks = [
            m["mark"]["name"] for m in caller.received[cleared_at:] if m["event"] == "mark"
        ]
        assert all(not name.startswith("0:") for name in later_marks)
        await ws.close()
    await wait_for(lambda: (records / f"{call_sid(2)}.json").exists())
    record = ledger(records, call_sid(2))
    assert record["clears"] == 1
    assert len(record["clear_latencies"]) == 1 and record["clear_latencies"][0] < 1.0
    heard = record["heard_at_clear"][0]
    assert 0 < heard < len(long_speech) / 8  # somewhere inside the bot's utterance
    assert record["end_reason"] == "caller disconnected"


@pytest.mark.parametrize(
    "garbage",
    [
        "{not json",
        '{"event": "teleport"}',
        '{"event": "media", "streamSid": "' + SID + '", "media": {"payload": "!!!"}}',
        media(b"\xff" * 1700, 0),
        '{"event": "start", "start": {"streamSid": "MZx", "callSid": "CAx"}}',
        '"just a string"',
    ],
    ids=[
        "malformed-json",
        "unknown-event",
        "bad-base64",
        "oversized-payload",
        "second-start",
        "not-object",
    ],
)
async def test_gateway_media_bad_message_is_ignored_and_call_continues(gateway, garbage):
    url, _, records = gateway
    call = call_sid(3)
    async with connect(url) as ws:
        caller = Caller(ws)
        await ws.send(start(call))
        await ws.send(garbage)
        await caller.send_frames(SILENCE)
        await ws.send(orjson.dumps({"event": "stop", "streamSid": SID, "stop": {}}).decode())
        await wait_for(lambda: (records / f"{call}.json").exists())
    record = ledger(records, call)
    assert record["protocol_violations"] == 1
    assert record["frames_in"] == len(SILENCE)  # every good frame after the bad one arrived
    assert record["end_reason"] == "stream stopped"


async def test_gateway_media_flood_ends_that_call_only(gateway):
    url, _, records = gateway
    async with connect(url) as healthy, connect(url) as flooder:
        good = Caller(healthy)
        await healthy.send(start(call_sid(10)))
        await flooder.send(start(call_sid(11)))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for i in range(5000):
                await flooder.send(media(b"\xff" * 160, i * 20))
            await flooder.recv()
        assert closed.value.rcvd.code == 1008
        await good.send_frames(SILENCE)
        await healthy.send(orjson.dumps({"event": "stop", "streamSid": SID, "stop": {}}).decode())
        await wait_for(lambda: (records / f"{call_sid(10)}.json").exists())
    assert ledger(records, call_sid(10))["frames_in"] == len(SILENCE)
    assert "flood" in ledger(records, call_sid(11))["end_reason"]


async def test_gateway_media_oversized_frame_closes_with_1009(gateway):
    url, _, _ = gateway
    async with connect(url, max_size=None) as ws:
        await ws.send(start(call_sid(12)))
        await ws.send("x" * 100_000)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1009


async def test_gateway_media_without_start_times_out(gateway):
    url, app, _ = gateway
    async with connect(url) as ws:
        await ws.send(media(b"\xff" * 160, 0))  # media before start: ignored
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1008
    assert not app.state.calls.active


async def test_gateway_media_client_vanishing_ends_call_cleanly(gateway, speech_8k):
    url, app, records = gateway
    ws = await connect(url)
    await ws.send(start(call_sid(13)))
    for chunk in SILENCE + frames(speech_8k) + SILENCE:
        await ws.send(media(chunk, 0))
    await wait_for(lambda: call_sid(13) in app.state.calls.active)
    ws.transport.abort()  # TCP reset, no close frame
    await wait_for(lambda: (records / f"{call_sid(13)}.json").exists())
    assert ledger(records, call_sid(13))["end_reason"] == "caller disconnected"
    assert not app.state.calls.active
    async with httpx.AsyncClient() as c:
        health = await c.get(url.replace("ws", "http").replace("/twilio/media", "/healthz"))
    assert health.json()["active_calls"] == 0


async def test_gateway_media_upgrade_signature_is_checked(tmp_path):
    token = "secret-token"
    settings = Settings(twilio_auth_token=token, public_url="https://bot.example.com")
    async with serve(create_app(settings, EchoEngine())) as base:
        url = base.replace("http", "ws") + "/twilio/media"
        signature = RequestValidator(token).compute_signature(
            "wss://bot.example.com/twilio/media", {}
        )
        async with connect(url, additional_headers={"X-Twilio-Signature": signature}) as ws:
            await ws.send(start(call_sid(20)))
            await ws.send(media(b"\xff" * 160, 0))
        for bad in ({}, {"X-Twilio-Signature": "forged"}):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(url, additional_headers=bad):
                    pass
            assert refused.value.response.status_code == 403


async def test_gateway_media_stop_while_bot_speaks_ends_quietly(gateway, speech_8k, caplog):
    url, _, records = gateway
    async with connect(url) as ws:
        caller = Caller(ws)
        await ws.send(start(call_sid(30)))
        await caller.send_frames(SILENCE + frames(np.tile(speech_8k, 3)) + SILENCE)
        await wait_for(lambda: len(caller.events("media")) >= 5)  # the bot is mid-utterance
        await ws.send(orjson.dumps({"event": "stop", "streamSid": SID, "stop": {}}).decode())
        await wait_for(lambda: (records / f"{call_sid(30)}.json").exists())
    record = ledger(records, call_sid(30))
    assert record["end_reason"] == "stream stopped" and record["errors"] == []
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_gateway_transport_drops_output_once_twilio_stopped():
    from gateway.carriers.twilio.aio import _TwilioTransport
    from gateway.carriers.twilio.stream import TwilioStream

    stream = TwilioStream()
    stream.receive_message(start(call_sid(31)), 0.0)
    stream.receive_message(orjson.dumps({"event": "stop", "streamSid": SID}).decode(), 0.0)
    transport = _TwilioTransport(stream, ws=None)  # type: ignore[arg-type]
    # A pacing timer that fires between Twilio's stop and the session's close:
    transport.send_frame(b"\xff" * 160)
    transport.send_mark("0:20")
    transport.send_clear()
    assert stream.messages_to_send() == []
