"""Voice and status webhooks: signatures (valid, forged, missing, proxied) and the TwiML."""

import xml.etree.ElementTree as ET

import httpx
import pytest
from twilio.request_validator import RequestValidator

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.config import Settings

TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC = "https://bot.example.com"
PARAMS = {
    "CallSid": "CA" + "a" * 32,
    "AccountSid": "AC" + "b" * 32,
    "From": "+15005550006",
    "To": "+15005550001",
    "Direction": "inbound",
    "CallStatus": "ringing",
}


def client(settings: Settings, remote: str = "127.0.0.1") -> httpx.AsyncClient:
    app = create_app(settings, EchoEngine())
    transport = httpx.ASGITransport(app=app, client=(remote, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8080")


def sign(url: str, params: dict) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params)


async def test_gateway_voice_signed_request_gets_connect_stream():
    settings = Settings(twilio_auth_token=TOKEN, public_url=PUBLIC)
    async with client(settings, remote="203.0.113.9") as c:
        # Twilio signed the public URL; the gateway sits behind a proxy at another host.
        r = await c.post(
            "/twilio/voice",
            data=PARAMS,
            headers={"X-Twilio-Signature": sign(PUBLIC + "/twilio/voice", PARAMS)},
        )
    assert r.status_code == 200
    root = ET.fromstring(r.text)
    stream = root.find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://bot.example.com/twilio/media"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["from"] == "+15005550006" and params["call_sid"] == PARAMS["CallSid"]


@pytest.mark.parametrize(
    "signature",
    [None, "", "bm90IGEgc2lnbmF0dXJl", "forged"],
    ids=["missing", "empty", "forged-base64", "garbage"],
)
async def test_gateway_voice_unsigned_or_forged_is_403(signature):
    settings = Settings(twilio_auth_token=TOKEN, public_url=PUBLIC)
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    async with client(settings) as c:
        r = await c.post("/twilio/voice", data=PARAMS, headers=headers)
    assert r.status_code == 403


async def test_gateway_voice_signature_over_tampered_params_is_403():
    settings = Settings(twilio_auth_token=TOKEN, public_url=PUBLIC)
    signature = sign(PUBLIC + "/twilio/voice", PARAMS)
    async with client(settings) as c:
        r = await c.post(
            "/twilio/voice",
            data={**PARAMS, "From": "+19995550000"},
            headers={"X-Twilio-Signature": signature},
        )
    assert r.status_code == 403


async def test_gateway_voice_signature_for_internal_host_is_403_behind_proxy():
    # Signed for the URL the gateway sees, not the public one Twilio dials: a forgery.
    settings = Settings(twilio_auth_token=TOKEN, public_url=PUBLIC)
    async with client(settings) as c:
        r = await c.post(
            "/twilio/voice",
            data=PARAMS,
            headers={"X-Twilio-Signature": sign("http://10.0.0.5:8080/twilio/voice", PARAMS)},
        )
    assert r.status_code == 403


async def test_gateway_voice_public_url_with_path_prefix_and_query():
    public = "https://edge.example.com/overtalk"
    settings = Settings(twilio_auth_token=TOKEN, public_url=public)
    url = public + "/twilio/voice?tenant=7"
    async with client(settings) as c:
        r = await c.post(
            "/twilio/voice?tenant=7", data=PARAMS, headers={"X-Twilio-Signature": sign(url, PARAMS)}
        )
    assert r.status_code == 200
    stream = ET.fromstring(r.text).find("./Connect/Stream")
    assert stream.get("url") == "wss://edge.example.com/overtalk/twilio/media"


async def test_gateway_without_token_accepts_loopback_only():
    settings = Settings()
    async with client(settings, remote="127.0.0.1") as c:
        assert (await c.post("/twilio/voice", data=PARAMS)).status_code == 200
    async with client(settings, remote="198.51.100.7") as c:
        assert (await c.post("/twilio/voice", data=PARAMS)).status_code == 403


async def test_gateway_status_callback_is_kept_per_call():
    settings = Settings(twilio_auth_token=TOKEN, public_url=PUBLIC)
    app = create_app(settings, EchoEngine())
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1))
    fields = {**PARAMS, "CallStatus": "completed", "CallDuration": "42"}
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as c:
        r = await c.post(
            "/twilio/status",
            data=fields,
            headers={"X-Twilio-Signature": sign(PUBLIC + "/twilio/status", fields)},
        )
        forged = await c.post("/twilio/status", data=fields, headers={"X-Twilio-Signature": "x"})
    assert r.status_code == 204 and forged.status_code == 403
    assert app.state.calls.statuses[PARAMS["CallSid"]] == [fields]


async def test_gateway_healthz():
    async with client(Settings()) as c:
        r = await c.get("/healthz")
    body = r.json()
    assert (body["status"], body["active_calls"], body["engine"]) == ("ok", 0, "echo")
    assert body["tasks"] >= 1
