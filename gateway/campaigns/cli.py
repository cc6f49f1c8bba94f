"""``overtalk campaign create|start|dial|pause|resume|cancel|status|export``.

The store is named by ``--store`` or ``OVERTALK_CAMPAIGN_STORE``: a file path (SQLite,
default ``campaigns.db``) or a ``postgresql://`` URL (needed for several diallers). Dialling
takes the Twilio credentials from ``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN`` and the
gateway's public URL from ``--public-url``/``OVERTALK_PUBLIC_URL``; ``--api-base`` (or
``OVERTALK_TWILIO_API_BASE``) points the REST client elsewhere (the simulator's stand-in).

``start`` marks the campaign running and dials it here, with a live progress line, until it
is finished; ``dial`` joins another dialler to a running campaign (PostgreSQL store). Both
first check, with a signed test webhook, that the gateway routes the campaign's calls as its
dial plan does, and refuse to dial otherwise. ``start --simulate`` runs the campaign against
a simulated phone network on this machine (:mod:`gateway.campaigns.simulate`), no account
needed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["main", "register"]

STORE_ENV = "OVERTALK_CAMPAIGN_STORE"
DEFAULT_STORE = "campaigns.db"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``campaign`` and its commands to the ``overtalk`` command."""
    campaign = subparsers.add_parser("campaign", help="outbound call campaigns")
    commands = campaign.add_subparsers(dest="campaign_command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help)
        parser.add_argument(
            "--store", help=f"SQLite file or postgresql:// URL ({STORE_ENV}, default "
            f"{DEFAULT_STORE})",
        )  # fmt: skip
        return parser

    create = command("create", "check a campaign file and its contacts and store it")
    create.add_argument("file", type=Path, help="campaign YAML")
    create.add_argument("--contacts", type=Path, help="contact CSV (default: the file's own)")
    create.set_defaults(handler=_create)

    for name, help in (
        ("start", "mark a campaign running and dial it here with a live progress line"),
        ("dial", "join this process to a running campaign as another dialler"),
    ):
        parser = command(name, help)
        parser.add_argument("id")
        _dialler_options(parser)
        parser.set_defaults(handler=_dial, begin=name == "start")
        if name == "start":
            _simulate_options(parser)

    for name in ("pause", "resume", "cancel"):
        parser = command(name, f"{name} a campaign")
        parser.add_argument("id")
        parser.set_defaults(handler=_change, request=name)

    status = command("status", "show a campaign's progress")
    status.add_argument("id")
    status.add_argument("--watch", action="store_true", help="refresh every second until done")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_status)

    export = command("export", "write a campaign's results as CSV")
    export.add_argument("id")
    export.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    export.set_defaults(handler=_export)


def _dialler_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--public-url", help="the gateway's base URL as Twilio reaches it "
                        "(OVERTALK_PUBLIC_URL)")  # fmt: skip
    parser.add_argument("--api-base", help="Twilio REST base URL (OVERTALK_TWILIO_API_BASE)")
    parser.add_argument("--owner", help="this dialler's name in the store (default random)")
    parser.add_argument(
        "--lease",
        type=float,
        default=60.0,
        help="seconds an attempt stays this dialler's before it is placed",
    )
    parser.add_argument("--poll", type=float, default=1.0, help="longest sleep, seconds")
    parser.add_argument(
        "--check-after",
        type=float,
        default=30.0,
        help="poll a call with no final status after this many seconds",
    )
    parser.add_argument(
        "--http-timeout",
        type=float,
        default=10.0,
        help="REST request timeout; keep it well under --lease",
    )
    parser.add_argument("--records-dir", help="the gateway's --records-dir, for transcripts")
    parser.add_argument(
        "--call-store",
        default=os.environ.get("OVERTALK_STORE", ""),
        help="the gateways' call store, for results and transcripts of calls any of them took "
        "(OVERTALK_STORE: a SQLite file or postgresql:// URL)",
    )
    parser.add_argument(
        "--no-route-check",
        action="store_true",
        help="dial even if the gateway does not answer a test call with the campaign plan's route",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")  # fmt: skip


def _simulate_options(parser: argparse.ArgumentParser) -> None:
    from gateway.campaigns.simulate import KINDS, PATTERN

    parser.add_argument(
        "--simulate",
        action="store_true",
        help="run the whole campaign on this machine, no carrier account: a local stand-in "
        "for Twilio, scripted callees, and a gateway with the campaign's dial plan",
    )
    parser.add_argument(
        "--callees",
        default=",".join(PATTERN),
        help=f"--simulate: who answers, a pattern repeated over the contacts in list order "
        f"(of {', '.join(KINDS)}; default %(default)s)",
    )
    parser.add_argument(
        "--engine",
        default="echo",
        help="--simulate: the engine answering the plan's bots (default echo; local speaks "
        "the campaign's flows)",
    )


def _open(args: argparse.Namespace) -> Any:
    from gateway.campaigns.store import open_store

    return open_store(args.store or os.environ.get(STORE_ENV) or DEFAULT_STORE)


def _create(args: argparse.Namespace) -> int:
    from gateway.campaigns.errors import CampaignExists, CampaignInvalid
    from gateway.campaigns.setup import create_campaign

    store = _open(args)
    try:
        created = create_campaign(store, args.file, time.time(), contacts_path=args.contacts)
    except CampaignInvalid as exc:
        print(f"overtalk campaign: {args.file} is not usable:\n{exc}", file=sys.stderr)
        return 2
    except CampaignExists as exc:
        print(f"overtalk campaign: {exc}", file=sys.stderr)
        return 2
    print(f"campaign {created.id}: {created.contacts} contacts, {created.do_not_call} "
          f"do-not-call numbers, {len(created.skipped)} rows skipped")  # fmt: skip
    print(f"  contact list: {created.summary}")
    for problem in created.skipped:
        print(f"  skipped {problem}")
    for warning in created.warnings:
        print(f"overtalk campaign: warning: {warning}", file=sys.stderr)
    return 0


def _change(args: argparse.Namespace) -> int:
    from gateway.campaigns.errors import CampaignError

    try:
        state = _open(args).change_state(args.id, args.request, time.time())
    except CampaignError as exc:
        print(f"overtalk campaign: {exc}", file=sys.stderr)
        return 2
    print(f"campaign {args.id}: {state}")
    return 0


def _status(args: argparse.Namespace) -> int:
    import orjson

    from gateway.campaigns.errors import CampaignNotFound
    from gateway.campaigns.progress import Progress

    store = _open(args)
    try:
        stats = store.stats(args.id)
    except CampaignNotFound as exc:
        print(f"overtalk campaign: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps({"id": args.id, **stats.to_dict()}).decode())
        return 0
    if args.watch:
        if stats.state == "ready":  # nothing will move until it is started
            print(f"campaign {args.id} is ready and not started: nothing to watch yet; start "
                  f"it with `overtalk campaign start {args.id}`", file=sys.stderr)  # fmt: skip
            return 1
        asyncio.run(_watch(store, args.id, sys.stdout, until_finished=True))
        return 0
    print(Progress.of(stats, time.monotonic()).line(0.0))
    for outcome, n in sorted(stats.finished.items()):
        print(f"  {outcome:<10} {n}")
    for problem in store.skipped_rows(args.id):
        print(f"  skipped {problem}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from gateway.campaigns.errors import CampaignNotFound
    from gateway.campaigns.export import export_csv

    try:
        text = export_csv(_open(args), args.id)
    except CampaignNotFound as exc:
        print(f"overtalk campaign: {exc}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import tempfile

    from gateway.campaigns.dialler import campaign_of
    from gateway.campaigns.errors import CampaignError
    from gateway.campaigns.simulate import KINDS, first_call_at, simulate

    pattern = [k.strip() for k in args.callees.split(",") if k.strip()]
    unknown = [k for k in pattern if k not in KINDS]
    if not pattern or unknown:
        print(f"overtalk campaign: --callees takes {', '.join(KINDS)}", file=sys.stderr)
        return 2
    store = _open(args)
    try:
        campaign = campaign_of(store, args.id)
    except CampaignError as exc:
        print(f"overtalk campaign: {exc}", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    opens = first_call_at(campaign, [c["zone"] for c in store.contacts(args.id)], now)
    if opens is None:
        print(f"overtalk campaign: no calling window is left before {campaign.spec.stop}: "
              "every contact would expire", file=sys.stderr)  # fmt: skip
    elif (opens - now).total_seconds() > 60:
        when = f"{opens:%Y-%m-%d %H:%M} UTC"
        print(f"overtalk campaign: no callee's calling window is open until {when}; the "
              "simulation waits for it in real time (campaigns/try-it.yaml calls at any "
              "hour)", file=sys.stderr)  # fmt: skip

    async def watch() -> None:
        await _watch(store, args.id, sys.stderr)

    with tempfile.TemporaryDirectory(prefix="overtalk-sim-") as records:
        try:
            stats = asyncio.run(
                simulate(store, args.id, pattern=pattern, engine=args.engine,
                         records_dir=args.records_dir or records,
                         watch=None if args.quiet else watch)
            )  # fmt: skip
        except CampaignError as exc:
            print(f"overtalk campaign: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
    print(f"campaign {args.id} (simulated): {stats.state}; " + ", ".join(
        f"{k} {v}" for k, v in sorted(stats.finished.items())))  # fmt: skip
    store_option = f" --store {args.store}" if args.store else ""
    print(f"results: overtalk campaign export {args.id}{store_option} -o {args.id}.csv")
    return 0


def _dial(args: argparse.Namespace) -> int:
    from gateway.campaigns.carrier import TwilioCalls
    from gateway.campaigns.dialler import Dialler, campaign_of
    from gateway.campaigns.errors import CampaignError
    from gateway.campaigns.preflight import check_gateway
    from gateway.carriers.twilio.stream_token import StreamTokens

    if getattr(args, "simulate", False):
        return _simulate(args)
    base = args.public_url or os.environ.get("OVERTALK_PUBLIC_URL")
    sid, token = os.environ.get("TWILIO_ACCOUNT_SID"), os.environ.get("TWILIO_AUTH_TOKEN")
    if not base or not sid or not token:
        print("overtalk campaign: dialling needs --public-url (or OVERTALK_PUBLIC_URL), "
              "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN", file=sys.stderr)  # fmt: skip
        return 2
    store = _open(args)
    api_base = args.api_base or os.environ.get("OVERTALK_TWILIO_API_BASE") or None
    try:
        campaign = campaign_of(store, args.id)
        contacts = store.contacts(args.id)
        if not args.no_route_check and contacts:
            # Refuse before the first call rather than let people hear another bot.
            asyncio.run(check_gateway(
                campaign, base, phone=contacts[0]["phone"], at=datetime.now(UTC),
                auth_token=token, account_sid=sid, http_timeout=args.http_timeout,
            ))  # fmt: skip
        if args.begin:
            store.change_state(args.id, "start", time.time())
        dialler = Dialler(
            store, args.id, TwilioCalls(sid, token, api_base=api_base, timeout=args.http_timeout),
            public_url=base, campaign=campaign, owner=args.owner, lease_s=args.lease,
            poll_s=args.poll, check_after_s=args.check_after, records_dir=args.records_dir,
            stream_tokens=StreamTokens.derive(os.environ.get("OVERTALK_STREAM_SECRET", ""), token),
            call_store=args.call_store,
        )  # fmt: skip
    except CampaignError as exc:
        print(f"overtalk campaign: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        watcher = None
        if not args.quiet:
            watcher = asyncio.create_task(_watch(store, args.id, sys.stderr))
        try:
            await dialler.run()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    stats = store.stats(args.id)
    print(f"campaign {args.id}: {stats.state}; " + ", ".join(
        f"{k} {v}" for k, v in sorted(stats.finished.items())))  # fmt: skip
    return 0


async def _watch(store: Any, campaign_id: str, out: TextIO, *, until_finished: bool = False,
                 every: float = 1.0) -> None:  # fmt: skip
    """Print the progress line every ``every`` seconds: in place on a terminal, else one line
    per ten seconds."""
    from gateway.campaigns.progress import Progress

    tty = out.isatty()
    first = last = Progress.of(await asyncio.to_thread(store.stats, campaign_id), time.monotonic())
    printed = 0.0
    while True:
        await asyncio.sleep(every)
        now = Progress.of(await asyncio.to_thread(store.stats, campaign_id), time.monotonic())
        text = now.line(now.rate_since(last if now.t - last.t >= 5 else first))
        if now.t - last.t >= 10:
            last = now
        if tty:
            out.write("\r" + text)
            out.flush()
        elif now.t - printed >= 10:
            out.write(text + "\n")
            printed = now.t
        if until_finished and now.state in ("done", "canceled"):
            out.write("\n")
            return


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway.campaigns``: the ``campaign`` commands without the gateway's CLI."""
    import logging

    logging.basicConfig(
        level=os.environ.get("OVERTALK_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)-7s %(name)s %(message)s",
    )
    parser = argparse.ArgumentParser(prog="python -m gateway.campaigns")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(["campaign", *(argv if argv is not None else sys.argv[1:])])
    return int(args.handler(args))
