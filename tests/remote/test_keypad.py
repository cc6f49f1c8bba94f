"""Caller keypresses grouped into words for the remote models, without sockets or a clock."""

from __future__ import annotations

from engine.remote.keypad import KeypadBuffer, describe_keys


def test_keys_typed_in_one_go_are_one_group_ended_by_pound_at_once() -> None:
    pad = KeypadBuffer(gap_s=1.0)
    assert pad.press("4", 0.0) is None and pad.press("2", 0.4) is None
    assert pad.deadline == 1.4
    assert pad.due(1.3) is None  # still typing, as far as anyone can tell
    assert pad.press("#", 0.9) == "The caller pressed 4 2 pound on the phone keypad."
    assert not pad.pending and pad.deadline is None


def test_a_pause_ends_a_group_and_the_next_key_starts_another() -> None:
    pad = KeypadBuffer(gap_s=1.0)
    pad.press("1", 0.0)
    assert pad.due(1.0) == describe_keys("1")
    assert pad.due(5.0) is None  # nothing twice
    pad.press("*", 6.0)
    pad.press("9", 6.5)
    assert pad.due(7.5) == "The caller pressed star 9 on the phone keypad."


def test_anything_but_a_keypad_key_is_ignored() -> None:
    pad = KeypadBuffer()
    assert pad.press("x", 0.0) is None and pad.press("", 0.0) is None
    assert not pad.pending
