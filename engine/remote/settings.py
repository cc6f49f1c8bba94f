"""Per-call settings of a remote engine, read from the call's context.

A dial plan's ``bot`` action reaches an engine as strings in ``CallContext.parameters``: the
bot's ``prompt``, ``greeting``, ``voice`` and ``language``, and every key of its ``options``
(``model``, ``turn_detection``, ``silence_duration_ms``...). This module turns those strings
into typed values and says which key was wrong when one is.

Credentials and endpoints never come from here: they come from the engine's constructor and the
environment only (a dial plan is a file people share; a key in it would leak).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.remote.refused import refusals

__all__ = ["CallSettings", "env_or"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env_or(value: str | None, environ: Mapping[str, str], *names: str) -> str:
    """``value`` if given, else the first of the environment variables ``names`` that is set."""
    if value:
        return value
    for name in names:
        found = environ.get(name)
        if found:
            return found
    return ""


class CallSettings:
    """Typed reads of a call's string parameters; ValueError names the key and the value."""

    __slots__ = ("_params",)

    def __init__(self, params: Mapping[str, str]) -> None:
        self._params = params

    def text(self, key: str, default: str = "") -> str:
        value = self._params.get(key)
        return default if value is None or value == "" else str(value)

    def choice(self, key: str, allowed: Sequence[str], default: str) -> str:
        value = self.text(key, default)
        if value not in allowed:
            raise ValueError(f"option {key}={value!r}: expected one of {', '.join(allowed)}")
        return value

    def integer(self, key: str, default: int | None = None) -> int | None:
        value = self._params.get(key)
        if value is None or value == "":
            return default
        try:
            return int(str(value))
        except ValueError:
            raise ValueError(f"option {key}={value!r}: expected a whole number") from None

    def number(self, key: str, default: float | None = None) -> float | None:
        value = self._params.get(key)
        if value is None or value == "":
            return default
        try:
            return float(str(value))
        except ValueError:
            raise ValueError(f"option {key}={value!r}: expected a number") from None

    def flag(self, key: str, default: bool | None = None) -> bool | None:
        value = self._params.get(key)
        if value is None or value == "":
            return default
        word = str(value).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"option {key}={value!r}: expected true or false")

    def items(self, key: str) -> list[str]:
        """A comma-separated list (``"end_call, send_dtmf"``), blanks dropped."""
        return [part.strip() for part in self.text(key).split(",") if part.strip()]

    def refusals(self, engine: str) -> list[str]:
        """Why the service would refuse some of these settings (:mod:`engine.remote.refused`)."""
        return refusals(self._params, engine)
