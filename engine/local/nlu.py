"""Reading what a caller said: yes/no, numbers, digit strings, dates, times, names, intents.

Pure functions over recognised text, for the scripted flows and the turn-taking controller.
Recognised telephone speech is lower-case-insensitive, punctuated by the recogniser (often
wrongly) and full of homophones ("for" for "four", "to" for "two"), so every parser here first
normalises the text to plain words and accepts the common confusions only where the question
makes them unambiguous (a lone "for" answering "how many?" is four).

Time is passed in: date parsing is relative to the ``today`` it is given.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta

from engine.vocal import is_vocal_sound, words

__all__ = [
    "Completeness",
    "Expectation",
    "completeness",
    "is_backchannel",
    "is_vocal_sound",
    "is_repeat_request",
    "match_intent",
    "parse_date",
    "parse_digits",
    "parse_name",
    "parse_number",
    "parse_time",
    "parse_yes_no",
    "words",
]

_ONES = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
#: Words a recogniser writes for a lone spoken digit; only trusted when a number is expected.
_HOMOPHONES = {"for": 4, "fore": 4, "to": 2, "too": 2, "won": 1, "ate": 8, "tree": 3, "free": 3}
_MONTH_NAMES = (
    "january february march april may june july august september october november december"
)
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES.split())}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_WEEKDAYS = {
    d: i for i, d in enumerate("monday tuesday wednesday thursday friday saturday sunday".split())
}

_YES = {
    "yes", "yeah", "yep", "yup", "sure", "correct", "right", "ok", "okay", "absolutely",
    "definitely", "indeed", "affirmative", "exactly", "please", "perfect", "fine", "great",
    "true", "alright", "ya", "yea", "uh-huh", "mm-hmm",
}  # fmt: skip
_YES_PHRASES = (
    "that's right",
    "that is right",
    "sounds good",
    "of course",
    "go ahead",
    "that's correct",
)
_NO = {"no", "nope", "nah", "wrong", "incorrect", "negative", "not"}
_NO_PHRASES = ("no thanks", "not really", "that's wrong", "that is wrong", "not quite", "don't")

#: Words after which a sentence cannot have ended: a pause after them is mid-sentence.
#: Words after which a sentence cannot end, whatever punctuation the recogniser wrote:
#: articles, prepositions that need their object, conjunctions, possessives, subject pronouns
#: and fillers ("I'd like a table for." is Whisper's way of writing a pause).
_DANGLING = frozenset(
    """a an the and or but because if which who whose whom to of for at by with from into onto
    as than my your his her our their its every each i we he she they it's i'm i'd i'll we're
    you're they're there's what's um uh er erm hmm let gonna wanna very""".split()
)
#: Words that end many spoken sentences ("than he was.", "Yes, I do.", "Hold on.", "No, I'm
#: not.") but also trail off mid-sentence: unfinished only when nothing closes the sentence.
_TRAILING = frozenset(
    """is are was were be been being am can could would should will shall do does did have has
    had not no so then that this these those in on about like just really also maybe some any
    me you what where when how why""".split()
)
_BACKCHANNELS = frozenset(
    """uh-huh uh huh mm-hmm mhm mm hmm yeah yes yep right okay ok sure i see alright got it
    yup aha ah oh wow really""".split()
)
_REPEAT = (
    "repeat", "say that again", "say it again", "come again", "pardon", "what was that",
    "sorry what", "didn't catch", "didn't hear", "one more time", "once more",
)  # fmt: skip
_HOLD = (
    "hold on a second", "hold on a sec", "hold on a moment", "hold on a minute",
    "hang on a second", "hang on a sec", "hang on a moment", "hang on a minute",
    "wait a second", "wait a sec", "wait a moment", "wait a minute",
    "just a second", "just a sec", "just a moment", "just a minute",
    "give me a second", "give me a sec", "give me a moment", "give me a minute",
    "one second", "one sec", "one moment", "hold on", "hang on", "bear with me",
)  # fmt: skip
_HOLD_WORDS = sorted((phrase.split() for phrase in _HOLD), key=len, reverse=True)  # longest first
#: Whisper's habitual output for silence, breath or noise: not a caller's words ("And..." is
#: what it makes of a bark or a knock with no bot speech to read it against).
_HALLUCINATIONS = frozenset(
    {
        "you",
        "thank you",
        "thanks for watching",
        "bye",
        "the",
        "i",
        "so",
        "and",
        "oh",
        "uh",
        "um",
        "hmm",
    }
)


def _contains(ws: list[str], phrase: str) -> bool:
    target = phrase.split()
    n = len(target)
    return any(ws[i : i + n] == target for i in range(len(ws) - n + 1))


def parse_yes_no(text: str) -> bool | None:
    """True for an affirmative answer, False for a negative one, None when it is neither.

    Negation wins over a stray affirmative word ("no, that's not right" is False), but only
    when it is the answer's own word, not part of a longer phrase like "no problem".
    """
    ws = words(text)
    if not ws:
        return None
    if ws[:2] == ["no", "problem"]:
        return True
    if any(_contains(ws, p) for p in _NO_PHRASES) or ws[0] in _NO:
        return False
    if any(_contains(ws, p) for p in _YES_PHRASES) or ws[0] in _YES:
        return True
    if any(w in _NO for w in ws if w != "not") or "not" in ws:
        return False
    if any(w in _YES for w in ws):
        return True
    return None


def _number_tokens(ws: Iterable[str]) -> list[str]:
    out: list[str] = []
    for w in ws:
        out.extend(part for part in w.split("-") if part)
    return out


def _words_to_ints(ws: list[str]) -> list[int]:
    """Every number spoken or written in ``ws``, in order ("twenty five" -> 25, "12" -> 12)."""
    numbers: list[int] = []
    current: int | None = None
    for w in _number_tokens(ws):
        if w.isdigit():
            if current is not None:
                numbers.append(current)
            numbers.append(int(w))
            current = None
            continue
        m = re.fullmatch(r"(\d+)(st|nd|rd|th)", w)
        if m:
            if current is not None:
                numbers.append(current)
            numbers.append(int(m.group(1)))
            current = None
        elif w in _ONES or w in _ORDINALS:
            value = _ONES.get(w, _ORDINALS.get(w, 0))
            if current is not None and current % 10 == 0 and current % 100 >= 20 and value < 10:
                current += value  # "twenty five"
            elif current is not None and current >= 100 and current % 100 == 0 and value < 20:
                current += value  # "one hundred and five"
            else:
                if current is not None:
                    numbers.append(current)
                current = value
        elif w in _TENS:
            if current is not None and current >= 100 and current % 100 == 0:
                current += _TENS[w]  # "one hundred twenty"
            else:
                if current is not None:
                    numbers.append(current)
                current = _TENS[w]
        elif w == "hundred" and current is not None:
            current *= 100
        elif w == "thousand" and current is not None:
            current *= 1000
        elif w == "and" and current is not None and current >= 100:
            continue
        else:
            if current is not None:
                numbers.append(current)
            current = None
    if current is not None:
        numbers.append(current)
    return numbers


def parse_number(text: str, *, expected: bool = True) -> int | None:
    """The (first) number in ``text``: digits or words. With ``expected`` (the question asked
    for a number), a short answer that is only a homophone ("for", "to") counts too."""
    ws = words(text)
    found = _words_to_ints(ws)
    if found:
        return found[0]
    if expected and 0 < len(ws) <= 2:
        for w in ws:
            if w in _HOMOPHONES:
                return _HOMOPHONES[w]
    if expected and ws and ws[0] in ("a", "an") and len(ws) <= 3 and "couple" in ws:
        return 2
    return None


def parse_digits(text: str) -> str | None:
    """A digit string spoken digit by digit or written ("four two seven", "4 2 7", "427")."""
    out: list[str] = []
    repeat = 1
    for w in _number_tokens(words(text)):
        digit: str | None = None
        if w.isdigit():
            digit = w
        elif w in _ONES and _ONES[w] < 10:
            digit = str(_ONES[w])
        elif w in _HOMOPHONES and out:
            digit = str(_HOMOPHONES[w])
        elif w in ("double", "triple"):
            repeat = 2 if w == "double" else 3
            continue
        if digit is not None:
            out.append(digit * repeat)
        repeat = 1
    return "".join(out) or None


def parse_date(text: str, today: date) -> date | None:
    """A day the caller named, relative to ``today``: "tomorrow", "Friday", "next Monday",
    "the 12th", "March 3rd", "3rd of March", "12/3" (month/day). Past days roll forward."""
    ws = words(text)
    if not ws:
        return None
    if "today" in ws or "tonight" in ws:
        return today
    if _contains(ws, "day after tomorrow"):
        return today + timedelta(days=2)
    if "tomorrow" in ws:
        return today + timedelta(days=1)
    for i, w in enumerate(ws):
        if w in _WEEKDAYS:
            ahead = (_WEEKDAYS[w] - today.weekday()) % 7
            if ahead == 0 or (i > 0 and ws[i - 1] == "next" and ahead < 7):
                ahead = ahead or 7
            return today + timedelta(days=ahead)
    month = None
    for i, w in enumerate(ws):
        # "may" is a month only next to a number ("May 3rd"), not in "may I book".
        near_number = any(_words_to_ints(ws[max(0, i - 2) : i + 3]))
        if w in _MONTHS and (w != "may" or near_number):
            month = _MONTHS[w]
            break
    m = re.search(r"\b(\d{1,2})/(\d{1,2})\b", text)
    if m:
        month, day = int(m.group(1)), int(m.group(2))
        return _roll(today, month, day)
    days = [n for n in _words_to_ints(ws) if 1 <= n <= 31]
    if not days:
        return None
    day = days[0]
    if month is None:
        month = today.month
        candidate = _valid(today.year, month, day)
        if candidate is None or candidate < today:
            month = month % 12 + 1
            year = today.year + (1 if month == 1 else 0)
            return _valid(year, month, day)
        return candidate
    return _roll(today, month, day)


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _roll(today: date, month: int, day: int) -> date | None:
    candidate = _valid(today.year, month, day)
    if candidate is not None and candidate < today:
        candidate = _valid(today.year + 1, month, day)
    return candidate


def parse_time(text: str) -> time | None:
    """A time of day: "7 pm", "seven thirty", "half past seven", "7:45", "noon"."""
    ws = words(text.replace(":", " "))
    if "noon" in ws or "midday" in ws:
        return time(12, 0)
    if "midnight" in ws:
        return time(0, 0)
    nums = _words_to_ints(ws)
    if not nums:
        return None
    hour, minute = nums[0], 0
    if _contains(ws, "half past") and nums:
        minute = 30
    elif _contains(ws, "quarter past"):
        minute = 15
    elif _contains(ws, "quarter to"):
        hour, minute = (hour - 1) % 24, 45
    elif len(nums) > 1 and nums[1] < 60:
        minute = nums[1]
    elif hour >= 100 and hour % 100 < 60:  # "730" read as seven thirty
        hour, minute = hour // 100, hour % 100
    if hour > 23:
        return None
    pm = any(w in ("pm", "p", "evening", "night", "afternoon", "tonight") for w in ws)
    am = any(w in ("am", "morning") for w in ws)
    if pm and hour < 12:
        hour += 12
    elif am and hour == 12:
        hour = 0
    return time(hour, minute)


_NAME_LEADS = (
    "my name is", "my name's", "the name is", "the name's", "name is", "it's", "it is",
    "this is", "i am", "i'm", "call me", "under", "put it under", "it's under",
)  # fmt: skip


def parse_name(text: str) -> str | None:
    """A person's name from an answer like "my name is John Smith" -> "John Smith"."""
    ws = words(text)
    for lead in sorted(_NAME_LEADS, key=len, reverse=True):
        n = len(lead.split())
        if ws[:n] == lead.split():
            ws = ws[n:]
            break
    while ws and ws[-1] in ("please", "thanks", "thank", "you"):
        ws = ws[:-1]
    ws = [w for w in ws if w not in ("um", "uh", "er", "erm")]
    if not ws or len(ws) > 4 or ws[-1] in _DANGLING or ws[-1] in _TRAILING:
        return None
    return " ".join(w.capitalize() for w in ws)


def match_intent(text: str, intents: Mapping[str, Iterable[str]]) -> str | None:
    """The intent whose phrases occur in ``text`` (whole words); the longest phrase wins."""
    ws = words(text)
    best: tuple[int, str] | None = None
    for name, phrases in intents.items():
        for phrase in phrases:
            pw = words(phrase)
            if pw and _contains(ws, " ".join(pw)) and (best is None or len(pw) > best[0]):
                best = (len(pw), name)
    return best[1] if best else None


def is_repeat_request(text: str) -> bool:
    """The caller asks to hear the last thing again."""
    ws = words(text)
    joined = " ".join(ws)
    return bool(ws) and (any(p in joined for p in _REPEAT) or ws in (["what"], ["sorry"], ["huh"]))


def without_hold_request(text: str) -> str | None:
    """The words left once the caller's request to wait ("hang on", "give me a second") is
    taken out; None if they asked no such thing. "One second" must not read as the number 1,
    and "hang on, it's 4 2 7" is still an answer."""
    ws = words(text)
    kept: list[str] = []
    found, i = False, 0
    while i < len(ws):
        match = next((p for p in _HOLD_WORDS if ws[i : i + len(p)] == p), None)
        if match is None:
            kept.append(ws[i])
            i += 1
        else:
            found, i = True, i + len(match)
    return " ".join(kept) if found else None


def join_continuation(first: str, second: str) -> str:
    """``first`` then ``second``, less the words ``second`` repeats from the end of ``first``.

    A continuation is transcribed from a little before its onset (the pre-roll, and the VAD
    ends speech before a word's faint tail), so after a short pause its audio can start inside
    the last word or two of ``first``. A word the caller really said twice across the pause
    ("the... the large one") is a disfluency, and losing it changes nothing.
    """
    tail = words(first)[-3:]
    tokens = second.split()
    keys = [" ".join(words(token)) for token in tokens]
    for k in range(min(len(tail), len(tokens)), 0, -1):
        if tail[-k:] == keys[:k]:
            tokens = tokens[k:]
            break
    return " ".join([first.strip(), *tokens]).strip()


def is_backchannel(text: str) -> bool:
    """A short acknowledgement said while the other side speaks ("uh-huh", "yeah", "right"):
    listening, not taking the turn."""
    ws = words(text)
    return 0 < len(ws) <= 3 and all(w in _BACKCHANNELS for w in ws)


class Completeness(enum.Enum):
    """How finished an utterance looks from its words alone."""

    EMPTY = "empty"  # no words: noise, a breath, a recogniser hallucination
    INCOMPLETE = "incomplete"  # stops mid-sentence ("I'd like a table for")
    UNSURE = "unsure"  # could go on or could be done
    COMPLETE = "complete"  # an answer or a whole sentence


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the bot's last question asked for; it lets a short answer count as complete."""

    kind: str = "text"  # text, yes_no, number, digits, date, time, name, intent
    intents: Mapping[str, tuple[str, ...]] | None = None


def completeness(
    text: str, expect: Expectation | None = None, *, today: date | None = None
) -> Completeness:
    """Judge from the words whether the caller has finished (see :class:`Completeness`)."""
    ws = words(text)
    stripped = text.strip()
    if not ws or " ".join(ws) in _HALLUCINATIONS:
        return Completeness.EMPTY
    if stripped.endswith(("...", "…", ",", "-", "—", "–", ":")) or ws[-1] in _DANGLING:
        return Completeness.INCOMPLETE
    closed = stripped.endswith((".", "?", "!"))
    if ws[-1] in _TRAILING and not closed and len(ws) > 1:  # a lone "no" may be the answer
        return Completeness.INCOMPLETE
    kind = expect.kind if expect else "text"
    if kind == "yes_no" and parse_yes_no(text) is not None and len(ws) <= 6:
        return Completeness.COMPLETE
    if kind == "number" and parse_number(text) is not None:
        return Completeness.COMPLETE
    if kind == "digits" and (digits := parse_digits(text)):
        # Digit strings run on ("four two... seven"): a short one ends only with a longer pause.
        done = len(digits) >= 3 and stripped.endswith((".", "?", "!"))
        return Completeness.COMPLETE if done else Completeness.UNSURE
    if kind == "date" and parse_date(text, today or date.today()) is not None:
        return Completeness.COMPLETE
    if kind == "time" and parse_time(text) is not None:
        return Completeness.COMPLETE
    if kind == "name" and parse_name(text) is not None:
        return Completeness.COMPLETE
    if kind == "intent" and expect and expect.intents and match_intent(text, expect.intents):
        return Completeness.COMPLETE
    if stripped.endswith(("?", "!")):
        return Completeness.COMPLETE
    if stripped.endswith(".") and len(ws) >= 3:
        return Completeness.COMPLETE
    if is_backchannel(text) or parse_yes_no(text) is not None:
        return Completeness.COMPLETE
    return Completeness.UNSURE
