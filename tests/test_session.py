"""CallSession, the sans-I/O call core, with a scripted engine: the interruption contract.

No event loop: every input is given its time, and the commands the core hands out are read
after each one."""

import numpy as np
import pytest

from engine.base import (
    Audio,
    Commit,
    EngineSession,
    Hangup,
    Hold,
    Interrupt,
    Release,
    Result,
    SendDtmf,
    Transcript,
    Transfer,
)
from gateway.audio.g711 import ulaw_decode
from gateway.call.commands import (
    ClearAudio,
    HangUp,
    SendDigits,
    SendFrame,
    SendMark,
    TransferCall,
)
from gateway.call.ledger import CallLedger
from gateway.call.playout import Playout
from gateway.call.session import MAX_DRAIN_BEFORE_ACTION, MAX_HOLD, CallSession


class FakeTransport:
    """Where the media commands the core asked for are collected."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []

    def kinds(self) -> list[str]:
        return [k for k, _ in self.sent]


class FakeControl:
    """Where the call actions the core asked for are collected."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, str]] = []


class RecordingEngine(EngineSession):
    def __init__(self, rate: int) -> None:
        super().__init__(rate)
        self.audio = bytearray()
        self.heard: list[int] = []
        self.digits: list[str] = []

    def send_audio(self, pcm: bytes) -> None:
        self.audio += pcm

    def played(self, ms: int) -> None:
        self.heard.append(ms)

    def dtmf(self, digit: str) -> None:
        self.digits.append(digit)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """The core with a clock: each input gets the time, and its commands land in the fakes."""

    def __init__(self, session: CallSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock
        self.transport = FakeTransport()
        self.control = FakeControl()
        self.ledger = session.ledger
        self.playout = session.playout

    def _drain(self) -> None:
        for command in self.session.commands_to_send():
            match command:
                case SendFrame(frame=frame):
                    self.transport.sent.append(("media", frame))
                case SendMark(name=name):
                    self.transport.sent.append(("mark", name))
                case ClearAudio():
                    self.transport.sent.append(("clear", None))
                case HangUp():
                    self.control.actions.append(("hangup", ""))
                case TransferCall(target=target):
                    self.control.actions.append(("transfer", target))
                case SendDigits(digits=digits):  # a carrier without DTMF events: tones
                    self.control.actions.append(("dtmf", digits))
                    self.session.play_dtmf(digits, self.clock.now)
                    self._drain()

    def engine_event(self, event) -> None:
        self.session.engine_event(event, self.clock.now)
        self._drain()

    def receive_audio(self, ulaw: bytes, timestamp_ms: int = -1) -> None:
        self.session.receive_audio(ulaw, timestamp_ms)

    def receive_mark(self, name: str) -> None:
        self.session.receive_mark(name, self.clock.now)
        self._drain()

    def receive_dtmf(self, digit: str) -> None:
        self.session.receive_dtmf(digit, self.clock.now)

    def pump(self, now: float) -> None:
        self.session.pump(now)
        self._drain()

    def timer(self) -> None:
        self.session.handle_timer(self.clock.now)
        self._drain()

    def close(self, reason: str) -> None:
        self.session.close(reason, self.clock.now, 1.0e9)


def make(
    rate: int = 16000,
    lead: float = 0.1,
    mark_every: int = 1,
    hold_clears: bool = False,
    engine: RecordingEngine | None = None,
    soft_db: float | None = -10.0,
):
    engine = engine or RecordingEngine(rate)
    clock = Clock()
    session = CallSession(
        engine,
        CallLedger("CAtest", "fake"),
        origin=clock.now,
        playout=Playout(lead=lead, mark_every=mark_every, hold_clears=hold_clears, soft_db=soft_db),
    )
    call = Harness(session, clock)
    return call, engine, call.transport, call.control, clock


def speech(rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16).tobytes()


def test_gateway_interrupt_clears_and_reports_heard_position():
    session, engine, transport, _, clock = make()
    session.engine_event(Audio(speech(16000, 1.0)))
    marks = [v for k, v in transport.sent if k == "mark"]
    assert len(marks) == 5 and marks[0] == "0:20"  # lead 100 ms sent at once
    clock.now += 0.04
    session.receive_mark("0:20")
    session.receive_mark("0:40")
    clock.now += 0.01
    transport.sent.clear()
    session.engine_event(Interrupt())
    assert transport.kinds() == ["clear"]
    assert engine.heard == [50]  # last mark (40 ms) + 10 ms elapsed, under the next (60)
    # Pending marks echoed after the clear are stale and move nothing.
    clock.now += 0.5
    for name in marks[2:]:
        session.receive_mark(name)
    assert transport.kinds() == ["clear"]  # no stale frame of the cut speech went out
    assert session.ledger.clears == 1 and session.playout.stale_marks == 3
    session.close("test")


def test_gateway_speech_after_interrupt_continues_timeline_in_new_generation():
    session, engine, transport, _, clock = make()
    session.engine_event(Audio(speech(16000, 0.5)))
    session.engine_event(Interrupt())
    transport.sent.clear()
    clock.now += 1.0
    session.engine_event(Audio(speech(16000, 0.1)))
    marks = [v for k, v in transport.sent if k == "mark"]
    # 500 ms were emitted before the interrupt: new speech starts there, generation 1
    assert marks[0] == "1:520"
    session.close("test")


def test_gateway_inbound_audio_is_resampled_for_the_engine():
    session, engine, *_ = make(rate=16000)
    for i in range(50):  # one second of caller audio
        session.receive_audio(b"\xff" * 160, i * 20)
    received = len(engine.audio) // 2
    assert 16000 - 16000 * 0.05 <= received <= 16000  # minus the filter's lag
    assert session.ledger.frames_in == 50
    session.close("test")


def test_gateway_inbound_timestamp_gap_is_filled_with_silence():
    session, engine, *_ = make(rate=8000)
    session.receive_audio(b"\x00" * 160, 0)
    session.receive_audio(b"\x00" * 160, 100)  # 80 ms missing
    assert len(engine.audio) == (160 + 640 + 160) * 2
    assert session.ledger.gap_fill_seconds == pytest.approx(0.08)
    session.close("test")


def test_gateway_outbound_audio_is_8k_ulaw_in_20ms_frames():
    session, _, transport, _, clock = make(rate=24000, lead=2.0)
    session.engine_event(Audio(speech(24000, 0.5)))
    clock.now += 2.0
    session.pump(clock.now)  # past the flush deadline: the resampler tail is released
    frames = [v for k, v in transport.sent if k == "media"]
    assert all(len(f) == 160 for f in frames)
    assert len(frames) == 25
    pcm = np.frombuffer(b"".join(ulaw_decode(f) for f in frames), dtype=np.int16)
    spectrum = np.abs(np.fft.rfft(pcm[800:3200]))
    assert np.argmax(spectrum) * 8000 / 2400 == pytest.approx(300, abs=5)
    session.close("test")


def test_gateway_hangup_waits_for_speech_to_play():
    session, _, transport, control, clock = make()
    session.engine_event(Audio(speech(16000, 0.1)))
    session.engine_event(Hangup())
    assert control.actions == []  # the goodbye is still playing
    clock.now += 0.2
    session.pump(clock.now)
    for name in [v for k, v in transport.sent if k == "mark"]:
        session.receive_mark(name)
    assert control.actions == [("hangup", "")]
    session.close("test")


def test_gateway_hangup_waiting_for_speech_that_is_cleared_happens_at_the_clear():
    session, _, transport, control, clock = make()
    session.engine_event(Audio(speech(16000, 2.0)))
    session.engine_event(Hangup())
    assert control.actions == []
    clock.now += 0.1
    session.engine_event(Interrupt())  # the caller cut into the goodbye
    assert transport.kinds()[-1] == "clear"
    assert control.actions == [("hangup", "")]  # not after the drain limit
    assert session.ledger.outcome == "completed"  # the engine ended it, not the caller
    session.close("test")


def test_gateway_transfer_when_nothing_is_playing_is_immediate():
    session, _, _, control, _ = make()
    session.engine_event(Transfer("+15005550006"))
    assert control.actions == [("transfer", "+15005550006")]
    session.close("test")


def test_gateway_send_dtmf_plays_tones_in_band():
    session, _, transport, _, clock = make(rate=8000, lead=5.0)
    session.engine_event(SendDtmf("1"))
    clock.now += 1.0
    session.pump(clock.now)
    frames = [v for k, v in transport.sent if k == "media"]
    assert len(frames) == 10  # 100 ms tone + 100 ms gap
    tone = np.frombuffer(b"".join(ulaw_decode(f) for f in frames[:5]), dtype=np.int16)
    spectrum = np.abs(np.fft.rfft(tone))
    peaks = sorted(np.argsort(spectrum)[-2:] * 8000 / len(tone))
    assert peaks == [pytest.approx(697, abs=10), pytest.approx(1209, abs=10)]
    session.close("test")


def test_gateway_bad_dtmf_from_engine_is_recorded_not_raised():
    session, *_ = make()
    session.engine_event(SendDtmf("x"))
    assert "not a DTMF digit" in session.ledger.errors[0]
    session.close("test")


def test_gateway_dtmf_from_caller_reaches_engine():
    session, engine, *_ = make()
    session.receive_dtmf("#")
    assert engine.digits == ["#"] and session.ledger.dtmf_in == 1
    session.close("test")


def test_gateway_transcript_revision_replaces_that_sides_last_line_in_place():
    session, *_ = make()
    for event in (
        Transcript("bot", "Which day?"),
        Transcript("caller", "Friday."),
        Transcript("caller", "Fri", final=False),  # partials never reach the record
        Transcript("bot", "Okay. ..."),  # the acknowledgement the caller talked over
        Transcript("caller", "Friday. At noon.", revises=True),
        Result({"day": "2026-03-13"}),
    ):
        session.engine_event(event)
    assert session.ledger.transcript == [
        ("bot", "Which day?"), ("caller", "Friday. At noon."), ("bot", "Okay. ..."),
    ]  # fmt: skip
    assert session.ledger.results == {"day": "2026-03-13"}
    session.close("test")


class MulawEngine(RecordingEngine):
    def __init__(self) -> None:
        EngineSession.__init__(self, 8000, "mulaw")
        self.audio = bytearray()
        self.heard = []
        self.digits = []


def test_gateway_mulaw_engine_gets_and_gives_bytes_untouched():
    session, engine, transport, _, _ = make(lead=1.0, engine=MulawEngine())
    caller = bytes(range(256)) * 2 + bytes(range(128))  # 640 bytes, every code
    for i in range(4):
        session.receive_audio(caller[i * 160 : (i + 1) * 160], i * 20)
    assert bytes(engine.audio) == caller  # no decode, no resample: bytes in = bytes forwarded
    session.engine_event(Audio(caller))
    sent = b"".join(v for k, v in transport.sent if k == "media")
    assert sent == caller
    assert [v for k, v in transport.sent if k == "mark"][-1] == "0:80"  # 640 bytes = 80 ms
    session.close("test")


def test_gateway_hold_then_release_carries_on_from_the_exact_sample():
    session, engine, transport, _, clock = make(lead=0.06)
    session.engine_event(Audio(speech(16000, 1.0)))
    first = [v for k, v in transport.sent if k == "mark"]
    assert first[-1] == "0:60"
    session.engine_event(Hold())
    clock.now += 0.3
    for name in first:
        session.receive_mark(name)  # the carrier played what it had; nothing more goes out
    assert [v for k, v in transport.sent if k == "mark"] == first
    transport.sent.clear()
    session.engine_event(Release())
    after = [v for k, v in transport.sent if k == "mark"]
    assert after[0] == "0:80"  # the frame after the last one sent: no repeat, no skip
    assert "clear" not in transport.kinds() and engine.heard == []
    ledger = session.ledger
    assert (ledger.holds, ledger.releases, ledger.commits) == (1, 1, 0)
    assert ledger.hold_gaps == [pytest.approx(0.24)]  # 300 ms held, 60 ms of it at the carrier
    session.close("test")


def test_gateway_commit_during_hold_clears_and_reports_heard_position():
    session, engine, transport, _, clock = make(lead=0.1)
    session.engine_event(Audio(speech(16000, 1.0)))
    clock.now += 0.04
    session.receive_mark("0:20")
    session.receive_mark("0:40")
    session.engine_event(Hold())
    clock.now += 0.01
    transport.sent.clear()
    session.engine_event(Commit())
    assert transport.kinds() == ["clear"]
    assert engine.heard == [50]
    session.engine_event(Release())  # too late: the commit stands
    assert transport.kinds() == ["clear"]
    ledger = session.ledger
    assert (ledger.holds, ledger.commits, ledger.releases, ledger.clears) == (1, 1, 0, 1)
    session.close("test")


def test_gateway_interrupt_without_hold_is_a_commit_at_once():
    session, engine, transport, _, clock = make()
    session.engine_event(Audio(speech(16000, 0.5)))
    session.engine_event(Interrupt())
    assert transport.kinds()[-1] == "clear" and len(engine.heard) == 1
    assert (session.ledger.holds, session.ledger.commits) == (0, 0)
    session.close("test")


def test_gateway_caller_hangup_during_hold_ends_cleanly():
    session, engine, transport, control, clock = make()
    session.engine_event(Audio(speech(16000, 1.0)))
    session.engine_event(Hold())
    clock.now += 0.2
    session.close("caller hung up")
    assert session.session.next_deadline() is None  # no timer outlives the call
    kinds = [kind for _, kind, _ in session.ledger.events]
    assert kinds[-2:] == ["hold-open-at-end", "end"]
    assert engine.heard == [] and control.actions == []
    session.engine_event(Release())  # a late decision after the end sends nothing
    assert "clear" not in transport.kinds()


def test_gateway_engine_hangup_during_hold_waits_for_the_decision():
    session, _, transport, control, clock = make()
    session.engine_event(Audio(speech(16000, 0.2)))
    session.engine_event(Hold())
    session.engine_event(Hangup())
    assert control.actions == []  # the goodbye is held, not finished
    clock.now += 0.3
    session.engine_event(Release())
    clock.now += 0.3
    session.pump(clock.now)
    for name in [v for k, v in transport.sent if k == "mark"]:
        session.receive_mark(name)
    assert control.actions == [("hangup", "")]
    session.close("test")


def test_gateway_commits_a_hold_the_engine_leaves_open():
    session, engine, transport, _, clock = make()
    session.engine_event(Audio(speech(16000, 1.0)))
    session.engine_event(Hold())
    assert session.session.next_deadline() == clock.now + MAX_HOLD
    clock.now += MAX_HOLD - 0.001
    session.timer()
    assert session.ledger.commits == 0  # not yet
    clock.now += 0.001
    session.timer()
    assert transport.kinds()[-1] == "clear" and len(engine.heard) == 1
    assert session.ledger.commits == 1 and "hold left open" in session.ledger.errors[0]
    assert MAX_HOLD > 1.0  # the real bound leaves the engine time to judge
    session.close("test")


def test_gateway_hold_figures_reach_the_record_the_timeline_and_metrics():
    from gateway.callstore.timeline_page import render
    from gateway.ops.metrics import GatewayMetrics

    session, _, _, _, clock = make(lead=0.04)
    session.engine_event(Audio(speech(16000, 1.0)))
    session.engine_event(Hold())
    clock.now += 0.25
    session.engine_event(Release())
    session.engine_event(Hold())
    session.engine_event(Commit())
    session.close("test")
    record = session.ledger.to_dict()
    assert (record["holds"], record["releases"], record["commits"]) == (2, 1, 1)
    assert record["hold_gaps"] == [pytest.approx(0.21)]
    page = render(record)
    assert "hold gap" in page and "210 ms" in page and "held at" in page
    metrics = GatewayMetrics(lambda: 0, lambda: False)
    metrics.call_ended(session.ledger)
    text = metrics.render().decode()
    assert 'overtalk_holds_total{outcome="released"} 1.0' in text
    assert 'overtalk_holds_total{outcome="committed"} 1.0' in text
    assert "overtalk_hold_gap_seconds_count 1.0" in text


def test_gateway_clearing_hold_clears_once_and_release_sends_the_rest():
    session, engine, transport, _, clock = make(hold_clears=True)
    session.engine_event(Audio(speech(16000, 1.0)))
    clock.now += 0.04
    session.receive_mark("0:20")
    session.receive_mark("0:40")
    transport.sent.clear()
    session.engine_event(Hold())
    assert transport.kinds() == ["clear"]  # quiet now, not after the lead
    clock.now += 0.2
    session.engine_event(Release())
    assert transport.kinds()[0] == "clear" and transport.kinds().count("clear") == 1
    assert [v for k, v in transport.sent if k == "mark"][0] == "1:60"  # from the heard sample
    session.engine_event(Hold())
    session.engine_event(Commit())
    assert transport.kinds().count("clear") == 2  # the second hold's; the commit adds none
    assert engine.heard and session.ledger.commits == 1
    session.close("test")


def test_gateway_hangup_behind_speech_that_never_plays_waits_at_most_the_drain_limit():
    session, _, _, control, clock = make()
    session.engine_event(Audio(speech(16000, 1.0)))
    session.engine_event(Hangup())
    assert session.session.next_deadline() is not None
    clock.now += MAX_DRAIN_BEFORE_ACTION - 0.01
    session.timer()  # pacing ticks go on; no mark has come back, so nothing has played
    assert control.actions == []
    clock.now += 0.01
    session.timer()
    assert control.actions == [("hangup", "")]
    assert session.ledger.outcome == "completed"


def test_gateway_clear_latency_is_from_the_interrupt_to_the_carrier_writing_it():
    session, _, transport, _, clock = make()
    session.engine_event(Audio(speech(16000, 0.5)))
    session.engine_event(Interrupt())
    assert transport.kinds()[-1] == "clear"
    clock.now += 0.003
    session.session.clear_written(clock.now)
    session.session.clear_written(clock.now + 1.0)  # a second report of the same clear: none
    assert session.ledger.clear_latencies == [pytest.approx(0.003)]


def test_gateway_pacing_timer_sends_the_next_frames_and_counts_its_lateness():
    session, _, transport, _, clock = make(lead=0.04, mark_every=2)
    session.engine_event(Audio(speech(16000, 0.2)))
    assert len([k for k in transport.kinds() if k == "media"]) == 2  # the lead's worth
    deadline = session.session.next_deadline()
    assert deadline == pytest.approx(clock.now)  # the carrier holds 40 ms: one more frame now
    clock.now += 0.025
    session.timer()
    assert len([k for k in transport.kinds() if k == "media"]) > 2
    assert sum(session.ledger.frame_lateness.counts) == 1


def test_gateway_commands_come_out_once_and_in_order():
    session, *_ = make()
    core = session.session
    core.engine_event(Audio(speech(16000, 0.04)), 100.0)
    first = core.commands_to_send()
    assert [type(c) for c in first] == [SendFrame, SendMark, SendFrame, SendMark]
    assert core.commands_to_send() == []
    for command in first:
        if type(command) is SendMark:
            core.receive_mark(command.name, 100.1)  # all played: a transfer goes at once
    core.engine_event(Transfer("sip:desk@example.com"), 100.1)
    assert TransferCall("sip:desk@example.com") in core.commands_to_send()


# -- two levels: a soft hold ducks, a deep one silences ------------------------------------------


def _loudness(frame: object) -> float:
    pcm = np.frombuffer(ulaw_decode(frame), "<i2").astype(np.float64)  # type: ignore[arg-type]
    return float(np.sqrt(np.mean(pcm**2)))


def test_gateway_soft_hold_ducks_without_a_clear_and_release_leaves_no_gap():
    session, engine, transport, _, clock = make(lead=0.04, hold_clears=True)
    session.engine_event(Audio(speech(16000, 1.0)))
    before = [v for k, v in transport.sent if k == "media"]
    transport.sent.clear()
    session.engine_event(Hold(soft=True))
    assert "clear" not in transport.kinds()
    clock.now += 0.04
    session.pump(clock.now)
    ducked = [v for k, v in transport.sent if k == "media"]
    assert ducked and _loudness(ducked[0]) < _loudness(before[0]) / 2  # -10 dB: a third
    session.engine_event(Release())
    ledger = session.ledger
    assert (ledger.holds, ledger.soft_holds, ledger.deep_holds, ledger.releases) == (1, 1, 0, 1)
    assert ledger.hold_gaps == [] and ledger.ducks == [(-10.0, pytest.approx(0.04))]
    assert "clear" not in transport.kinds() and engine.heard == []
    session.close("test")


def test_gateway_soft_hold_going_deep_is_one_hold_and_release_resumes_at_the_exact_sample():
    session, engine, transport, _, clock = make(lead=0.06, hold_clears=True)
    session.engine_event(Audio(speech(16000, 1.0)))
    session.engine_event(Hold(soft=True))
    clock.now += 0.04
    session.receive_mark("0:20")
    session.receive_mark("0:40")
    transport.sent.clear()
    session.engine_event(Hold())  # the sound sounds like speech: silence the bot
    assert transport.kinds() == ["clear"]
    clock.now += 0.1
    session.engine_event(Release())
    marks = [v for k, v in transport.sent if k == "mark"]
    assert marks[0] == "1:60"  # from the sample heard at the deep hold (40 ms), frame by frame
    ledger = session.ledger
    assert (ledger.holds, ledger.soft_holds, ledger.deep_holds) == (1, 1, 1)
    assert ledger.hold_gaps == [pytest.approx(0.1)]
    assert ledger.ducks == [(-10.0, pytest.approx(0.04))]
    assert [kind for _, kind, _ in ledger.events if kind in ("duck", "hold", "release")] == [
        "duck",
        "hold",
        "release",
    ]
    session.close("test")


def test_gateway_soft_hold_during_a_deep_one_lifts_it_back_to_a_duck():
    session, _, transport, _, clock = make(lead=0.06, hold_clears=True)
    session.engine_event(Audio(speech(16000, 1.0)))
    session.engine_event(Hold(soft=True))
    session.engine_event(Hold())
    transport.sent.clear()
    clock.now += 0.08
    session.engine_event(Hold(soft=True))  # the burst ended: back to the duck
    ducked = [v for k, v in transport.sent if k == "media"]
    assert ducked and "clear" not in transport.kinds()
    ledger = session.ledger
    assert ledger.hold_gaps == [pytest.approx(0.08)] and ledger.releases == 0
    session.engine_event(Commit())
    assert transport.kinds()[-1] == "clear"
    assert (ledger.holds, ledger.commits, ledger.deep_holds) == (1, 1, 1)
    session.close("test")


def test_gateway_commit_during_a_soft_hold_clears_and_reports_heard_position():
    session, engine, transport, _, clock = make(lead=0.1)
    session.engine_event(Audio(speech(16000, 1.0)))
    clock.now += 0.04
    session.receive_mark("0:20")
    session.receive_mark("0:40")
    session.engine_event(Hold(soft=True))
    clock.now += 0.01
    transport.sent.clear()
    session.engine_event(Commit())
    assert transport.kinds() == ["clear"]
    assert engine.heard == [50]
    assert (session.ledger.holds, session.ledger.commits) == (1, 1)
    assert session.ledger.ducks == [(-10.0, pytest.approx(0.01))]
    session.close("test")


def test_gateway_caller_hangup_during_a_soft_hold_ends_cleanly():
    session, engine, transport, control, clock = make()
    session.engine_event(Audio(speech(16000, 1.0)))
    session.engine_event(Hold(soft=True))
    clock.now += 0.2
    session.close("caller hung up")
    assert session.session.next_deadline() is None
    kinds = [kind for _, kind, _ in session.ledger.events]
    assert kinds[-2:] == ["hold-open-at-end", "end"]
    assert engine.heard == [] and control.actions == []


def test_gateway_with_soft_holds_off_a_soft_hold_changes_nothing():
    session, _, transport, _, clock = make(soft_db=None)
    session.engine_event(Audio(speech(16000, 1.0)))
    session.engine_event(Hold(soft=True))
    clock.now += 0.1
    session.pump(clock.now)
    assert session.ledger.holds == 0 and "clear" not in transport.kinds()
    session.engine_event(Hold())  # the deep level still works
    session.engine_event(Release())
    assert (session.ledger.holds, session.ledger.releases) == (1, 1)
    session.close("test")


def test_gateway_two_level_hold_figures_reach_the_timeline_and_metrics():
    from gateway.callstore.timeline_page import render
    from gateway.ops.metrics import GatewayMetrics

    session, _, _, _, clock = make(lead=0.04, hold_clears=True)
    session.engine_event(Audio(speech(16000, 1.0)))
    session.engine_event(Hold(soft=True))
    clock.now += 0.05
    session.engine_event(Release())  # a cough: a dip, no gap
    session.engine_event(Hold(soft=True))
    clock.now += 0.03
    session.engine_event(Hold())
    clock.now += 0.12
    session.engine_event(Hold(soft=True))  # its burst ended
    clock.now += 0.1
    session.engine_event(Release())
    session.close("test")
    record = session.ledger.to_dict()
    assert (record["holds"], record["soft_holds"], record["deep_holds"]) == (2, 2, 1)
    assert record["hold_gaps"] == [pytest.approx(0.12)]
    assert [db for db, _ in record["ducks"]] == [-10.0, -10.0]
    assert record["ducks"][1][1] == pytest.approx(0.13)  # both soft spells of the second hold
    page = render(record)
    assert "soft hold (ducked)" in page and "back to the soft level; gap 120 ms" in page
    assert "-10 dB for 130 ms" in page and "deep holds" in page
    metrics = GatewayMetrics(lambda: 0, lambda: False)
    metrics.call_ended(session.ledger)
    text = metrics.render().decode()
    assert 'overtalk_hold_levels_total{level="soft"} 2.0' in text
    assert 'overtalk_hold_levels_total{level="deep"} 1.0' in text
    assert "overtalk_soft_hold_seconds_count 2.0" in text
