"""The README's campaign section as a test: the shipped example campaign created, started with
``--simulate`` (REST stand-in, scripted callees, a gateway with the campaign's dial plan) and
exported, with the commands a new user types. Also: a dialler refuses a gateway that would
route the campaign's calls elsewhere, ``status --watch`` before ``start`` returns, and the
shipped campaigns are not stale."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from campaignkit import write_campaign

from gateway.app import create_app
from gateway.campaigns.cli import main
from gateway.campaigns.errors import GatewayMisrouted
from gateway.campaigns.preflight import check_gateway, routed_as
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.spec import load_campaign
from gateway.campaigns.store import open_store
from gateway.config import Settings
from gateway.ops.server import serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "campaigns" / "try-it.yaml"
PLAN = ROOT / "dialplans" / "campaign-callback.yaml"
TOKEN = "preflight-token"
ACCOUNT = "AC" + "0" * 32


def test_simulated_campaign_runs_from_create_to_export(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "try-it.db")
    assert main(["create", str(EXAMPLE), "--store", db]) == 0
    assert main(["status", "try-it", "--store", db, "--watch"]) == 1  # not started: returns
    assert "not started" in capsys.readouterr().err
    assert main(["start", "try-it", "--store", db, "--simulate", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "campaign try-it (simulated): done" in out and "overtalk campaign export" in out
    target = tmp_path / "results.csv"
    assert main(["export", "try-it", "--store", db, "-o", str(target)]) == 0
    rows = {r["first_name"]: r for r in csv.DictReader(io.StringIO(target.read_text()))}
    # The default pattern: person, voicemail, person, busy, no-answer, in list order.
    got = {name: (r["outcome"], r["attempts"]) for name, r in rows.items()}
    assert got == {"Ann": ("answered", "1"), "Bob": ("voicemail", "1"), "Cy": ("answered", "1"),
                   "Dee": ("busy", "2"), "Eve": ("no-answer", "2")}  # fmt: skip
    assert rows["Ann"]["answered_by"] == "human" and rows["Ann"]["call_sid"].startswith("CA")
    assert rows["Bob"]["machine_action"] == "message"
    assert rows["Ann"]["transcript"]  # the gateway's call record reached the export


def test_simulate_refuses_an_unknown_callee(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "c.db")
    assert main(["create", str(EXAMPLE), "--store", db]) == 0
    assert main(["start", "try-it", "--store", db, "--simulate", "--callees", "robot"]) == 2
    assert "--callees takes person" in capsys.readouterr().err


@pytest.mark.parametrize("plan", [None, "default.yaml"])
async def test_dialler_refuses_a_gateway_without_the_campaign_route(tmp_path, plan) -> None:
    campaign = load_campaign(write_campaign(tmp_path, f"dialplan: {PLAN}\n"))
    settings = Settings(engine="echo", twilio_auth_token=TOKEN,
                        dialplan=str(ROOT / "dialplans" / plan) if plan else "")  # fmt: skip
    async with serve(create_app(settings)) as gateway:
        with pytest.raises(GatewayMisrouted) as refused:
            await check_gateway(campaign, gateway, phone="+13125550170", at=datetime.now(UTC),
                                auth_token=TOKEN, account_sid=ACCOUNT)  # fmt: skip
        with pytest.raises(GatewayMisrouted) as unsigned:
            await check_gateway(campaign, gateway, phone="+13125550170", at=datetime.now(UTC),
                                auth_token="another token", account_sid=ACCOUNT)  # fmt: skip
    assert "start the gateway with --dialplan" in str(refused.value)
    assert "callback-line" in str(refused.value)
    assert "TWILIO_AUTH_TOKEN" in str(unsigned.value)


async def test_dialler_accepts_a_gateway_with_the_campaign_plan(tmp_path: Path) -> None:
    campaign = load_campaign(write_campaign(tmp_path, f"dialplan: {PLAN}\n"))
    settings = Settings(twilio_auth_token=TOKEN, dialplan=str(PLAN))
    from engine.echo import EchoEngine

    async with serve(create_app(settings, engine=EchoEngine())) as gateway:
        await check_gateway(campaign, gateway, phone="+13125550170", at=datetime.now(UTC),
                            auth_token=TOKEN, account_sid=ACCOUNT)  # fmt: skip
    with pytest.raises(GatewayMisrouted, match="cannot reach"):
        await check_gateway(campaign, gateway, phone="+13125550170", at=datetime.now(UTC),
                            auth_token=TOKEN, account_sid=ACCOUNT, http_timeout=2)  # fmt: skip


def test_routed_as_reads_the_stream_parameters() -> None:
    twiml = (
        '<Response><Connect><Stream url="wss://x/twilio/media"><Parameter name="route" '
        'value="r1"/><Parameter name="branch" value="b"/></Stream></Connect></Response>'
    )
    assert routed_as(twiml) == ("r1", "b")
    assert routed_as("<Response><Hangup/></Response>") is None
    assert routed_as("not xml") is None


def test_shipped_campaigns_are_not_stale(tmp_path: Path) -> None:
    for path in sorted((ROOT / "campaigns").glob("*.yaml")):
        spec = load_campaign(path).spec
        assert spec.stop is None or spec.stop >= date(2030, 1, 1), path
        store = open_store(str(tmp_path / f"{path.stem}.db"))
        assert create_campaign(store, path, time.time()).warnings == [], path


def test_serve_help_names_the_real_default_engine(capsys) -> None:
    from gateway.cli import main as overtalk

    with pytest.raises(SystemExit):
        overtalk(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"default {Settings.engine})" in text and "default echo" not in text


def test_first_call_at_tells_when_the_earliest_window_opens() -> None:
    from zoneinfo import ZoneInfo

    from gateway.campaigns.simulate import first_call_at

    campaign = load_campaign(ROOT / "campaigns" / "spring-reminders.yaml")
    chicago, london = ZoneInfo("America/Chicago"), ZoneInfo("Europe/London")
    sunday_night = datetime(2027, 3, 7, 3, 0, tzinfo=chicago)
    opens = first_call_at(campaign, ["America/Chicago", "Europe/London"], sunday_night)
    assert opens == datetime(2027, 3, 8, 9, 0, tzinfo=london)  # London's Monday comes first
    always = load_campaign(EXAMPLE)
    assert first_call_at(always, ["America/Chicago"], sunday_night) == sunday_night
