"""The ``overtalk`` command: serve, demo, sim, dialplan, engine check, bench."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.callstore.cli import calls_show, register_list, store_options
from gateway.config import ConfigError, Settings, load_settings

log = logging.getLogger("overtalk")

#: Used by ``serve`` and ``demo`` when neither a plan nor an engine is named and this file
#: exists (run from a checkout). Naming an engine alone means "every call to that engine".
DEFAULT_DIALPLAN = "dialplans/default.yaml"


def _add_gateway_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (also OVERTALK_CONFIG)")
    parser.add_argument("--host", help="listen address (OVERTALK_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (OVERTALK_PORT, default 8080)")
    parser.add_argument(
        "--public-url",
        help="base URL Twilio reaches the gateway at, e.g. https://bot.example.com "
        "(OVERTALK_PUBLIC_URL)",
    )
    parser.add_argument(
        "--engine", help=f"engine name (OVERTALK_ENGINE, default {Settings.engine})"
    )
    parser.add_argument(
        "--dialplan",
        help="dial-plan file routing inbound calls (OVERTALK_DIALPLAN; default "
        "dialplans/default.yaml when it exists and no --engine is named; else every call "
        "goes to --engine)",
    )
    parser.add_argument("--log-level", help="debug, info, warning (OVERTALK_LOG_LEVEL)")
    parser.add_argument("--log-format", help="text or json (OVERTALK_LOG_FORMAT)")
    parser.add_argument(
        "--recordings-dir", help="record every call here as stereo WAV (caller left, bot right)"
    )
    parser.add_argument(
        "--drain-limit",
        type=float,
        help="seconds calls may run on after SIGTERM (OVERTALK_DRAIN_LIMIT, default 3600)",
    )
    parser.add_argument("--records-dir", help="write each call's ledger here as JSON")
    parser.add_argument(
        "--store", help="call store: SQLite file or postgresql:// URL (OVERTALK_STORE; "
        "default <records-dir>/calls.db)"
    )  # fmt: skip
    parser.add_argument(
        "--retain-days", type=float,
        help="delete call records, recordings and exports older than this (OVERTALK_RETAIN_DAYS)",
    )  # fmt: skip
    parser.add_argument(
        "--capacity",
        help="calls each engine carries at once, N or ENGINE=N,...; past it new calls get "
        "busy (OVERTALK_CAPACITY; `overtalk bench --overload` measures it; default unlimited)",
    )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        name: getattr(args, name, None)
        for name in (
            "host", "port", "public_url", "engine", "log_level", "log_format", "records_dir",
            "recordings_dir", "dialplan", "drain_limit", "store", "retain_days",
            "capacity",
        )
    }  # fmt: skip
    settings = load_settings(args.config, overrides)
    engine_named = settings.engine != Settings.engine
    if not settings.dialplan and not engine_named and Path(DEFAULT_DIALPLAN).is_file():
        settings = replace(settings, dialplan=DEFAULT_DIALPLAN)
    return settings


def _serve(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.carriers.sip import load_sip_settings
    from gateway.dialplan import DialPlanInvalid
    from gateway.ops import lifecycle, logs

    settings = _settings(args)
    logs.setup(settings.log_level, settings.log_format)
    low = high = None
    if args.rtp_ports:
        low_text, _, high_text = args.rtp_ports.partition("-")
        if not (low_text.isdigit() and high_text.isdigit()):
            raise ConfigError(f"--rtp-ports must be LOW-HIGH, not {args.rtp_ports!r}")
        low, high = int(low_text), int(high_text)
    sip = load_sip_settings(
        enabled=args.sip,
        host=args.sip_host,
        port=args.sip_port,
        public_host=args.sip_public_host,
        rtp_port_min=low,
        rtp_port_max=high,
    )
    try:
        # Bound first: a taken port is said at once, before the engine's models load.
        sock = lifecycle.listen(settings.host, settings.port)
    except lifecycle.CannotListen as exc:
        print(f"overtalk: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(settings, sip=sip)
    except DialPlanInvalid as exc:
        sock.close()
        print(f"overtalk: the dial plan is broken; not starting:\n{exc}", file=sys.stderr)
        return 2
    calls = app.state.calls
    try:
        _run_fast(
            lifecycle.run(
                app,
                sock=sock,
                drain_limit=settings.drain_limit,
                wait_idle=calls.wait_idle,
                end_calls=calls.end_all,
                lifecycle=app.state.lifecycle,
                log_config=None,
                proxy_headers=True,
                # Calls are long-lived websockets: the drain above decides when they may end.
                timeout_graceful_shutdown=5,
                **app.state.uvicorn_options,
            )
        )
    except lifecycle.StartFailed as exc:
        print(f"overtalk: {exc}", file=sys.stderr)
        return 1
    return 0


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run the gateway on uvloop where installed: measured here, the stdlib selector loop
    spends over a fifth of a loaded gateway's CPU re-registering sockets on every message."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _demo(args: argparse.Namespace) -> int:
    from gateway.tools.demo import run_demo

    settings = _settings(args)
    from gateway.ops import logs

    # The demo prints its own report; the gateway's log is kept for errors unless asked for.
    logs.setup(settings.log_level if args.log_level else "error", settings.log_format)
    if args.browser:
        from gateway.tools.demo import run_browser_demo

        return run_browser_demo(settings)
    return run_demo(settings, wavs=args.wav, lines=args.say, record=args.record)


def _bench(args: argparse.Namespace) -> int:
    from gateway.tools.bench import main as bench_main

    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overtalk", description="Telephony gateway for full-duplex voice models."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the gateway (Twilio webhooks + Media Streams, and SIP when enabled)"
    )
    _add_gateway_options(serve)
    sip = serve.add_argument_group("SIP (also OVERTALK_SIP_* variables; credentials from there)")
    sip.add_argument(
        "--sip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="take SIP calls (OVERTALK_SIP_ENABLED)",
    )
    sip.add_argument("--sip-host", help="SIP listen address (OVERTALK_SIP_HOST)")
    sip.add_argument("--sip-port", type=int, help="SIP port, UDP and TCP (OVERTALK_SIP_PORT)")
    sip.add_argument(
        "--sip-public-host",
        help="address for SDP and Contact behind NAT (OVERTALK_SIP_PUBLIC_HOST)",
    )
    sip.add_argument("--rtp-ports", help="RTP port range LOW-HIGH (OVERTALK_SIP_RTP_PORTS)")
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser(
        "demo", help="start a gateway and hold a simulated call with it, printing latencies"
    )
    _add_gateway_options(demo)
    demo.add_argument("--wav", action="append", default=[], help="caller utterance from a file")
    demo.add_argument("--say", action="append", default=[], help="caller line, synthesised")
    demo.add_argument("--record", help="write both channels to this stereo WAV")
    demo.add_argument(
        "--browser",
        action="store_true",
        help="serve the browser phone (/phone) on loopback and print its URL: you are the caller",
    )
    demo.set_defaults(handler=_demo)

    try:
        from gateway.sim.cli import register as register_sim
    except ImportError:  # the simulator is part of the distribution; absent only mid-build
        register_sim = None
    if register_sim is not None:
        register_sim(commands)
    try:
        from gateway.dialplan.cli import register as register_dialplan
    except ImportError:
        register_dialplan = None
    if register_dialplan is not None:
        register_dialplan(commands)

    calls = commands.add_parser("calls", help="look at finished calls")
    calls_commands = calls.add_subparsers(dest="calls_command", required=True)
    show = calls_commands.add_parser(
        "show", help="render one call's timeline (both channels, marks, clears, latencies)"
    )
    show.add_argument("call_id")
    store_options(show)
    show.add_argument("--recordings-dir", help="where the stereo recordings are")
    show.add_argument("--out", help="HTML file to write (default CALL_ID.html)")
    show.set_defaults(handler=calls_show)
    register_list(calls_commands)

    try:
        from gateway.tools.enginecheck import register as register_engine_check
    except ImportError:
        register_engine_check = None
    if register_engine_check is not None:
        register_engine_check(commands)

    try:
        from gateway.campaigns.cli import register as register_campaign
    except ImportError:
        register_campaign = None
    if register_campaign is not None:
        register_campaign(commands)

    bench = commands.add_parser("bench", help="concurrent simulated calls against one gateway")
    bench.add_argument("--calls", default="10,100", help="comma-separated call counts")
    bench.add_argument("--seconds", type=float, default=10.0, help="length of each call")
    bench.add_argument("--json", action="store_true", help="print results as JSON")
    bench.add_argument(
        "--pipecat",
        metavar="PYTHON",
        help="also run the same load against a Pipecat Twilio echo bot, with this Python "
        "(one that has pipecat-ai[websocket] installed)",
    )
    bench.add_argument("--pipecat-calls", help="call counts for Pipecat (default: --calls)")
    bench.add_argument(
        "--carrier",
        default="",
        metavar="X[,Y]",
        help="also run the wire load over these carriers' media streams (telnyx, plivo, "
        "vonage, exotel), "
        "side by side with Twilio: CPU per call and echo delay",
    )
    bench.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="instead: keep the first --calls count of calls up this long (each --seconds "
        "long, replaced as it ends) and report memory, file descriptors and tasks over time",
    )
    bench.add_argument(
        "--engine", default="echo", help="soak: the gateway's engine (echo, local; default echo)"
    )
    bench.add_argument(
        "--carriers", default="sip,twilio", help="soak: carriers the calls take turns over"
    )
    bench.add_argument(
        "--max-calls", type=int, default=0, help="soak: stop after this many calls (0: by time)"
    )
    bench.set_defaults(handler=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"overtalk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
