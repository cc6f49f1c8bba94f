"""What is kept of Whisper's text: its decoding loops cut, the caller's words left alone."""

import pytest

from engine.local.asr import cut_repetition


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Hello? Hello?", "Hello?"),  # one short "Hello," decoded twice
        ("Sorry. Sorry.", "Sorry."),
        ("Hello? Hello? Hello? Hello? Hello?", "Hello?"),  # a longer loop of the same
        ("Sorry, actually... Sorry, actually... Sorry, actually...", "Sorry, actually..."),
        ("5 5 5 5", "5 5"),
        ("I would like I would like to book", "I would like"),  # a restart
        ("5 5", "5 5"),  # digits come in pairs
        ("five five", "five five"),
        ("It is order number 427.", "It is order number 427."),
        ("No.", "No."),
    ],
)
def test_asr_text_cuts_loops_and_keeps_words(text: str, kept: str) -> None:
    assert cut_repetition(text) == kept
