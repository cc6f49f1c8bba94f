"""``overtalk sim call``: place one simulated phone call to a running gateway and report it.

Each ``--wav``/``--say`` becomes a caller utterance followed by a wait for the bot's answer, in
the order given on the command line. The exit status is 0 only when the call worked and the
gateway broke no protocol rule, so scripts and CI can use it as a check.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from gateway.sim.carriers import DIALERS

__all__ = ["build_script", "register", "run_call"]


class _Utterance(argparse.Action):
    """Collect --wav and --say into one list so their command-line order is kept."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((self.const, values))
        setattr(namespace, self.dest, items)


#: Where each carrier's stand-in finds what it signs with.
SIGNING_ENV = {
    "telnyx": "TELNYX_SIM_PRIVATE_KEY",
    "plivo": "PLIVO_AUTH_TOKEN",
    "vonage": "VONAGE_SIGNATURE_SECRET",
    "exotel": "EXOTEL_SIM_AUTH",
}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sim`` (with ``call``) to the ``overtalk`` command."""
    sim = subparsers.add_parser("sim", help="the simulated phone network (a local Twilio)")
    commands = sim.add_subparsers(dest="sim_command", required=True)
    call = commands.add_parser(
        "call",
        help="place a simulated inbound call (Twilio, Telnyx, Plivo...) to a running gateway",
        description="POST the signed voice webhook, follow the TwiML, stream the caller's "
        "audio in real time over Media Streams and report latencies measured on the wire. "
        "The auth token is read from TWILIO_AUTH_TOKEN (no signatures without it).",
    )
    call.add_argument(
        "--gateway", required=True, help="gateway base URL, e.g. http://127.0.0.1:8080"
    )
    call.add_argument(
        "--carrier",
        default="twilio",
        choices=["twilio", *sorted(DIALERS)],
        help="whose network places the call (default twilio). Signing secrets come from the "
        "environment: TWILIO_AUTH_TOKEN, TELNYX_SIM_PRIVATE_KEY (base64 Ed25519 seed whose "
        "public key the gateway has as TELNYX_PUBLIC_KEY), PLIVO_AUTH_TOKEN, "
        "VONAGE_SIGNATURE_SECRET, EXOTEL_SIM_AUTH (the gateway's EXOTEL_API_KEY:EXOTEL_API_TOKEN); "
        "unset: unsigned",
    )
    call.add_argument(
        "--public-url", help="base URL the gateway signs against (default: --gateway)"
    )
    call.add_argument(
        "--wav",
        dest="utterances",
        action=_Utterance,
        const="wav",
        metavar="FILE",
        help="caller utterance from an audio file (wav/flac/ogg; repeatable)",
    )
    call.add_argument(
        "--say",
        dest="utterances",
        action=_Utterance,
        const="say",
        metavar="TEXT",
        help="caller utterance synthesised with Piper (repeatable)",
    )
    call.add_argument("--from", dest="caller", default="+15005550006", help="caller number")
    call.add_argument("--to", dest="called", default="+15005550001", help="called number")
    call.add_argument(
        "--listen-first",
        action="store_true",
        help="wait for the bot's greeting before the first utterance",
    )
    call.add_argument(
        "--silence-ms", type=int, default=700, help="bot silence that ends its turn (default 700)"
    )
    call.add_argument(
        "--timeout", type=float, default=15.0, help="seconds to wait for each answer (default 15)"
    )
    call.add_argument("--record", type=Path, help="write a stereo WAV: caller left, bot right")
    call.add_argument("--json", action="store_true", help="print the report as JSON")
    call.set_defaults(handler=run_call, utterances=[])


def build_script(args: argparse.Namespace) -> Any:
    """The caller script the options describe."""
    from gateway.sim.script import CallerScript, load_audio, synthesize

    script = CallerScript()
    if args.listen_first:
        script.wait_for_bot(args.silence_ms, args.timeout)
    for kind, value in args.utterances:
        if kind == "wav":
            script.say(load_audio(value), Path(value).name)
        else:
            script.say(synthesize(value), value)
        script.wait_for_bot(args.silence_ms, args.timeout)
    return script


def run_call(args: argparse.Namespace) -> int:
    """Handler of ``overtalk sim call``: 0 if the call worked without protocol violations."""
    from gateway.sim.caller import place_call
    from gateway.sim.carriers import dialer_for
    from gateway.sim.carriers.dial import place_carrier_call

    try:
        script = build_script(args)
    except (OSError, RuntimeError) as exc:  # unreadable audio file, bad format
        print(f"overtalk sim call: {exc}", file=sys.stderr)
        return 2
    carrier = getattr(args, "carrier", "twilio")
    if carrier == "twilio":
        call = place_call(
            args.gateway,
            script,
            auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or None,
            public_url=args.public_url,
            caller=args.caller,
            called=args.called,
            record=args.record,
        )
    else:
        try:
            dialer = dialer_for(carrier, os.environ.get(SIGNING_ENV[carrier]) or None)
        except ValueError as exc:  # a malformed key in the environment
            print(f"overtalk sim call: {exc}", file=sys.stderr)
            return 2
        call = place_carrier_call(
            args.gateway,
            script,
            dialer,
            public_url=args.public_url,
            caller=args.caller,
            called=args.called,
            record=args.record,
        )
    report = asyncio.run(call)
    if args.json:
        print(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(report.format())
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway.sim``: the ``sim`` command on its own, without the gateway's CLI."""
    parser = argparse.ArgumentParser(prog="python -m gateway.sim")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(["sim", *(argv if argv is not None else sys.argv[1:])])
    return int(args.handler(args))
