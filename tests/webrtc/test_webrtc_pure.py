"""The browser phone's pure parts: the bot's frame queue, the line's deadlines, the access
rule."""

from __future__ import annotations

import pytest

from gateway.carriers.webrtc.access import PhoneGate
from gateway.carriers.webrtc.line import LineState, PhoneLine
from gateway.carriers.webrtc.playback import BotQueue

A, B, C = b"a" * 160, b"b" * 160, b"c" * 160


def test_track_take_echoes_marks_when_the_frame_before_them_is_taken() -> None:
    queue = BotQueue()
    queue.push_mark("0")  # nothing before it: reached at once
    queue.push_frame(A)
    queue.push_frame(B)
    queue.push_mark("1")
    queue.push_frame(C)
    queue.push_mark("2")
    assert queue.take() == (A, ["0"])
    assert queue.take() == (B, ["1"])
    assert queue.take() == (C, ["2"])
    assert queue.take() == (None, [])
    assert queue.frames_taken == 3 and queue.frames == 0


def test_track_clear_drops_frames_and_marks_at_once() -> None:
    queue = BotQueue()
    for frame in (A, B, C):
        queue.push_frame(frame)
        queue.push_mark("m")
    assert queue.take() == (A, ["m"])
    assert queue.clear() == 2
    assert queue.take() == (None, [])  # no stale frame or mark after the clear
    assert queue.cleared_frames == 2
    queue.push_frame(A)
    assert queue.take() == (A, [])


def test_line_connect_timeout_then_silence_timeout() -> None:
    line = PhoneLine(100.0, connect_timeout=15.0, silence_timeout=5.0)
    assert line.next_deadline() == 115.0
    assert line.expired(114.9) is None
    assert "no audio within 15 s" in (line.expired(115.0) or "")
    line.audio(110.0)
    assert line.state is LineState.CONNECTED and line.next_deadline() == 115.0
    line.audio(112.0)
    assert line.expired(116.9) is None
    assert "no audio for 5 s" in (line.expired(117.0) or "")
    line.end()
    assert line.next_deadline() is None and line.expired(1e9) is None


@pytest.mark.parametrize(
    ("client", "headers", "allowed"),
    [
        ("127.0.0.1", {}, True),
        ("::1", {}, True),
        ("192.0.2.7", {}, False),
        ("127.0.0.1", {"x-forwarded-for": "203.0.113.9"}, False),  # a local proxy's request
        ("127.0.0.1", {"forwarded": "for=203.0.113.9"}, False),
        (None, {}, False),
        ("localhost-ish", {}, False),
    ],
)
def test_gate_without_token_serves_loopback_only(client, headers, allowed) -> None:
    assert PhoneGate("").allows(client, headers, None, None) is allowed


@pytest.mark.parametrize(
    ("headers", "query", "cookie", "allowed"),
    [
        ({"authorization": "Bearer s3cret"}, None, None, True),
        ({}, "s3cret", None, True),
        ({}, None, "s3cret", True),
        ({}, None, None, False),
        ({}, "wrong", None, False),
        ({"authorization": "Bearer wrong"}, "s3cret", None, False),  # the header is what counts
        ({}, "s3cret" + "x" * 1000, None, False),
    ],
)
def test_gate_with_token_needs_it_from_anywhere(headers, query, cookie, allowed) -> None:
    gate = PhoneGate("s3cret")
    assert gate.needs_token
    assert gate.allows("192.0.2.7", headers, query, cookie) is allowed
    # Loopback is no excuse once a token is set.
    assert gate.allows("127.0.0.1", {}, None, None) is False
