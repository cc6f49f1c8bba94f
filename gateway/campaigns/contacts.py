"""Contact lists (CSV) and do-not-call lists, read row by row with every bad row reported.

A contact list is a CSV file with a header row. One column holds the phone number (``phone``
by default); an optional ``timezone`` column gives the callee's IANA zone; every other column
is a per-contact variable that reaches the bot (as a ``<Parameter>`` of the stream, so the
engine finds it in ``CallContext.parameters``) and fills ``{name}`` in the machine message.

A bad row is skipped and reported with its line number and reason, never silently dropped:
an unreadable number, an unknown time zone, a duplicate of an earlier row, the wrong number of
fields, or a value too long for a Twilio ``<Parameter>`` (name and value under 500 characters).
A quote left open makes the CSV reader take the lines after it into one field; such a row is
reported with the lines it took and the line that opened it, so the contacts it swallowed are
seen (and never reach a bot as one variable's text). Every line read is accounted for: the
header, blank lines, kept contacts and skipped rows add up to the file's lines.

The file is UTF-8, or UTF-16 with a byte-order mark (a spreadsheet's "Unicode text"); any other
encoding is refused with the line of its first non-UTF-8 byte and how to save the file again.
A bad header (no phone column, a column name the gateway reserves) refuses the whole file.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
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
    "decode_contacts",
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
#: The largest contact file read (about a million rows of a few columns).
MAX_CONTACT_BYTES = 64 * 1024 * 1024
#: Byte-order marks and the encodings they announce.
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))  # fmt: skip
#: IANA zone names are far shorter ("America/Argentina/ComodRivadavia" is 32).
MAX_ZONE_CHARS = 64
#: How much of a line a report quotes.
_OPENING_CHARS = 80
#: Where a line inside a multi-line row is cut into fields when looking for a swallowed row.
_FIELDS = re.compile(r"[,\"]")


@dataclass(frozen=True, slots=True)
class Contact:
    """One callee: the list's line number, E.164 phone, IANA zone and variables."""

    line: int
    phone: str
    zone: str
    variables: dict[str, str] = field(default_factory=dict)
    #: Physical lines the row took (a quoted value may hold a line break).
    lines: int = 1


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that was skipped, and why: ``line`` (to ``end`` when it ran over several lines),
    the ``reason``, the row's text, and a short ``kind`` for the summary's counts."""

    line: int
    reason: str
    text: str = ""
    end: int = 0
    kind: str = "row"

    @property
    def lines(self) -> int:
        """How many physical lines the row took."""
        return max(self.end, self.line) - self.line + 1

    def __str__(self) -> str:
        where = f"lines {self.line}-{self.end}" if self.end > self.line else f"line {self.line}"
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class ContactList:
    """The contacts kept and the rows skipped, with the lines read: every line of the file is
    the header, a blank line, a kept contact's or a skipped row's (:meth:`accounted`)."""

    contacts: list[Contact] = field(default_factory=list)
    skipped: list[RowProblem] = field(default_factory=list)
    lines: int = 0
    blank: int = 0

    def by_reason(self) -> dict[str, int]:
        """Skipped rows counted by kind."""
        counts: dict[str, int] = {}
        for problem in self.skipped:
            counts[problem.kind] = counts.get(problem.kind, 0) + 1
        return counts

    def accounted(self) -> int:
        """Lines the header, blank lines, contacts and skipped rows account for: ``lines``
        when nothing was lost on the way."""
        header = 1 if self.lines else 0
        contact_lines = sum(c.lines for c in self.contacts)
        return header + self.blank + contact_lines + sum(p.lines for p in self.skipped)

    def summary(self) -> str:
        """``"7 lines read: 3 contacts kept, 2 rows skipped (1 phone, 1 quote), 1 blank"``."""
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.by_reason().items()))
        skipped = f"{len(self.skipped)} rows skipped" + (f" ({kinds})" if kinds else "")
        return (f"{self.lines} lines read: {len(self.contacts)} contacts kept, {skipped}, "
                f"{self.blank} blank")  # fmt: skip


def decode_contacts(data: bytes, name: str | Path) -> str:
    """The text of a contact file: UTF-8 (a byte-order mark is dropped) or, told by its
    byte-order mark, UTF-16 as spreadsheets export "Unicode text". Anything else is refused
    with the line and column of the first byte that is not UTF-8 and how to fix it."""
    path = Path(name)
    if len(data) > MAX_CONTACT_BYTES:
        raise CampaignInvalid([Problem(path, 1, 1, f"the contact list is {len(data)} bytes; "
                                       f"at most {MAX_CONTACT_BYTES} are read")])  # fmt: skip
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise _not_text(path, data, len(bom) + exc.start, codec) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_text(path, data, exc.start, "utf-8") from None


def _not_text(path: Path, data: bytes, offset: int, codec: str) -> CampaignInvalid:
    if codec.startswith("utf-16"):
        line, column = data[:offset].decode(codec, "replace").count("\n") + 1, 1
        hint = "the file says UTF-16 but is not; save it again as CSV UTF-8"
    else:
        before = data[:offset]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        hint = (
            f"byte 0x{data[offset]:02x} is not UTF-8; the file looks like UTF-16 without a "
            "byte-order mark"
            if b"\x00" in data[:4096]
            else f"byte 0x{data[offset]:02x} is not UTF-8 (Latin-1 or Windows-1252?)"
        )
        hint += ': save it as "CSV UTF-8" (a spreadsheet\'s Save As) or convert it with iconv'
    return CampaignInvalid([Problem(path, line, column, f"cannot read contacts: {hint}")])


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

    Raises :class:`CampaignInvalid` only for problems of the whole file (unreadable, not
    UTF-8 nor UTF-16 with a byte-order mark, no header, no phone column, a reserved or
    malformed column name); bad rows are in ``skipped``.
    """
    name = Path(source)
    if text is None:
        try:
            with name.open("rb") as handle:
                data = handle.read(MAX_CONTACT_BYTES + 1)
        except OSError as exc:
            raise CampaignInvalid([Problem(name, 1, 1, f"cannot read contacts: {exc.strerror}")]
                                  ) from None  # fmt: skip
        text = decode_contacts(data, name)
    text = text.removeprefix("\ufeff")
    physical = io.StringIO(text, newline="").readlines()
    reader = csv.reader(iter(physical))
    try:
        header = next(reader)
    except StopIteration:
        raise CampaignInvalid([Problem(name, 1, 1, "the contact list is empty")]) from None
    except csv.Error as exc:
        raise CampaignInvalid([Problem(name, 1, 1, f"not CSV: {exc}")]) from None
    if reader.line_num > 1:
        raise CampaignInvalid([Problem(name, 1, 1, "the header runs over several lines: a quote "
                                       "is not closed")])  # fmt: skip
    columns = [h.strip() for h in header]
    _check_header(name, columns, phone_column)
    result = ContactList(lines=len(physical))
    seen: dict[str, int] = {}
    line = reader.line_num
    while True:
        start = line + 1  # the row's first physical line (a quoted field may span several)
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = reader.line_num
            result.skipped.append(RowProblem(start, f"not CSV: {exc}", _opening(physical, start),
                                             line, "csv"))  # fmt: skip
            continue
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            result.blank += line - start + 1
            continue  # a blank line is not a row
        raw = ",".join(row)
        if line > start and _swallowed(physical[start - 1 : line], default_country_code):
            opening = _opening(physical, start)
            result.skipped.append(RowProblem(
                start,
                f"a quote opened on line {start} is not closed where it should be: lines "
                f"{start}-{line} were read as one row; check the quotes of {opening!r}",
                opening, line, "quote",
            ))  # fmt: skip
            continue
        if len(row) != len(columns):
            result.skipped.append(RowProblem(
                start, f"{len(row)} fields, the header has {len(columns)}", raw, line, "fields"
            ))  # fmt: skip
            continue
        values = {col: cell.strip() for col, cell in zip(columns, row, strict=True)}
        try:
            contact = _contact(
                start, values, phone_column, timezone_column, default_zone, default_country_code
            )
        except _RowError as exc:
            result.skipped.append(RowProblem(start, str(exc), raw, line, exc.kind))
            continue
        first = seen.get(contact.phone)
        if first is not None:
            result.skipped.append(RowProblem(
                start, f"{contact.phone} is a duplicate of line {first}", raw, line, "duplicate"
            ))  # fmt: skip
            continue
        seen[contact.phone] = start
        result.contacts.append(replace(contact, lines=line - start + 1))
    return result


def _opening(physical: list[str], line: int) -> str:
    """The text of a physical line, cut short for a report."""
    text = physical[line - 1].rstrip("\r\n") if 0 < line <= len(physical) else ""
    return text if len(text) <= _OPENING_CHARS else text[:_OPENING_CHARS] + "..."


def _swallowed(lines: list[str], country: str) -> bool:
    """Whether a row read over several lines took in rows of its own: its quotes never close
    (the file ended inside a field), or a line inside it carries a phone number in any of its
    fields, as a row of its own would. A quoted line break inside a value ("Ed" newline
    "ward") is neither, and is kept."""
    if sum(text.count('"') for text in lines) % 2:
        return True
    for text in lines[1:]:
        for piece in _FIELDS.split(text):  # split naively: the line's own quotes may be open
            try:
                normalize(piece.strip(), country)
            except ValueError:
                continue
            return True
    return False


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


class _RowError(ValueError):
    """A row that cannot be a contact; ``kind`` names the reason for the summary."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _contact(
    line: int,
    values: dict[str, str],
    phone_column: str,
    timezone_column: str,
    default_zone: str,
    default_country_code: str,
) -> Contact:
    try:
        phone = normalize(values.pop(phone_column), default_country_code)
    except ValueError as exc:
        raise _RowError(str(exc), "phone") from None
    zone = values.pop(timezone_column, "")
    if len(zone) > MAX_ZONE_CHARS:
        raise _RowError(f"a time zone name of {len(zone)} characters is not one", "zone")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
            raise _RowError(f"unknown time zone {zone!r}", "zone") from None
    else:
        zone = zone_for(phone) or default_zone
    for key, value in values.items():
        if len(key) + len(value) >= MAX_PARAMETER_CHARS:
            raise _RowError(
                f"{key} is {len(value)} characters: a Twilio <Parameter> name and value must "
                f"stay under {MAX_PARAMETER_CHARS}",
                "too-long",
            )
    return Contact(line, phone, zone, values)


def read_numbers(path: Path, default_country_code: str = "1") -> tuple[set[str], list[RowProblem]]:
    """A do-not-call file: one number per line (first CSV field), ``#`` comments allowed."""
    numbers: set[str] = set()
    problems: list[RowProblem] = []
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONTACT_BYTES + 1)
    except OSError as exc:
        raise CampaignInvalid([Problem(path, 1, 1, f"cannot read numbers: {exc.strerror}")]
                              ) from None  # fmt: skip
    content = decode_contacts(data, path).removeprefix("\ufeff")
    for i, text in enumerate(content.splitlines(), start=1):
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
