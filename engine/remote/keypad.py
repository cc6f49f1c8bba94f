"""Caller keypresses for models that take text beside audio, sans I/O.

A speech-to-speech model hears the caller but not their keypad: the carrier reports DTMF out of
band (Twilio's ``dtmf`` message, RFC 4733 on SIP), so a key never reaches the model as sound.
The remote engines therefore tell the model in words, as a user turn: "The caller pressed 4 2
7 pound on the phone keypad."

Keys are grouped, not sent one by one: an account number typed in one go is one turn, so the
model answers once. A group ends with ``#`` (the usual "end of entry" key, sent at once) or
after :data:`GAP_S` without a key. Time is passed in; the asyncio side owns the timer.
"""

from __future__ import annotations

__all__ = ["GAP_S", "KeypadBuffer", "describe_keys"]

#: Silence after a key that ends a group (typed digits come 0.2-0.8 s apart).
GAP_S = 1.2
_NAMES = {"*": "star", "#": "pound"}
_KEYS = frozenset("0123456789*#ABCD")


def describe_keys(keys: str) -> str:
    """The words a model is given for a group of keys."""
    spoken = " ".join(_NAMES.get(k, k) for k in keys)
    return f"The caller pressed {spoken} on the phone keypad."


class KeypadBuffer:
    """Groups one call's keypresses; see the module docstring."""

    def __init__(self, gap_s: float = GAP_S) -> None:
        self.gap_s = gap_s
        self._keys = ""
        self._last = 0.0

    @property
    def pending(self) -> bool:
        return bool(self._keys)

    @property
    def deadline(self) -> float | None:
        """When the group in progress ends without another key (None: no group)."""
        return self._last + self.gap_s if self._keys else None

    def press(self, key: str, now: float) -> str | None:
        """A key at ``now``; the group's words when it ends here (``#``), else None.
        Anything that is not a keypad key is ignored."""
        if key not in _KEYS:
            return None
        self._keys += key
        self._last = now
        return self._take() if key == "#" else None

    def due(self, now: float) -> str | None:
        """The group's words once :attr:`deadline` has passed, else None."""
        deadline = self.deadline
        return self._take() if deadline is not None and now >= deadline else None

    def _take(self) -> str:
        keys, self._keys = self._keys, ""
        return describe_keys(keys)
