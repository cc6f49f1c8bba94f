"""Phone numbers: E.164 checks, number patterns, and who counts as an anonymous caller.

A pattern is ``+`` then digits, where ``X`` stands for any one digit and a trailing ``*`` for
any number of further digits (none included): ``+1415*``, ``+1415555XXXX``, ``+44X*``. A
pattern without ``X`` or ``*`` is an exact number.

Precedence, most specific first, so that the answer never depends on the order of the file:

1. exact numbers;
2. then patterns by the length of their literal prefix (``+14155*`` before ``+1415*``);
3. then by how many literal digits they have in all (``+1415XX00`` before ``+1415XXXX``);
4. then fixed-length patterns before open-ended ones (``+1415XXXXXXX`` before ``+1415*``).

Two overlapping patterns that tie on all of these are ambiguous; the plan checker refuses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: ITU-T E.164: "+", a country code not starting with 0, at most 15 digits in all.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")

#: How Twilio (and carriers behind it) write a withheld caller ID in ``From``. "+266696687"
#: spells ANONYMOUS on a keypad and is what some carriers hand Twilio for withheld numbers.
ANONYMOUS_CALLERS = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "withheld", "+266696687"}
)

_PATTERN = re.compile(r"\+[1-9X][0-9X]*\*?")


def is_anonymous(caller: str | None) -> bool:
    """True when ``caller`` (a raw ``From``) carries no usable number."""
    return caller is None or caller.strip().lower() in ANONYMOUS_CALLERS


def is_e164(number: str) -> bool:
    return E164.fullmatch(number) is not None


def explain_bad_number(text: str) -> str:
    """A plain reason why ``text`` is neither an E.164 number nor a pattern."""
    squeezed = re.sub(r"[\s().-]", "", text)
    if squeezed != text and (is_e164(squeezed) or _PATTERN.fullmatch(squeezed)):
        return f"{text!r} is not E.164: write it as {squeezed!r} (no spaces or punctuation)"
    if squeezed.isdigit():
        return f"{text!r} is not E.164: it needs a leading '+' and country code"
    if squeezed.startswith("+0"):
        return f"{text!r} is not E.164: country codes never start with 0"
    digits = sum(c.isdigit() or c == "X" for c in squeezed)
    if squeezed.startswith("+") and digits > 15:
        return f"{text!r} is not E.164: {digits} digits, at most 15 are allowed"
    return f"{text!r} is not an E.164 number (+14155550100) or a pattern ('+1415*', '+1415555XXXX')"


@dataclass(frozen=True, slots=True)
class NumberPattern:
    """An exact E.164 number or a pattern; see the module docstring for the syntax."""

    text: str
    body: str = field(repr=False)  # the part after "+" without the trailing "*"
    open_ended: bool = field(repr=False)
    _regex: re.Pattern[str] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> NumberPattern:
        """Parse ``text``; ValueError with a plain reason when it is neither form."""
        canonical = text.strip().replace("x", "X")
        if canonical == "+*" or canonical == "*":
            raise ValueError(f"{text!r} matches every number: use the plan's default_route")
        if not _PATTERN.fullmatch(canonical):
            raise ValueError(explain_bad_number(text))
        open_ended = canonical.endswith("*")
        body = canonical[1:].rstrip("*")
        if len(body) > 15:
            raise ValueError(explain_bad_number(text))
        if not open_ended and "X" not in body and len(body) < 2:
            raise ValueError(explain_bad_number(text))
        regex = re.compile(r"\+" + body.replace("X", "[0-9]") + (r"[0-9]*" if open_ended else ""))
        return cls(canonical, body, open_ended, regex)

    @property
    def is_exact(self) -> bool:
        return not self.open_ended and "X" not in self.body

    @property
    def precedence(self) -> tuple[bool, int, int, bool]:
        """Sort key, larger first: see the module docstring."""
        prefix = len(self.body) if "X" not in self.body else self.body.index("X")
        literal = sum(c != "X" for c in self.body)
        return (self.is_exact, prefix, literal, not self.open_ended)

    def matches(self, number: str) -> bool:
        return self._regex.fullmatch(number) is not None

    def covers(self, other: NumberPattern) -> bool:
        """True when every number ``other`` matches is matched by ``self`` too."""
        if self.open_ended:
            if len(other.body) < len(self.body):
                return False
        elif other.open_ended or len(other.body) != len(self.body):
            return False
        return all(s == "X" or s == o for s, o in zip(self.body, other.body, strict=False))

    def overlaps(self, other: NumberPattern) -> bool:
        """True when some number is matched by both."""
        if not self.open_ended and not other.open_ended and len(self.body) != len(other.body):
            return False
        if not self.open_ended and other.open_ended and len(self.body) < len(other.body):
            return False
        if self.open_ended and not other.open_ended and len(other.body) < len(self.body):
            return False
        return all(
            a == "X" or b == "X" or a == b for a, b in zip(self.body, other.body, strict=False)
        )

    def __str__(self) -> str:
        return self.text
