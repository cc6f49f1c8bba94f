"""Fixtures for the dial-plan tests: plan files written into a temporary directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.dialplan import Problem, check

ENGINES = frozenset({"echo", "tone"})


class Plans:
    """Writes dial-plan files and finds where things are in them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, text: str, name: str = "plan.yaml") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    @staticmethod
    def where(path: Path, needle: str) -> tuple[int, int]:
        """1-based line and column of the only occurrence of ``needle`` in ``path``."""
        lines = path.read_text(encoding="utf-8").splitlines()
        hits = [(i + 1, line.index(needle) + 1) for i, line in enumerate(lines) if needle in line]
        assert len(hits) == 1, f"{needle!r} occurs {len(hits)} times in {path}"
        return hits[0]

    @staticmethod
    def problem(path: Path, fragment: str, *, env: dict[str, str] | None = None) -> Problem:
        """The one problem of the plan at ``path`` whose message contains ``fragment``."""
        problems = check(path, ENGINES, env=env or {})
        found = [p for p in problems if fragment in p.message]
        assert len(found) == 1, f"{fragment!r} not exactly once in:\n" + "\n".join(
            map(str, problems)
        )
        return found[0]


@pytest.fixture
def plans(tmp_path: Path) -> Plans:
    return Plans(tmp_path)


@pytest.fixture
def engines() -> frozenset[str]:
    return ENGINES
