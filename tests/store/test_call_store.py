"""The call store on SQLite and PostgreSQL: written once, read back, filtered, expired,
migrated in place."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from callkit import finished_call

from gateway.callstore.errors import BadRecord, StoreUnavailable
from gateway.callstore.record import row_from_record, valid_call_id
from gateway.callstore.schema import MIGRATIONS
from gateway.callstore.store import CallFilter, CallStore, open_call_store

NOW = 1_770_000_100.0


def stored(store: CallStore, **kw) -> str:
    ledger = finished_call(**kw)
    row = row_from_record(ledger.to_dict(), audio_url=None, gateway="gw-a")
    assert store.save(row, NOW)
    return ledger.call_id


def test_store_saves_a_call_once_and_reads_it_back(call_store: CallStore) -> None:
    ledger = finished_call(results={"attend": "no"})
    row = row_from_record(ledger.to_dict(), audio_url="file:///a/x.wav", gateway="gw-a")
    assert call_store.save(row, NOW) is True
    assert call_store.save(row, NOW + 5) is False  # a replay: kept once
    record = call_store.record(ledger.call_id)
    assert record is not None
    assert record["results"] == {"attend": "no"}
    assert record["transcript"] == [["bot", "Will you make it?"], ["caller", "Yes."]]
    assert record["audio_url"] == "file:///a/x.wav"
    summary = call_store.summary(ledger.call_id)
    assert summary is not None
    assert (summary.duration, summary.interruptions, summary.gateway) == (42.5, 2, "gw-a")
    assert summary.response_ms == 290.0 and summary.clear_ms == pytest.approx(0.5)
    assert call_store.record("CAnothere") is None
    assert call_store.results([ledger.call_id, "CAother"]) == {
        ledger.call_id: ([("bot", "Will you make it?"), ("caller", "Yes.")], {"attend": "no"})
    }


def test_store_lists_newest_first_with_each_filter(call_store: CallStore) -> None:
    old = stored(call_store, route="sales", ended_at=NOW - 3600)
    mid = stored(call_store, route="support", outcome="caller-hung-up", ended_at=NOW - 60)
    new = stored(call_store, route="sales", caller="+15005550999", ended_at=NOW)
    call_store.tag_campaign(mid, "spring")
    ids = lambda **kw: [c.call_id for c in call_store.calls(CallFilter(**kw))]  # noqa: E731
    assert ids() == [new, mid, old]
    assert ids(since=NOW - 120) == [new, mid]
    assert ids(route="sales") == [new, old]
    assert ids(outcome="caller-hung-up") == [mid]
    assert ids(campaign="spring") == [mid]
    assert ids(caller="+15005550999") == [new]
    assert ids(limit=1) == [new]
    assert ids(route="nowhere") == []


def test_store_expire_deletes_old_calls_and_names_their_audio(call_store: CallStore) -> None:
    old = finished_call(ended_at=NOW - 10 * 86400)
    call_store.save(row_from_record(old.to_dict(), audio_url="file:///v/old.wav", gateway="g"),
                    NOW)  # fmt: skip
    kept = stored(call_store, ended_at=NOW)
    assert call_store.expire(NOW - 86400) == ["file:///v/old.wav"]
    assert call_store.record(old.call_id) is None
    assert call_store.record(kept) is not None


def test_store_opened_by_many_at_once_migrates_once(store_dsn: str) -> None:
    stores: list[CallStore] = []
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            stores.append(open_call_store(store_dsn))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {s.schema_version() for s in stores} == {MIGRATIONS[-1][0]}
    for s in stores:
        s.close()


def test_store_made_by_an_earlier_release_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE call_schema (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[0][1]:
        conn.execute(statement)
    conn.execute("INSERT INTO call_schema VALUES (1)")
    conn.execute("INSERT INTO calls VALUES ('CAold', 'twilio', 'r', '+1', '+2', 'completed', "
                 "'', 0, 1, 1, 0, NULL, NULL, '[]', '{}', '{\"call_id\": \"CAold\"}', NULL, "
                 "'g', 0)")  # fmt: skip
    conn.commit()
    conn.close()
    store = open_call_store(str(path))
    try:
        assert store.schema_version() == MIGRATIONS[-1][0]
        store.tag_campaign("CAold", "spring")
        assert [c.call_id for c in store.calls(CallFilter(campaign="spring"))] == ["CAold"]
    finally:
        store.close()


def test_store_unreachable_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        open_call_store(str(tmp_path / "no" / "such" / "dir" / "calls.db"))
    with pytest.raises(StoreUnavailable):
        open_call_store(f"postgresql://nobody@/x?host={tmp_path}&port=1", connect_timeout=1)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"call_id": "../../etc/passwd"}, "invalid call id"),
        ({"call_id": 7}, "invalid call id"),
        ({"results": ["a list"]}, "results"),
        ({"transcript": [["bot"]]}, "transcript"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"route": {"a": 1}}, "route"),
    ],
)
def test_record_malformed_is_refused_with_its_reason(change: dict, reason: str) -> None:
    record = finished_call().to_dict() | change
    with pytest.raises(BadRecord, match=reason):
        row_from_record(record, audio_url=None, gateway="g")


@pytest.mark.parametrize(
    "call_id",
    ["CA" + "0" * 32, "a84b4c76e66710@pc33.atlanta.com", "3848276298220188511@atlanta.example",
     "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@192.0.2.4", "x(1)!%*'~<>[]?{}:=+@host"],
)  # fmt: skip
def test_record_call_ids_carriers_use_are_accepted(call_id: str) -> None:
    assert valid_call_id(call_id)


@pytest.mark.parametrize(
    "call_id", ["", "../etc", ".hidden", "a/b", "a\\b", "a b", "a\nb", "é@host", "a" * 129]
)
def test_record_call_ids_unsafe_for_files_or_logs_are_refused(call_id: str) -> None:
    assert not valid_call_id(call_id)
