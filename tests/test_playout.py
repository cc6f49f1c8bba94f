"""The playout ledger and pacer, with time passed in: no sockets, no event loop."""

import pytest

from gateway.playout import Playout

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


def test_gateway_resume_requeues_unheard_audio_within_window():
    p = Playout(lead=0.04, mark_every=1, resume_window=2.0)
    _fill(p, 10)
    p.poll(0.0)
    p.mark_echoed("0:20", 0.02)
    p.clear(0.02)
    assert p.resume(1.0) == 9
    items = p.poll(1.0)
    assert len(_frames(items)) == 2
    assert _marks(items)[0] == "1:40"  # replayed frames keep their timeline positions


def test_gateway_resume_after_window_plays_nothing():
    p = Playout(lead=0.04, resume_window=0.5)
    _fill(p, 10)
    p.poll(0.0)
    p.clear(0.0)
    assert p.resume(1.0) == 0
    assert p.poll(1.0) == []


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
