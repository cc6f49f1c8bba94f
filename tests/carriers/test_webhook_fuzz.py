"""The Telnyx and Plivo call webhooks under fuzzed bodies, signed as the carrier signs: every
answer is a document (200) or a refusal (400/403), never a server error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.config import Settings
from gateway.sim.carriers.plivo import sign_v3
from gateway.sim.carriers.telnyx import TelnyxDialer

PRIVATE, PUBLIC = TelnyxDialer.new_key()
TOKEN = "fuzz-plivo-token"
BASE = "http://testserver"

FIELDS = st.sampled_from(["CallSid", "CallUUID", "From", "To", "Direction", "AccountSid", "x"])
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["v3:" + "A" * 40, "7e5c6bc6-7d5b-4a6b-9c3e-1f1e2d3c4b5a", "../..", ""]),
)
FORMS = st.lists(st.tuples(FIELDS, VALUES), max_size=6)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings_ = Settings(telnyx_public_key=PUBLIC, plivo_auth_token=TOKEN)
    with TestClient(create_app(settings_, EchoEngine()), base_url=BASE) as test_client:
        yield test_client


def _body(form: list[tuple[str, str]], raw: bytes) -> bytes:
    return urlencode(form).encode() + raw


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(FORMS, st.binary(max_size=30))
def test_telnyx_webhook_fuzz_answers_or_refuses(
    client: TestClient, form: list[tuple[str, str]], raw: bytes
) -> None:
    body = _body(form, raw)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers.update(TelnyxDialer(PRIVATE).sign(body, int(time.time())))
    response = client.post("/telnyx/voice", content=body, headers=headers)
    assert response.status_code in (200, 400, 403), response.text
    if response.status_code == 200:
        assert response.text.startswith("<?xml")


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(FORMS, st.binary(max_size=30))
def test_plivo_answer_fuzz_answers_or_refuses(
    client: TestClient, form: list[tuple[str, str]], raw: bytes
) -> None:
    body = _body(form, raw)
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        params = {}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers.update(sign_v3(TOKEN, "POST", BASE + "/plivo/answer", params))
    response = client.post("/plivo/answer", content=body, headers=headers)
    assert response.status_code in (200, 400, 403), response.text


def test_fuzzed_webhooks_are_signed_right_a_valid_call_is_answered(client: TestClient) -> None:
    body = _body([("CallSid", "v3:" + "B" * 40), ("From", "+1"), ("To", "+2")], b"")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers.update(TelnyxDialer(PRIVATE).sign(body, int(time.time())))
    assert client.post("/telnyx/voice", content=body, headers=headers).status_code == 200
    params = {"CallUUID": "7e5c6bc6-7d5b-4a6b-9c3e-1f1e2d3c4b5b", "From": "1", "To": "2"}
    body = _body(list(params.items()), b"")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers.update(sign_v3(TOKEN, "POST", BASE + "/plivo/answer", params))
    assert client.post("/plivo/answer", content=body, headers=headers).status_code == 200
