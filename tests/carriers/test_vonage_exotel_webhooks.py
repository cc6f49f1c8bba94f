"""The Vonage and Exotel webhooks as the carriers call them: GET or POST, signed or not, from
loopback or elsewhere."""

from __future__ import annotations

import json
import time

import httpx

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.config import Settings
from gateway.sim.carriers.vonage import new_uuid, sign_webhook

SECRET = "vonage-signature-secret-0123456789"


def client(settings: Settings, remote: str = "127.0.0.1") -> httpx.AsyncClient:
    app = create_app(settings, EchoEngine())
    transport = httpx.ASGITransport(app=app, client=(remote, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8080")


async def test_vonage_answer_by_get_on_a_loopback_gateway_connects_the_websocket():
    uuid = new_uuid()
    async with client(Settings(public_url="https://bot.example.com")) as c:
        r = await c.get("/vonage/answer", params={"uuid": uuid, "from": "1500", "to": "1501"})
        refused = await c.get("/vonage/answer", params={"uuid": "../../v1/calls"})
    assert r.status_code == 200
    [connect] = r.json()
    [endpoint] = connect["endpoint"]
    assert endpoint["uri"] == "wss://bot.example.com/vonage/media"
    assert endpoint["headers"]["call_uuid"] == uuid and endpoint["headers"]["stream_token"]
    assert refused.status_code == 400


async def test_vonage_webhooks_unsigned_from_elsewhere_are_refused():
    async with client(Settings(), remote="203.0.113.9") as c:
        assert (await c.get("/vonage/answer", params={"uuid": new_uuid()})).status_code == 403
        assert (await c.post("/vonage/event", content=b"{}")).status_code == 403


async def test_vonage_event_webhook_signed_is_acknowledged():
    body = json.dumps({"uuid": new_uuid(), "status": "answered"}).encode()
    token = sign_webhook(SECRET, body, time.time())
    async with client(Settings(vonage_signature_secret=SECRET), remote="203.0.113.9") as c:
        ok = await c.post(
            "/vonage/event", content=body, headers={"authorization": f"Bearer {token}"}
        )
        moved = await c.post(
            "/vonage/event", content=body + b" ", headers={"authorization": f"Bearer {token}"}
        )
    assert ok.status_code == 204 and moved.status_code == 403


async def test_exotel_stream_url_by_get_answers_the_websocket_url():
    async with client(Settings(public_url="https://bot.example.com")) as c:
        r = await c.get(
            "/exotel/stream-url",
            params={"CallSid": "a" * 32, "CallFrom": "+911", "CallTo": "+912"},
        )
        bad = await c.get("/exotel/stream-url", params={"CallSid": "a/b"})
    assert r.status_code == 200
    url = r.json()["url"]
    assert url.startswith("wss://bot.example.com/exotel/media?") and "stream_token=" in url
    assert bad.status_code == 400
