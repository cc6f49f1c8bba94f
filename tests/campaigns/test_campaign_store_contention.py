"""Diallers sharing a PostgreSQL store under contention: opening a store beside running
diallers locks nothing they use, and a transaction the database rolls back (a deadlock, a
lock timeout) costs a round, never the dialler."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from campaignkit import FakeCarrier, FakeClock, write_campaign

from gateway.campaigns.dialler import Dialler
from gateway.campaigns.errors import StoreBusy
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import Store, open_store

NOW = 1_772_000_000.0


def impatient(dsn: str, ms: int) -> str:
    """The DSN with a lock timeout: waiting on a lock fails at once instead of hanging."""
    return f"{dsn}&options=-c%20lock_timeout%3D{ms}"


def test_opening_a_store_beside_busy_diallers_takes_no_table_lock(pg_dsn: str) -> None:
    open_store(pg_dsn).close()  # the schema exists, as when a dialler restarts
    with psycopg.connect(pg_dsn) as busy:  # a dialler mid-claim holds row locks on both
        busy.execute("LOCK TABLE contacts, attempts IN ROW EXCLUSIVE MODE")
        # CREATE INDEX IF NOT EXISTS would want SHARE on contacts, ADD COLUMN IF NOT EXISTS
        # ACCESS EXCLUSIVE on attempts: either would wait here, and time out.
        store = open_store(impatient(pg_dsn, 500))
        store.close()
        busy.rollback()


def test_a_transaction_rolled_back_under_contention_is_store_busy(pg_dsn: str) -> None:
    open_store(pg_dsn).close()
    store = open_store(impatient(pg_dsn, 200))
    try:
        with psycopg.connect(pg_dsn) as other:
            other.execute("LOCK TABLE do_not_call IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreBusy, match="55P03"):  # lock_not_available
                store.add_do_not_call({"+13125550100": "test"}, NOW)
            other.rollback()
        store.add_do_not_call({"+13125550100": "test"}, NOW)  # and the store goes on
    finally:
        store.close()


class BusyOnce:
    """A store whose first claim is rolled back by the database."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.refused = 0

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def claim(self, *args, **kwargs):
        if not self.refused:
            self.refused += 1
            raise StoreBusy("PostgreSQL: 40P01 deadlock detected")
        return self._store.claim(*args, **kwargs)


async def test_a_dialler_carries_on_after_the_store_refuses_a_round(
    store: Store, tmp_path: Path
) -> None:
    path = write_campaign(tmp_path, "windows: ['00:00-24:00']\n")
    create_campaign(store, path, NOW)
    store.change_state("spring", "start", NOW)
    clock = FakeClock(NOW)
    busy = BusyOnce(store)
    carrier = FakeCarrier(store, clock, lambda number, n: ("completed", "human", 5.0))
    dialler = Dialler(busy, "spring", carrier, public_url="https://gw.example.com",  # type: ignore[arg-type]
                      clock=clock, poll_s=1.0)  # fmt: skip
    await dialler.run()
    assert busy.refused == 1
    assert store.stats("spring").finished == {"answered": 3}
