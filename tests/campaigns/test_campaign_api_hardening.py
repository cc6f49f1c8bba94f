"""The campaign API under a hostile or careless client: malformed callback fields answer 4xx
or are ignored, never 500; a campaign cannot read server files outside the campaign directory
and an error never shows a server file's content; a create's body is read only after the
token, and only up to a limit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from campaignkit import write_campaign
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.campaigns.api import campaign_router
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import Store, open_store

TOKEN = "api-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "SECRET-ROW-never-shown"
YAML = 'version: 1\nname: api\ncaller_id: "+13125550150"\nwindows: ["00:00-24:00"]\n'


def app_over(store: Store, root: Path, **options: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(campaign_router(store, api_token=TOKEN, base_dir=root, **options))
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    # In process: the ASGI transport's client address is loopback, so unsigned callbacks pass.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A campaign directory, and beside it a file no campaign may read."""
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.csv").write_text(f"phone,{SECRET}\n{SECRET},x\n")
    (tmp_path / "outside" / "plan.yaml").write_text(f"{SECRET}: [\n")
    (tmp_path / "campaigns" / "inside.csv").write_text("phone\n+13125550170\n")
    return tmp_path / "campaigns"


async def test_status_callback_ignores_a_duration_that_is_not_a_number(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "c.db"))
    path = write_campaign(tmp_path, "windows: ['00:00-24:00']\n")
    create_campaign(store, path, 0.0)
    store.change_state("spring", "start", 1.0)
    store.claim("spring", "me", 2.0, 60.0)
    async with client(app_over(store, tmp_path)) as http:
        for duration in ("abc", "1e999", "-5", "٣", "nan", "9" * 400):
            form = {"CallSid": "CA" + "0" * 32, "CallStatus": "ringing", "CallDuration": duration}
            response = await http.post("/campaigns/twilio/status?attempt=spring:1:1", data=form)
            assert response.status_code == 204, (duration, response.text)
        form = {"CallSid": "CA" + "0" * 32, "CallStatus": "completed", "CallDuration": "abc"}
        response = await http.post("/campaigns/twilio/status?attempt=spring:1:1", data=form)
    assert response.status_code == 204
    (attempt,) = store.attempts("spring")
    assert (attempt["outcome"], attempt["duration"]) == ("answered", None)


@pytest.mark.parametrize(
    ("path", "query", "form"),
    [
        ("status", "spring:1:1", {"CallSid": "CA1", "CallStatus": "completed"}),
        ("status", "spring:1:1", {"CallSid": "CA" + "0" * 31 + "\n", "CallStatus": "busy"}),
        ("status", "../x:1:1", {"CallSid": "CA" + "0" * 32, "CallStatus": "busy"}),
        ("amd", "spring:1:1\nforged", {"CallSid": "CA" + "0" * 32, "AnsweredBy": "human"}),
        ("recording", "spring:1:1", {"CallSid": "nope", "RecordingUrl": "https://x/r"}),
    ],
)
async def test_callbacks_refuse_identifiers_of_the_wrong_shape(tmp_path, path, query, form):
    store = open_store(str(tmp_path / "c.db"))
    async with client(app_over(store, tmp_path)) as http:
        response = await http.post(f"/campaigns/twilio/{path}", params={"attempt": query},
                                   data=form)  # fmt: skip
    assert response.status_code == 400, response.text


async def test_callbacks_ignore_values_twilio_never_sends(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "c.db"))
    create_campaign(store, write_campaign(tmp_path, "windows: ['00:00-24:00']\n"), 0.0)
    store.change_state("spring", "start", 1.0)
    store.claim("spring", "me", 2.0, 60.0)
    sid = "CA" + "a" * 32
    query = {"attempt": "spring:1:1"}
    async with client(app_over(store, tmp_path)) as http:
        for path, form in [
            ("status", {"CallSid": sid, "CallStatus": "exploded"}),
            ("amd", {"CallSid": sid, "AnsweredBy": "robot\nx"}),
            ("recording", {"CallSid": sid, "RecordingUrl": "file:///etc/passwd"}),
            ("status", {"CallSid": sid, "CallStatus": "completed", "AnsweredBy": "alien"}),
        ]:
            response = await http.post(f"/campaigns/twilio/{path}", params=query, data=form)
            assert response.status_code == 204, (path, response.text)
    (attempt,) = store.attempts("spring")
    assert (attempt["outcome"], attempt["answered_by"], attempt["recording_url"]) == (
        "answered", None, None)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    path=st.sampled_from(["status", "amd", "recording"]),
    form=st.dictionaries(
        st.sampled_from(
            [
                "CallSid",
                "CallStatus",
                "CallDuration",
                "AnsweredBy",
                "RecordingUrl",
                "RecordingStatus",
                "x",
            ]
        ),
        st.text(max_size=40),
        max_size=6,
    ),  # fmt: skip
    key=st.text(max_size=30),
    raw=st.binary(max_size=60),
)
def test_callbacks_fuzz_never_answer_500(tmp_path_factory, path, form, key, raw) -> None:
    store = open_store(str(tmp_path_factory.mktemp("fuzz") / "c.db"))
    app = app_over(store, tmp_path_factory.getbasetemp())

    async def post() -> list[int]:
        async with client(app) as http:
            url = f"/campaigns/twilio/{path}"
            shaped = await http.post(url, params={"attempt": key}, data=form)
            garbage = await http.post(
                url, content=raw, headers={"content-type": "application/x-www-form-urlencoded"}
            )
            return [shaped.status_code, garbage.status_code]  # fmt: skip

    try:
        codes = asyncio.run(post())
    finally:
        store.close()
    assert all(code < 500 for code in codes), codes


@pytest.mark.parametrize(
    ("refers", "where"),
    [
        ("contacts: {outside}/secret.csv\n", "contacts"),
        ("contacts: ../outside/secret.csv\n", "contacts"),
        ("contacts: /etc/passwd\n", "contacts"),
        ("contacts: inside.csv\ndialplan: /etc/shadow\n", "dialplan"),
        ("contacts: inside.csv\ndialplan: ../outside/plan.yaml\n", "dialplan"),
        ("contacts: inside.csv\ndo_not_call: [../outside/secret.csv]\n", "do_not_call"),
        ("contacts: linked.csv\n", "contacts"),
    ],
)
async def test_create_refuses_files_outside_the_campaign_directory(root, refers, where) -> None:
    (root / "linked.csv").symlink_to(root.parent / "outside" / "secret.csv")
    store = open_store(str(root.parent / "c.db"))
    body = {"campaign": YAML + refers.format(outside=root.parent / "outside")}
    async with client(app_over(store, root)) as http:
        response = await http.post("/campaigns", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert SECRET not in response.text and "root:" not in response.text
    (problem,) = response.json()["problems"]
    assert (
        problem["reason"].startswith(f"{where}: ") and "outside the campaign" in problem["reason"]
    )
    assert store.campaign_ids() == []


async def test_create_reports_a_bad_server_file_by_place_not_content(root: Path) -> None:
    (root / "plan.yaml").write_text(f"{SECRET}: [\n")
    store = open_store(str(root.parent / "c.db"))
    body = {"campaign": YAML + "dialplan: plan.yaml\n", "contacts": "phone\n+13125550170\n"}
    async with client(app_over(store, root)) as http:
        response = await http.post("/campaigns", json=body, headers=AUTH)
    assert response.status_code == 422 and SECRET not in response.text
    assert response.json()["problems"][0]["file"] == "plan.yaml"
    inside = {"campaign": YAML + "contacts: inside.csv\n"}  # a file of the directory is fine
    async with client(app_over(store, root)) as http:
        made = await http.post("/campaigns", json=inside, headers=AUTH)
    assert made.status_code == 201 and made.json()["contacts"] == 1


class Body:
    """An ASGI ``receive`` that hands out a large body in chunks and counts what was taken."""

    def __init__(self, chunks: int, size: int = 1 << 20) -> None:
        self.left, self.taken, self.chunk = chunks, 0, b"x" * size

    async def __call__(self) -> dict[str, Any]:
        if self.left == 0:
            return {"type": "http.disconnect"}
        self.left -= 1
        self.taken += 1
        return {"type": "http.request", "body": self.chunk, "more_body": self.left > 0}


async def call(app: FastAPI, receive: Body, headers: list[tuple[bytes, bytes]]) -> int:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/campaigns", "raw_path": b"/campaigns",
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("203.0.113.9", 4000), "server": ("gw", 80)}  # fmt: skip
    await app(scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


async def test_create_checks_the_token_before_reading_the_body(tmp_path: Path) -> None:
    app = app_over(open_store(str(tmp_path / "c.db")), tmp_path)
    body = Body(chunks=100)  # 100 MB, streamed without a Content-Length
    status = await call(app, body, [(b"content-type", b"application/json")])
    assert status == 401 and body.taken == 0


async def test_create_refuses_a_body_over_the_limit(tmp_path: Path) -> None:
    app = app_over(open_store(str(tmp_path / "c.db")), tmp_path, max_body_bytes=2 << 20)
    body = Body(chunks=100)
    headers = [(b"content-type", b"application/json"),
               (b"authorization", f"Bearer {TOKEN}".encode())]  # fmt: skip
    assert await call(app, body, headers) == 413
    assert body.taken <= 3  # it stopped reading past the limit
    declared = Body(chunks=100)
    assert await call(app, declared, [*headers, (b"content-length", b"104857600")]) == 413
    assert declared.taken == 0
    async with client(app) as http:
        bad = await http.post("/campaigns", content=json.dumps({"campaign": 5}), headers=AUTH)
    assert bad.status_code == 422 and bad.json()["problems"][0]["loc"] == ["campaign"]
