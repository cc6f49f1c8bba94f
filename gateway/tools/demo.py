"""``overtalk demo``: a gateway and a simulated caller in one process, talking.

The gateway runs for real (uvicorn, signed webhooks, the Media Streams websocket) and the
simulated Twilio calls it over loopback, so the printed latencies are measured on the wire,
exactly as for a carrier's call. The caller's voice is synthesised locally (Piper), or read
from the WAV files named, so the demo needs nothing from outside the repository.

``overtalk demo --browser`` is the other way to hear the bot: it serves the browser phone
(``/phone``) on loopback and prints its URL; you are the caller, with your own microphone.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from dataclasses import replace
from pathlib import Path

import orjson

from gateway.app import create_app
from gateway.config import Settings
from gateway.ops.server import serve

DEFAULT_LINES = (
    "Hello, I would like to check on my order, please.",
    "It is order number four two seven.",
)
#: Said over the bot's reply to the second line, to show an interruption.
BARGE_IN_LINE = "Sorry, actually, can you hold on a second?"


def _script(wavs: list[str], lines: list[str]):  # type: ignore[no-untyped-def]
    from gateway.sim.script import CallerScript, synthesize

    # A caller listens to the greeting before speaking.
    script = CallerScript().wait_for_bot(timeout_s=8)
    if wavs or lines:
        for path in wavs:
            script.say_file(path).wait_for_bot()
        for line in lines:
            script.say_text(line).wait_for_bot()
        return script
    script.say_text(DEFAULT_LINES[0]).wait_for_bot()
    script.say_text(DEFAULT_LINES[1])
    script.barge_in(1500, synthesize(BARGE_IN_LINE), BARGE_IN_LINE)
    script.wait_for_bot()
    return script


async def _demo(settings: Settings, script, record: str | None) -> int:  # type: ignore[no-untyped-def]
    from gateway.sim.caller import place_call

    app = create_app(settings)
    async with serve(app, host="127.0.0.1", port=0) as url:
        print(f"gateway: {url} (engine {settings.engine}); placing a simulated call...\n")
        report = await place_call(
            url,
            script,
            auth_token=settings.twilio_auth_token,
            record=Path(record) if record else None,
        )
    print(report.format())
    _print_transcript(Path(settings.records_dir) / f"{report.call_sid}.json")
    return 0 if report.ok else 1


def _print_transcript(record: Path) -> None:
    """What each side said, from the call's record (the gateway's own ledger)."""
    try:
        data = orjson.loads(record.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return
    lines = data.get("transcript") or []
    if lines:
        print("\ntranscript:")
        for role, text in lines:
            print(f"  {role:>6}: {text}")
    print(f"\ncall record: {record}")


async def _browser(settings: Settings) -> None:
    app = create_app(settings)
    async with serve(app, host="127.0.0.1", port=settings.port) as url:
        print(f"browser phone: {url}/phone  (engine {settings.engine}; Ctrl-C to stop)")
        print(f"calls and their timelines: {url}/calls", flush=True)
        await asyncio.Event().wait()  # until interrupted


def run_browser_demo(settings: Settings) -> int:
    """Serve the browser phone on loopback until Ctrl-C; calls are kept (records, timelines)
    in a temporary directory unless one is named."""
    if not settings.records_dir:
        settings = replace(settings, records_dir=tempfile.mkdtemp(prefix="overtalk-phone-"))
    try:
        asyncio.run(_browser(settings))
    except KeyboardInterrupt:
        pass
    return 0


def run_demo(settings: Settings, *, wavs: list[str], lines: list[str], record: str | None) -> int:
    """Run the demo call; exit status 0 when the call worked and the protocol was kept."""
    # Sign everything with a throwaway token: the demo exercises the real signature checks.
    settings = replace(settings, twilio_auth_token=secrets.token_hex(16), public_url="")
    if not settings.records_dir:
        settings = replace(settings, records_dir=tempfile.mkdtemp(prefix="overtalk-demo-"))
    print("synthesising the caller's lines...")
    script = _script(wavs, lines)
    return asyncio.run(_demo(settings, script, record))
