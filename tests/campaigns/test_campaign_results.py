"""What calls settle reaches the campaign: results imported from the gateway's call records,
exported as ``result.*`` columns, and an opt-out said on a call honoured by every campaign."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from campaignkit import FakeCarrier, FakeClock, write_campaign

from gateway.campaigns.dialler import Dialler
from gateway.campaigns.export import export_csv
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import Store, open_store

#: A Monday, 10:00 in New York.
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC).timestamp()
CONTACTS = "phone,first_name\n+13125550001,Ann\n+13125550002,Bob\n+13125550003,Cy\n"
ALWAYS = "windows: ['00:00-24:00']\n"


def dialler_for(store: Store, root: Path, name: str, records: Path) -> tuple[Dialler, FakeClock]:
    path = write_campaign(root, ALWAYS, contacts=CONTACTS, name=name)
    create_campaign(store, path, MONDAY)
    store.change_state(name, "start", MONDAY)
    clock = FakeClock(MONDAY)
    carrier = FakeCarrier(store, clock, lambda number, n: ("completed", "human", 20.0))
    dialler = Dialler(store, name, carrier, public_url="https://gw.example.com", clock=clock,
                      poll_s=1.0, records_dir=records)  # fmt: skip
    return dialler, clock


def write_record(records: Path, sid: str, results: dict[str, str]) -> None:
    """A call record as the gateway writes it (gateway/call/registry.py), cut to what is read."""
    record = {"call_id": sid, "transcript": [["bot", "Will you make it?"], ["caller", "Yes."]],
              "results": results}  # fmt: skip
    (records / f"{sid}.json").write_text(json.dumps(record), encoding="utf-8")


async def test_results_are_imported_exported_and_an_opt_out_stops_every_campaign(
    store: Store, tmp_path: Path
) -> None:
    records = tmp_path / "records"
    records.mkdir()
    dialler, clock = dialler_for(store, tmp_path / "spring", "spring", records)
    await dialler.run()
    sids = {a["phone"]: a["call_sid"] for a in store.attempts("spring")}
    assert len(sids) == 3
    write_record(records, sids["+13125550001"], {"outcome": "confirmed"})
    write_record(records, sids["+13125550002"], {"outcome": "opted-out", "do_not_call": "yes"})
    # Cy's call left no record (another gateway, or not written yet): nothing is invented.
    await dialler.tick()

    rows = {r["phone"]: r for r in store.contacts("spring")}
    assert rows["+13125550001"]["results"] == {"outcome": "confirmed"}
    assert rows["+13125550002"]["results"]["do_not_call"] == "yes"
    assert rows["+13125550003"]["results"] == {}
    assert "caller: Yes." in rows["+13125550001"]["transcript"]
    assert store.untranscribed("spring") == [sids["+13125550003"]]

    table = list(csv.DictReader(io.StringIO(export_csv(store, "spring"))))
    by_phone = {r["phone"]: r for r in table}
    assert by_phone["+13125550001"]["result.outcome"] == "confirmed"
    assert by_phone["+13125550002"]["result.outcome"] == "opted-out"
    assert by_phone["+13125550003"]["result.outcome"] == ""
    assert by_phone["+13125550001"]["first_name"] == "Ann"  # contact columns still there

    # A later campaign over the same list never dials the person who said "stop calling".
    later, _ = dialler_for(store, tmp_path / "autumn", "autumn", records)
    await later.run()
    outcomes = {r["phone"]: r["outcome"] for r in store.contacts("autumn")}
    assert outcomes == {"+13125550001": "answered", "+13125550002": "dnc",
                        "+13125550003": "answered"}  # fmt: skip


@pytest.mark.parametrize("broken", ["not json", '{"results": ["a list"]}'])
async def test_a_bad_call_record_imports_no_results(
    store: Store, tmp_path: Path, broken: str
) -> None:
    records = tmp_path / "records"
    records.mkdir()
    dialler, _ = dialler_for(store, tmp_path / "spring", "spring", records)
    await dialler.run()
    sid = store.attempts("spring")[0]["call_sid"]
    (records / f"{sid}.json").write_text(broken, encoding="utf-8")
    await dialler.tick()  # must not raise
    row = next(r for r in store.contacts("spring") if r["call_sid"] == sid)
    assert row["results"] == {}


def test_a_store_from_before_results_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    open_store(str(path)).close()
    with sqlite3.connect(path) as conn:  # the schema as an earlier version made it
        conn.execute("ALTER TABLE attempts DROP COLUMN results")
    store = open_store(str(path))
    try:
        columns = {r["name"] for r in store._q("PRAGMA table_info(attempts)")}
        assert "results" in columns
    finally:
        store.close()


def test_a_postgres_store_from_before_results_gains_the_column(pg_dsn: str) -> None:
    import psycopg

    open_store(pg_dsn).close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE attempts DROP COLUMN results")
    store = open_store(pg_dsn)
    try:
        rows = store._q(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'attempts'"
        )
        assert "results" in {r["column_name"] for r in rows}
    finally:
        store.close()
