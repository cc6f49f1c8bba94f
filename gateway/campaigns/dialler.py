"""The dialler: the asyncio adapter that runs one campaign against the store and a carrier.

Everything that decides lives elsewhere and is pure: windows, pacing and retries in their own
modules, claiming and outcomes in the store's transactions, the call's TwiML in ``answer``.
This module only loops: reconcile, claim, place, sleep until the next thing is due. Time comes
from an injected :class:`Clock`, so tests drive a whole campaign on invented time.

Idempotency, step by step (DESIGN.md 5: a crash at any point loses no contact and dials none
twice):

1. ``store.claim`` commits the attempt (key ``campaign:contact:number``, state ``dialling``,
   leased to this process) *before* any REST call.
2. ``calls.create`` carries the key in every callback URL (``?attempt=KEY``).
3. ``store.mark_placed`` binds the returned SID. A callback that arrives first binds it too.

A crash between 1 and 3 leaves a ``dialling`` attempt. Once its lease runs out, any dialler
takes it over and lists the carrier's calls to that number from our caller ID since the
attempt was created: a call no attempt knows is this attempt's, and is adopted; none means the
request never took effect, and the attempt is dialled, with the same key, if the check every
new call passes (:func:`gateway.campaigns.permit.may_call`) still allows it; else it is closed
or put back to wait, undialled. A carrier error that
leaves the outcome unknown (timeout, 5xx) is treated the same way. Outcomes arrive by status
callback (``gateway.campaigns.api``) or, when one is missed, by polling calls that stay
unsettled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from gateway.callstore import CallStore, StoreUnavailable, open_call_store, valid_call_id
from gateway.campaigns.answer import answer_twiml
from gateway.campaigns.carrier import Carrier, DialRequest
from gateway.campaigns.errors import CarrierRejected, CarrierUnavailable, StoreBusy
from gateway.campaigns.outcomes import FINAL_STATUSES, Outcome
from gateway.campaigns.permit import Close, Defer, Go
from gateway.campaigns.spec import LoadedCampaign
from gateway.campaigns.store import Attempt, Claimed, Store
from gateway.carriers.twilio.signature import public_url
from gateway.carriers.twilio.stream_token import StreamTokens, token_subject

__all__ = ["Clock", "Dialler", "SystemClock", "callback_url", "campaign_of"]

log = logging.getLogger("overtalk.campaigns")

#: Twilio errors that mean "this number cannot be called" (invalid, unreachable, not
#: permitted): the contact is finished as ``invalid``, never retried.
INVALID_NUMBER_CODES = frozenset({21211, 21214, 21215, 21216, 21217, 13224})
#: Where the campaign callbacks are mounted on the gateway (``gateway.campaigns.api``).
CALLBACK_PREFIX = "/campaigns"
#: Carrier clocks and ours differ; date_created has one-second resolution.
RECONCILE_SKEW_S = 30.0


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time, epoch seconds (calling windows are wall-clock)."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def callback_url(base: str, kind: str, key: str, prefix: str = CALLBACK_PREFIX) -> str:
    """``{base}{prefix}/twilio/{kind}?attempt=KEY``: Twilio keeps query strings on callbacks."""
    return public_url(base, f"{prefix}/twilio/{kind}", f"attempt={quote(key, safe='')}")


def campaign_of(store: Store, campaign_id: str) -> LoadedCampaign:
    """The stored campaign with its dial plan loaded again from where it was created."""
    from engine.registry import ENGINE_NAMES
    from gateway.dialplan import load as load_dialplan

    row = store.campaign(campaign_id)
    source = Path(row.source) if row.source else Path.cwd() / "campaign.yaml"
    plan = None
    if row.spec.dialplan:
        plan = load_dialplan(source.parent / row.spec.dialplan, ENGINE_NAMES)
    return LoadedCampaign(row.spec, source, plan)


@dataclass
class DiallerCounters:
    """What this process did, for logs and tests."""

    placed: int = 0
    adopted: int = 0  # orphans found at the carrier after a crash
    redialled: int = 0  # orphans the carrier had never seen, dialled with the same key
    deferred: int = 0  # orphans the carrier had never seen, put back to wait (window, pause)
    closed: int = 0  # orphans the carrier had never seen, closed undialled (cancel, stop date)
    unknown: int = 0  # creates whose outcome was unknown (timeout, 5xx)
    rejected: int = 0
    polled: int = 0
    canceled: set[str] = field(default_factory=set)


class Dialler:
    """Dials one campaign until it is done (or, with ``until_done=False``, until stopped).

    ``public_url`` is the gateway's base URL as Twilio reaches it: the stream and the
    callbacks are built from it. Several diallers (processes, each with its own ``owner``) may
    run the same campaign on a PostgreSQL store.
    """

    def __init__(
        self,
        store: Store,
        campaign_id: str,
        carrier: Carrier,
        *,
        public_url: str,
        campaign: LoadedCampaign | None = None,
        clock: Clock | None = None,
        owner: str | None = None,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        check_after_s: float = 30.0,
        records_dir: str | Path | None = None,
        call_store: str = "",
        callback_prefix: str = CALLBACK_PREFIX,
        stream_tokens: StreamTokens | None = None,
    ) -> None:
        self.store = store
        #: Issues the token each call's stream presents to the gateway (``stream_token.py``).
        self.stream_tokens = stream_tokens
        self.campaign_id = campaign_id
        self.carrier = carrier
        self.base = public_url.rstrip("/")
        self.campaign = campaign or campaign_of(store, campaign_id)
        self.clock = clock or SystemClock()
        self.owner = owner or f"dialler-{secrets.token_hex(4)}"
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.check_after_s = check_after_s
        self.records_dir = Path(records_dir) if records_dir else None
        #: The gateways' call store (its DSN): results and transcripts of calls any replica
        #: took. Opened on first use, reopened after a failure.
        self.call_store_dsn = call_store
        self._calls: CallStore | None = None
        self.prefix = callback_prefix
        self.counters = DiallerCounters()
        self.finished = False
        self._placing: set[asyncio.Task[None]] = set()

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, *, until_done: bool = True) -> None:
        """Dial until the campaign is finished (done or canceled) and no placement is pending."""
        try:
            while True:
                try:
                    wake = await self.tick()
                except StoreBusy as exc:  # rolled back whole: the next round does it again
                    log.warning("x campaign %s: %s; trying again", self.campaign_id, exc)
                    wake = None
                if until_done and self.finished and not self._placing:
                    return
                now = self.clock.now()
                delay = self.poll_s if wake is None else min(max(wake - now, 0.0), self.poll_s)
                await self.clock.sleep(delay)
        finally:
            await self.drain()
            if self._calls is not None:
                self._calls.close()
                self._calls = None

    async def drain(self) -> None:
        """Wait for the placements in progress."""
        while self._placing:
            await asyncio.gather(*self._placing, return_exceptions=True)

    async def tick(self) -> float | None:
        """One pass: read the campaign's state, reconcile, then claim and start every call due
        now; the next wake time.

        A canceled campaign is finished only once none of its attempts is ``dialling``: an
        attempt another dialler left behind is waited for (its lease) and reconciled (its call
        adopted, or the attempt closed as ``canceled``), never abandoned.
        """
        store, cid = self.store, self.campaign_id
        now = self.clock.now()
        state = (await asyncio.to_thread(store.campaign, cid)).state
        await self._reconcile(now)
        if state == "canceled":
            await self._cancel_ringing()
        while True:
            result = await asyncio.to_thread(store.claim, cid, self.owner, now, self.lease_s)
            if not isinstance(result, Claimed):
                break
            self._start(result.attempt)
        if result.finished:
            if state == "canceled":
                self.finished = not self._placing and not await asyncio.to_thread(
                    store.dialling, cid
                )
            else:
                self.finished = await asyncio.to_thread(store.finish_if_done, cid)
        return result.wake_at

    def _start(self, attempt: Attempt) -> None:
        task = asyncio.create_task(self._place(attempt))
        self._placing.add(task)
        task.add_done_callback(self._placing.discard)

    # -- placing ------------------------------------------------------------------------------

    async def _place(self, attempt: Attempt) -> None:
        try:
            await self._place_once(attempt)
        except StoreBusy as exc:
            # What the store did not take stays as it was: the attempt keeps its lease, and
            # once that runs out reconciling finds the call, or that there is none.
            log.warning("x attempt %s: %s; it will be reconciled", attempt.key, exc)

    def _stream_token(self) -> Callable[[dict[str, str]], str] | None:
        tokens = self.stream_tokens
        if tokens is None:
            return None
        # Wall-clock seconds: the gateway checks the expiry with its own clock.
        return lambda params: tokens.issue(token_subject("", params), params, time.time())

    async def _place_once(self, attempt: Attempt) -> None:
        store, spec = self.store, self.campaign.spec
        key = attempt.key
        try:
            twiml = answer_twiml(
                self.campaign,
                stream_url=public_url(self.base, "/twilio/media", websocket=True),
                action_url=public_url(self.base, "/twilio/dial"),
                attempt=key,
                phone=attempt.phone,
                variables=attempt.variables,
                at=datetime.fromtimestamp(self.clock.now(), UTC),
                stream_token=self._stream_token(),
            )
        except ValueError as exc:
            log.warning("x attempt %s: %s", key, exc)
            await asyncio.to_thread(store.fail_attempt, key, Outcome.INVALID, str(exc),
                                    self.clock.now())  # fmt: skip
            return
        amd = spec.amd
        request = DialRequest(
            to=attempt.phone,
            from_=spec.caller_id,
            twiml=twiml,
            status_callback=callback_url(self.base, "status", key, self.prefix),
            timeout=spec.ring_timeout,
            machine_detection=amd.mode if amd.enabled else None,
            machine_detection_timeout=amd.timeout,
            amd_callback=callback_url(self.base, "amd", key, self.prefix) if amd.enabled else None,
            record=spec.record,
            recording_callback=(
                callback_url(self.base, "recording", key, self.prefix) if spec.record else None
            ),
            time_limit=spec.time_limit,
        )
        try:
            call = await asyncio.to_thread(self.carrier.create, request)
        except CarrierRejected as exc:
            self.counters.rejected += 1
            invalid = exc.code in INVALID_NUMBER_CODES
            log.warning("x attempt %s to %s refused: %s", key, attempt.phone, exc)
            await asyncio.to_thread(
                store.fail_attempt,
                key,
                Outcome.INVALID if invalid else Outcome.FAILED,
                str(exc),
                self.clock.now(),
            )
            if not invalid:
                # Not about this number (credentials, caller ID): every call would fail alike.
                log.error("x pausing campaign %s: %s", self.campaign_id, exc)
                await asyncio.to_thread(store.change_state, self.campaign_id, "pause",
                                        self.clock.now())  # fmt: skip
            return
        except CarrierUnavailable as exc:
            # The call may exist or not: only the carrier's call list can tell, once the lease
            # has run out (reconcile). Dialling again now could ring the person twice.
            self.counters.unknown += 1
            log.warning("x attempt %s: outcome of the create unknown (%s); will reconcile", key,
                        exc)  # fmt: skip
            return
        self.counters.placed += 1
        log.info("> attempt %s: call %s to %s", key, call.sid, attempt.phone)
        if not await asyncio.to_thread(store.mark_placed, key, call.sid, self.clock.now()):
            log.error("x attempt %s already has another call than %s", key, call.sid)

    # -- reconciling --------------------------------------------------------------------------

    async def _reconcile(self, now: float) -> None:
        store, cid = self.store, self.campaign_id
        for orphan in await asyncio.to_thread(store.orphans, cid, now):
            won = await asyncio.to_thread(store.take_over, orphan.key, self.owner, now,
                                          self.lease_s)  # fmt: skip
            if won:
                await self._adopt_or_redial(orphan, now)
        for attempt in await asyncio.to_thread(store.unsettled, cid, now, self.check_after_s):
            await self._poll(attempt, now)
        if self.records_dir is not None or self.call_store_dsn:
            await asyncio.to_thread(self._import_transcripts)

    async def _adopt_or_redial(self, orphan: Attempt, now: float) -> None:
        spec = self.campaign.spec
        try:
            calls = await asyncio.to_thread(
                self.carrier.find, orphan.phone, spec.caller_id,
                orphan.created_at - RECONCILE_SKEW_S,
            )  # fmt: skip
        except CarrierUnavailable as exc:
            log.warning("x cannot reconcile %s yet: %s", orphan.key, exc)
            return
        known = await asyncio.to_thread(self.store.known_sids, [c.sid for c in calls])
        ours = sorted((c for c in calls if c.sid not in known), key=lambda c: c.created)
        if not ours:
            # Never placed: dialling it now is a new call, so it passes the same check as a
            # first attempt (the campaign may have been paused or canceled, or the window
            # closed, while the outcome was unknown).
            verdict = await asyncio.to_thread(self.store.permit, orphan.key, self.owner, now)
            match verdict:
                case Go():
                    self.counters.redialled += 1
                    log.info("= attempt %s was never placed; dialling it now", orphan.key)
                    self._start(orphan)
                case Defer(reason=reason):
                    self.counters.deferred += 1
                    log.info("= attempt %s was never placed; not now: %s", orphan.key, reason)
                case Close(outcome=outcome, reason=reason):
                    self.counters.closed += 1
                    log.info("= attempt %s was never placed; closed as %s: %s", orphan.key,
                             outcome, reason)  # fmt: skip
            return
        call = ours[0]
        self.counters.adopted += 1
        log.info("= attempt %s was placed as %s before a crash; adopted", orphan.key, call.sid)
        await asyncio.to_thread(self.store.mark_placed, orphan.key, call.sid, now)
        if call.status in FINAL_STATUSES:
            await asyncio.to_thread(
                self.store.record_status, orphan.key, call.sid, call.status, now,
                answered_by=call.answered_by, duration=call.duration,
            )  # fmt: skip

    async def _poll(self, attempt: Attempt, now: float) -> None:
        """A call with no final status for a while: ask the carrier (a callback was lost)."""
        if attempt.call_sid is None:
            return
        try:
            call = await asyncio.to_thread(self.carrier.fetch, attempt.call_sid)
        except (CarrierUnavailable, CarrierRejected) as exc:
            log.warning("x cannot poll call %s: %s", attempt.call_sid, exc)
            return
        self.counters.polled += 1
        await asyncio.to_thread(
            self.store.record_status, attempt.key, call.sid, call.status, now,
            answered_by=call.answered_by, duration=call.duration,
        )  # fmt: skip
        await asyncio.to_thread(self.store.checked, attempt.key, now)

    async def _cancel_ringing(self) -> None:
        """A canceled campaign: cancel its calls that are not yet answered (Twilio leaves
        calls in progress alone on ``canceled``, so a conversation is never cut)."""
        for attempt in await asyncio.to_thread(self.store.in_flight, self.campaign_id):
            sid = attempt.call_sid
            if sid is None or sid in self.counters.canceled:
                continue
            self.counters.canceled.add(sid)
            try:
                await asyncio.to_thread(self.carrier.update, sid, status="canceled")
            except (CarrierUnavailable, CarrierRejected) as exc:
                log.info("= call %s not canceled: %s", sid, exc)

    def _import_transcripts(self) -> None:
        """Copy transcripts and results of answered calls into the campaign: from the call
        store (whichever gateway took the call), else from a record file in ``records_dir``."""
        sids = self.store.untranscribed(self.campaign_id)
        if not sids:
            return
        found = self._from_call_store(sids)
        for sid in sids:
            if sid in found:
                lines, results = found[sid]
            elif self.records_dir is not None and (record := self._record_file(sid)):
                lines, results = record
            else:
                continue
            text = "\n".join(f"{role}: {said}" for role, said in lines)
            self.store.record_transcript(sid, text, results, self.clock.now())

    def _from_call_store(
        self, sids: list[str]
    ) -> dict[str, tuple[list[tuple[str, str]], dict[str, str]]]:
        if not self.call_store_dsn:
            return {}
        try:
            if self._calls is None:
                self._calls = open_call_store(self.call_store_dsn)
            found = self._calls.results(sids)
            for sid in found:
                self._calls.tag_campaign(sid, self.campaign_id)
        except StoreUnavailable as exc:
            log.warning("x call store unavailable, results imported later: %s", exc)
            if self._calls is not None:
                self._calls.close()
                self._calls = None
            return {}
        return {sid: (lines, {str(k): str(v) for k, v in results.items()})
                for sid, (lines, results) in found.items()}  # fmt: skip

    def _record_file(self, sid: str) -> tuple[list[tuple[str, str]], dict[str, str]] | None:
        """A call record exported by a gateway (``--records-dir``), if readable."""
        assert self.records_dir is not None
        if not valid_call_id(sid):
            return None
        try:
            record = json.loads((self.records_dir / f"{sid}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict):
            return None
        raw_lines = record.get("transcript", [])
        lines = [(str(line[0]), str(line[1])) for line in raw_lines
                 if isinstance(line, list) and len(line) == 2] if isinstance(raw_lines, list) \
            else []  # fmt: skip
        raw = record.get("results")
        results = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        return lines, results
