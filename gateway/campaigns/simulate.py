"""``overtalk campaign start ID --simulate``: a whole campaign on one machine, no account.

Everything a real run has, on loopback: the simulator's stand-in for Twilio's REST API
(:mod:`gateway.sim.rest`) places the calls; scripted callees (:mod:`gateway.sim.callee`)
answer them as a person who talks, a voicemail box, a busy line or nobody; a gateway started
here with the campaign's own dial plan answers the media streams and takes the status and
answering-machine callbacks into the store; the real dialler dials. Afterwards the store
holds the outcomes as after a real campaign: ``status`` and ``export`` read them.

Callees are given to the contacts in list order from a repeating pattern (``--callees``).
Ringing and ring timeouts are shortened by ``time_scale``; the media runs in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from gateway.campaigns.errors import CampaignError
from gateway.campaigns.spec import LoadedCampaign
from gateway.campaigns.store import Stats, Store

if TYPE_CHECKING:
    from gateway.sim.callee import Callee

__all__ = ["KINDS", "PATTERN", "callee", "first_call_at", "simulate"]

#: What a simulated callee may be.
KINDS = ("person", "voicemail", "busy", "no-answer", "failed")
#: The default pattern: most people answer, some machines, a busy line and nobody home.
PATTERN = ("person", "voicemail", "person", "busy", "no-answer")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tone(ms: int, freq: float) -> bytes:
    """A stand-in for speech: the simulator's callees talk in tones (8 kHz int16 PCM)."""
    t = np.arange(ms * 8) / 8000
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02) if len(t) else t
    return (np.sin(2 * np.pi * freq * t) * envelope * 0.3 * 32767).astype("<i2").tobytes()


def callee(kind: str, *, talk_s: float = 1.0) -> Callee:
    """A scripted callee of ``kind`` (one of :data:`KINDS`)."""
    from gateway.sim.callee import Callee
    from gateway.sim.script import CallerScript

    match kind:
        case "person":  # hears the greeting, answers, hears the bot out, hangs up
            script = (
                CallerScript()
                .wait_for_bot(500, 3.0)
                .say(_tone(round(talk_s * 1000), 220.0), "reply")
                .wait_for_bot(500, 3.0)
                .hang_up()
            )
            return Callee.person(script, ring_s=2.0, amd_after_s=0.5)
        case "voicemail":
            return Callee.voicemail(_tone(1500, 330.0), ring_s=3.0, record_s=4.0)
        case "busy":
            return Callee.busy(ring_s=1.0)
        case "no-answer":
            return Callee.no_answer()
        case "failed":
            return Callee.failed(ring_s=0.5)
    raise ValueError(f"unknown callee {kind!r}: one of {', '.join(KINDS)}")


def first_call_at(campaign: LoadedCampaign, zones: Sequence[str], now: datetime) -> datetime | None:
    """When the earliest of these callees' calling windows opens (None: never again)."""
    windows = campaign.spec.calling_windows()
    opens = [windows.next_open(now, ZoneInfo(zone)) for zone in set(zones)]
    return min((o for o in opens if o is not None), default=None)


async def simulate(
    store: Store,
    campaign_id: str,
    *,
    pattern: Sequence[str] = PATTERN,
    engine: str = "echo",
    time_scale: float = 0.2,
    talk_s: float = 1.0,
    poll_s: float = 0.2,
    records_dir: str | None = None,
    watch: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> Stats:
    """Run ``campaign_id`` to its end against the simulated phone network; its final stats.

    ``engine``: ``echo`` answers the plan's bots with the echo engine (fast, nothing to load);
    any other name starts that engine as the gateway would (``local`` speaks the flows).
    ``watch``: a coroutine run beside the dialler (the live progress line), canceled at the
    end. Raises :class:`CampaignError` when the campaign cannot run (not found, already
    finished, the gateway would misroute it).
    """
    from gateway.app import create_app
    from gateway.campaigns.api import campaign_router
    from gateway.campaigns.carrier import TwilioCalls
    from gateway.campaigns.dialler import Dialler, campaign_of
    from gateway.campaigns.preflight import check_gateway
    from gateway.carriers.twilio.stream_token import StreamTokens
    from gateway.config import Settings
    from gateway.ops.server import serve
    from gateway.sim.callee import CalleeBook
    from gateway.sim.rest import TwilioRestSim

    loaded = await asyncio.to_thread(campaign_of, store, campaign_id)
    contacts = await asyncio.to_thread(store.contacts, campaign_id)
    if not contacts:
        raise CampaignError(f"campaign {campaign_id!r} has no contacts")
    kinds = [pattern[i % len(pattern)] for i in range(len(contacts))]
    pairs = zip(contacts, kinds, strict=True)
    book = CalleeBook({c["phone"]: callee(k, talk_s=talk_s) for c, k in pairs})
    token = secrets.token_hex(16)
    sim = TwilioRestSim(book, auth_token=token, time_scale=time_scale)
    plan = ""
    if loaded.spec.dialplan:
        plan = str((loaded.path.parent / loaded.spec.dialplan).resolve())
    prebuilt = None
    if engine == "echo":
        from engine.echo import EchoEngine

        prebuilt = EchoEngine()
    try:
        async with serve(sim.app()) as api:
            carrier = TwilioCalls(sim.account_sid, token, api_base=api)
            port = _free_port()  # known before the app is built: it signs against its URL
            settings = Settings(
                public_url=f"http://127.0.0.1:{port}",
                dialplan=plan,
                engine=Settings.engine if prebuilt is not None else engine,
                twilio_auth_token=token,
                twilio_account_sid=sim.account_sid,
                twilio_api_base=api,
                records_dir=records_dir or "",
            )
            app = create_app(settings, engine=prebuilt)
            app.include_router(campaign_router(store, twilio_auth_token=token, carrier=carrier))
            async with serve(app, port=port) as gateway:
                await check_gateway(
                    loaded, gateway, phone=contacts[0]["phone"],
                    at=datetime.now(UTC), auth_token=token, account_sid=sim.account_sid,
                )  # fmt: skip
                state = (await asyncio.to_thread(store.campaign, campaign_id)).state
                if state in ("ready", "paused"):
                    await asyncio.to_thread(store.change_state, campaign_id, "start", time.time())
                dialler = Dialler(
                    store, campaign_id, carrier, public_url=gateway, campaign=loaded,
                    poll_s=poll_s, check_after_s=10.0, records_dir=records_dir,
                    stream_tokens=StreamTokens.derive("", token),
                )  # fmt: skip
                watcher = asyncio.create_task(watch()) if watch is not None else None
                try:
                    await dialler.run()
                finally:
                    if watcher is not None:
                        watcher.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await watcher
    finally:
        await sim.aclose()
    return await asyncio.to_thread(store.stats, campaign_id)
