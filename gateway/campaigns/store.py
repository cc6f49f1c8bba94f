"""Where campaigns live: contacts, attempts and outcomes, in SQLite or PostgreSQL.

SQLite (a file) is the default and serves one dialler process; PostgreSQL serves several
diallers working one campaign. The SQL is the same for both; only locking differs:

- **Claiming** a contact runs in one transaction that locks the campaign's row (PostgreSQL
  ``SELECT ... FOR UPDATE``; SQLite ``BEGIN IMMEDIATE``), checks pacing and concurrency against
  the row's shared slot and the attempts in flight, picks due contacts with
  ``FOR UPDATE OF c SKIP LOCKED`` (rows a callback is updating are passed over, not waited
  for), and inserts the attempt. The attempt's key is ``campaign:contact:number`` and
  ``(contact_id, number)`` is unique, so an attempt exists at most once whoever claims it.
- **Leases.** A claimed attempt is ``dialling``: its owner holds a lease until it records the
  carrier's call SID (``placed``). If the owner dies first, the lease runs out and any dialler
  may take the attempt over, reconcile it with the carrier's call list (the call may or may
  not exist) and only then dial it, with the same key.
- **Outcomes** arrive from status callbacks or from polling the carrier, in any order and any
  number of times: applying one is idempotent, and the first final status wins.

Time is passed in (epoch seconds) to every method; nothing here reads a clock. The store is
synchronous: asyncio callers run its methods in a worker thread. One connection per store,
used by one thread at a time.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.campaigns.contacts import ContactList, RowProblem
from gateway.campaigns.errors import (
    CampaignExists,
    CampaignNotFound,
    CampaignStateError,
    StoreBusy,
)
from gateway.campaigns.outcomes import FINAL_STATUSES, Outcome, classify
from gateway.campaigns.pacing import Pacing
from gateway.campaigns.permit import Close, Defer, Go, Verdict, may_call
from gateway.campaigns.spec import CampaignSpec
from gateway.campaigns.windows import CallingWindows
from gateway.database import is_postgres, postgres_connection, sqlite_connection, sqlite_path

__all__ = [
    "Attempt",
    "CampaignRow",
    "Claimed",
    "Idle",
    "Stats",
    "Store",
    "open_store",
]

#: Campaign states, and which requests move between them.
TRANSITIONS: Mapping[str, Mapping[str, str]] = {
    "start": {"ready": "running", "paused": "running", "running": "running"},
    "pause": {"ready": "paused", "running": "paused", "paused": "paused"},
    "resume": {"paused": "running", "running": "running"},
    "cancel": {"ready": "canceled", "running": "canceled", "paused": "canceled",
               "canceled": "canceled"},
}  # fmt: skip
#: Order of non-final call statuses: a late "ringing" never overwrites "in-progress".
_PROGRESS = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3}
#: Due contacts examined per round of a claim (those outside their window are pushed on).
_SCAN = 25

#: Columns added since a table was first created: (table, column, type). Opening a store made
#: by an earlier version adds any it lacks, so an upgrade keeps its campaigns.
_ADDED_COLUMNS = (("attempts", "results", "TEXT"),)
#: The object a schema statement creates.
_CREATED = re.compile(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)")
#: The flow result by which a person called asks not to be called again.
OPT_OUT_RESULT = "do_not_call"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    next_slot_at DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS contacts (
    id {serial} PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    line INTEGER NOT NULL,
    phone TEXT NOT NULL,
    zone TEXT NOT NULL,
    variables TEXT NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT,
    next_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (campaign_id, phone)
);
CREATE INDEX IF NOT EXISTS contacts_due ON contacts (campaign_id, state, next_at);
CREATE TABLE IF NOT EXISTS attempts (
    key TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    contact_id BIGINT NOT NULL REFERENCES contacts(id),
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    placed_at DOUBLE PRECISION,
    answered_at DOUBLE PRECISION,
    ended_at DOUBLE PRECISION,
    checked_at DOUBLE PRECISION,
    reconciled INTEGER NOT NULL DEFAULT 0,
    call_sid TEXT UNIQUE,
    status TEXT,
    answered_by TEXT,
    machine_action TEXT,
    outcome TEXT,
    duration DOUBLE PRECISION,
    error TEXT,
    transcript TEXT,
    results TEXT,
    recording_url TEXT,
    UNIQUE (contact_id, number)
);
CREATE INDEX IF NOT EXISTS attempts_live ON attempts (campaign_id, state);
CREATE TABLE IF NOT EXISTS do_not_call (
    phone TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    added_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS skipped_rows (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    line INTEGER NOT NULL,
    reason TEXT NOT NULL,
    row_text TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class CampaignRow:
    id: str
    spec: CampaignSpec
    source: str
    state: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call attempt to one contact, as the dialler needs it."""

    key: str
    campaign_id: str
    contact_id: int
    number: int
    phone: str
    zone: str
    variables: dict[str, str]
    state: str
    owner: str
    created_at: float
    call_sid: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    attempt: Attempt


@dataclass(frozen=True, slots=True)
class Idle:
    """Nothing to dial now. ``wake_at``: when something may be (None: when a call ends, or
    never if ``finished``)."""

    wake_at: float | None
    reason: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class Stats:
    """Progress counters of one campaign."""

    state: str
    contacts: int
    remaining: int  # contacts not yet finished
    in_flight: int  # attempts dialling or placed
    dialled: int  # attempts made
    outcomes: Mapping[str, int] = field(default_factory=dict)  # attempts by outcome
    finished: Mapping[str, int] = field(default_factory=dict)  # contacts by final outcome
    skipped_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "contacts": self.contacts,
            "remaining": self.remaining,
            "in_flight": self.in_flight,
            "dialled": self.dialled,
            "outcomes": dict(self.outcomes),
            "finished": dict(self.finished),
            "skipped_rows": self.skipped_rows,
        }


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class Store:
    """The campaign store; build one with :func:`open_store`."""

    placeholder = "?"
    serial = "INTEGER"
    lock_campaign = ""
    skip_locked = ""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._specs: dict[str, CampaignSpec] = {}
        self._rules: dict[str, tuple[Pacing, CallingWindows]] = {}
        self._zones: dict[str, ZoneInfo] = {}

    # -- dialect hooks ------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        raise NotImplementedError

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _changed(self, sql: str, params: Sequence[Any]) -> int:
        """Run a write and return how many rows it changed."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _q(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self._execute(self._sql(sql), params)

    def _one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        rows = self._q(sql, *params)
        return rows[0] if rows else None

    def _w(self, sql: str, *params: Any) -> int:
        return self._changed(self._sql(sql), params)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock, self._transaction():
            yield

    def spec(self, campaign_id: str) -> CampaignSpec:
        """The campaign's spec (immutable once created, so cached)."""
        spec = self._specs.get(campaign_id)
        if spec is None:
            spec = self.campaign(campaign_id).spec
            self._specs[campaign_id] = spec
        return spec

    def _pace_and_windows(self, campaign_id: str) -> tuple[Pacing, CallingWindows]:
        rules = self._rules.get(campaign_id)
        if rules is None:
            spec = self.spec(campaign_id)
            rules = self._rules[campaign_id] = (spec.pacing_rules(), spec.calling_windows())
        return rules

    def _zone(self, name: str) -> ZoneInfo:
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = ZoneInfo(name)
        return zone

    # -- campaigns ----------------------------------------------------------------------------

    def create_campaign(
        self,
        spec: CampaignSpec,
        contacts: ContactList,
        now: float,
        *,
        source: str = "",
        do_not_call: Mapping[str, str] | None = None,
        skipped: Sequence[RowProblem] = (),
    ) -> str:
        """Store a new campaign (state ``ready``) with its contacts; returns its id.

        ``do_not_call`` maps numbers to where they came from; they join the store-wide list.
        ``skipped`` rows (bad contact rows and bad do-not-call rows) are kept for ``status``.
        """
        with self._tx():
            if self._one("SELECT id FROM campaigns WHERE id = ?", spec.name):
                raise CampaignExists(f"campaign {spec.name!r} already exists")
            self._q(
                "INSERT INTO campaigns (id, spec, source, state, created_at, next_slot_at) "
                "VALUES (?, ?, ?, 'ready', ?, 0)",
                spec.name,
                spec.model_dump_json(),
                source,
                now,
            )
            self._execute_many(
                self._sql(
                    "INSERT INTO contacts (campaign_id, line, phone, zone, variables, state, "
                    "next_at, attempts) VALUES (?, ?, ?, ?, ?, 'pending', 0, 0)"
                ),
                [
                    (spec.name, c.line, c.phone, c.zone, json.dumps(c.variables))
                    for c in contacts.contacts
                ],
            )
            self._insert_do_not_call(do_not_call or {}, now)
            self._execute_many(
                self._sql(
                    "INSERT INTO skipped_rows (campaign_id, line, reason, row_text) "
                    "VALUES (?, ?, ?, ?)"
                ),
                [(spec.name, p.line, p.reason, p.text) for p in (*contacts.skipped, *skipped)],
            )
        return spec.name

    def campaign(self, campaign_id: str) -> CampaignRow:
        row = self._one("SELECT * FROM campaigns WHERE id = ?", campaign_id)
        if row is None:
            raise CampaignNotFound(f"no campaign {campaign_id!r}")
        return CampaignRow(
            row["id"],
            CampaignSpec.model_validate_json(row["spec"]),
            row["source"],
            row["state"],
            row["created_at"],
        )

    def campaign_ids(self) -> list[str]:
        return [r["id"] for r in self._q("SELECT id FROM campaigns ORDER BY created_at, id")]

    def change_state(self, campaign_id: str, request: str, now: float) -> str:
        """Apply ``start``, ``pause``, ``resume`` or ``cancel``; returns the new state.

        Cancel also finishes every contact not in a call (outcome ``canceled``); calls in
        flight are the dialler's to cancel at the carrier.
        """
        with self._tx():
            row = self._one(
                f"SELECT state FROM campaigns WHERE id = ? {self.lock_campaign}", campaign_id
            )
            if row is None:
                raise CampaignNotFound(f"no campaign {campaign_id!r}")
            state = TRANSITIONS[request].get(row["state"])
            if state is None:
                raise CampaignStateError(f"cannot {request} a campaign that is {row['state']}")
            self._q("UPDATE campaigns SET state = ? WHERE id = ?", state, campaign_id)
            if request == "cancel":
                self._q(
                    "UPDATE contacts SET state = 'done', outcome = ? "
                    "WHERE campaign_id = ? AND state = 'pending'",
                    Outcome.CANCELED.value,
                    campaign_id,
                )
        return state

    def finish_if_done(self, campaign_id: str) -> bool:
        """Mark a running campaign ``done`` once no contact is left; whether it is finished."""
        with self._tx():
            row = self._one(
                "SELECT COUNT(*) AS n FROM contacts WHERE campaign_id = ? AND state <> 'done'",
                campaign_id,
            )
            if row is not None and row["n"] == 0:
                self._q(
                    "UPDATE campaigns SET state = 'done' WHERE id = ? AND state = 'running'",
                    campaign_id,
                )
                return True
        return False

    def add_do_not_call(self, numbers: Mapping[str, str], now: float) -> None:
        with self._tx():
            self._insert_do_not_call(numbers, now)

    def _insert_do_not_call(self, numbers: Mapping[str, str], now: float) -> None:
        """Numbers (to where they came from) onto the store-wide list; inside a transaction."""
        self._execute_many(
            self._sql(
                "INSERT INTO do_not_call (phone, source, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (phone) DO NOTHING"
            ),
            [(phone, origin, now) for phone, origin in numbers.items()],
        )

    # -- claiming -----------------------------------------------------------------------------

    def claim(self, campaign_id: str, owner: str, now: float, lease_s: float) -> Claimed | Idle:
        """Claim the next due contact as a new attempt, if pacing and concurrency allow.

        Contacts that are due but outside their calling window get their next window opening
        as ``next_at``; past the campaign's stop date they finish as ``expired``; numbers on
        the do-not-call list finish as ``dnc`` without a call.
        """
        pacing, _ = self._pace_and_windows(campaign_id)
        at = _utc(now)
        with self._tx():
            camp = self._one(
                f"SELECT state, next_slot_at FROM campaigns WHERE id = ? {self.lock_campaign}",
                campaign_id,
            )
            if camp is None:
                raise CampaignNotFound(f"no campaign {campaign_id!r}")
            if camp["state"] != "running":
                return Idle(None, f"campaign is {camp['state']}",
                            finished=camp["state"] in ("done", "canceled"))  # fmt: skip
            flight = self._one(
                "SELECT COUNT(*) AS n FROM attempts WHERE campaign_id = ? "
                "AND state IN ('dialling', 'placed')",
                campaign_id,
            )
            in_flight = flight["n"] if flight else 0
            admission = pacing.admit(now, camp["next_slot_at"], in_flight)
            if not admission.ok:
                return Idle(admission.retry_at, admission.reason)
            while True:
                due = self._q(
                    "SELECT c.id, c.phone, c.zone, c.variables, c.attempts, c.outcome, "
                    "d.phone AS blocked FROM contacts c "
                    "LEFT JOIN do_not_call d ON d.phone = c.phone "
                    "WHERE c.campaign_id = ? AND c.state = 'pending' AND c.next_at <= ? "
                    f"ORDER BY c.next_at, c.id LIMIT {_SCAN} {self.skip_locked}",
                    campaign_id,
                    now,
                )
                if not due:
                    break
                for row in due:
                    verdict = self._may_call(campaign_id, camp["state"], row, row["attempts"] + 1,
                                             at)  # fmt: skip
                    match verdict:
                        case Go():
                            return Claimed(self._new_attempt(campaign_id, row, owner, now, lease_s))
                        case Close(outcome=outcome):
                            self._finish_contact(row["id"], outcome)
                        case Defer(until=until):  # state is running: until is a window
                            self._q("UPDATE contacts SET next_at = ? WHERE id = ?",
                                    until if until is not None else now, row["id"])  # fmt: skip
            following = self._one(
                "SELECT MIN(next_at) AS t, COUNT(*) AS n FROM contacts "
                "WHERE campaign_id = ? AND state = 'pending'",
                campaign_id,
            )
            if following is None or not following["n"]:
                return Idle(None, "no contact waiting", finished=in_flight == 0)
            return Idle(following["t"], "waiting for calling windows or back-off")

    def _may_call(
        self, campaign_id: str, state: str, row: Mapping[str, Any], number: int, at: datetime
    ) -> Verdict:
        """:func:`may_call` for a contact row (with ``zone``, ``blocked``, ``outcome``)."""
        _, windows = self._pace_and_windows(campaign_id)
        return may_call(
            state=state,
            windows=windows,
            zone=self._zone(row["zone"]),
            at=at,
            blocked=row["blocked"] is not None,
            number=number,
            max_attempts=self.spec(campaign_id).max_attempts,
            last_outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        )

    def permit(self, key: str, owner: str, now: float) -> Verdict:
        """Ask :func:`may_call` again before an attempt found unplaced is dialled, and act on a no.

        The attempt must be ``dialling`` and leased to ``owner`` (it won it with
        :meth:`take_over` and found no call at the carrier). The campaign's row is locked as
        ``claim`` and ``change_state`` lock it, so a pause or cancel is either seen here or
        comes after the decision. On :class:`Close` the attempt ends with the outcome and the
        contact is finished. On :class:`Defer` the attempt is removed, as the carrier never
        saw it, and its contact waits (for the window, or for a resume) with its attempt count
        as before: the next claim recreates the attempt under the same key.
        """
        with self._tx():
            head = self._one("SELECT campaign_id FROM attempts WHERE key = ?", key)
            camp = head and self._one(
                f"SELECT state FROM campaigns WHERE id = ? {self.lock_campaign}",
                head["campaign_id"],
            )
            # Read after the lock is taken: a pause or cancel committed before it is seen here.
            row = self._one(
                "SELECT a.key, a.campaign_id, a.contact_id, a.number, a.state, a.owner, "
                "c.zone, c.outcome, d.phone AS blocked FROM attempts a "
                "JOIN contacts c ON c.id = a.contact_id "
                "LEFT JOIN do_not_call d ON d.phone = c.phone WHERE a.key = ?",
                key,
            )
            if not camp or row is None or row["state"] != "dialling" or row["owner"] != owner:
                return Defer(None, "the attempt is no longer this dialler's")
            state = camp["state"]
            verdict = self._may_call(row["campaign_id"], state, row, row["number"], _utc(now))
            match verdict:
                case Close(outcome=outcome, reason=reason):
                    self._q(
                        "UPDATE attempts SET state = 'ended', outcome = ?, error = ?, "
                        "ended_at = ? WHERE key = ?",
                        outcome.value, f"not dialled: {reason}", now, key,
                    )  # fmt: skip
                    self._finish_contact(row["contact_id"], outcome)
                case Defer(until=until):
                    self._q("DELETE FROM attempts WHERE key = ?", key)
                    self._q(
                        "UPDATE contacts SET state = 'pending', attempts = ?, next_at = ? "
                        "WHERE id = ?",
                        row["number"] - 1, until if until is not None else now,
                        row["contact_id"],
                    )  # fmt: skip
        return verdict

    def dialling(self, campaign_id: str) -> int:
        """How many attempts are ``dialling``: claimed, and not yet placed nor closed."""
        row = self._one(
            "SELECT COUNT(*) AS n FROM attempts WHERE campaign_id = ? AND state = 'dialling'",
            campaign_id,
        )
        return row["n"] if row else 0

    def _new_attempt(
        self, campaign_id: str, row: dict[str, Any], owner: str, now: float, lease_s: float
    ) -> Attempt:
        number = row["attempts"] + 1
        key = f"{campaign_id}:{row['id']}:{number}"
        self._q(
            "INSERT INTO attempts (key, campaign_id, contact_id, number, state, owner, "
            "lease_until, created_at) VALUES (?, ?, ?, ?, 'dialling', ?, ?, ?)",
            key,
            campaign_id,
            row["id"],
            number,
            owner,
            now + lease_s,
            now,
        )
        self._q(
            "UPDATE contacts SET state = 'dialling', attempts = ? WHERE id = ?", number, row["id"]
        )
        slot = self._one("SELECT next_slot_at FROM campaigns WHERE id = ?", campaign_id)
        pacing, _ = self._pace_and_windows(campaign_id)
        self._q(
            "UPDATE campaigns SET next_slot_at = ? WHERE id = ?",
            pacing.next_slot(now, slot["next_slot_at"] if slot else 0.0),
            campaign_id,
        )
        return Attempt(
            key, campaign_id, row["id"], number, row["phone"], row["zone"],
            json.loads(row["variables"]), "dialling", owner, now,
        )  # fmt: skip

    def _finish_contact(self, contact_id: int, outcome: Outcome) -> None:
        self._q(
            "UPDATE contacts SET state = 'done', outcome = ? WHERE id = ?",
            outcome.value,
            contact_id,
        )

    # -- placing ------------------------------------------------------------------------------

    def mark_placed(self, key: str, call_sid: str, now: float) -> bool:
        """Bind the carrier's call to the attempt. False if it is bound to another call."""
        with self._tx():
            changed = self._w(
                "UPDATE attempts SET call_sid = ?, placed_at = COALESCE(placed_at, ?), "
                "checked_at = ?, status = COALESCE(status, 'queued'), "
                "state = CASE WHEN state = 'dialling' THEN 'placed' ELSE state END "
                "WHERE key = ? AND (call_sid IS NULL OR call_sid = ?)",
                call_sid,
                now,
                now,
                key,
                call_sid,
            )
        return changed == 1

    def fail_attempt(self, key: str, outcome: Outcome, error: str, now: float) -> None:
        """End an attempt whose call was never placed (the carrier refused it)."""
        with self._tx():
            row = self._one("SELECT * FROM attempts WHERE key = ?", key)
            if row is None or row["state"] == "ended":
                return
            self._q(
                "UPDATE attempts SET state = 'ended', outcome = ?, error = ?, ended_at = ?, "
                "status = 'failed' WHERE key = ?",
                outcome.value,
                error[:500],
                now,
                key,
            )
            self._schedule(row, outcome, now)

    def orphans(self, campaign_id: str, now: float) -> list[Attempt]:
        """Attempts still ``dialling`` whose owner's lease has run out."""
        return [
            self._attempt(row)
            for row in self._q(
                f"{_ATTEMPT_SELECT} WHERE a.campaign_id = ? AND a.state = 'dialling' "
                "AND a.lease_until < ? ORDER BY a.created_at",
                campaign_id,
                now,
            )
        ]

    def take_over(self, key: str, owner: str, now: float, lease_s: float) -> bool:
        """Take an orphaned attempt's lease; only one dialler can win it."""
        with self._tx():
            return (
                self._w(
                    "UPDATE attempts SET owner = ?, lease_until = ?, reconciled = reconciled + 1 "
                    "WHERE key = ? AND state = 'dialling' AND lease_until < ?",
                    owner,
                    now + lease_s,
                    key,
                    now,
                )
                == 1
            )

    def unsettled(self, campaign_id: str, now: float, older_than: float) -> list[Attempt]:
        """Placed attempts with no final status, not checked for ``older_than`` seconds."""
        return [
            self._attempt(row)
            for row in self._q(
                f"{_ATTEMPT_SELECT} WHERE a.campaign_id = ? AND a.state = 'placed' "
                "AND COALESCE(a.checked_at, a.placed_at, a.created_at) < ? ORDER BY a.created_at",
                campaign_id,
                now - older_than,
            )
        ]

    def checked(self, key: str, now: float) -> None:
        with self._tx():
            self._q("UPDATE attempts SET checked_at = ? WHERE key = ?", now, key)

    def known_sids(self, sids: Sequence[str]) -> set[str]:
        """Which of ``sids`` are already bound to an attempt (of any campaign)."""
        if not sids:
            return set()
        marks = ", ".join("?" * len(sids))
        rows = self._q(f"SELECT call_sid FROM attempts WHERE call_sid IN ({marks})", *sids)
        return {r["call_sid"] for r in rows}

    def in_flight(self, campaign_id: str) -> list[Attempt]:
        return [
            self._attempt(row)
            for row in self._q(
                f"{_ATTEMPT_SELECT} WHERE a.campaign_id = ? "
                "AND a.state IN ('dialling', 'placed') ORDER BY a.created_at",
                campaign_id,
            )
        ]

    @staticmethod
    def _attempt(row: Mapping[str, Any]) -> Attempt:
        return Attempt(
            row["key"], row["campaign_id"], row["contact_id"], row["number"], row["phone"],
            row["zone"], json.loads(row["variables"]), row["state"], row["owner"],
            row["created_at"], row["call_sid"],
        )  # fmt: skip

    # -- what the carrier reports -------------------------------------------------------------

    def record_status(
        self,
        key: str | None,
        call_sid: str,
        status: str,
        now: float,
        *,
        answered_by: str | None = None,
        duration: float | None = None,
    ) -> Outcome | None:
        """Apply a call status (callback or poll); the outcome once it is final, else None.

        The attempt is found by ``key`` (carried in the callback URL) or else by SID; an
        unknown call is ignored (None). Idempotent: a repeated or late report changes nothing
        once the attempt has ended.
        """
        with self._tx():
            row = None
            if key:
                row = self._one("SELECT * FROM attempts WHERE key = ?", key)
            if row is None and call_sid:
                row = self._one("SELECT * FROM attempts WHERE call_sid = ?", call_sid)
            if row is None:
                return None
            if row["call_sid"] is None and call_sid:
                self._q(
                    "UPDATE attempts SET call_sid = ?, placed_at = COALESCE(placed_at, ?), "
                    "state = CASE WHEN state = 'dialling' THEN 'placed' ELSE state END "
                    "WHERE key = ?",
                    call_sid,
                    now,
                    row["key"],
                )
            if answered_by and not row["answered_by"]:
                self._q(
                    "UPDATE attempts SET answered_by = ? WHERE key = ?", answered_by, row["key"]
                )
            if row["state"] == "ended":
                return Outcome(row["outcome"])
            if status not in FINAL_STATUSES:
                if _PROGRESS.get(status, -1) > _PROGRESS.get(row["status"] or "", -1):
                    self._q(
                        "UPDATE attempts SET status = ?, checked_at = ?, answered_at = "
                        "CASE WHEN ? = 'in-progress' THEN COALESCE(answered_at, ?) "
                        "ELSE answered_at END WHERE key = ?",
                        status,
                        now,
                        status,
                        now,
                        row["key"],
                    )
                return None
            outcome = classify(status, answered_by or row["answered_by"], row["machine_action"])
            self._q(
                "UPDATE attempts SET state = 'ended', status = ?, outcome = ?, ended_at = ?, "
                "checked_at = ?, duration = COALESCE(?, duration) WHERE key = ?",
                status,
                outcome.value,
                now,
                now,
                duration,
                row["key"],
            )
            self._schedule(row, outcome, now)
            return outcome

    def _schedule(self, attempt: Mapping[str, Any], outcome: Outcome, now: float) -> None:
        """After an attempt ended: call the contact again later, or finish it."""
        spec = self.spec(attempt["campaign_id"])
        counted = self._one(
            "SELECT COUNT(*) AS n FROM attempts WHERE contact_id = ? AND outcome = ?",
            attempt["contact_id"],
            outcome.value,
        )
        contact = self._one("SELECT attempts FROM contacts WHERE id = ?", attempt["contact_id"])
        camp = self._one("SELECT state FROM campaigns WHERE id = ?", attempt["campaign_id"])
        delay = spec.retry_policy().delay(
            outcome, contact["attempts"] if contact else 1, counted["n"] if counted else 1
        )
        if delay is None or (camp is not None and camp["state"] == "canceled"):
            self._q(
                "UPDATE contacts SET state = 'done', outcome = ? WHERE id = ?",
                outcome.value,
                attempt["contact_id"],
            )
        else:
            self._q(
                "UPDATE contacts SET state = 'pending', outcome = ?, next_at = ? WHERE id = ?",
                outcome.value,
                now + delay,
                attempt["contact_id"],
            )

    def record_amd(
        self, key: str | None, call_sid: str, answered_by: str
    ) -> tuple[Attempt, CampaignSpec] | None:
        """Keep an AMD result; the attempt and its campaign's spec, for the machine action."""
        with self._tx():
            row = self._one(
                f"{_ATTEMPT_SELECT} WHERE a.key = ? OR a.call_sid = ?", key or "", call_sid
            )
            if row is None:
                return None
            self._q("UPDATE attempts SET answered_by = ? WHERE key = ?", answered_by, row["key"])
        return self._attempt(row), self.spec(row["campaign_id"])

    def record_machine_action(self, key: str, action: str) -> None:
        with self._tx():
            self._q("UPDATE attempts SET machine_action = ? WHERE key = ?", action, key)

    def record_recording(self, key: str | None, call_sid: str, url: str) -> None:
        with self._tx():
            self._q(
                "UPDATE attempts SET recording_url = ? WHERE key = ? OR call_sid = ?",
                url,
                key or "",
                call_sid,
            )

    def record_transcript(
        self, call_sid: str, text: str, results: Mapping[str, str], now: float
    ) -> bool:
        """Keep what was said and settled on a call. A person who asked on the call not to
        be called again (the result ``do_not_call: yes``) goes on the do-not-call list in the
        same transaction, so no later attempt of any campaign dials them."""
        with self._tx():
            row = self._one(
                "SELECT c.phone FROM attempts a JOIN contacts c ON c.id = a.contact_id "
                "WHERE a.call_sid = ?",
                call_sid,
            )
            if row is None:
                return False
            self._q(
                "UPDATE attempts SET transcript = ?, results = ? WHERE call_sid = ?",
                text, json.dumps(dict(results)), call_sid,
            )  # fmt: skip
            if results.get(OPT_OUT_RESULT, "").lower() in ("yes", "true"):
                self._insert_do_not_call({row["phone"]: f"asked on call {call_sid}"}, now)
            return True

    def untranscribed(self, campaign_id: str) -> list[str]:
        """SIDs of answered calls with no transcript yet."""
        rows = self._q(
            "SELECT call_sid FROM attempts WHERE campaign_id = ? AND outcome = 'answered' "
            "AND transcript IS NULL AND call_sid IS NOT NULL",
            campaign_id,
        )
        return [r["call_sid"] for r in rows]

    # -- reading ------------------------------------------------------------------------------

    def stats(self, campaign_id: str) -> Stats:
        camp = self.campaign(campaign_id)
        contacts = self._q(
            "SELECT state, outcome, COUNT(*) AS n FROM contacts WHERE campaign_id = ? "
            "GROUP BY state, outcome",
            campaign_id,
        )
        attempts = self._q(
            "SELECT state, outcome, COUNT(*) AS n FROM attempts WHERE campaign_id = ? "
            "GROUP BY state, outcome",
            campaign_id,
        )
        skipped = self._one(
            "SELECT COUNT(*) AS n FROM skipped_rows WHERE campaign_id = ?", campaign_id
        )
        finished: dict[str, int] = {}
        for r in contacts:
            if r["state"] == "done":
                finished[r["outcome"]] = finished.get(r["outcome"], 0) + r["n"]
        outcomes: dict[str, int] = {}
        for r in attempts:
            if r["outcome"] is not None:
                outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + r["n"]
        return Stats(
            state=camp.state,
            contacts=sum(r["n"] for r in contacts),
            remaining=sum(r["n"] for r in contacts if r["state"] != "done"),
            in_flight=sum(r["n"] for r in attempts if r["state"] in ("dialling", "placed")),
            dialled=sum(r["n"] for r in attempts),
            outcomes=outcomes,
            finished=finished,
            skipped_rows=skipped["n"] if skipped else 0,
        )

    def skipped_rows(self, campaign_id: str) -> list[RowProblem]:
        rows = self._q(
            "SELECT line, reason, row_text FROM skipped_rows WHERE campaign_id = ? ORDER BY line",
            campaign_id,
        )
        return [RowProblem(r["line"], r["reason"], r["row_text"]) for r in rows]

    def contacts(self, campaign_id: str) -> list[dict[str, Any]]:
        """Every contact with its latest attempt, in list order (for export and tests)."""
        rows = self._q(
            "SELECT c.id, c.line, c.phone, c.zone, c.variables, c.state, c.outcome, c.attempts, "
            "c.next_at, a.key, a.call_sid, a.status, a.answered_by, a.machine_action, "
            "a.duration, a.error, a.transcript, a.results, a.recording_url, "
            "a.created_at AS dialled_at "
            "FROM contacts c LEFT JOIN attempts a "
            "ON a.contact_id = c.id AND a.number = c.attempts "
            "WHERE c.campaign_id = ? ORDER BY c.line",
            campaign_id,
        )
        for r in rows:
            r["variables"] = json.loads(r["variables"])
            r["results"] = json.loads(r["results"]) if r["results"] else {}
        return rows

    def attempts(self, campaign_id: str) -> list[dict[str, Any]]:
        """Every attempt of the campaign, oldest first."""
        return self._q(
            "SELECT a.*, c.phone FROM attempts a JOIN contacts c ON c.id = a.contact_id "
            "WHERE a.campaign_id = ? ORDER BY a.created_at, a.key",
            campaign_id,
        )


_ATTEMPT_SELECT = (
    "SELECT a.key, a.campaign_id, a.contact_id, a.number, a.state, a.owner, a.created_at, "
    "a.call_sid, c.phone, c.zone, c.variables FROM attempts a "
    "JOIN contacts c ON c.id = a.contact_id"
)


class SqliteStore(Store):
    """One SQLite file; WAL mode so the gateway's callbacks and a dialler share it."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        self._conn = sqlite_connection(self.path)
        self._create_schema()

    def _create_schema(self) -> None:
        with self._tx():
            for statement in _SCHEMA.format(serial=self.serial).split(";"):
                if statement.strip():
                    self._q(statement)
            for table, column, kind in _ADDED_COLUMNS:  # SQLite has no ADD COLUMN IF NOT EXISTS
                if column not in {r["name"] for r in self._q(f"PRAGMA table_info({table})")}:
                    self._q(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front: two writers never both read, then collide.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, tuple(params)).fetchall()]

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._conn.executemany(sql, rows)

    def _changed(self, sql: str, params: Sequence[Any]) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def close(self) -> None:
        self._conn.close()


class PostgresStore(Store):
    """PostgreSQL through psycopg 3; several diallers may share one campaign."""

    placeholder = "%s"
    serial = "BIGSERIAL"
    lock_campaign = "FOR UPDATE"
    skip_locked = "FOR UPDATE OF c SKIP LOCKED"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._conn = postgres_connection(dsn)
        with self._lock, self._conn.transaction():
            # Concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog: serialise.
            self._conn.execute("SELECT pg_advisory_xact_lock(7402311)")
            self._create_missing()

    def _create_missing(self) -> None:
        """Create only what is missing. "IF NOT EXISTS" is not enough: CREATE INDEX takes a
        SHARE lock on its table and ADD COLUMN an ACCESS EXCLUSIVE one before looking, so a
        dialler (re)starting beside running ones would lock the tables they are updating, in
        an order that deadlocks with their claims."""
        present = {
            r["relname"]
            for r in self._conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema()"
            ).fetchall()
        }
        for statement in _SCHEMA.format(serial=self.serial).split(";"):
            name = _CREATED.search(statement)
            if statement.strip() and (name is None or name.group(1) not in present):
                self._conn.execute(statement)
        for table, column, kind in _ADDED_COLUMNS:
            found = self._conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s AND column_name = %s",
                (table, column),
            ).fetchone()
            if found is None:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        import psycopg.errors as pg

        try:
            with self._conn.transaction():
                yield
        except (pg.DeadlockDetected, pg.SerializationFailure, pg.LockNotAvailable) as exc:
            raise StoreBusy(f"PostgreSQL: {exc.sqlstate} {str(exc).splitlines()[0]}") from exc

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._conn.execute(sql, tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cursor:
                cursor.executemany(sql, rows)

    def _changed(self, sql: str, params: Sequence[Any]) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def close(self) -> None:
        self._conn.close()


def open_store(dsn: str) -> Store:
    """``postgresql://...`` for PostgreSQL; ``sqlite:///path`` or a plain path for SQLite."""
    if is_postgres(dsn):
        return PostgresStore(dsn)
    return SqliteStore(sqlite_path(dsn))
