"""May we call this contact now? The one check every path that creates a call goes through.

A call is created on three paths: a contact's first attempt, a retry (both claimed by
``Store.claim``), and the redial of an attempt that a crash or a carrier error left with an
unknown outcome, once reconciling has shown that the carrier never placed it
(``Store.permit``). All three ask :func:`may_call`, so a campaign that was paused, canceled
or past its stop date, a number that joined the do-not-call list, or a window that closed
while the carrier was down can never ring anyone, whichever path the call would take.

The answer is one of:

- :class:`Go`: dial now;
- :class:`Defer`: not now, and nothing is lost: the contact waits for ``until`` (the next
  calling window) or, with ``until`` None, for the campaign to be resumed;
- :class:`Close`: never: the contact is finished with ``outcome`` (``canceled``, ``expired``,
  ``dnc``, or its last outcome once it has had ``max_attempts`` calls).

Pure: the moment of the question is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.campaigns.outcomes import Outcome
from gateway.campaigns.windows import CallingWindows

__all__ = ["Close", "Defer", "Go", "Verdict", "may_call"]


@dataclass(frozen=True, slots=True)
class Go:
    """Dial now."""


@dataclass(frozen=True, slots=True)
class Defer:
    """Not now. ``until``: epoch seconds of the next calling window; None: until resumed."""

    until: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class Close:
    """Never: the contact is finished with ``outcome``."""

    outcome: Outcome
    reason: str


Verdict = Go | Defer | Close


def may_call(
    *,
    state: str,
    windows: CallingWindows,
    zone: ZoneInfo,
    at: datetime,
    blocked: bool,
    number: int,
    max_attempts: int,
    last_outcome: Outcome | None = None,
) -> Verdict:
    """Whether attempt ``number`` (1 for the first call) may ring the contact at ``at``.

    ``state`` is the campaign's state read in the same transaction that would create or
    redial the attempt; ``blocked``: the number is on the do-not-call list; ``zone``: the
    callee's time zone, in which ``windows`` (with the campaign's start and stop dates) are
    read.
    """
    if state == "canceled":
        return Close(Outcome.CANCELED, "the campaign was canceled")
    if state != "running":
        return Defer(None, f"the campaign is {state}")
    if blocked:
        return Close(Outcome.DNC, "the number is on the do-not-call list")
    if number > max_attempts:
        return Close(last_outcome or Outcome.FAILED, f"{max_attempts} attempts made")
    opens = windows.next_open(at, zone)
    if opens is None:
        return Close(Outcome.EXPIRED, "no calling window left before the stop date")
    if opens > at:
        return Defer(opens.timestamp(), "outside the callee's calling window")
    return Go()
