"""DTMF out through the carriers' REST APIs, end to end and at the edges.

The caller presses ``5``; the bot keys :data:`conversation.BOT_DIGITS` (``1w2#``); the gateway
asks Telnyx (``send_dtmf``), Plivo (``DTMF/``) or Vonage (``/dtmf``) to play it, each in its
own alphabet, and the stand-in records what was pressed. A request the stand-in refuses falls
back to tones and is in the call record; Exotel, with no REST DTMF, plays tones. The stand-ins
refuse what the services refuse, and the digit translation never lets through a character an
API does not take.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pybase64
import pytest
from conversation import BOT_DIGITS, EchoRecorder, gateway
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st
from starlette.testclient import TestClient
from vonage_jwt.jwt import JwtClient

from gateway.call.commands import DTMF_CHARACTERS, MAX_DTMF_DIGITS
from gateway.carriers.plivo.control import DTMF as PLIVO
from gateway.carriers.telnyx.control import DTMF as TELNYX
from gateway.carriers.vonage.control import DTMF as VONAGE
from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.carriers import dialer_for
from gateway.sim.carriers.dial import place_carrier_call
from gateway.sim.carriers.plivo import PlivoDialer, PlivoRestSim
from gateway.sim.carriers.telnyx import TelnyxDialer, TelnyxRestSim, new_call_control_id
from gateway.sim.carriers.vonage import VonageRestSim, new_uuid
from gateway.sim.report import CallReport
from gateway.sim.script import CallerScript

TELNYX_PRIVATE, TELNYX_PUBLIC = TelnyxDialer.new_key()
TELNYX_KEY = "KEY-telnyx-test"
PLIVO_ID, PLIVO_TOKEN = "MAXXXXXXXXXXXXXXXXXX", "plivo-test-auth-token"
VONAGE_SECRET = "vonage-signature-secret-0123456789"


@pytest.fixture(scope="module")
def vonage_keys() -> tuple[str, str]:
    """A Vonage application's private and public key (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def keying() -> CallerScript:
    """The caller presses 5 (the bot keys BOT_DIGITS), waits 2 s, hangs up."""
    return CallerScript().pause(200).dtmf("5").pause(2000).hang_up()


async def call_through(
    settings: Settings, dialer: Any, rest: Any
) -> tuple[CallReport, dict[str, Any]]:
    async with gateway(settings, EchoRecorder()) as (url, ended):
        async with asyncio.timeout(30):
            report = await place_carrier_call(url, keying(), dialer, on_pump=rest.track)
        record = await ended.record(report.call_sid)
    assert report.ended_by == "caller", report.format()
    return report, record


async def test_telnyx_bot_dtmf_reaches_call_control_send_dtmf() -> None:
    rest = TelnyxRestSim(TELNYX_KEY)
    async with serve(rest.app()) as api:
        settings = Settings(
            telnyx_public_key=TELNYX_PUBLIC, telnyx_api_key=TELNYX_KEY, telnyx_api_base=api + "/v2"
        )
        report, record = await call_through(settings, TelnyxDialer(TELNYX_PRIVATE), rest)
    assert rest.pressed == [(report.call_sid, BOT_DIGITS)] and rest.rejected == []
    assert record["errors"] == [] and report.bot_audio_played_s == 0  # no tones


async def test_plivo_bot_dtmf_reaches_the_send_digits_api() -> None:
    rest = PlivoRestSim(PLIVO_ID, PLIVO_TOKEN)
    async with serve(rest.app()) as api:
        settings = Settings(
            plivo_auth_id=PLIVO_ID, plivo_auth_token=PLIVO_TOKEN, plivo_api_base=api
        )
        report, record = await call_through(settings, PlivoDialer(PLIVO_TOKEN), rest)
    assert rest.pressed == [(report.call_sid, BOT_DIGITS)] and rest.rejected == []
    assert record["errors"] == [] and report.bot_audio_played_s == 0


async def test_vonage_bot_dtmf_reaches_the_voice_api(vonage_keys: tuple[str, str]) -> None:
    private, public = vonage_keys
    rest = VonageRestSim("app-1", public)
    async with serve(rest.app()) as api:
        settings = Settings(
            vonage_signature_secret=VONAGE_SECRET,
            vonage_application_id="app-1",
            vonage_private_key=private,
            vonage_api_base=api,
        )
        report, record = await call_through(settings, dialer_for("vonage", VONAGE_SECRET), rest)
    assert rest.pressed == [(report.call_sid, BOT_DIGITS.replace("w", "p"))]
    assert rest.rejected == []
    assert record["errors"] == [] and report.bot_audio_played_s == 0


async def test_a_refused_dtmf_request_falls_back_to_tones_and_is_recorded() -> None:
    rest = TelnyxRestSim("KEY-another")  # the gateway's key is not this one: 401
    async with serve(rest.app()) as api:
        settings = Settings(
            telnyx_public_key=TELNYX_PUBLIC, telnyx_api_key=TELNYX_KEY, telnyx_api_base=api + "/v2"
        )
        report, record = await call_through(settings, TelnyxDialer(TELNYX_PRIVATE), rest)
    assert rest.pressed == [] and rest.rejected == [(401, "send_dtmf")]
    assert [e for e in record["errors"] if e.startswith("dtmf failed")], record["errors"]
    assert report.bot_audio_played_s > 0.3  # the caller heard the digits as tones


async def test_exotel_has_no_rest_dtmf_and_plays_tones() -> None:
    settings = Settings(exotel_api_key="exo-key", exotel_api_token="exo-token-0123456789")
    dialer = dialer_for("exotel", "exo-key:exo-token-0123456789")
    async with gateway(settings, EchoRecorder()) as (url, ended):
        async with asyncio.timeout(30):
            report = await place_carrier_call(url, keying(), dialer)
        record = await ended.record(report.call_sid)
    assert report.ended_by == "caller", report.format()
    assert record["errors"] == [] and report.bot_audio_played_s > 0.3


# -- the stand-ins refuse what the services refuse -------------------------------------------


class _Live:
    """A live call for a stand-in to act on, without placing one."""

    ended_by_carrier = hung_up = gateway_closed = False

    def end_by_carrier(self, reason: str) -> None:
        self.ended_by_carrier = True


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    async def make(app: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim")

    yield make


async def test_telnyx_stand_in_send_dtmf_rules(client: Any) -> None:
    rest, call = TelnyxRestSim(TELNYX_KEY), new_call_control_id()
    rest.track(call, _Live())  # type: ignore[arg-type]
    path = f"/v2/calls/{call}/actions/send_dtmf"
    auth = {"Authorization": f"Bearer {TELNYX_KEY}"}
    async with await client(rest.app()) as http:
        ok = await http.post(path, json={"digits": "1www2WABCDw9"}, headers=auth)
        bad_key = await http.post(path, json={"digits": "1"}, headers={"Authorization": "Bearer x"})
        bad_digits = await http.post(path, json={"digits": "1p2"}, headers=auth)
        empty = await http.post(path, json={"digits": ""}, headers=auth)
        short = await http.post(path, json={"digits": "1", "duration_millis": 50}, headers=auth)
        unknown = await http.post(
            f"/v2/calls/{new_call_control_id()}/actions/send_dtmf",
            json={"digits": "1"},
            headers=auth,
        )
    assert ok.status_code == 200 and ok.json() == {"data": {"result": "ok"}}
    assert [r.status_code for r in (bad_key, bad_digits, empty, short, unknown)] == [
        401, 422, 422, 422, 404,
    ]  # fmt: skip
    assert rest.pressed == [(call, "1www2WABCDw9")]


async def test_plivo_stand_in_send_digits_rules(client: Any) -> None:
    rest, call = PlivoRestSim(PLIVO_ID, PLIVO_TOKEN), new_uuid()
    rest.track(call, _Live())  # type: ignore[arg-type]
    path = f"/v1/Account/{PLIVO_ID}/Call/{call}/DTMF/"
    basic = "Basic " + pybase64.b64encode(f"{PLIVO_ID}:{PLIVO_TOKEN}".encode()).decode()
    auth = {"Authorization": basic}
    async with await client(rest.app()) as http:
        ok = await http.post(path, data={"digits": "12w#W*", "leg": "aleg"}, headers=auth)
        bad_key = await http.post(path, data={"digits": "1"}, headers={"Authorization": "Basic x"})
        letters = await http.post(path, data={"digits": "A"}, headers=auth)
        bleg = await http.post(path, data={"digits": "1", "leg": "bleg"}, headers=auth)
        missing = await http.post(path, data={}, headers=auth)
    assert ok.status_code == 202 and ok.json()["message"] == "digits sent"
    assert [r.status_code for r in (bad_key, letters, bleg, missing)] == [401, 400, 400, 400]
    assert rest.pressed == [(call, "12w#W*")]


async def test_vonage_stand_in_play_dtmf_rules(client: Any, vonage_keys: tuple[str, str]) -> None:
    private, public = vonage_keys
    rest, call = VonageRestSim("app-1", public), new_uuid()
    rest.track(call, _Live())  # type: ignore[arg-type]
    token = JwtClient("app-1", private).generate_application_jwt().decode()
    auth = {"Authorization": f"Bearer {token}"}
    other = JwtClient("app-2", private).generate_application_jwt().decode()
    async with await client(rest.app()) as http:
        ok = await http.put(f"/v1/calls/{call}/dtmf", json={"digits": "1p2#"}, headers=auth)
        bad_app = await http.put(
            f"/v1/calls/{call}/dtmf",
            json={"digits": "1"},
            headers={"Authorization": f"Bearer {other}"},
        )
        pause_w = await http.put(f"/v1/calls/{call}/dtmf", json={"digits": "1w2"}, headers=auth)
        unknown = await http.put(f"/v1/calls/{new_uuid()}/dtmf", json={"digits": "1"}, headers=auth)
    assert ok.status_code == 200 and ok.json() == {"message": "DTMF sent", "uuid": call}
    assert [r.status_code for r in (bad_app, pause_w, unknown)] == [401, 400, 404]
    assert rest.pressed == [(call, "1p2#")]


# -- the translation: what each API accepts, and nothing else ---------------------------------

SESSION_DIGITS = st.text(alphabet=DTMF_CHARACTERS, max_size=MAX_DTMF_DIGITS + 8)


@given(SESSION_DIGITS)
def test_translations_carry_only_what_each_api_accepts(digits: str) -> None:
    for alphabet, allowed in ((TELNYX, "0123456789ABCD*#wW"), (PLIVO, "0123456789*#wW"),
                              (VONAGE, "0123456789*#p")):  # fmt: skip
        wire = alphabet.translate(digits)
        if wire is None:
            assert (
                not digits
                or len(digits) > MAX_DTMF_DIGITS
                or set(digits) - set(alphabet.keys | {"W"})
            )
            continue
        assert len(wire) == len(digits) and set(wire) <= set(allowed)
        # One pause for one pause, keys unchanged.
        assert wire.replace(alphabet.pause, "W") == digits


@given(st.text(max_size=80))
def test_translations_refuse_anything_outside_the_sessions_alphabet(text: str) -> None:
    for alphabet in (TELNYX, PLIVO, VONAGE):
        wire = alphabet.translate(text)
        assert wire is None or (set(text) <= set(DTMF_CHARACTERS) and len(text) <= MAX_DTMF_DIGITS)


def test_the_pause_character_each_api_reads_as_half_a_second() -> None:
    assert TELNYX.translate("1W2") == "1w2" and PLIVO.translate("1W2") == "1w2"
    assert VONAGE.translate("1W2") == "1p2"
    assert PLIVO.translate("A") is None and VONAGE.translate("D") is None
    assert TELNYX.translate("A") == "A"


@examples(max_examples=40, deadline=None)
@given(st.one_of(st.text(alphabet="0123456789ABCD*#wWp", max_size=12), st.text(max_size=12)))
def test_stand_ins_press_exactly_what_their_service_accepts(digits: str) -> None:
    """Whatever the string, each stand-in either plays it (and records it) or refuses it with
    its service's status, recording nothing."""
    telnyx_ok = bool(digits) and set(digits) <= set("0123456789ABCD*#wW")
    plivo_ok = bool(digits) and set(digits) <= set("0123456789*#wW")
    telnyx, plivo = TelnyxRestSim(TELNYX_KEY), PlivoRestSim(PLIVO_ID, PLIVO_TOKEN)
    call_id, call_uuid = new_call_control_id(), new_uuid()
    telnyx.track(call_id, _Live())  # type: ignore[arg-type]
    plivo.track(call_uuid, _Live())  # type: ignore[arg-type]
    with TestClient(telnyx.app()) as http:
        got = http.post(
            f"/v2/calls/{call_id}/actions/send_dtmf",
            json={"digits": digits},
            headers={"Authorization": f"Bearer {TELNYX_KEY}"},
        )
    assert got.status_code == (200 if telnyx_ok else 422)
    assert telnyx.pressed == ([(call_id, digits)] if telnyx_ok else [])
    basic = "Basic " + pybase64.b64encode(f"{PLIVO_ID}:{PLIVO_TOKEN}".encode()).decode()
    with TestClient(plivo.app()) as http:
        got = http.post(
            f"/v1/Account/{PLIVO_ID}/Call/{call_uuid}/DTMF/",
            data={"digits": digits},
            headers={"Authorization": basic},
        )
    assert got.status_code == (202 if plivo_ok else 400)
    assert plivo.pressed == ([(call_uuid, digits)] if plivo_ok else [])
