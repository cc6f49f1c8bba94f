"""The shared scripted conversation over Vonage's Voice API websocket, interruption included:
signed answer webhook, NCCO, L16 frames, notify echoes as marks, clear."""

from __future__ import annotations

import asyncio

import pytest
from conversation import TRANSFER_TO, EchoRecorder, check_conversation, conversation, gateway
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.carriers import dialer_for
from gateway.sim.carriers.dial import place_carrier_call
from gateway.sim.carriers.vonage import VonageRestSim
from gateway.sim.script import CallerScript

SECRET = "vonage-signature-secret-0123456789"


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_vonage_holds_the_conversation_with_an_interruption(rate: int) -> None:
    engine = EchoRecorder()
    settings = Settings(vonage_signature_secret=SECRET, vonage_rate=rate)
    async with gateway(settings, engine) as (url, ended):
        async with asyncio.timeout(30):
            report = await place_carrier_call(url, conversation(), dialer_for("vonage", SECRET))
        record = await ended.record(report.call_sid)
    check_conversation(report, record, engine)
    assert record["carrier"] == "vonage"
    assert any("exact" in str(e) for e in record["events"]), record["events"]
    assert any(f"l16-le@{rate}" in str(e) for e in record["events"]), record["events"]


async def test_vonage_answer_webhook_signed_with_another_secret_is_refused() -> None:
    engine = EchoRecorder()
    async with gateway(Settings(vonage_signature_secret=SECRET), engine) as (url, _):
        dialer = dialer_for("vonage", "another-secret-0123456789abcdefgh")
        report = await place_carrier_call(url, conversation(), dialer)
    assert report.http_status == 403 and not report.streamed
    assert engine.sessions == []


@pytest.fixture(scope="module")
def application() -> tuple[str, str]:
    """A Vonage application's key pair: the private key (PEM) and the public key (PEM)."""
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


def pressing(digit: str) -> CallerScript:
    """The caller presses ``digit`` (``#``: the bot hangs up, ``0``: it transfers)."""
    return CallerScript().pause(200).dtmf(digit).pause(5000)


@pytest.mark.parametrize("action", ["hangup", "transfer"])
async def test_vonage_bot_hangs_up_and_transfers_through_the_voice_api(
    action: str, application: tuple[str, str]
) -> None:
    private, public = application
    rest = VonageRestSim("app-1", public)
    async with serve(rest.app()) as api:
        settings = Settings(
            vonage_signature_secret=SECRET,
            vonage_application_id="app-1",
            vonage_private_key=private,
            vonage_api_base=api,
        )
        async with gateway(settings, EchoRecorder()) as (url, ended):
            async with asyncio.timeout(30):
                report = await place_carrier_call(
                    url,
                    pressing("#" if action == "hangup" else "0"),
                    dialer_for("vonage", SECRET),
                    on_pump=rest.track,
                )
            record = await ended.record(report.call_sid)
    assert report.ended_by == "carrier", report.format()
    assert report.duration_s < 3.0  # did not play out the 5 s pause
    ((uuid, done, body),) = rest.updates
    assert uuid == report.call_sid and done == action and rest.rejected == []
    if action == "transfer":
        [connect] = body["destination"]["ncco"]
        assert connect["endpoint"] == [{"number": TRANSFER_TO.removeprefix("+"), "type": "phone"}]
    assert record["dtmf_in"] == 1 and record["errors"] == []


async def test_vonage_refuses_a_jwt_of_another_application(application: tuple[str, str]) -> None:
    private, public = application
    rest = VonageRestSim("app-1", public)
    async with serve(rest.app()) as api:
        settings = Settings(
            vonage_signature_secret=SECRET,
            vonage_application_id="app-2",
            vonage_private_key=private,
            vonage_api_base=api,
        )
        async with gateway(settings, EchoRecorder()) as (url, ended):
            async with asyncio.timeout(30):
                report = await place_carrier_call(
                    url, pressing("#"), dialer_for("vonage", SECRET), on_pump=rest.track
                )
            record = await ended.record(report.call_sid)
    assert rest.updates == [] and rest.rejected[0][0] == 401
    assert any("hangup failed" in error for error in record["errors"]), record["errors"]


async def test_vonage_without_application_hangs_up_by_closing_the_socket() -> None:
    async with gateway(Settings(vonage_signature_secret=SECRET), EchoRecorder()) as (url, ended):
        async with asyncio.timeout(30):
            report = await place_carrier_call(url, pressing("#"), dialer_for("vonage", SECRET))
        await ended.record(report.call_sid)
    assert report.ended_by == "gateway" and report.close_code == 1000, report.format()
