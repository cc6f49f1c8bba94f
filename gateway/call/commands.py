"""What the call core asks its carrier to do: typed, frozen, and read in order.

:meth:`~gateway.call.session.CallSession.commands_to_send` hands these out; the runner passes
the media ones to the carrier's transport at once and the call-control ones (hang-up,
transfer) to a task, since those are network round trips. DTMF goes to the carrier as events
where it can send them (SIP with RFC 4733 agreed), else back to the session as tones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SendFrame:
    """One 20 ms frame of G.711 mu-law for the caller."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class SendMark:
    """A playback mark: the carrier reports it back once what was sent before it has played."""

    name: str


@dataclass(frozen=True, slots=True)
class ClearAudio:
    """Drop whatever the carrier has buffered for the caller; report it with ``clear_written``."""


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call: the speech before it has played (or was cut)."""


@dataclass(frozen=True, slots=True)
class TransferCall:
    """Hand the call to ``target`` (a number or SIP URI the dial plan or engine named)."""

    target: str


#: What ``SendDigits`` may carry: the sixteen keys (RFC 4733 events 0-15) and ``W``, a pause
#: of :data:`PAUSE_SECONDS`.
DTMF_CHARACTERS = "0123456789*#ABCDW"
#: The longest DTMF string an engine may ask for in one go (a bound on what it can queue).
MAX_DTMF_DIGITS = 64
#: How long a ``W`` in a DTMF string pauses (the dialling convention; ``gateway.audio.dtmf``).
PAUSE_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class SendDigits:
    """Send DTMF to the far end, after the speech before it: upper-case keys and ``W`` pauses
    (validated by the session against :data:`DTMF_CHARACTERS`)."""

    digits: str


Command = SendFrame | SendMark | ClearAudio | HangUp | TransferCall | SendDigits
#: The commands that leave the media path: call control, done by a task.
CallAction = HangUp | TransferCall
#: What waits for the speech before it to have played.
AfterSpeech = HangUp | TransferCall | SendDigits
