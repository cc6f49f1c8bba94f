"""How a call's holds sound: the gateway's setting, overridden per bot in the dial plan.

A hold has two levels (see :mod:`gateway.call.playout`): the soft level ducks the bot by
``soft_db`` while the engine looks at a sound, and the deep level, once the sound looks like a
turn, does what ``mode`` says:

- ``clear`` (the default): silence the bot at once by clearing the carrier's buffer, and carry
  on from the exact sample heard on release (the price: a release after a deep hold is heard
  as a gap);
- ``stop``: stop sending and let what the carrier has (the pacing lead) play out;
- ``duck``: keep playing, ``duck_db`` down (no gap on release, but the caller is talked over,
  if quietly, until the commit).

Pure values: validated once, at start-up or when a dial plan loads, never per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.call.playout import Playout

__all__ = ["HOLD_MODES", "HoldPolicy", "check"]

HoldMode = Literal["clear", "stop", "duck"]
HOLD_MODES: tuple[str, ...] = ("clear", "stop", "duck")


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    """The sound of a hold (see the module docstring)."""

    mode: HoldMode = "clear"
    #: How far a deep ``duck`` hold turns the bot down (dB, negative). 20 dB or more is what a
    #: caller hears as the bot giving way; the benchmark counts it as silence.
    duck_db: float = -30.0
    #: The soft level (dB, negative, shallower than -20); None: no soft level (a hold is deep
    #: from the start).
    soft_db: float | None = -10.0

    def __post_init__(self) -> None:
        problem = check(self.mode, self.duck_db, self.soft_db)
        if problem:
            raise ValueError(problem)

    def playout(self, lead: float = 0.120, mark_every: int = 2) -> Playout:
        """A call's playout that holds the way this policy says."""
        return Playout(
            lead=lead,
            mark_every=mark_every,
            hold_clears=self.mode == "clear",
            duck_db=self.duck_db if self.mode == "duck" else None,
            soft_db=self.soft_db,
        )


def check(mode: str, duck_db: float, soft_db: float | None) -> str:
    """What is wrong with these hold settings, or "" when nothing is."""
    if mode not in HOLD_MODES:
        return f"hold must be one of {', '.join(HOLD_MODES)}, not {mode!r}"
    if not -60.0 <= duck_db <= -20.0:  # NaN fails too
        return f"duck_db must be from -60 to -20 dB, not {duck_db!r}"
    if soft_db is not None and not -20.0 < soft_db < 0.0:
        return f"soft_db must be between -20 and 0 dB (or off), not {soft_db!r}"
    return ""
