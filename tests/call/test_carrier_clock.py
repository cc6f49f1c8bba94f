"""A session paced by its carrier's media clock (SIP's RTP clock), with time passed in.

The clock pulls each frame as it transmits it: the session sends no frames or marks and keeps
no pacing timer, and what went on the wire is what the caller heard.
"""

from __future__ import annotations

from engine.base import Audio, Hangup, Hold, Interrupt, Release, SendDtmf
from gateway.call.commands import (
    MAX_DTMF_DIGITS,
    ClearAudio,
    HangUp,
    SendDigits,
    SendFrame,
    SendMark,
)
from gateway.call.ledger import CallLedger
from gateway.call.playout import Playout, ducking_table
from gateway.call.session import CallSession
from tests.test_session import RecordingEngine, speech

FRAME = 0.02


def make(hold_clears: bool = True) -> tuple[CallSession, RecordingEngine]:
    engine = RecordingEngine(8000)
    session = CallSession(
        engine,
        CallLedger("CAclock", "sip"),
        origin=0.0,
        playout=Playout(hold_clears=hold_clears),
        carrier_clock=True,
    )
    return session, engine


def pull(session: CallSession, slots: int, start: float) -> list[bytes | None]:
    return [session.pull_frame(start + k * FRAME) for k in range(slots)]


def test_gateway_carrier_clock_session_pushes_no_frames_marks_or_timer() -> None:
    session, _ = make()
    session.engine_event(Audio(speech(8000, 1.0)), 0.0)
    commands = session.commands_to_send()
    assert not [c for c in commands if isinstance(c, SendFrame | SendMark)]
    assert session.next_deadline() is None  # the carrier's clock is the only pacer
    frames = pull(session, 50, 0.0)
    assert all(f is not None and len(f) == 160 for f in frames)
    assert session.pull_frame(1.0) is None  # all of it went out: silence
    session.close("test", 1.1, 0.0)
    assert session.ledger.frames_out == 50 and session.ledger.marks_sent == 0


def test_gateway_carrier_clock_heard_is_what_went_on_the_wire() -> None:
    session, engine = make()
    session.engine_event(Audio(speech(8000, 1.0)), 0.0)
    pull(session, 7, 0.0)  # 140 ms on the wire
    session.engine_event(Interrupt(), 0.13)
    assert engine.heard == [140]
    assert [type(c) for c in session.commands_to_send()] == [ClearAudio]
    assert session.pull_frame(0.14) is None  # nothing of the cut speech follows
    assert session.ledger.discarded_frames == 43


def test_gateway_carrier_clock_hold_stops_at_once_and_release_resumes_the_next_sample() -> None:
    session, engine = make()
    session.engine_event(Audio(speech(8000, 0.5)), 0.0)
    sent = pull(session, 5, 0.0)
    session.engine_event(Hold(), 0.09)
    assert pull(session, 10, 0.1) == [None] * 10  # the hold is silence from the next slot
    session.engine_event(Release(), 0.3)
    rest = pull(session, 25, 0.3)
    assert all(f is not None for f in rest[:20]) and rest[20:] == [None] * 5
    assert len(sent) + 20 == 25  # 500 ms: no frame repeated or skipped across the hold
    assert session.ledger.hold_gaps == [0.21] and engine.heard == []


def test_gateway_carrier_clock_hangup_goes_when_the_last_frame_has_gone_out() -> None:
    session, _ = make()
    session.engine_event(Audio(speech(8000, 0.1)), 0.0)
    session.engine_event(Hangup(), 0.0)
    assert not [c for c in session.commands_to_send() if isinstance(c, HangUp)]
    pull(session, 5, 0.0)
    assert not [c for c in session.commands_to_send() if isinstance(c, HangUp)]
    assert session.pull_frame(0.1) is None
    assert [type(c) for c in session.commands_to_send()] == [HangUp]


def test_gateway_dtmf_waits_for_the_speech_before_it() -> None:
    session, _ = make()
    session.engine_event(Audio(speech(8000, 0.1)), 0.0)
    session.engine_event(SendDtmf("12w#"), 0.0)
    pull(session, 5, 0.0)
    assert session.commands_to_send() == []
    session.pull_frame(0.1)
    assert session.commands_to_send() == [SendDigits("12W#")]


def test_gateway_dtmf_from_the_engine_is_bounded() -> None:
    session, _ = make()
    session.engine_event(SendDtmf("1" * (MAX_DTMF_DIGITS + 1)), 0.0)
    session.engine_event(SendDtmf(""), 0.0)
    assert session.commands_to_send() == []
    assert "more than" in session.ledger.errors[0] and "no DTMF" in session.ledger.errors[1]


def test_gateway_playout_pull_counts_each_frame_heard_as_it_goes() -> None:
    playout = Playout()
    for i in range(3):
        playout.enqueue(bytes([i]) * 160, 20.0 * (i + 1))
    assert playout.pull(0.0) == b"\x00" * 160
    assert playout.heard(0.01) == 20.0 and not playout.idle
    assert playout.pull(0.02) == b"\x01" * 160 and playout.pull(0.04) == b"\x02" * 160
    assert playout.idle and playout.pull(0.06) is None
    assert playout.frames_sent == 3 and playout.marks_sent == 0


def test_gateway_playout_pull_ducks_a_soft_hold_and_stops_for_a_deep_one() -> None:
    """The RTP clock hears the two levels as the Twilio pacer does: soft ducked, deep silent."""
    playout = Playout(soft_db=-10.0)
    frame = bytes([0x10]) * 160  # a loud mu-law sample: ducking changes it
    for i in range(4):
        playout.enqueue(frame, 20.0 * (i + 1))
    assert playout.pull(0.0) == frame
    playout.hold(0.02, soft=True)
    ducked = playout.pull(0.02)
    assert ducked == frame.translate(ducking_table(-10.0)) != frame
    playout.hold(0.04)  # deep: a silent hold sends nothing
    assert playout.pull(0.04) is None
