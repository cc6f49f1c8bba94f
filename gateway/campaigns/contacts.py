"""Contact lists (CSV) and do-not-call lists, read row by row with every bad row reported.

A contact list is a CSV file with a header row. One column holds the phone number (``phone``
by default); an optional ``timezone`` column gives the callee's IANA zone; every other column
is a per-contact variable that reaches the bot (as a ``<Parameter>`` of the stream, so the
engine finds it in ``CallContext.parameters``) and fills ``{name}`` in the machine message.

A bad row is skipped and reported with its line number and reason, never silently dropped:
an unreadable number, an unknown time zone, a duplicate of an earlier row, the wrong number of
fields, or a value too long for a Twilio ``<Parameter>`` (name and value under 500 characters).
A bad header (no phone column, a column name the gateway reserves) refuses the whole file.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.campaigns.errors import CampaignInvalid
from gateway.campaigns.zones import normalize, zone_for
from gateway.dialplan import Problem

__all__ = [
    "RESERVED_COLUMNS",
    "Contact",
    "ContactList",
    "RowProblem",
    "read_contacts",
    "read_numbers",
]

#: Twilio's limit on len(name) + len(value) of one <Parameter> (REFERENCE.md 1.3).
MAX_PARAMETER_CHARS = 500
#: Stream parameter names the gateway and dial plan set themselves.
RESERVED_COLUMNS = frozenset(
    {"route", "branch", "path", "plan", "call_sid", "from", "to", "direction", "campaign",
     "attempt"}
)  # fmt: skip
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class Contact:
    """One callee: the list's line number, E.164 phone, IANA zone and variables."""

    line: int
    phone: str
    zone: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that was skipped, and why."""

    line: int
    reason: str
    text: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class ContactList:
    contacts: list[Contact] = field(default_factory=list)
    skipped: list[RowProblem] = field(default_factory=list)


def read_contacts(
    source: str | Path,
    *,
    phone_column: str = "phone",
    timezone_column: str = "timezone",
    default_zone: str = "UTC",
    default_country_code: str = "1",
    text: str | None = None,
) -> ContactList:
    """Read a contact list from the file ``source`` (or from ``text``, named ``source``).

    Raises :class:`CampaignInvalid` only for problems of the whole file (unreadable, no
    header, no phone column, a reserved or malformed column name); bad rows are in
    ``skipped``.
    """
    name = Path(source)
    if text is None:
        try:
            text = name.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CampaignInvalid([Problem(name, 1, 1, f"cannot read contacts: {exc}")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CampaignInvalid([Problem(name, 1, 1, "the contact list is empty")]) from None
    except csv.Error as exc:
        raise CampaignInvalid([Problem(name, 1, 1, f"not CSV: {exc}")]) from None
    columns = [h.strip() for h in header]
    _check_header(name, columns, phone_column)
    result = ContactList()
    seen: dict[str, int] = {}
    line = reader.line_num
    while True:
        start = line + 1  # the row's first physical line (a quoted field may span several)
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.skipped.append(RowProblem(reader.line_num, f"not CSV: {exc}"))
            line = reader.line_num
            continue
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # a blank line is not a row
        raw = ",".join(row)
        if len(row) != len(columns):
            result.skipped.append(
                RowProblem(start, f"{len(row)} fields, the header has {len(columns)}", raw)
            )
            continue
        values = {col: cell.strip() for col, cell in zip(columns, row, strict=True)}
        try:
            contact = _contact(
                start, values, phone_column, timezone_column, default_zone, default_country_code
            )
        except ValueError as exc:
            result.skipped.append(RowProblem(start, str(exc), raw))
            continue
        first = seen.get(contact.phone)
        if first is not None:
            result.skipped.append(
                RowProblem(start, f"{contact.phone} is a duplicate of line {first}", raw)
            )
            continue
        seen[contact.phone] = start
        result.contacts.append(contact)
    return result


def _check_header(name: Path, columns: list[str], phone_column: str) -> None:
    problems = []
    if phone_column not in columns:
        problems.append(f"no {phone_column!r} column (the header is {', '.join(columns)})")
    for col in columns:
        if not _COLUMN.fullmatch(col):
            problems.append(f"column name {col!r} must be a word (letters, digits, _ and -)")
        elif col in RESERVED_COLUMNS:
            problems.append(f"column name {col!r} is reserved by the gateway; rename it")
    duplicates = {c for c in columns if columns.count(c) > 1}
    problems.extend(f"column {c!r} appears twice" for c in sorted(duplicates))
    if problems:
        raise CampaignInvalid([Problem(name, 1, 1, p) for p in problems])


def _contact(
    line: int,
    values: dict[str, str],
    phone_column: str,
    timezone_column: str,
    default_zone: str,
    default_country_code: str,
) -> Contact:
    phone = normalize(values.pop(phone_column), default_country_code)
    zone = values.pop(timezone_column, "")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}") from None
    else:
        zone = zone_for(phone) or default_zone
    for key, value in values.items():
        if len(key) + len(value) >= MAX_PARAMETER_CHARS:
            raise ValueError(
                f"{key} is {len(value)} characters: a Twilio <Parameter> name and value must "
                f"stay under {MAX_PARAMETER_CHARS}"
            )
    return Contact(line, phone, zone, values)


def read_numbers(path: Path, default_country_code: str = "1") -> tuple[set[str], list[RowProblem]]:
    """A do-not-call file: one number per line (first CSV field), ``#`` comments allowed."""
    numbers: set[str] = set()
    problems: list[RowProblem] = []
    for i, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        first = text.split("#", 1)[0].split(",", 1)[0].strip()
        if not first or first.lower() == "phone":
            continue
        try:
            numbers.add(normalize(first, default_country_code))
        except ValueError as exc:
            problems.append(RowProblem(i, str(exc), text))
    return numbers, problems


def numbers_of(
    entries: Iterable[str], base: Path, default_country_code: str
) -> tuple[set[str], list[RowProblem]]:
    """Numbers from a campaign's ``do_not_call`` entries (numbers, or files next to it)."""
    numbers: set[str] = set()
    problems: list[RowProblem] = []
    for entry in entries:
        if entry.startswith("+"):
            numbers.add(entry)
        else:
            found, bad = read_numbers(base / entry, default_country_code)
            numbers |= found
            problems.extend(bad)
    return numbers, problems
