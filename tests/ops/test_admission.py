"""Admission control: an engine carries at most its capacity; past it a new call is refused
busy (SIP 503 with Retry-After or 486, Twilio's route fallback or <Reject reason="busy">), and
/readyz and /metrics say how full each engine is."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.call.ledger import CallLedger
from gateway.config import ConfigError, Settings
from gateway.ops.admission import Admission, default_capacity, parse_capacity


def _sid(n: int) -> str:
    return f"CA{n:032x}"


def _voice(n: int) -> dict[str, str]:
    return {"CallSid": _sid(n), "AccountSid": "AC" + "b" * 32, "From": "+15005550006",
            "To": "+15005550001", "Direction": "inbound", "CallStatus": "ringing"}  # fmt: skip


def test_admission_admits_up_to_capacity_and_counts_refusals() -> None:
    active: dict[str, CallLedger] = {}
    admission = Admission({"local": 2}, active, hold=10.0)
    assert admission.admit("a", "local", "sip", 0.0)
    assert admission.admit("a", "local", "sip", 0.0)  # the same call twice: one place
    assert admission.admit("b", "local", "twilio", 1.0)
    assert not admission.admit("c", "local", "twilio", 2.0)
    assert admission.admit("c", "echo", "twilio", 2.0)  # no capacity set: unlimited
    assert admission.refused == {("local", "twilio"): 1}
    active["a"] = CallLedger(call_id="a", carrier="sip", engine="local")  # live: counted once
    assert admission.load("local", 3.0).in_use == 2
    admission.call_ended(active.pop("a"))
    assert admission.load("local", 3.0).in_use == 1
    assert admission.admit("d", "local", "sip", 3.0)


def test_admission_frees_a_place_whose_media_never_came() -> None:
    admission = Admission({"*": 1}, {}, hold=10.0)
    assert admission.admit("a", "local", "twilio", 0.0)
    assert not admission.admit("b", "local", "twilio", 9.0)
    assert admission.admit("b", "local", "twilio", 10.5)  # "a"'s stream never opened


@pytest.mark.parametrize(
    ("text", "capacity"),
    [("", {}), ("6", {"*": 6}), ("local=6, echo=400", {"local": 6, "echo": 400})],
)
def test_capacity_parses(text: str, capacity: dict[str, int]) -> None:
    assert parse_capacity(text) == capacity


def test_capacity_default_gives_local_engine_its_measured_figure_per_core() -> None:
    assert default_capacity({}, 2) == {"local": 24}
    assert default_capacity({"echo": 5}, 4) == {"echo": 5, "local": 48}
    assert default_capacity({"local": 3}, 8) == {"local": 3}
    assert default_capacity({"*": 10}, 8) == {"*": 10}  # one number for every engine


@given(st.text(max_size=40))
def test_capacity_fuzz_parses_or_names_the_bad_part(text: str) -> None:
    try:
        capacity = parse_capacity(text)
    except ConfigError as exc:
        assert "capacity must be" in str(exc)
        return
    assert all(n >= 1 for n in capacity.values())


async def test_twilio_webhook_rejects_busy_when_engine_full_then_readyz_and_metrics_say_so():
    app = create_app(Settings(engine="echo", capacity="echo=1"), EchoEngine())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as c:
        ready = await c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["engines"]["echo"] == {"capacity": 1, "calls": 0}
        first = ET.fromstring((await c.post("/twilio/voice", data=_voice(1))).text)
        assert first.find("./Connect/Stream") is not None
        second = ET.fromstring((await c.post("/twilio/voice", data=_voice(2))).text)
        assert second.find("Connect") is None
        assert second.find("Reject") is not None and second.find("Reject").get("reason") == "busy"
        full = await c.get("/readyz")
        assert full.status_code == 503 and full.json()["full"] is True
        metrics = (await c.get("/metrics")).text
    assert 'overtalk_engine_capacity{engine="echo"} 1.0' in metrics
    assert 'overtalk_engine_calls{engine="echo"} 1.0' in metrics
    assert 'overtalk_calls_refused_total{carrier="twilio",engine="echo"} 1.0' in metrics


async def test_twilio_webhook_takes_route_fallback_when_engine_full(tmp_path: Path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "version: 1\ndefault_route: all\nroutes:\n  all:\n    otherwise:\n"
        "      action: bot\n      engine: echo\n      fallback:\n"
        "        action: say\n        text: All our lines are busy.\n"
    )
    app = create_app(Settings(engine="echo", capacity="1", dialplan=str(plan)), EchoEngine())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as c:
        first = ET.fromstring((await c.post("/twilio/voice", data=_voice(1))).text)
        second = ET.fromstring((await c.post("/twilio/voice", data=_voice(2))).text)
    assert first.find("./Connect/Stream") is not None
    assert second.find("Connect") is None
    assert "All our lines are busy." in ET.tostring(second, encoding="unicode")


def test_admission_outbound_placeholder_renamed_keeps_one_place_until_its_limit() -> None:
    active: dict[str, CallLedger] = {}
    admission = Admission({"echo": 1}, active, hold=15.0)
    assert admission.admit("outbound-1", "echo", "sip", 0.0)
    admission.rename("outbound-1", "abc@host", until=65.0)
    assert admission.load("echo", 30.0).in_use == 1  # still ringing past the usual hold
    assert not admission.admit("inbound", "echo", "sip", 30.0)
    admission.release("outbound-1")  # the placeholder is gone: a no-op
    assert admission.load("echo", 30.0).in_use == 1
    assert admission.load("echo", 66.0).in_use == 0  # rang out without an answer
