"""Campaign benchmark: scheduling overhead per call, and the highest sustained dialling rate.

    python tests/bench/bench_campaign.py [--contacts 2000] [--rate-contacts 400] [--pg DSN]

1. Overhead: the store work each call costs the dialler (claim with its window and pacing
   checks, bind the SID, apply the final status and schedule the contact), timed per step
   over ``--contacts`` contacts, on SQLite (and PostgreSQL with ``--pg``).
2. Rate: a real dialler process-side loop placing calls through the real twilio client to the
   simulator's REST stand-in, which runs with the campaign's callback routes in a second
   process (callees are busy at once, so calls end immediately and only dialling is measured).
   Pacing is set far above what the machine can do; the figure is calls created per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token"
CAMPAIGN = """\
version: 1
name: bench
caller_id: "+13125550150"
windows: ["00:00-24:00"]
pacing: {{calls_per_second: 1000, max_concurrent: {concurrent}}}
"""


def contacts_csv(n: int) -> str:
    return "phone,first_name\n" + "".join(f"+1312{5550000 + i:07d},P{i}\n" for i in range(n))


def overhead(dsn: str, n: int, label: str) -> None:
    from gateway.campaigns.setup import create_campaign
    from gateway.campaigns.store import Claimed, open_store

    root = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    (root / "c.yaml").write_text(CAMPAIGN.format(concurrent=10000))
    (root / "c.csv").write_text(contacts_csv(n))
    store = open_store(dsn)
    now = time.time()
    create_campaign(store, root / "c.yaml", now, contacts_path=root / "c.csv")
    store.change_state("bench", "start", now)
    steps: dict[str, list[float]] = {"claim": [], "mark_placed": [], "record_status": []}
    clock = now
    for i in range(n):
        clock += 0.001  # exactly the pacing interval: every claim is admitted
        t0 = time.perf_counter()
        claimed = store.claim("bench", "bench", clock, 60.0)
        t1 = time.perf_counter()
        assert isinstance(claimed, Claimed), claimed
        store.mark_placed(claimed.attempt.key, f"CA{i:032x}", clock)
        t2 = time.perf_counter()
        store.record_status(claimed.attempt.key, f"CA{i:032x}", "completed", clock,
                            answered_by="human", duration=10.0)  # fmt: skip
        t3 = time.perf_counter()
        steps["claim"].append(t1 - t0)
        steps["mark_placed"].append(t2 - t1)
        steps["record_status"].append(t3 - t2)
    total = [sum(x) for x in zip(*steps.values(), strict=True)]
    print(f"\nscheduling overhead per call, {label}, {n} calls (store work per call):")
    for name, values in steps.items():
        values.sort()
        print(f"  {name:<14} p50 {statistics.median(values) * 1e3:6.3f} ms   "
              f"p99 {values[int(len(values) * 0.99)] * 1e3:6.3f} ms")  # fmt: skip
    total.sort()
    print(f"  {'total':<14} p50 {statistics.median(total) * 1e3:6.3f} ms   "
          f"p99 {total[int(len(total) * 0.99)] * 1e3:6.3f} ms   "
          f"=> at most {1 / statistics.mean(total):,.0f} calls/s of store work")  # fmt: skip
    store.close()


SERVER = """
import asyncio, sys
from fastapi import FastAPI
from gateway.ops.server import serve
from gateway.sim.callee import Callee, CalleeBook
from gateway.sim.rest import TwilioRestSim
from gateway.campaigns.api import campaign_router
from gateway.campaigns.store import open_store

async def main():
    sim = TwilioRestSim(CalleeBook(default=Callee.busy(ring_s=0.0)), auth_token=sys.argv[2])
    app = sim.app()
    app.include_router(campaign_router(open_store(sys.argv[1]), twilio_auth_token=sys.argv[2]))
    async with serve(app, log_level="error") as url:
        print(url, sim.account_sid, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def start_server(db: str) -> tuple[subprocess.Popen[str], str, str]:
    """The REST stand-in and callback routes in their own process: (process, URL, account)."""
    server = subprocess.Popen([sys.executable, "-c", SERVER, db, TOKEN], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert server.stdout is not None
    url, account = server.stdout.readline().split()
    return server, url, account


async def rate(n: int, concurrent: int) -> None:
    from gateway.campaigns.carrier import TwilioCalls
    from gateway.campaigns.dialler import Dialler
    from gateway.campaigns.setup import create_campaign
    from gateway.campaigns.store import open_store

    root = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    (root / "c.yaml").write_text(CAMPAIGN.format(concurrent=concurrent))
    (root / "c.csv").write_text(contacts_csv(n))
    db = str(root / "c.db")
    store = open_store(db)
    create_campaign(store, root / "c.yaml", time.time(), contacts_path=root / "c.csv")
    server, url, account = start_server(db)
    try:
        store.change_state("bench", "start", time.time())
        dialler = Dialler(store, "bench", TwilioCalls(account, TOKEN, api_base=url),
                          public_url=url, poll_s=0.01, check_after_s=60)  # fmt: skip
        t0 = time.perf_counter()
        await dialler.run()
        elapsed = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait()
    times = sorted(a["created_at"] for a in store.attempts("bench"))
    steady = times[len(times) // 10 : -len(times) // 10 or None]
    sustained = (len(steady) - 1) / (steady[-1] - steady[0])
    print(
        f"\nmaximum sustained dialling rate, {n} calls, max {concurrent} in flight "
        "(dialler in this process; REST stand-in and callback routes in another):"
    )
    print(f"  {len(times)} calls placed in {elapsed:.2f} s: {n / elapsed:.0f} calls/s overall, "
          f"{sustained:.0f} calls/s sustained (middle 80 %)")  # fmt: skip
    print(f"  outcomes: {store.stats('bench').finished}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--rate-contacts", type=int, default=400)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--pg", help="PostgreSQL DSN for the overhead figure too")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        overhead(str(Path(tmp) / "bench.db"), args.contacts, "SQLite")
    if args.pg:
        overhead(args.pg, args.contacts, "PostgreSQL")
    asyncio.run(rate(args.rate_contacts, args.concurrent))


if __name__ == "__main__":
    main()
