"""The shared scripted conversation over Exotel's Voicebot applet, interruption included:
the dynamic stream URL, Basic auth, base64 L16 chunks, mark echoes, clear."""

from __future__ import annotations

import asyncio

from conversation import EchoRecorder, check_conversation, conversation, gateway

from gateway.config import Settings
from gateway.sim.carriers import dialer_for
from gateway.sim.carriers.dial import place_carrier_call
from gateway.sim.script import CallerScript

SETTINGS = Settings(exotel_api_key="exo-key", exotel_api_token="exo-token-0123456789")


async def test_exotel_holds_the_conversation_with_an_interruption() -> None:
    engine = EchoRecorder()
    async with gateway(SETTINGS, engine) as (url, ended):
        async with asyncio.timeout(30):
            dialer = dialer_for("exotel", "exo-key:exo-token-0123456789")
            report = await place_carrier_call(url, conversation(), dialer)
        record = await ended.record(report.call_sid)
    check_conversation(report, record, engine)
    assert record["carrier"] == "exotel"


async def test_exotel_stream_url_without_the_credentials_is_refused() -> None:
    engine = EchoRecorder()
    async with gateway(SETTINGS, engine) as (url, _):
        report = await place_carrier_call(url, conversation(), dialer_for("exotel", "exo-key:no"))
    assert report.http_status == 403 and not report.streamed
    assert engine.sessions == []


async def test_exotel_chunks_are_the_mark_interval_long() -> None:
    """With a mark every 5 frames, chunks are Exotel's 100 ms, bar an utterance's tail."""
    engine = EchoRecorder()
    settings = Settings(exotel_api_key="exo-key", exotel_api_token="t0k", mark_every=5)
    pumps = []
    async with gateway(settings, engine) as (url, ended):
        report = await place_carrier_call(
            url,
            conversation(),
            dialer_for("exotel", "exo-key:t0k"),
            on_pump=lambda call, pump: pumps.append(pump),
        )
        record = await ended.record(report.call_sid)
    check_conversation(report, record, engine)
    [pump] = pumps
    assert pump.sim.media_received >= 5
    assert pump.sim.short_chunks <= 2  # the tails of the two answers, at most


async def test_exotel_hangs_up_by_closing_the_stream_and_refuses_transfers() -> None:
    """Exotel offers no REST call control for a call in its applet: a hang-up closes the
    stream (the flow's next applet runs), a transfer is an error in the record."""
    dialer = dialer_for("exotel", "exo-key:exo-token-0123456789")
    async with gateway(SETTINGS, EchoRecorder()) as (url, ended):
        async with asyncio.timeout(30):
            hung_up = await place_carrier_call(
                url, CallerScript().pause(200).dtmf("#").pause(5000), dialer
            )
            transfer = await place_carrier_call(
                url, CallerScript().pause(200).dtmf("0").pause(300), dialer
            )
        await ended.record(hung_up.call_sid)
        record = await ended.record(transfer.call_sid)
    assert hung_up.ended_by == "gateway" and hung_up.close_code == 1000, hung_up.format()
    assert transfer.ended_by == "caller"
    assert any("transfer failed" in error for error in record["errors"]), record["errors"]
