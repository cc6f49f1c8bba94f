"""The browser phone's HTTP side on a real app: who gets the page, the routes it may choose,
and the bounds on an offer. No browser and no media: every request here is refused or only
reads, so no call starts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Settings

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
PLAN = """
version: 1
timezone: UTC
default_route: desk
routes:
  desk:
    numbers: ["+12125550100"]
    otherwise: {action: bot, engine: echo}
  phones-only:
    numbers: ["+12125550200"]
    branches:
      - when: {direction: inbound}
        do: {action: bot, engine: echo}
    otherwise: {action: hangup}
"""


def client(app, host: str = "127.0.0.1", **kwargs) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gw", **kwargs)


@pytest.fixture
def plan_app(tmp_path: Path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(textwrap.dedent(PLAN))
    return create_app(Settings(engine="echo", dialplan=str(plan), phone_max_offer_bytes=4096))


async def test_page_served_to_loopback_with_its_files() -> None:
    app = create_app(Settings(engine="echo"))
    async with client(app) as http:
        page = await http.get("/phone")
        script = await http.get("/phone/static/phone.js")
        style = await http.get("/phone/static/phone.css")
        missing = await http.get("/phone/static/..%2Fapp.py")
    assert page.status_code == 200 and 'id="call"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert script.status_code == 200 and "getUserMedia" in script.text
    assert "echoCancellation: true" in script.text  # the browser's own processing stays on
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404


@pytest.mark.parametrize("path", ["/phone", "/phone/static/phone.js", "/phone/routes"])
async def test_page_refused_to_other_clients_without_token(path: str) -> None:
    app = create_app(Settings(engine="echo"))
    async with client(app, host="192.0.2.7") as http:
        response = await http.get(path)
    assert response.status_code == 403 and "loopback" in response.text


async def test_page_refused_when_a_proxy_forwarded_it() -> None:
    app = create_app(Settings(engine="echo"))
    async with client(app) as http:
        response = await http.get("/phone", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403


async def test_offer_refused_to_other_clients_without_token() -> None:
    app = create_app(Settings(engine="echo"))
    async with client(app, host="192.0.2.7") as http:
        response = await http.post("/phone/offer", json={"type": "offer", "sdp": SDP})
    assert response.status_code == 403


async def test_token_then_cookie_carries_it() -> None:
    app = create_app(Settings(engine="echo", phone_token="s3cret"))
    async with client(app, host="192.0.2.7") as http:
        assert (await http.get("/phone")).status_code == 403
        assert (await http.get("/phone?token=nope")).status_code == 403
        page = await http.get("/phone?token=s3cret")
        assert page.status_code == 200
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Path=/phone" in cookie and "SameSite=strict" in cookie
        # The cookie the page got carries the token to its files and signalling.
        assert (await http.get("/phone/static/phone.js")).status_code == 200
        assert (await http.get("/phone/routes")).status_code == 200
    async with client(app, host="192.0.2.7") as fresh:
        bearer = {"Authorization": "Bearer s3cret"}
        assert (await fresh.get("/phone/routes", headers=bearer)).status_code == 200
        assert (await fresh.get("/phone/routes")).status_code == 403


async def test_routes_only_those_open_to_browsers(plan_app) -> None:
    async with client(plan_app) as http:
        body = (await http.get("/phone/routes")).json()
    assert body == {"routes": ["desk"], "default": "desk"}


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({"type": "offer", "sdp": SDP, "route": "phones-only"}, 403, "not open to browser"),
        ({"type": "offer", "sdp": SDP, "route": "nowhere"}, 403, "not open to browser"),
        ({"type": "offer", "sdp": SDP, "route": "../x"}, 400, "route"),
        ({"type": "offer", "sdp": "v=0\r\n"}, 400, "no audio"),
        ({"type": "offer", "sdp": SDP, "pad": "x" * 5000}, 413, "larger than 4096"),
    ],
)
async def test_offer_refused_with_reason(plan_app, payload, status: int, fragment: str) -> None:
    async with client(plan_app) as http:
        response = await http.post("/phone/offer", json=payload)
    assert response.status_code == status
    assert fragment in response.json()["error"]


async def test_offer_refused_past_the_browser_call_limit() -> None:
    app = create_app(Settings(engine="echo", phone_max_calls=1))
    app.state.phone.active["browser-busy"] = object()  # one call in progress
    async with client(app) as http:
        response = await http.post("/phone/offer", json={"type": "offer", "sdp": SDP})
    assert response.status_code == 503 and "1 browser calls already" in response.json()["error"]


async def test_offer_with_sdp_aiortc_refuses_is_400_and_frees_its_place() -> None:
    app = create_app(Settings(engine="echo"))
    async with client(app) as http:
        response = await http.post("/phone/offer", json={"type": "offer", "sdp": SDP})
    assert response.status_code == 400 and "unusable offer" in response.json()["error"]
    assert app.state.admission.load("echo", 0.0).in_use == 0


def test_access_log_never_shows_the_token() -> None:
    import logging

    from gateway.carriers.webrtc.aio import redact_tokens

    args = ("192.0.2.7:5000", "GET", "/phone?token=s3cret", "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               args, None)  # fmt: skip
    assert redact_tokens(record) is True
    assert "s3cret" not in record.getMessage() and "token=<redacted>" in record.getMessage()
    create_app(Settings(engine="echo"))
    assert redact_tokens in logging.getLogger("uvicorn.access").filters


def test_phone_token_comes_from_the_environment_only(tmp_path: Path) -> None:
    from gateway.config import ConfigError, load_settings

    assert load_settings(environ={"OVERTALK_PHONE_TOKEN": "s3cret"}).phone_token == "s3cret"
    config = tmp_path / "gateway.toml"
    config.write_text('phone_token = "in-a-file"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(config, environ={})
    with pytest.raises(ConfigError, match="phone_max_calls must be positive"):
        load_settings(environ={"OVERTALK_PHONE_MAX_CALLS": "0"})
