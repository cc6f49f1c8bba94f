"""Property-based fuzzing of the Vonage answer webhook and the Exotel stream-URL endpoint.

Whatever a peer sends, the gateway answers 200 with a well-formed document, or refuses it
(400, 403, 503); it never fails (500), and what it echoes into a document, a URL or a token
passed the carrier's identifier format.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qsl, urlsplit

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.config import Settings
from gateway.ids import is_exotel_sid, is_uuid
from gateway.sim.carriers.vonage import sign_webhook

SECRET = "vonage-signature-secret-0123456789"
_APPS: dict[str, object] = {}


def app():
    if "app" not in _APPS:
        _APPS["app"] = create_app(Settings(vonage_signature_secret=SECRET), EchoEngine())
    return _APPS["app"]


def post(path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app(), client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(path, content=content, headers=headers)

    return asyncio.run(go())


fields = st.dictionaries(
    st.sampled_from(["uuid", "from", "to", "conversation_uuid"]) | st.text(max_size=8),
    st.none()
    | st.integers()
    | st.text(max_size=60)
    | st.sampled_from(["63f61863-4a51-4f6b-86e1-46edebcf9356", "../../x", "15005550001"]),
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields, st.booleans())
def test_fuzz_vonage_answer_webhook(body_fields, signed):
    body = json.dumps(body_fields).encode()
    headers = {"content-type": "application/json"}
    if signed:
        headers["authorization"] = "Bearer " + sign_webhook(SECRET, body, time.time())
    response = post("/vonage/answer", body, headers)
    assert response.status_code in (200, 400, 403), response.text
    if not signed:
        assert response.status_code == 403
    if response.status_code == 200:
        ncco = response.json()
        assert isinstance(ncco, list)
        for action in ncco:
            for endpoint in action.get("endpoint", []):
                if endpoint["type"] == "websocket":
                    assert is_uuid(endpoint["headers"]["call_uuid"])


form = st.dictionaries(
    st.sampled_from(["CallSid", "CallFrom", "CallTo", "Direction"]) | st.text(max_size=8),
    st.text(max_size=80) | st.sampled_from(["a" * 32, "../etc", "incoming", "outbound-dial"]),
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form)
def test_fuzz_exotel_stream_url(params):
    # A loopback gateway without Exotel credentials: the request is served, the fields judged.
    body = "&".join(f"{httpx.QueryParams({k: v})}" for k, v in params.items()).encode()
    response = post(
        "/exotel/stream-url", body, {"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code in (200, 400, 503), response.text
    if response.status_code == 200:
        url = urlsplit(response.json()["url"])
        assert url.scheme in ("ws", "wss") and url.path == "/exotel/media"
        query = dict(parse_qsl(url.query))
        assert len(query) <= 3 and "stream_token" in query
        assert is_exotel_sid(params.get("CallSid"))
