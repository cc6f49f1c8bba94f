"""Call-store benchmark: what a finished call costs the event loop, and how fast the writer
thread stores calls, on SQLite (and PostgreSQL with ``--pg``), beside the JSON export.

    python tests/bench/bench_callstore.py [--calls 300] [--runs 5] [--pg DSN]

1. ``submit``: the only work done on the loop when a call ends (a queue put), per call.
2. Store: calls written per second by the writer thread (ledger encoded, row built, inserted),
   each run into a fresh database; the baseline is the per-call JSON export of the same
   ledgers (``orjson.dumps`` + a file write), which the gateway already did.
Medians over ``--runs`` runs; ledgers carry a 200-event timeline and a 20-line transcript.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from gateway.call.ledger import CallLedger  # noqa: E402
from gateway.callstore.spool import Spool  # noqa: E402
from gateway.callstore.store import open_call_store  # noqa: E402
from gateway.callstore.writer import RecordWriter  # noqa: E402


def ledgers(n: int) -> list[CallLedger]:
    out = []
    for i in range(n):
        ledger = CallLedger(call_id=f"CA{i:032x}", carrier="twilio", route="sales",
                            started_at=1e9, ended_at=1e9 + 60, outcome="completed")  # fmt: skip
        ledger.transcript = [("bot" if j % 2 else "caller", "word " * 12) for j in range(20)]
        for j in range(200):
            ledger.event(j * 0.3, "mark", str(j))
        ledger.metrics = {"turn.first_audio_ms": [250.0] * 10}
        out.append(ledger)
    return out


def store_rate(dsn_for_run, calls: list[CallLedger], folder: Path) -> float:
    dsn = dsn_for_run()
    writer = RecordWriter(lambda: open_call_store(dsn), Spool(folder / "spool"), gateway="b")
    writer.start()
    start = time.perf_counter()
    for ledger in calls:
        writer.submit(ledger)
    writer.close(timeout=600)
    took = time.perf_counter() - start
    assert writer.written == len(calls), writer.written
    return len(calls) / took


def json_rate(calls: list[CallLedger], folder: Path) -> float:
    folder.mkdir(exist_ok=True)
    start = time.perf_counter()
    for ledger in calls:
        (folder / f"{ledger.call_id}.json").write_bytes(orjson.dumps(ledger.to_dict()))
    return len(calls) / (time.perf_counter() - start)


def submit_cost_us(calls: list[CallLedger], folder: Path) -> float:
    writer = RecordWriter(
        lambda: open_call_store(str(folder / "s.db")), Spool(folder / "sp"), gateway="b"
    )  # fmt: skip  (not started: only the put is timed)
    start = time.perf_counter()
    for ledger in calls:
        writer.submit(ledger)
    return (time.perf_counter() - start) / len(calls) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg", help="a PostgreSQL server DSN (a database per run is created)")
    args = parser.parse_args()
    calls = ledgers(args.calls)
    size = len(orjson.dumps(calls[0].to_dict()))
    print(f"{args.calls} calls per run, {args.runs} runs, record {size} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sub = [submit_cost_us(calls, root / f"sub{r}") for r in range(args.runs)]
        print(f"submit on the loop      median {statistics.median(sub):8.2f} us per call")
        base = [json_rate(calls, root / f"json{r}") for r in range(args.runs)]
        print(f"JSON export (baseline)  median {statistics.median(base):8.0f} calls/s")
        counter = iter(range(10**6))
        sqlite = [store_rate(lambda: str(root / f"c{next(counter)}.db"), calls, root / f"w{r}")
                  for r in range(args.runs)]  # fmt: skip
        print(f"SQLite store            median {statistics.median(sqlite):8.0f} calls/s "
              f"(min {min(sqlite):.0f}, max {max(sqlite):.0f})")  # fmt: skip
        if args.pg:
            import uuid

            import psycopg

            def fresh() -> str:
                name = f"bench_{uuid.uuid4().hex[:10]}"
                with psycopg.connect(args.pg, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                return args.pg.replace("/postgres?", f"/{name}?")

            pg = [store_rate(fresh, calls, root / f"p{r}") for r in range(args.runs)]
            print(f"PostgreSQL store        median {statistics.median(pg):8.0f} calls/s "
                  f"(min {min(pg):.0f}, max {max(pg):.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
