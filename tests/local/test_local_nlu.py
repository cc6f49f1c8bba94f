"""Reading callers' answers: yes/no, numbers, digits, dates, times, names, completeness."""

from __future__ import annotations

from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.local import nlu
from engine.local.nlu import Completeness, Expectation

TODAY = date(2026, 3, 10)  # a Tuesday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes, that's right.", True),
        ("Yeah.", True),
        ("That is correct", True),
        ("No problem", True),
        ("No, not quite.", False),
        ("Nope", False),
        ("That's wrong", False),
        ("Maybe later", None),
        ("", None),
    ],
)
def test_nlu_reads_yes_no(text: str, expected: bool | None) -> None:
    assert nlu.parse_yes_no(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Four people.", 4),
        ("twenty five", 25),
        ("A table for 6, please", 6),
        ("For.", 4),  # a lone homophone answering "how many?"
        ("a couple", 2),
        ("one hundred and twenty", 120),
        ("I don't know", None),
    ],
)
def test_nlu_reads_numbers(text: str, expected: int | None) -> None:
    assert nlu.parse_number(text) == expected


def test_nlu_reads_digit_strings() -> None:
    assert nlu.parse_digits("It is order number four two seven.") == "427"
    assert nlu.parse_digits("4 2 7") == "427"
    assert nlu.parse_digits("double four two") == "442"
    assert nlu.parse_digits("no idea") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow", date(2026, 3, 11)),
        ("the day after tomorrow", date(2026, 3, 12)),
        ("Friday", date(2026, 3, 13)),
        ("next Tuesday", date(2026, 3, 17)),
        ("on the 12th", date(2026, 3, 12)),
        ("the 3rd", date(2026, 4, 3)),  # passed this month: next month
        ("March 3rd", date(2027, 3, 3)),  # passed this year: next year
        ("May 3", date(2026, 5, 3)),
        ("may I book a table", None),
    ],
)
def test_nlu_reads_dates_relative_to_today(text: str, expected: date | None) -> None:
    assert nlu.parse_date(text, TODAY) == expected


def test_nlu_reads_times_and_names() -> None:
    assert nlu.parse_time("7 pm") == time(19, 0)
    assert nlu.parse_time("half past seven in the evening") == time(19, 30)
    assert nlu.parse_time("noon") == time(12, 0)
    assert nlu.parse_name("My name is John Smith.") == "John Smith"
    assert nlu.parse_name("It's Anna, thanks") == "Anna"
    assert nlu.parse_name("the") is None


def test_nlu_matches_intents_by_longest_phrase() -> None:
    intents = {"order": ["order"], "cancel": ["cancel my order"]}
    assert nlu.match_intent("I want to cancel my order", intents) == "cancel"
    assert nlu.match_intent("where is my order?", intents) == "order"
    assert nlu.match_intent("hello", intents) is None


@pytest.mark.parametrize(
    ("text", "expect", "expected"),
    [
        ("", None, Completeness.EMPTY),
        ("Thank you.", None, Completeness.EMPTY),  # Whisper's habit on silence
        ("And...", None, Completeness.EMPTY),  # ...and on a bark
        ("And then?", None, Completeness.COMPLETE),
        ("I'd like a table for", None, Completeness.INCOMPLETE),
        ("Another engineer rushed toward the door...", None, Completeness.INCOMPLETE),
        ("Where is my order?", None, Completeness.COMPLETE),
        ("I would like to book a table.", None, Completeness.COMPLETE),
        ("yes", Expectation("yes_no"), Completeness.COMPLETE),
        ("four", Expectation("number"), Completeness.COMPLETE),
        ("four two", Expectation("digits"), Completeness.UNSURE),  # digit strings run on
        ("Friday", Expectation("date"), Completeness.COMPLETE),
        ("Jonathan", None, Completeness.UNSURE),
        # Words that end spoken sentences as often as they trail off: the full stop decides.
        ("No.", None, Completeness.COMPLETE),
        ("No", Expectation("yes_no"), Completeness.COMPLETE),
        ("No, I'm not.", None, Completeness.COMPLETE),
        ("Yes, I do.", Expectation("yes_no"), Completeness.COMPLETE),
        ("than he was.", None, Completeness.COMPLETE),
        ("Hold on.", None, Completeness.UNSURE),
        ("and the price is", None, Completeness.INCOMPLETE),
        ("a single hand in what", None, Completeness.INCOMPLETE),
        # ...but not these, whatever the punctuation.
        ("I would like to book a table for.", None, Completeness.INCOMPLETE),
        ("Yes, and he.", None, Completeness.INCOMPLETE),
    ],
)
def test_nlu_judges_completeness(
    text: str, expect: Expectation | None, expected: Completeness
) -> None:
    assert nlu.completeness(text, expect, today=TODAY) is expected


def test_nlu_tells_backchannels_and_repeat_requests() -> None:
    assert nlu.is_backchannel("Uh-huh.")
    assert nlu.is_backchannel("yeah right")
    assert not nlu.is_backchannel("yeah I want to book a table")
    assert nlu.is_repeat_request("Sorry, can you say that again?")
    assert nlu.is_repeat_request("What?")
    assert not nlu.is_repeat_request("What time do you open?")


@pytest.mark.parametrize(
    ("first", "second", "joined"),
    [
        ("Hello?", "Hello? I would like to check on my order.",
         "Hello? I would like to check on my order."),
        ("I would like to check", "check on my order, please.",
         "I would like to check on my order, please."),
        ("Sorry, actually,", "Actually, can you hold on?", "Sorry, actually, can you hold on?"),
        ("My number is", "four two seven.", "My number is four two seven."),
    ],
)  # fmt: skip
def test_nlu_joins_a_continuation_without_the_words_heard_twice(
    first: str, second: str, joined: str
) -> None:
    assert nlu.join_continuation(first, second) == joined


def test_nlu_takes_a_request_to_wait_out_of_the_words() -> None:
    assert nlu.without_hold_request("One second.") == ""
    assert nlu.without_hold_request("Hang on, it is 4 2 7.") == "it is 4 2 7"
    assert nlu.without_hold_request("Can you hold on a second?") == "can you"
    assert nlu.without_hold_request("I need a second opinion.") is None
    assert nlu.without_hold_request("I want to book a table") is None


@pytest.mark.parametrize(
    "text",
    ["Hahaha.", "Ha ha ha ha", "Oh, oh,", "W-H-H-H-", "Ooh-hoo!", "Oof!", "Hmm.", "Mm.",
     "Ahem.", "Achoo!", "(coughs)", "[laughter]", "*sigh*", "U- U- U-", "Phew.", "Um, uh, uh,",
     "Umm...", "Uhm."],
)  # fmt: skip
def test_nlu_vocal_sounds_are_not_words(text: str) -> None:
    assert nlu.is_vocal_sound(text)


@pytest.mark.parametrize(
    "text",
    ["Wait.", "No, I said Tuesday.", "Hold on.", "Who?", "How?", "Hi!", "He did.", "Oh no.",
     "Two.", "I", "Ha ha, no.", "(coughs) Sorry, wait.", ""],
)  # fmt: skip
def test_nlu_words_are_not_vocal_sounds(text: str) -> None:
    assert not nlu.is_vocal_sound(text)


@given(
    st.lists(st.sampled_from(["ha", "oh", "hmm", "ahh", "oof", "mm"]), max_size=5),
    st.sampled_from(["wait", "no", "stop", "what", "tuesday", "please", "sorry", "who"]),
    st.lists(st.sampled_from(["ha", "oh", "hmm", "uh"]), max_size=3),
)
def test_nlu_one_real_word_among_vocal_sounds_makes_words(before, word, after) -> None:
    assert not nlu.is_vocal_sound(" ".join([*before, word, *after]))


@given(st.text(max_size=200))
def test_nlu_vocal_sound_check_takes_any_text(text: str) -> None:
    assert nlu.is_vocal_sound(text) in (True, False)
