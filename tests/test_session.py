"""CallSession with a fake carrier and a scripted engine: the interruption contract."""

import asyncio

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
from gateway.call.ledger import CallLedger
from gateway.call.playout import Playout
from gateway.call.session import MAX_HOLD, CallSession


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []
        self.wakes = 0

    def send_audio(self, frame: bytes) -> None:
        self.sent.append(("media", frame))

    def send_mark(self, name: str) -> None:
        self.sent.append(("mark", name))

    def send_clear(self) -> None:
        self.sent.append(("clear", None))

    def wake(self) -> None:
        self.wakes += 1

    def kinds(self) -> list[str]:
        return [k for k, _ in self.sent]


class FakeControl:
    def __init__(self) -> None:
        self.actions: list[tuple[str, str]] = []

    async def hangup(self) -> None:
        self.actions.append(("hangup", ""))

    async def transfer(self, target: str) -> None:
        self.actions.append(("transfer", target))


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


def make(rate: int = 16000, lead: float = 0.1, mark_every: int = 1, hold_clears: bool = False):
    engine = RecordingEngine(rate)
    transport = FakeTransport()
    control = FakeControl()
    clock = Clock()
    session = CallSession(
        engine,
        transport,
        control,
        CallLedger("CAtest", "fake"),
        playout=Playout(lead=lead, mark_every=mark_every, hold_clears=hold_clears),
        clock=clock,
    )
    return session, engine, transport, control, clock


def speech(rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16).tobytes()


async def test_gateway_interrupt_clears_and_reports_heard_position():
    session, engine, transport, _, clock = make()
    session.handle_engine_event(Audio(speech(16000, 1.0)))
    marks = [v for k, v in transport.sent if k == "mark"]
    assert len(marks) == 5 and marks[0] == "0:20"  # lead 100 ms sent at once
    clock.now += 0.04
    session.receive_mark("0:20")
    session.receive_mark("0:40")
    clock.now += 0.01
    transport.sent.clear()
    session.handle_engine_event(Interrupt())
    assert transport.kinds() == ["clear"]
    assert engine.heard == [50]  # last mark (40 ms) + 10 ms elapsed, under the next (60)
    # Pending marks echoed after the clear are stale and move nothing.
    clock.now += 0.5
    for name in marks[2:]:
        session.receive_mark(name)
    assert transport.kinds() == ["clear"]  # no stale frame of the cut speech went out
    assert session.ledger.clears == 1 and session.playout.stale_marks == 3
    await session.close("test")


async def test_gateway_speech_after_interrupt_continues_timeline_in_new_generation():
    session, engine, transport, _, clock = make()
    session.handle_engine_event(Audio(speech(16000, 0.5)))
    session.handle_engine_event(Interrupt())
    transport.sent.clear()
    clock.now += 1.0
    session.handle_engine_event(Audio(speech(16000, 0.1)))
    marks = [v for k, v in transport.sent if k == "mark"]
    # 500 ms were emitted before the interrupt: new speech starts there, generation 1
    assert marks[0] == "1:520"
    await session.close("test")


async def test_gateway_inbound_audio_is_resampled_for_the_engine():
    session, engine, *_ = make(rate=16000)
    for i in range(50):  # one second of caller audio
        session.receive_audio(b"\xff" * 160, i * 20)
    received = len(engine.audio) // 2
    assert 16000 - 16000 * 0.05 <= received <= 16000  # minus the filter's lag
    assert session.ledger.frames_in == 50
    await session.close("test")


async def test_gateway_inbound_timestamp_gap_is_filled_with_silence():
    session, engine, *_ = make(rate=8000)
    session.receive_audio(b"\x00" * 160, 0)
    session.receive_audio(b"\x00" * 160, 100)  # 80 ms missing
    assert len(engine.audio) == (160 + 640 + 160) * 2
    assert session.ledger.gap_fill_seconds == pytest.approx(0.08)
    await session.close("test")


async def test_gateway_outbound_audio_is_8k_ulaw_in_20ms_frames():
    session, _, transport, _, clock = make(rate=24000, lead=2.0)
    session.handle_engine_event(Audio(speech(24000, 0.5)))
    clock.now += 2.0
    session.pump(clock.now)  # past the flush deadline: the resampler tail is released
    frames = [v for k, v in transport.sent if k == "media"]
    assert all(len(f) == 160 for f in frames)
    assert len(frames) == 25
    pcm = np.frombuffer(b"".join(ulaw_decode(f) for f in frames), dtype=np.int16)
    spectrum = np.abs(np.fft.rfft(pcm[800:3200]))
    assert np.argmax(spectrum) * 8000 / 2400 == pytest.approx(300, abs=5)
    await session.close("test")


async def test_gateway_hangup_waits_for_speech_to_play():
    session, _, transport, control, clock = make()
    session.handle_engine_event(Audio(speech(16000, 0.1)))
    session.handle_engine_event(Hangup())
    await asyncio.sleep(0)
    assert control.actions == []  # the goodbye is still playing
    clock.now += 0.2
    session.pump(clock.now)
    for name in [v for k, v in transport.sent if k == "mark"]:
        session.receive_mark(name)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert control.actions == [("hangup", "")]
    await session.close("test")


async def test_gateway_hangup_waiting_for_speech_that_is_cleared_happens_at_the_clear():
    session, _, transport, control, clock = make()
    session.handle_engine_event(Audio(speech(16000, 2.0)))
    session.handle_engine_event(Hangup())
    await asyncio.sleep(0)
    assert control.actions == []
    clock.now += 0.1
    session.handle_engine_event(Interrupt())  # the caller cut into the goodbye
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert transport.kinds()[-1] == "clear"
    assert control.actions == [("hangup", "")]  # not after the drain limit
    assert session.ledger.outcome == "completed"  # the engine ended it, not the caller
    await session.close("test")


async def test_gateway_transfer_when_nothing_is_playing_is_immediate():
    session, _, _, control, _ = make()
    session.handle_engine_event(Transfer("+15005550006"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert control.actions == [("transfer", "+15005550006")]
    await session.close("test")


async def test_gateway_send_dtmf_plays_tones_in_band():
    session, _, transport, _, clock = make(rate=8000, lead=5.0)
    session.handle_engine_event(SendDtmf("1"))
    clock.now += 1.0
    session.pump(clock.now)
    frames = [v for k, v in transport.sent if k == "media"]
    assert len(frames) == 10  # 100 ms tone + 100 ms gap
    tone = np.frombuffer(b"".join(ulaw_decode(f) for f in frames[:5]), dtype=np.int16)
    spectrum = np.abs(np.fft.rfft(tone))
    peaks = sorted(np.argsort(spectrum)[-2:] * 8000 / len(tone))
    assert peaks == [pytest.approx(697, abs=10), pytest.approx(1209, abs=10)]
    await session.close("test")


async def test_gateway_bad_dtmf_from_engine_is_recorded_not_raised():
    session, *_ = make()
    session.handle_engine_event(SendDtmf("x"))
    assert "not a DTMF digit" in session.ledger.errors[0]
    await session.close("test")


async def test_gateway_dtmf_from_caller_reaches_engine():
    session, engine, *_ = make()
    session.receive_dtmf("#")
    assert engine.digits == ["#"] and session.ledger.dtmf_in == 1
    await session.close("test")


async def test_gateway_transcript_revision_replaces_that_sides_last_line_in_place():
    session, *_ = make()
    for event in (
        Transcript("bot", "Which day?"),
        Transcript("caller", "Friday."),
        Transcript("caller", "Fri", final=False),  # partials never reach the record
        Transcript("bot", "Okay. ..."),  # the acknowledgement the caller talked over
        Transcript("caller", "Friday. At noon.", revises=True),
        Result({"day": "2026-03-13"}),
    ):
        session.handle_engine_event(event)
    assert session.ledger.transcript == [
        ("bot", "Which day?"), ("caller", "Friday. At noon."), ("bot", "Okay. ..."),
    ]  # fmt: skip
    assert session.ledger.results == {"day": "2026-03-13"}
    await session.close("test")


class MulawEngine(RecordingEngine):
    def __init__(self) -> None:
        EngineSession.__init__(self, 8000, "mulaw")
        self.audio = bytearray()
        self.heard = []
        self.digits = []


async def test_gateway_mulaw_engine_gets_and_gives_bytes_untouched():
    engine = MulawEngine()
    transport = FakeTransport()
    clock = Clock()
    session = CallSession(
        engine, transport, FakeControl(), CallLedger("CAmu", "fake"),
        playout=Playout(lead=1.0, mark_every=1), clock=clock,
    )  # fmt: skip
    caller = bytes(range(256)) * 2 + bytes(range(128))  # 640 bytes, every code
    for i in range(4):
        session.receive_audio(caller[i * 160 : (i + 1) * 160], i * 20)
    assert bytes(engine.audio) == caller  # no decode, no resample: bytes in = bytes forwarded
    session.handle_engine_event(Audio(caller))
    sent = b"".join(v for k, v in transport.sent if k == "media")
    assert sent == caller
    assert [v for k, v in transport.sent if k == "mark"][-1] == "0:80"  # 640 bytes = 80 ms
    await session.close("test")


async def test_gateway_hold_then_release_carries_on_from_the_exact_sample():
    session, engine, transport, _, clock = make(lead=0.06)
    session.handle_engine_event(Audio(speech(16000, 1.0)))
    first = [v for k, v in transport.sent if k == "mark"]
    assert first[-1] == "0:60"
    session.handle_engine_event(Hold())
    clock.now += 0.3
    for name in first:
        session.receive_mark(name)  # the carrier played what it had; nothing more goes out
    assert [v for k, v in transport.sent if k == "mark"] == first
    transport.sent.clear()
    session.handle_engine_event(Release())
    after = [v for k, v in transport.sent if k == "mark"]
    assert after[0] == "0:80"  # the frame after the last one sent: no repeat, no skip
    assert "clear" not in transport.kinds() and engine.heard == []
    ledger = session.ledger
    assert (ledger.holds, ledger.releases, ledger.commits) == (1, 1, 0)
    assert ledger.hold_gaps == [pytest.approx(0.24)]  # 300 ms held, 60 ms of it at the carrier
    await session.close("test")


async def test_gateway_commit_during_hold_clears_and_reports_heard_position():
    session, engine, transport, _, clock = make(lead=0.1)
    session.handle_engine_event(Audio(speech(16000, 1.0)))
    clock.now += 0.04
    session.receive_mark("0:20")
    session.receive_mark("0:40")
    session.handle_engine_event(Hold())
    clock.now += 0.01
    transport.sent.clear()
    session.handle_engine_event(Commit())
    assert transport.kinds() == ["clear"]
    assert engine.heard == [50]
    session.handle_engine_event(Release())  # too late: the commit stands
    assert transport.kinds() == ["clear"]
    ledger = session.ledger
    assert (ledger.holds, ledger.commits, ledger.releases, ledger.clears) == (1, 1, 0, 1)
    await session.close("test")


async def test_gateway_interrupt_without_hold_is_a_commit_at_once():
    session, engine, transport, _, clock = make()
    session.handle_engine_event(Audio(speech(16000, 0.5)))
    session.handle_engine_event(Interrupt())
    assert transport.kinds()[-1] == "clear" and len(engine.heard) == 1
    assert (session.ledger.holds, session.ledger.commits) == (0, 0)
    await session.close("test")


async def test_gateway_caller_hangup_during_hold_ends_cleanly():
    session, engine, transport, control, clock = make()
    session.handle_engine_event(Audio(speech(16000, 1.0)))
    session.handle_engine_event(Hold())
    clock.now += 0.2
    await session.close("caller hung up")
    assert session._hold_timer is None and session._timer is None
    kinds = [kind for _, kind, _ in session.ledger.events]
    assert kinds[-2:] == ["hold-open-at-end", "end"]
    assert engine.heard == [] and control.actions == []
    session.handle_engine_event(Release())  # a late decision after the end sends nothing
    assert "clear" not in transport.kinds()


async def test_gateway_engine_hangup_during_hold_waits_for_the_decision():
    session, _, transport, control, clock = make()
    session.handle_engine_event(Audio(speech(16000, 0.2)))
    session.handle_engine_event(Hold())
    session.handle_engine_event(Hangup())
    await asyncio.sleep(0)
    assert control.actions == []  # the goodbye is held, not finished
    clock.now += 0.3
    session.handle_engine_event(Release())
    clock.now += 0.3
    session.pump(clock.now)
    for name in [v for k, v in transport.sent if k == "mark"]:
        session.receive_mark(name)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert control.actions == [("hangup", "")]
    await session.close("test")


async def test_gateway_commits_a_hold_the_engine_leaves_open(monkeypatch):
    monkeypatch.setattr("gateway.call.session.MAX_HOLD", 0.01)
    session, engine, transport, _, clock = make()
    session.handle_engine_event(Audio(speech(16000, 1.0)))
    session.handle_engine_event(Hold())
    await asyncio.sleep(0.05)
    assert transport.kinds()[-1] == "clear" and len(engine.heard) == 1
    assert session.ledger.commits == 1 and "hold left open" in session.ledger.errors[0]
    assert MAX_HOLD > 1.0  # the real bound leaves the engine time to judge
    await session.close("test")


async def test_gateway_hold_figures_reach_the_record_the_timeline_and_metrics():
    from gateway.metrics import GatewayMetrics
    from gateway.timeline import render

    session, _, _, _, clock = make(lead=0.04)
    session.handle_engine_event(Audio(speech(16000, 1.0)))
    session.handle_engine_event(Hold())
    clock.now += 0.25
    session.handle_engine_event(Release())
    session.handle_engine_event(Hold())
    session.handle_engine_event(Commit())
    await session.close("test")
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


async def test_gateway_clearing_hold_clears_once_and_release_sends_the_rest():
    engine = RecordingEngine(16000)
    transport, clock = FakeTransport(), Clock()
    session = CallSession(
        engine,
        transport,
        FakeControl(),
        CallLedger("CAtest", "fake"),
        playout=Playout(lead=0.1, mark_every=1, hold_clears=True),
        clock=clock,
    )
    session.handle_engine_event(Audio(speech(16000, 1.0)))
    clock.now += 0.04
    session.receive_mark("0:20")
    session.receive_mark("0:40")
    transport.sent.clear()
    session.handle_engine_event(Hold())
    assert transport.kinds() == ["clear"]  # quiet now, not after the lead
    clock.now += 0.2
    session.handle_engine_event(Release())
    assert transport.kinds()[0] == "clear" and transport.kinds().count("clear") == 1
    assert [v for k, v in transport.sent if k == "mark"][0] == "1:60"  # from the heard sample
    session.handle_engine_event(Hold())
    session.handle_engine_event(Commit())
    assert transport.kinds().count("clear") == 2  # the second hold's; the commit adds none
    assert engine.heard and session.ledger.commits == 1
    await session.close("test")
