"""DTMF out through a carrier's REST API: the session's digits in that API's own alphabet.

:class:`~gateway.call.commands.SendDigits` carries keys (``0-9 * # A-D``) and ``W``, a pause of
:data:`~gateway.call.commands.PAUSE_SECONDS`. Each carrier's API takes its own subset of keys
and its own pause character, so a carrier's control translates before it asks: a string its API
would refuse never leaves the gateway, and the call's runner plays it as tones instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.call.commands import MAX_DTMF_DIGITS

__all__ = ["DtmfAlphabet"]


@dataclass(frozen=True, slots=True)
class DtmfAlphabet:
    """What one carrier's DTMF request accepts: its ``keys``, the character it reads as a
    half-second ``pause``, and at most ``limit`` characters (our bound when it states none)."""

    keys: frozenset[str]
    pause: str
    limit: int = MAX_DTMF_DIGITS

    def translate(self, digits: str) -> str | None:
        """``digits`` as this API spells them; None when it cannot carry them (empty, too
        long, or a key it does not take)."""
        if not digits or len(digits) > self.limit:
            return None
        out = []
        for char in digits:
            if char == "W":
                out.append(self.pause)
            elif char in self.keys:
                out.append(char)
            else:
                return None
        return "".join(out)
