"""Identifiers from the wire: carrier formats, file names kept inside their directory, and
log fields that cannot forge or flood lines."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ids import (
    CALL_SID,
    STREAM_SID,
    InvalidIdentifier,
    is_file_token,
    is_twilio_sid,
    path_inside,
    twilio_sid,
)
from gateway.ops.logs import TextFormatter, field

GOOD_CALL = "CA" + "0123456789abcdef" * 2


@pytest.mark.parametrize(
    "value",
    [
        "../x",
        "/etc/passwd",
        "CA" + "0" * 31 + "\x00",
        GOOD_CALL + "/../../IncomingPhoneNumbers/PN" + "0" * 32,
        GOOD_CALL + "\n",
        "MZ" + GOOD_CALL[2:],
        "ca" + GOOD_CALL[2:],
        GOOD_CALL[:-1],
        "",
        None,
        123,
    ],
)
def test_twilio_sid_refuses_what_is_not_a_call_sid(value: object) -> None:
    assert not is_twilio_sid(value, CALL_SID)
    with pytest.raises(InvalidIdentifier):
        twilio_sid(value, CALL_SID, "callSid")


def test_twilio_sid_accepts_each_type_by_its_prefix() -> None:
    assert twilio_sid(GOOD_CALL, CALL_SID) == GOOD_CALL
    assert is_twilio_sid("MZ" + "A" * 32, STREAM_SID)


@given(st.text(max_size=80))
def test_twilio_sid_is_refused_or_safe_as_a_file_name_and_url_part(value: str) -> None:
    if is_twilio_sid(value, CALL_SID):
        assert value.isalnum() and value.isascii() and len(value) == 34


@given(st.text(max_size=200))
def test_path_inside_never_leaves_its_directory(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    root = tmp_path_factory.getbasetemp() / "records"
    try:
        path = path_inside(root, name, ".json")
    except InvalidIdentifier:
        assert not is_file_token(name)
        return
    assert path.parent == root.resolve()
    assert path.name == f"{name}.json"


def test_path_inside_refuses_a_link_out_of_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "records"
    root.mkdir()
    (root / "CAlink.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(InvalidIdentifier):
        path_inside(root, "CAlink", ".json")


@given(st.text(max_size=500), st.integers(min_value=1, max_value=200))
def test_field_is_one_bounded_line(value: str, limit: int) -> None:
    shown = field(value, limit)
    assert "\n" not in shown and "\r" not in shown and "\x00" not in shown
    assert "\u2028" not in shown
    # Each kept character escapes to at most 6 ("\\u2028"), plus the count of the rest.
    assert len(shown) <= 6 * limit + 30


def test_text_formatter_keeps_one_record_on_one_line() -> None:
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "call %s", ("x\n2026 INFO forged",), None
    )
    line = TextFormatter("%(message)s").format(record)
    assert line == "call x\\x0a2026 INFO forged"
