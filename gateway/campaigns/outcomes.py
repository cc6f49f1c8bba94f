"""What an attempt's call came to, and whether (and when) to call the contact again. Pure.

Twilio reports a call's end as a ``CallStatus`` (``completed``, ``busy``, ``no-answer``,
``failed``, ``canceled``) and, with answering-machine detection, an ``AnsweredBy``
(``human``, ``machine_start``, ``machine_end_beep``, ``machine_end_silence``,
``machine_end_other``, ``fax``, ``unknown``; REFERENCE.md 1.7). A completed call answered by a
machine is not a conversation: it is ``voicemail`` when the campaign left its message after
the beep, else ``machine``, which may be retried like ``busy``.

Retries are per outcome: each retryable outcome has its own number of retries and back-off
list (the last delay repeats), under the campaign's overall ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "FINAL_STATUSES",
    "MACHINE_ANSWERS",
    "RETRYABLE",
    "Outcome",
    "Retry",
    "RetryPolicy",
    "classify",
]

#: Call statuses after which nothing more will happen to a call.
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
#: ``AnsweredBy`` values that mean no person took the call.
MACHINE_ANSWERS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)


class Outcome(StrEnum):
    """How one attempt (and finally one contact) ended."""

    ANSWERED = "answered"  # a person (or an undetected machine) took the call
    VOICEMAIL = "voicemail"  # a machine answered and the campaign's message was left
    MACHINE = "machine"  # a machine answered and the campaign hung up
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"  # the carrier could not connect the call
    CANCELED = "canceled"  # the campaign was canceled before the call was answered
    INVALID = "invalid"  # the carrier refused the number itself: never retried
    DNC = "dnc"  # on the do-not-call list when its turn came: never dialled
    EXPIRED = "expired"  # no calling window left before the campaign's stop date

    @property
    def reached(self) -> bool:
        return self in (Outcome.ANSWERED, Outcome.VOICEMAIL)


#: Outcomes a campaign may retry (each needs its own ``retry`` rule).
RETRYABLE = frozenset({Outcome.BUSY, Outcome.NO_ANSWER, Outcome.FAILED, Outcome.MACHINE})


def classify(status: str, answered_by: str | None, machine_action: str | None) -> Outcome:
    """The outcome of a call that ended with ``status``.

    ``machine_action`` is what the campaign did on a machine answer (``message`` or
    ``hangup``), None if it did nothing (no AMD result in time, or AMD off).
    """
    match status:
        case "completed":
            if answered_by in MACHINE_ANSWERS:
                return Outcome.VOICEMAIL if machine_action == "message" else Outcome.MACHINE
            return Outcome.ANSWERED
        case "busy":
            return Outcome.BUSY
        case "no-answer":
            return Outcome.NO_ANSWER
        case "canceled":
            return Outcome.CANCELED
        case "failed":
            return Outcome.FAILED
    raise ValueError(f"call status {status!r} is not final")


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry an outcome up to ``times`` times, waiting ``after[i]`` seconds before retry i+1."""

    times: int = 0
    after: tuple[float, ...] = (3600.0,)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per-outcome retries under an overall cap of ``max_attempts`` calls per contact."""

    max_attempts: int = 3
    rules: Mapping[Outcome, Retry] = field(default_factory=dict)

    def delay(self, outcome: Outcome, attempts: int, outcome_count: int) -> float | None:
        """Seconds to wait before calling again, or None when the contact is finished.

        ``attempts`` is how many calls the contact has had, this one included;
        ``outcome_count`` how many of them ended with ``outcome`` (this one included).
        """
        rule = self.rules.get(outcome)
        if outcome not in RETRYABLE or rule is None or attempts >= self.max_attempts:
            return None
        if outcome_count > rule.times:
            return None
        after = rule.after or (0.0,)
        return after[min(outcome_count - 1, len(after) - 1)]
