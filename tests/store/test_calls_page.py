"""The /calls page and its guard: loopback only without a token, the token otherwise;
filters checked; a call's timeline and recording served from the store."""

from __future__ import annotations

import wave
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from callkit import finished_call

from gateway.app import create_app
from gateway.callstore.record import row_from_record
from gateway.callstore.store import open_call_store
from gateway.config import Settings


def seeded(tmp_path: Path) -> tuple[Settings, list[str]]:
    """A store with two calls, the first with a recording in the audio store."""
    audio = tmp_path / "audio"
    audio.mkdir()
    store = open_call_store(str(tmp_path / "calls.db"))
    ids = []
    for i, route in enumerate(("sales", "support")):
        ledger = finished_call(route=route, ended_at=1_770_000_000.0 + i)
        url = None
        if i == 0:
            path = audio / f"{ledger.call_id}.wav"
            with wave.open(str(path), "wb") as out:
                out.setnchannels(2)
                out.setsampwidth(2)
                out.setframerate(8000)
                out.writeframes(b"\x00\x10" * 2 * 8000)
            url = path.as_uri()
        store.save(row_from_record(ledger.to_dict(), audio_url=url, gateway="gw"), 1.0)
        ids.append(ledger.call_id)
    store.close()
    settings = Settings(engine="echo", store=str(tmp_path / "calls.db"),
                        audio_store=audio.as_uri(), spool_dir=str(tmp_path / "spool"))  # fmt: skip
    return settings, ids


def client(settings: Settings, host: str) -> httpx.AsyncClient:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


async def test_calls_page_lists_calls_for_loopback_without_token(tmp_path: Path) -> None:
    settings, ids = seeded(tmp_path)
    async with client(settings, "127.0.0.1") as http:
        page = await http.get("/calls")
        assert page.status_code == 200
        assert page.text.index(ids[1]) < page.text.index(ids[0])  # newest first
        assert f'src="/calls/{ids[0]}/audio"' in page.text
        assert f'src="/calls/{ids[1]}/audio"' not in page.text
        only = await http.get("/calls", params={"route": "support"})
        assert ids[1] in only.text and ids[0] not in only.text
        timeline = await http.get(f"/calls/{ids[0]}")
        assert timeline.status_code == 200 and "<svg" in timeline.text
        assert "<audio controls" in timeline.text
        audio = await http.get(f"/calls/{ids[0]}/audio")
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
        assert (await http.get(f"/calls/{ids[1]}/audio")).status_code == 404
        assert (await http.get("/calls/CAnosuchcall")).status_code == 404
        assert (await http.get("/calls/..%2Fetc")).status_code in (400, 404)
        assert (await http.get("/calls", params={"since": "last tuesday"})).status_code == 400
        assert (await http.get("/calls", params={"limit": "0"})).status_code == 400
        # Through a proxy on this machine: loopback, but from anywhere before it.
        proxied = await http.get("/calls", headers={"x-forwarded-for": "198.51.100.7"})
        assert proxied.status_code == 403
    async with client(settings, "203.0.113.9") as http:
        assert (await http.get("/calls")).status_code == 403
        assert (await http.get(f"/calls/{ids[0]}/audio")).status_code == 403


@pytest.mark.parametrize("how", ["header", "query-then-cookie"])
async def test_calls_page_with_token_needs_it_from_anywhere(tmp_path: Path, how: str) -> None:
    settings, ids = seeded(tmp_path)
    settings = replace(settings, admin_token="s3cret-token")
    async with client(settings, "203.0.113.9") as http:
        assert (await http.get("/calls")).status_code == 403
        assert (await http.get("/calls", headers={"authorization": "Bearer nope"})).status_code \
            == 403  # fmt: skip
        if how == "header":
            page = await http.get("/calls", headers={"authorization": "Bearer s3cret-token"})
        else:
            page = await http.get("/calls", params={"token": "s3cret-token"})
            assert "httponly" in page.headers["set-cookie"].lower()
            assert (await http.get(f"/calls/{ids[0]}")).status_code == 200  # the cookie
        assert page.status_code == 200 and ids[0] in page.text
    async with client(settings, "127.0.0.1") as http:
        assert (await http.get("/calls")).status_code == 403  # a token set: loopback too
