"""What the call core asks its carrier to do: typed, frozen, and read in order.

:meth:`~gateway.call.session.CallSession.commands_to_send` hands these out; the runner passes
the media ones to the carrier's transport at once and the call-control ones (hang-up,
transfer) to a task, since those are network round trips.
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


Command = SendFrame | SendMark | ClearAudio | HangUp | TransferCall
#: The commands that leave the media path: call control, done by a task.
CallAction = HangUp | TransferCall
