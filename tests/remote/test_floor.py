"""The hosted engines' judgement of a held sound from its transcript (engine.remote.floor)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.remote.floor import takes_floor

NOT_A_TURN = [
    "", "   ", "[cough]", "(laughs)", "*sigh*", "[Coughing] [laughter]", "Thank you.", "you",
    "Um.", "Hmm.", "Mm-hmm.", "Uh-huh.", "Ha ha ha!", "Heh.", "Ugh.", "Achoo!", "Ahem.",
    "Yeah.", "Right.", "Okay.", "Yeah, right, okay.", "Oh, wow.", "I see.",
]  # fmt: skip
TURN = [
    "Wait.", "No.", "No, I said Tuesday.", "Stop.", "What time is it?", "Hold on a second.",
    "I want to talk to someone.", "Yeah, but that's wrong.", "Okay, wait, go back.",
    "[cough] No, Tuesday.",
]  # fmt: skip


@pytest.mark.parametrize("text", NOT_A_TURN)
def test_floor_sounds_backchannels_and_noise_words_do_not_take_it(text: str) -> None:
    assert not takes_floor(text)


@pytest.mark.parametrize("text", TURN)
def test_floor_words_that_say_something_take_it(text: str) -> None:
    assert takes_floor(text)


@given(st.text(max_size=200))
def test_floor_any_text_gets_an_answer(text: str) -> None:
    assert takes_floor(text) in (True, False)


@given(st.lists(st.sampled_from(["[cough]", "(laughs)", "*sigh*", "[noise]"]), max_size=5))
def test_floor_annotations_alone_never_take_it(notes: list[str]) -> None:
    assert not takes_floor(" ".join(notes))
