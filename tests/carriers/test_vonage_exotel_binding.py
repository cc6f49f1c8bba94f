"""A Vonage or Exotel stream serves only the call its answer was for: a socket naming another
call, a forged or missing token, or no credentials is closed before any engine is opened."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from conversation import EchoRecorder, gateway
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.config import Settings
from gateway.sim.carriers.vonage import new_uuid, sign_webhook

SECRET = "vonage-signature-secret-0123456789"
KEY, TOKEN = "exo-key", "exo-token-0123456789"
BASIC = "Basic " + base64.b64encode(f"{KEY}:{TOKEN}".encode()).decode()


async def closed_with(url: str, first: list[str], headers: dict[str, str] | None = None) -> int:
    """Open ``url``, send ``first``, and return the close code the gateway ends it with."""
    async with connect(url, additional_headers=headers or {}, open_timeout=5) as ws:
        for message in first:
            await ws.send(message)
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
        assert ws.close_code is not None
        return ws.close_code


async def test_vonage_socket_for_another_call_than_its_token_is_refused():
    engine = EchoRecorder()
    async with gateway(Settings(vonage_signature_secret=SECRET), engine) as (url, _):
        body = json.dumps({"uuid": new_uuid(), "from": "15005550006", "to": "15005550001"})
        async with httpx.AsyncClient() as client:
            token = sign_webhook(SECRET, body.encode(), time.time())
            answer = await client.post(
                url + "/vonage/answer",
                content=body,
                headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
            )
        [connect_action] = answer.json()
        headers = connect_action["endpoint"][0]["headers"]
        ws_url = url.replace("http", "ws") + "/vonage/media"
        forged = {**headers, "call_uuid": new_uuid()}  # the token names the other call
        connected = {"event": "websocket:connected", "content-type": "audio/l16;rate=8000"}
        code = await closed_with(ws_url, [json.dumps({**connected, **forged})])
        assert code == 1008
        untokened = {k: v for k, v in headers.items() if k != "stream_token"}
        assert await closed_with(ws_url, [json.dumps({**connected, **untokened})]) == 1008
    assert engine.sessions == []


async def test_exotel_socket_without_basic_auth_or_with_a_forged_token_is_refused():
    engine = EchoRecorder()
    settings = Settings(exotel_api_key=KEY, exotel_api_token=TOKEN)
    async with gateway(settings, engine) as (url, _):
        ws_url = url.replace("http", "ws") + "/exotel/media"
        with pytest.raises(InvalidStatus) as refused:  # closed before it was accepted
            await closed_with(ws_url, ['{"event":"connected"}'])
        assert refused.value.response.status_code == 403
        start = {
            "event": "start",
            "stream_sid": "a" * 32,
            "start": {
                "stream_sid": "a" * 32,
                "call_sid": "b" * 32,
                "custom_parameters": {"stream_token": "v1.9999999999." + "0" * 40},
            },
        }
        code = await closed_with(ws_url, [json.dumps(start)], {"authorization": BASIC})
        assert code == 1008
    assert engine.sessions == []
