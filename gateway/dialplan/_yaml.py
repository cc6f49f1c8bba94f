"""YAML with positions: plain Python data plus the line and column of every key and value.

PyYAML's ``safe_load`` forgets where things were, so an error found later (by pydantic, or by
the plan's own cross-checks) could only be reported by path. Here the file is composed into
nodes, which keep their ``start_mark``, and converted to data by hand, recording the position
of each value and each mapping key under the path that pydantic's error ``loc`` uses.

Three things ``safe_load`` silently accepts are refused, because each hides a mistake in a
hand-edited file: duplicate keys (the later one would win), non-scalar keys, and recursive
aliases. Expansion is capped so a "billion laughs" alias bomb cannot stall a reload, and
nesting is capped so a file of 100,000 ``[`` cannot exhaust the stack (PyYAML composes
recursively). A character YAML does not allow (a stray control byte) is reported at its line
and column like any other error. One deliberate departure from YAML: an unquoted
``+14155550100`` stays a string (see below).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.dialplan.problems import DialPlanInvalid, Problem

#: Most nodes one file may expand to (aliases count again each time they are used).
MAX_NODES = 100_000
#: Deepest nesting of lists and mappings; a real plan nests about eight levels.
MAX_DEPTH = 64

Loc = tuple[Any, ...]

#: An unquoted ``+14155550100`` is an integer to YAML, which would drop the "+" that makes it
#: E.164. No value in a dial plan is a signed integer, so such scalars stay strings.
_SIGNED_DIGITS = re.compile(r"\+[0-9]+")


@dataclass(slots=True)
class Positions:
    """Where each value (and each mapping key) of one file starts, by path; 1-based."""

    file: Path
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def locate(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """The position best describing ``loc``: its key when ``key``, else its value.

        Elements of ``loc`` that are not in the file are skipped rather than ending the walk:
        pydantic inserts the tag of a discriminated union (``('otherwise', 'bot', 'engine')``),
        and a missing field has no position of its own. When ``loc`` is not found whole, the
        key of the deepest enclosing mapping entry is the most useful place to point at.
        """
        found: Loc = ()
        for part in loc:
            candidate = (*found, part)
            if candidate in self.values:
                found = candidate
            elif isinstance(part, str) and part.isdigit() and (*found, int(part)) in self.values:
                found = (*found, int(part))
        whole = len(found) == len(loc) or (found and found[-1] == loc[-1])
        if (key or not whole) and found in self.keys:
            return self.keys[found]
        return self.values.get(found, (1, 1))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    def __init__(self, loader: yaml.SafeLoader, positions: Positions) -> None:
        self.loader = loader
        self.positions = positions
        self.problems: list[Problem] = []
        self.count = 0
        self.active: set[int] = set()

    def problem(self, node: yaml.Node, message: str) -> None:
        line, column = _mark(node)
        self.problems.append(Problem(self.positions.file, line, column, message))

    def convert(self, node: yaml.Node, path: Loc) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(node)
        self.positions.values[path] = _mark(node)
        if isinstance(node, yaml.ScalarNode):
            if node.style is None and _SIGNED_DIGITS.fullmatch(node.value):
                return node.value  # +14155550100 unquoted: a phone number, not an integer
            try:
                return self.loader.construct_object(node, deep=True)
            except ValueError as exc:  # e.g. 2026-13-01 looks like a date but is not one
                kind = node.tag.rpartition(":")[2]
                self.problem(node, f"{node.value!r} is not a valid {kind}: {exc}")
                return node.value
        if id(node) in self.active:
            self.problem(node, "recursive alias: this value contains itself")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self.convert_mapping(node, path)
        finally:
            self.active.discard(id(node))
        self.problem(node, f"unsupported YAML node {node.tag}")
        return None

    def convert_mapping(self, node: yaml.MappingNode, path: Loc) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)  # resolves "<<" merge keys in place, as safe_load does
        result: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, "keys must be plain words, not lists or mappings")
                continue
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                key = str(key)  # dates and the like as keys: keep them as written
            if key in first_seen:
                self.problem(key_node, f"duplicate key {key!r} (first at line {first_seen[key]})")
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.positions.keys[(*path, key)] = _mark(key_node)
            result[key] = self.convert(value_node, (*path, key))
        return result


class _TooBig(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose (recursive) composer stops at :data:`MAX_DEPTH` levels."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _codepoint(character: object) -> str:
    code = character if isinstance(character, int) else ord(str(character)[:1] or "\0")
    return f"U+{code:04X}"


def _line_column(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def parse(text: str, file: Path) -> tuple[Any, Positions]:
    """Parse one YAML document, returning its data and positions.

    Raises DialPlanInvalid for a syntax error (with the line and column YAML reports), more
    than one document, or any of the refusals described in the module docstring.
    """
    positions = Positions(file)
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as exc:  # checked up front for str input
        line, column = _line_column(text, exc.position)
        raise DialPlanInvalid(
            [Problem(file, line, column, f"character {_codepoint(exc.character)} is not allowed")],
            [file],
        ) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            reason = " ".join(str(x) for x in (exc.context, exc.problem) if x)
            raise DialPlanInvalid(
                [Problem(file, line, column, f"YAML syntax: {reason}")], [file]
            ) from None
        except _TooDeep as exc:
            raise DialPlanInvalid(
                [Problem(file, exc.mark.line + 1, exc.mark.column + 1,
                         f"nested more than {MAX_DEPTH} levels deep")],
                [file],
            ) from None  # fmt: skip
        except yaml.YAMLError as exc:
            raise DialPlanInvalid([Problem(file, 1, 1, f"YAML: {exc}")], [file]) from None
        if node is None:
            return None, positions
        converter = _Converter(loader, positions)
        try:
            data = converter.convert(node, ())
        except _TooBig as exc:
            line, column = _mark(exc.node)
            raise DialPlanInvalid(
                [Problem(file, line, column, f"expands to more than {MAX_NODES} values")], [file]
            ) from None
        except yaml.MarkedYAMLError as exc:  # e.g. a bad !!timestamp found while constructing
            mark = exc.problem_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise DialPlanInvalid(
                [Problem(file, line, column, f"YAML: {exc.problem}")], [file]
            ) from None
        if converter.problems:
            raise DialPlanInvalid(converter.problems, [file])
        return data, positions
    finally:
        loader.dispose()
