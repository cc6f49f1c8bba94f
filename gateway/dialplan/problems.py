"""What is wrong with a dial-plan file, located precisely enough to fix it.

Exception tree::

    DialPlanError                 base of everything this package raises on purpose
    └── DialPlanInvalid           the files do not make a usable plan (carries every Problem)

A plan is checked as a whole and every problem is collected before anything is refused, so one
run of ``overtalk dialplan check`` shows the author everything to fix, not one error per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One error in one file: 1-based line and column, and a plain-language reason."""

    file: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class DialPlanError(Exception):
    """Base of the dial-plan exceptions."""


class DialPlanInvalid(DialPlanError):
    """The plan was refused; ``problems`` lists every reason, sorted by file and position.

    ``files`` are the files the loader tried to read (present or not), so a watcher can notice
    when the author fixes or creates one of them.
    """

    def __init__(self, problems: Iterable[Problem], files: Iterable[Path] = ()) -> None:
        self.problems: list[Problem] = sorted(set(problems))
        self.files: tuple[Path, ...] = tuple(dict.fromkeys(files))
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
