"""The playout ledger and pacer, with time passed in: no sockets, no event loop."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audio.g711 import ulaw_decode
from gateway.call.playout import Playout

FRAME = b"\xff" * 160


def _fill(p: Playout, frames: int, start_ms: float = 0.0) -> None:
    for i in range(frames):
        p.enqueue(FRAME, start_ms + 20 * (i + 1))


def _frames(items):
    return [i for i in items if isinstance(i, bytes)]


def _marks(items):
    return [i for i in items if isinstance(i, str)]


def test_gateway_poll_sends_only_the_lead_ahead_of_real_time():
    p = Playout(lead=0.1, mark_every=2)
    _fill(p, 50)
    first = p.poll(0.0)
    assert len(_frames(first)) == 5  # 100 ms lead = 5 frames
    assert p.next_deadline() == pytest.approx(0.0)
    assert _frames(p.poll(0.0)) == []  # nothing more until real time moves
    assert len(_frames(p.poll(0.02))) == 1
    assert len(_frames(p.poll(0.1))) == 4


def test_gateway_poll_catches_up_after_a_stall_without_a_backlog():
    p = Playout(lead=0.1)
    _fill(p, 100)
    p.poll(0.0)
    # The loop stalls 300 ms: the carrier has played all it had; we send a lead's worth again,
    # not the 15 frames a fixed-rate sender would owe.
    assert len(_frames(p.poll(0.3))) == 5


def test_gateway_marks_every_n_frames_and_after_the_last():
    p = Playout(lead=1.0, mark_every=2)
    _fill(p, 5)
    items = p.poll(0.0)
    assert _marks(items) == ["0:40", "0:80", "0:100"]
    assert items[2] == "0:40"  # each mark follows the frames it covers


def test_gateway_mark_echoes_advance_heard_position():
    p = Playout(lead=1.0, mark_every=1)
    _fill(p, 10)
    p.poll(0.0)
    assert p.mark_echoed("0:20", 0.02)
    assert p.mark_echoed("0:40", 0.04)
    # 10 ms after the 40 ms mark, the caller has heard 50 ms, capped by the next mark (60)
    assert p.heard(0.05) == pytest.approx(50)
    assert p.heard(0.5) == pytest.approx(60)


def test_gateway_heard_before_any_echo_runs_from_first_send():
    p = Playout(lead=1.0, mark_every=2)
    _fill(p, 10)
    p.poll(1.0)
    assert p.heard(1.03) == pytest.approx(30)
    assert p.heard(5.0) == pytest.approx(40)  # capped at the first mark


def test_gateway_clear_ignores_marks_echoed_after_it():
    p = Playout(lead=1.0, mark_every=1)
    _fill(p, 10)
    p.poll(0.0)
    p.mark_echoed("0:20", 0.02)
    clearing = p.clear(0.03)
    assert clearing.heard_ms == pytest.approx(30)
    assert clearing.discarded_frames == 9  # 40..200 ms were sent but never heard
    # Twilio now returns every pending mark of the cleared audio: all stale.
    for pos in range(40, 220, 20):
        assert not p.mark_echoed(f"0:{pos}", 0.031)
    assert p.stale_marks == 9
    assert p.generation == 1


def test_gateway_clear_then_new_speech_uses_new_generation():
    p = Playout(lead=1.0, mark_every=1)
    _fill(p, 3)
    p.poll(0.0)
    p.clear(0.01)
    p.enqueue(FRAME, 100.0)
    assert _marks(p.poll(0.5)) == ["1:100"]
    assert p.mark_echoed("1:100", 0.52)
    assert p.idle


def test_gateway_clear_drops_queue_so_nothing_stale_is_sent():
    p = Playout(lead=0.04)
    _fill(p, 20)
    p.poll(0.0)
    p.clear(0.01)
    assert p.poll(1.0) == []
    assert p.next_deadline() is None


def test_gateway_hold_stops_releasing_within_a_frame_and_keeps_the_exact_sample():
    p = Playout(lead=0.1, mark_every=1, hold_clears=False)
    _fill(p, 50)
    p.poll(0.0)  # 100 ms at the carrier
    assert p.hold(0.01) == 100  # the next frame to play after a release starts at 100 ms
    assert p.poll(0.05) == [] and p.poll(0.5) == []
    assert p.next_deadline() is None and p.held


def test_gateway_release_carries_on_from_the_held_sample_without_a_repeat():
    p = Playout(lead=0.04, mark_every=1, hold_clears=False)
    _fill(p, 20)
    p.poll(0.0)
    p.hold(0.0)
    releasing = p.release(0.3)
    assert releasing is not None and releasing.held_ms == 40
    assert releasing.gap_s == pytest.approx(0.26)  # the carrier ran dry at 40 ms
    items = p.poll(0.3)
    assert _marks(items)[0] == "0:60"  # same generation, next frame: no clear, no repeat
    assert p.clears == 0


def test_gateway_release_before_the_carrier_runs_dry_leaves_no_gap():
    p = Playout(lead=0.1, hold_clears=False)
    _fill(p, 20)
    p.poll(0.0)
    p.hold(0.0)
    assert p.release(0.05).gap_s == 0.0  # type: ignore[union-attr]


def test_gateway_commit_during_hold_clears_and_reports_heard_position():
    p = Playout(lead=0.1, mark_every=1, hold_clears=False)
    _fill(p, 20)
    p.poll(0.0)
    p.mark_echoed("0:20", 0.02)
    p.hold(0.02)
    clearing = p.clear(0.03)
    assert clearing.heard_ms == pytest.approx(30)
    assert not p.held and p.release(0.04) is None  # nothing to carry on after a commit
    assert p.poll(1.0) == []


def test_gateway_second_hold_keeps_the_first_sample():
    p = Playout(lead=0.04, hold_clears=False)
    _fill(p, 10)
    p.poll(0.0)
    assert p.hold(0.0) == 40
    p.poll(0.1)
    assert p.hold(0.1) == 40


def test_gateway_ducking_hold_keeps_sending_attenuated_frames():
    p = Playout(lead=0.04, mark_every=1, duck_db=-20.0, hold_clears=False)
    loud = bytes([0x80]) * 160  # mu-law near full scale
    for i in range(10):
        p.enqueue(loud, 20 * (i + 1))
    p.poll(0.0)
    p.hold(0.0)
    ducked = _frames(p.poll(0.02))
    assert len(ducked) == 1
    level = abs(int.from_bytes(ulaw_decode(ducked[0][:1]), "little", signed=True))
    full = abs(int.from_bytes(ulaw_decode(loud[:1]), "little", signed=True))
    assert level == pytest.approx(full / 10, rel=0.1)  # -20 dB
    releasing = p.release(0.2)
    assert releasing is not None and releasing.gap_s == 0.0
    assert releasing.ducked_s == pytest.approx(0.16)  # from 40 ms, when the ducked audio began
    assert _frames(p.poll(0.2))[0] == loud


def test_gateway_rejects_a_duck_that_is_not_an_attenuation():
    with pytest.raises(ValueError):
        Playout(duck_db=3.0, hold_clears=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["poll", "hold", "release"]), st.integers(0, 80))))
def test_gateway_holds_and_releases_never_skip_or_repeat_a_frame(steps):
    p = Playout(lead=0.06, mark_every=2, hold_clears=False)
    for i in range(40):
        p.enqueue(i.to_bytes(1, "little") * 160, 20 * (i + 1))
    now, sent = 0.0, []
    for op, ms in steps:
        now += ms / 1000
        if op == "hold":
            p.hold(now)
        elif op == "release":
            p.release(now)
        sent += [f[0] for f in _frames(p.poll(now))]
    p.release(now)
    sent += [f[0] for f in _frames(p.poll(now + 10))]
    assert sent == sorted(sent) == list(range(len(sent)))  # in order, none twice, none skipped
    assert p.clears == 0


def test_gateway_rejects_foreign_mark_names():
    p = Playout()
    assert not p.mark_echoed("hello", 0.0)
    assert not p.mark_echoed("0:abc", 0.0)
    assert not p.mark_echoed("0:20", 0.0)  # never sent


@pytest.mark.parametrize("name", ["0:inf", "0:1e999", "0:nan", "0:-20", "0:99999999999"])
def test_gateway_mark_echo_not_of_ours_is_stale_and_clear_still_works(name: str) -> None:
    p = Playout(lead=1.0, mark_every=1)
    _fill(p, 3)
    p.poll(0.0)
    assert not p.mark_echoed(name, 0.01)
    clearing = p.clear(0.02)  # raised OverflowError on an infinite position before
    assert 0.0 <= clearing.heard_ms <= 60.0


def test_gateway_clearing_hold_keeps_the_unheard_audio_from_the_exact_sample():
    p = Playout(lead=0.1, mark_every=1, hold_clears=True)
    for i in range(20):
        p.enqueue(bytes([i]) * 160, 20 * (i + 1))
    p.poll(0.0)
    p.mark_echoed("0:20", 0.02)
    assert p.hold(0.025) == pytest.approx(25)  # 5 ms into the second frame
    assert p.generation == 1 and p.poll(0.1) == []
    releasing = p.release(0.3)
    assert releasing is not None and releasing.held_ms == pytest.approx(25)
    assert releasing.gap_s == pytest.approx(0.275)
    items = p.poll(0.3)
    first = _frames(items)[0]
    assert first == bytes([1]) * 120  # the rest of the second frame, from its 41st sample
    assert _frames(items)[1] == bytes([2]) * 160
    assert _marks(items)[0] == "1:40"


def test_gateway_commit_after_a_clearing_hold_reports_the_sample_held_at():
    p = Playout(lead=0.1, mark_every=1, hold_clears=True)
    _fill(p, 20)
    p.poll(0.0)
    p.mark_echoed("0:20", 0.02)
    p.hold(0.03)
    assert p.clear(0.5).heard_ms == pytest.approx(30)
    assert p.poll(1.0) == []


def test_gateway_a_clearing_hold_cannot_duck():
    with pytest.raises(ValueError):
        Playout(duck_db=-12.0)  # holds clear by default


# -- two levels: a soft hold ducks, a deep one silences -----------------------------------------


def _level(frame: bytes) -> int:
    return abs(int.from_bytes(ulaw_decode(frame[:1]), "little", signed=True))


def _loud(p: Playout, frames: int) -> bytes:
    loud = bytes([0x80]) * 160  # mu-law near full scale
    for i in range(frames):
        p.enqueue(loud, 20 * (i + 1))
    return loud


def test_gateway_soft_hold_ducks_what_is_sent_and_clears_nothing():
    p = Playout(lead=0.04, mark_every=1, soft_db=-10.0)
    loud = _loud(p, 20)
    p.poll(0.0)
    assert p.hold(0.0, soft=True) == 40 and p.softly_held and not p.held
    ducked = _frames(p.poll(0.02))
    assert len(ducked) == 1 and p.clears == 0
    assert _level(ducked[0]) == pytest.approx(_level(loud) / 10**0.5, rel=0.1)  # -10 dB


def test_gateway_release_of_a_soft_hold_has_no_gap_and_reports_the_duck():
    p = Playout(lead=0.04, mark_every=1, soft_db=-10.0)
    loud = _loud(p, 20)
    p.poll(0.0)
    p.hold(0.0, soft=True)
    p.poll(0.1)
    releasing = p.release(0.2)
    assert releasing is not None and not releasing.deep
    assert releasing.gap_s == 0.0 and releasing.soft_s == pytest.approx(0.2)
    assert _frames(p.poll(0.22))[0] == loud  # whole again
    assert p.clears == 0


def test_gateway_soft_hold_going_deep_mid_hold_clears_from_the_exact_sample():
    p = Playout(lead=0.1, mark_every=1, soft_db=-10.0)
    for i in range(20):
        p.enqueue(bytes([0x80 | i]) * 160, 20 * (i + 1))
    p.poll(0.0)
    p.hold(0.0, soft=True)
    p.poll(0.02)  # one more frame, ducked
    p.mark_echoed("0:20", 0.02)
    assert p.hold(0.025) == pytest.approx(25)  # deep now: the carrier cleared, 5 ms into frame 2
    assert p.held and not p.softly_held and p.generation == 1 and p.poll(0.2) == []
    releasing = p.release(0.3)
    assert releasing is not None and releasing.deep
    assert releasing.held_ms == pytest.approx(25) and releasing.gap_s == pytest.approx(0.275)
    assert releasing.soft_s == pytest.approx(0.025)
    first = _frames(p.poll(0.3))[0]
    assert first == bytes([0x81]) * 120  # the original audio, whole, from the held sample


def test_gateway_release_from_deep_after_soft_carries_on_from_the_held_sample():
    p = Playout(lead=0.04, mark_every=1, soft_db=-10.0, hold_clears=False)
    for i in range(20):
        p.enqueue(bytes([0x80 | i]) * 160, 20 * (i + 1))
    p.poll(0.0)  # frames 0 and 1
    p.hold(0.0, soft=True)
    p.poll(0.02)  # frame 2, ducked
    assert p.hold(0.02) == 60
    assert p.poll(0.3) == []
    releasing = p.release(0.3)
    assert releasing is not None and releasing.held_ms == 60
    items = p.poll(0.3)
    assert _frames(items)[0] == bytes([0x83]) * 160 and _marks(items)[0] == "0:80"


def test_gateway_soften_lifts_a_deep_hold_back_to_a_duck():
    p = Playout(lead=0.1, mark_every=1, soft_db=-10.0)
    loud = _loud(p, 20)
    p.poll(0.0)
    p.hold(0.0, soft=True)
    p.hold(0.01)
    spell = p.soften(0.1)
    assert spell is not None and spell.deep and spell.gap_s == pytest.approx(0.09)
    assert p.softly_held and not p.held
    ducked = _frames(p.poll(0.1))
    assert ducked and all(_level(f) < _level(loud) for f in ducked)
    releasing = p.release(0.2)
    assert releasing is not None and not releasing.deep
    assert releasing.soft_s == pytest.approx(0.01 + 0.1)  # both soft spells


def test_gateway_commit_during_a_soft_hold_clears_and_reports_the_heard_position():
    p = Playout(lead=0.1, mark_every=1, soft_db=-10.0)
    _fill(p, 20)
    p.poll(0.0)
    p.mark_echoed("0:20", 0.02)
    p.hold(0.02, soft=True)
    clearing = p.clear(0.03)
    assert clearing.heard_ms == pytest.approx(30)
    assert clearing.hold is not None and not clearing.hold.deep
    assert clearing.hold.soft_s == pytest.approx(0.01)
    assert not p.softly_held and p.release(0.04) is None and p.poll(1.0) == []


def test_gateway_soft_holds_off_leave_the_bot_playing():
    p = Playout(lead=0.04, mark_every=1, soft_db=None)
    loud = _loud(p, 10)
    p.poll(0.0)
    assert p.hold(0.0, soft=True) is None and not p.softly_held
    assert _frames(p.poll(0.02)) == [loud]


def test_gateway_rejects_a_soft_duck_as_deep_as_silence():
    with pytest.raises(ValueError):
        Playout(soft_db=-20.0)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["poll", "soft", "hold", "soften", "release"]), st.integers(0, 80)
        )
    )
)
def test_gateway_two_level_holds_never_skip_or_repeat_a_frame(steps):
    p = Playout(lead=0.06, mark_every=1, hold_clears=False, soft_db=-10.0)
    _fill(p, 40)
    now, marks = 0.0, []
    for op, ms in steps:
        now += ms / 1000
        if op in ("soft", "hold"):
            p.hold(now, soft=op == "soft")
        elif op == "soften":
            p.soften(now)
        elif op == "release":
            p.release(now)
        marks += _marks(p.poll(now))
    p.release(now)
    while p.queued_frames:
        now += 0.02
        marks += _marks(p.poll(now))
    # Ducked or whole, every frame goes out once and in order (a mark after each names it).
    assert marks == [f"0:{20 * (i + 1)}" for i in range(40)]
    assert p.clears == 0 and not p.held and not p.softly_held
