"""Vonage's answer (NCCO from dial-plan decisions), signed webhooks and REST call control."""

from __future__ import annotations

import hashlib
import json
import textwrap
from datetime import UTC, datetime

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from vonage_jwt.jwt import JwtClient

from gateway.carriers.vonage.control import VonageRestControl
from gateway.carriers.vonage.ncco import TOKEN_HEADER, render, transfer_ncco
from gateway.carriers.vonage.signature import SignedWebhooks, bearer_token
from gateway.dialplan import CallFacts, load, route
from gateway.ids import InvalidIdentifier
from gateway.sim.carriers.vonage import sign_webhook
from gateway.streams.carrier import CallControlError

SECRET = "signature-secret-0123456789abcdef"
UUID = "63f61863-4a51-4f6b-86e1-46edebcf9356"
STREAM = "wss://gw.example.com/vonage/media"
PLAN = """
default_route: main
routes:
  main:
    numbers: ["+15550000001"]
    otherwise:
      action: bot
      engine: echo
      fallback: {action: say, text: "Sorry, try later.", then: hangup}
  transfer:
    numbers: ["+15550000002"]
    otherwise: {action: transfer, to: "+14155550199", timeout: 20}
  sip:
    numbers: ["+15550000003"]
    otherwise: {action: transfer, to: "sip:desk@pbx.example.com"}
  play:
    numbers: ["+15550000005"]
    otherwise:
      action: play
      url: https://cdn.example.com/jingle.wav
      loop: 2
      then: {action: say, text: "Goodbye"}
  hangup:
    numbers: ["+15550000007"]
    otherwise: hangup
"""


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(textwrap.dedent(PLAN))
    return load(path, frozenset({"echo"}))


def decide(plan, to):
    return route(plan, CallFacts(to=to, from_="+14085551234", at=datetime(2026, 1, 1, tzinfo=UTC)))


def test_render_bot_connects_the_websocket_with_headers_and_token_then_fallback(plan):
    issued = []

    def token(params):
        issued.append(dict(params))
        return "v1.9.abc"

    ncco = render(
        decide(plan, "+15550000001"),
        stream_url=STREAM,
        rate=8000,
        headers={"call_uuid": UUID},
        caller_id="+15550000001",
        stream_token=token,
    )
    connect, talk = ncco
    [endpoint] = connect["endpoint"]
    assert connect["action"] == "connect" and connect["from"] == "15550000001"
    assert endpoint["type"] == "websocket" and endpoint["uri"] == STREAM
    assert endpoint["content-type"] == "audio/l16;rate=8000"
    assert endpoint["headers"] == {
        "call_uuid": UUID,
        "route": "main",
        "branch": "otherwise",
        "plan": plan.digest,
        TOKEN_HEADER: "v1.9.abc",
    }
    assert issued == [{k: v for k, v in endpoint["headers"].items() if k != TOKEN_HEADER}]
    assert talk == {"action": "talk", "text": "Sorry, try later."}


def test_render_transfer_play_and_hangup(plan):
    [phone] = render(decide(plan, "+15550000002"), stream_url=STREAM, rate=8000, headers={})
    assert phone["endpoint"] == [{"number": "14155550199", "type": "phone"}]
    assert phone["timeout"] == 20 and phone["randomFromNumber"] is True
    [sip] = render(decide(plan, "+15550000003"), stream_url=STREAM, rate=8000, headers={})
    assert sip["endpoint"][0] == {"uri": "sip:desk@pbx.example.com", "type": "sip"}
    stream, talk = render(decide(plan, "+15550000005"), stream_url=STREAM, rate=8000, headers={})
    assert stream == {
        "action": "stream",
        "streamUrl": ["https://cdn.example.com/jingle.wav"],
        "loop": 2,
    }
    assert talk["text"] == "Goodbye"
    assert render(decide(plan, "+15550000007"), stream_url=STREAM, rate=8000, headers={}) == []


def test_render_refuses_reserved_headers_and_undialable_targets(plan):
    with pytest.raises(ValueError):
        render(decide(plan, "+15550000001"), stream_url=STREAM, rate=8000, headers={"route": "x"})
    with pytest.raises(ValueError):
        transfer_ncco("not a number")


# -- signed webhooks ---------------------------------------------------------------------------


def test_signature_accepts_vonage_token_over_this_body():
    checker = SignedWebhooks(SECRET)
    body = b'{"uuid":"x"}'
    token = sign_webhook(SECRET, body, 1000.0)
    assert checker.check(f"Bearer {token}", body, 1010.0) is None


@pytest.mark.parametrize(
    "why, header, body, now",
    [
        ("no bearer token", None, b"", 1000.0),
        ("no bearer token", "Basic abc", b"", 1000.0),
        (
            "bad signature",
            "Bearer " + sign_webhook("another-secret-0123456789abcdefghij", b"", 1e3),
            b"",
            1e3,
        ),
        ("payload_hash does not match the body", "Bearer {t}", b"{}", 1000.0),
        ("token too old or not yet valid", "Bearer {t}", b"", 2000.0),
        ("malformed or expired token", "Bearer a.b.c", b"", 1000.0),
    ],
)
def test_signature_refuses(why, header, body, now):
    checker = SignedWebhooks(SECRET)
    if header and "{t}" in header:
        header = header.format(t=sign_webhook(SECRET, b"", 1000.0))
    assert checker.check(header, body, now) == why


def test_signature_refuses_a_hash_of_another_body_even_when_signed():
    checker = SignedWebhooks(SECRET)
    token = sign_webhook(SECRET, b"", 1000.0, payload_hash=hashlib.sha256(b"other").hexdigest())
    assert checker.check(f"Bearer {token}", b"mine", 1000.0) is not None


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=300)), st.binary(max_size=200))
def test_fuzz_signature_check_never_raises(header, body):
    checker = SignedWebhooks(SECRET)
    assert checker.check(header, body, 1000.0) is not None
    assert bearer_token(header) is None or isinstance(bearer_token(header), str)


# -- REST control ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jwt_client():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return JwtClient("app-id-1", pem), key.public_key()


async def test_control_hangup_and_transfer_put_the_call_with_an_application_jwt(jwt_client):
    client_jwt, public = jwt_client
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        claims = jwt.decode(
            request.headers["authorization"].removeprefix("Bearer "), public, algorithms=["RS256"]
        )
        seen.append((request.method, request.url.path, json.loads(request.content), claims))
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        control = VonageRestControl(
            client_jwt, UUID, api_base="http://api.test", caller_id="+15550000001", client=http
        )
        await control.hangup()
        await control.transfer("+14155550199")
    (m1, p1, b1, c1), (_, _, b2, _) = seen
    assert (m1, p1, b1) == ("PUT", f"/v1/calls/{UUID}", {"action": "hangup"})
    assert c1["application_id"] == "app-id-1"
    assert b2["action"] == "transfer" and b2["destination"]["type"] == "ncco"
    assert b2["destination"]["ncco"][0]["endpoint"] == [{"number": "14155550199", "type": "phone"}]


async def test_control_reports_a_refusal_and_refuses_a_path_for_a_uuid(jwt_client):
    client_jwt, _ = jwt_client
    with pytest.raises(InvalidIdentifier):
        VonageRestControl(client_jwt, "../../v1/applications")
    transport = httpx.MockTransport(lambda request: httpx.Response(404))
    async with httpx.AsyncClient(transport=transport) as http:
        control = VonageRestControl(client_jwt, UUID, api_base="http://api.test", client=http)
        with pytest.raises(CallControlError):
            await control.hangup()
