"""Variables in greetings, prompts and spoken text: ``{caller}``, ``{now:%A}`` and friends.

Templates use ``str.format`` syntax but only bare variable names: no attribute or index access
(``{caller.__class__}``), no conversions, so a plan file cannot reach into Python objects.
Templates are checked when the plan loads and expanded per call by the router.

Variables:

- ``{caller}``: the far party's number (the caller on inbound calls, the person called on
  outbound ones), or ``anonymous`` when withheld;
- ``{called}``: our number, the one the plan routed on;
- ``{route}``, ``{branch}``: the route name and the branch label that matched;
- ``{direction}``: ``inbound``, ``outbound-api``, ``outbound-dial`` or ``browser``;
- ``{now}``: the call's start in the route's time zone; ``{now:%A}`` takes any ``strftime``
  format (plain ``{now}`` is ``%Y-%m-%d %H:%M``).

Write ``{{`` and ``}}`` for literal braces.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import UTC, datetime

VARIABLES = ("caller", "called", "route", "branch", "direction", "now")
DEFAULT_NOW_FORMAT = "%Y-%m-%d %H:%M"

_formatter = string.Formatter()


class _Now:
    __slots__ = ("moment",)

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __format__(self, spec: str) -> str:
        return self.moment.strftime(spec or DEFAULT_NOW_FORMAT)


def check_template(text: str) -> None:
    """Raise ValueError with a plain reason if ``text`` is not a valid template."""
    try:
        parts = list(_formatter.parse(text))
    except ValueError as exc:
        raise ValueError(f"bad template {text!r}: {exc} (write {{{{ and }}}} for braces)") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in VARIABLES:
            known = ", ".join("{" + v + "}" for v in VARIABLES)
            raise ValueError(f"unknown variable {{{name}}} in {text!r}; known: {known}")
        if conversion:
            raise ValueError(f"conversions such as !{conversion} are not allowed in {text!r}")
        if spec and "{" in spec:
            raise ValueError(f"nested fields are not allowed in {text!r}")
        try:
            if name == "now":
                format(_Now(datetime(2026, 1, 1, tzinfo=UTC)), spec or "")
            else:
                format("x", spec or "")
        except ValueError as exc:
            raise ValueError(f"bad format {spec!r} for {{{name}}}: {exc}") from None


def expand(text: str, values: Mapping[str, str | datetime]) -> str:
    """Fill ``text`` (already checked) from ``values``; ``now`` must be a datetime."""
    out: list[str] = []
    for literal, name, spec, _ in _formatter.parse(text):
        out.append(literal)
        if name is None:
            continue
        value = values[name]
        out.append(format(_Now(value) if isinstance(value, datetime) else value, spec or ""))
    return "".join(out)
