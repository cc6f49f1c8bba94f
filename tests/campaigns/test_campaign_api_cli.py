"""The management API (bearer token) and ``overtalk campaign`` commands over one store."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import httpx
from campaignkit import write_campaign
from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from gateway.campaigns.api import campaign_router
from gateway.campaigns.cli import main
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import open_store
from gateway.ops.server import serve

API_TOKEN = "api-secret"
TWILIO_TOKEN = "twilio-secret"


async def test_api_needs_the_bearer_token_and_manages_campaigns(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "c.db"))
    app = FastAPI()
    app.include_router(campaign_router(store, api_token=API_TOKEN, base_dir=tmp_path,
                                       twilio_auth_token=TWILIO_TOKEN))  # fmt: skip
    yaml_text = 'version: 1\nname: api\ncaller_id: "+13125550150"\nwindows: ["00:00-24:00"]\n'
    contacts = "phone,first_name\n+13125550170,Ann\nnope,Bob\n"
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/campaigns")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.get("/campaigns", headers=wrong)).status_code == 401
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        made = await client.post("/campaigns", json={"campaign": yaml_text, "contacts": contacts},
                                 headers=auth)  # fmt: skip
        assert made.status_code == 201, made.text
        assert made.json()["contacts"] == 1 and made.json()["skipped"][0]["line"] == 3
        bad = await client.post("/campaigns", json={"campaign": "name: Bad Name\n"}, headers=auth)
        assert bad.status_code == 422 and bad.json()["problems"][0]["line"] == 1
        assert (await client.post("/campaigns/api/start", headers=auth)).json()[
            "state"
        ] == "running"
        assert (await client.post("/campaigns/api/pause", headers=auth)).json()["state"] == "paused"
        again = await client.post("/campaigns/api/resume", headers=auth)
        assert again.json()["state"] == "running"
        status = (await client.get("/campaigns/api", headers=auth)).json()
        assert (status["contacts"], status["remaining"], status["skipped_rows"]) == (1, 1, 1)
        assert (await client.get("/campaigns/nope", headers=auth)).status_code == 404
        exported = await client.get("/campaigns/api/export", headers=auth)
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(r["phone"], r["first_name"], r["state"]) for r in rows] == [
            ("+13125550170", "Ann", "pending")]  # fmt: skip
        # Twilio's callbacks need Twilio's signature, not the bearer token.
        form = {"CallSid": "CA" + "1" * 32, "CallStatus": "completed"}
        forged = await client.post("/campaigns/twilio/status?attempt=api:1:1", data=form)
        assert forged.status_code == 403
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(
            f"{url}/campaigns/twilio/status?attempt=api:1:1", form
        )
        signed = await client.post("/campaigns/twilio/status?attempt=api:1:1", data=form,
                                   headers={"X-Twilio-Signature": signature})  # fmt: skip
        assert signed.status_code == 204


async def test_api_is_off_without_a_token(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OVERTALK_CAMPAIGN_TOKEN", raising=False)
    app = FastAPI()
    app.include_router(campaign_router(open_store(str(tmp_path / "c.db"))))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/campaigns", headers={"Authorization": "Bearer x"})
    assert response.status_code == 503 and "OVERTALK_CAMPAIGN_TOKEN" in response.text


def test_cli_create_status_pause_and_export(tmp_path: Path, capsys) -> None:
    path = write_campaign(tmp_path, contacts="phone,first_name\n+13125550170,Ann\nbad,Bob\n")
    db = str(tmp_path / "c.db")
    assert main(["create", str(path), "--store", db]) == 0
    out = capsys.readouterr().out
    assert "1 contacts" in out and "line 3:" in out
    assert main(["create", str(path), "--store", db]) == 2  # exists already
    assert main(["pause", "spring", "--store", db]) == 0
    assert main(["resume", "spring", "--store", db]) == 0
    assert main(["cancel", "spring", "--store", db]) == 0
    assert main(["resume", "spring", "--store", db]) == 2  # a canceled campaign stays so
    capsys.readouterr()
    assert main(["status", "spring", "--store", db, "--json"]) == 0
    assert '"state":"canceled"' in capsys.readouterr().out
    target = tmp_path / "out.csv"
    assert main(["export", "spring", "--store", db, "-o", str(target)]) == 0
    assert target.read_text().splitlines()[1].split(",")[:2] == ["2", "+13125550170"]
    broken = tmp_path / "broken" / "campaign.yaml"
    write_campaign(broken.parent, "pacing: {calls_per_second: -1}\n")
    assert main(["create", str(broken), "--store", db]) == 2
    assert "campaign.yaml:" in capsys.readouterr().err


def test_cli_status_prints_the_progress_line(tmp_path: Path, capsys) -> None:
    path = write_campaign(tmp_path)
    db = str(tmp_path / "c.db")
    create_campaign(open_store(db), path, time.time())
    assert main(["status", "spring", "--store", db]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "dialled" in line and "remaining     3" in line and "rate" in line
