"""OpenAI Realtime barge-in in two stages, without sockets: ``speech_started`` holds, the
service's cancel or new response commits (and only then truncates), and with
``interrupt_response: false`` a cough or a backchannel releases while words commit.

The last tests run the protocol's events through the gateway's call core (CallSession and its
playout), so "the exact sample" is checked on the bytes the carrier would play."""

from __future__ import annotations

import base64

import orjson

from engine.base import Audio, Commit, EngineSession, Hold, Release, Transcript
from engine.remote.openai_protocol import RealtimeConfig, RealtimeProtocol
from engine.remote.settings import CallSettings
from gateway.call.commands import ClearAudio, SendFrame, SendMark
from gateway.call.ledger import CallLedger
from gateway.call.playout import Playout
from gateway.call.session import MAX_HOLD, CallSession


def config(**params: str) -> RealtimeConfig:
    return RealtimeConfig.from_call(
        CallSettings(params), model="gpt-realtime", audio="pcmu", voice="alloy"
    )


def ready(**params: str) -> RealtimeProtocol:
    protocol = RealtimeProtocol(config(**params))
    protocol.connection_made()
    protocol.receive(ev("session.updated", session={}))
    protocol.outbox.clear()
    return protocol


def sent(protocol: RealtimeProtocol) -> list[dict]:
    out = [orjson.loads(m) for m in protocol.outbox]
    protocol.outbox.clear()
    return out


def ev(kind: str, **fields: object) -> bytes:
    return orjson.dumps({"type": kind, **fields})


def delta(audio: bytes, item: str = "item_a", response: str = "resp_1") -> bytes:
    return ev(
        "response.output_audio.delta",
        response_id=response,
        item_id=item,
        delta=base64.b64encode(audio).decode(),
    )


def transcript(text: str) -> bytes:
    return ev(
        "conversation.item.input_audio_transcription.completed",
        item_id="item_in",
        content_index=0,
        transcript=text,
    )


STARTED = ev("input_audio_buffer.speech_started", audio_start_ms=900, item_id="item_in")
STOPPED = ev("input_audio_buffer.speech_stopped", audio_end_ms=1400, item_id="item_in")


def test_server_cancel_commits_the_hold_and_only_then_truncates():
    p = ready()
    p.receive(ev("response.created", response={"id": "resp_1"}))
    p.receive(delta(b"\x10" * 4000))  # 500 ms
    assert p.receive(STARTED) == [Hold()]
    assert sent(p) == []  # nothing truncated on a hold
    assert p.receive(delta(b"\x10" * 800)) == []  # in flight when the server cancelled
    done = ev("response.done", response={"id": "resp_1", "status": "cancelled"})
    assert p.receive(done) == [Commit()]
    p.played(120)
    # The server cancelled it itself: a truncate at the heard position, no response.cancel.
    assert sent(p) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_a",
            "content_index": 0,
            "audio_end_ms": 120,
        }
    ]
    assert (p.holds, p.commits, p.releases) == (1, 1, 0)


def test_server_answer_commits_a_hold_over_a_reply_already_received():
    p = ready()
    p.receive(ev("response.created", response={"id": "resp_1"}))
    p.receive(delta(b"\x10" * 8000))  # 1 s, all received; still playing at the carrier
    p.receive(ev("response.done", response={"id": "resp_1", "status": "completed"}))
    assert p.receive(STARTED) == [Hold()]
    assert p.receive(STOPPED) == []
    # The server answers the sound: a new reply replaces the held one.
    assert p.receive(ev("response.created", response={"id": "resp_2"})) == [Commit()]
    p.played(300)
    assert [(m["type"], m.get("audio_end_ms")) for m in sent(p)] == [
        ("conversation.item.truncate", 300)
    ]  # nothing to cancel, nothing to ask for: the server answered
    assert p.receive(delta(b"\x20" * 160, "item_b", "resp_2")) == [Audio(b"\x20" * 160)]


def test_server_speech_inside_an_open_hold_opens_no_second_one():
    p = ready()
    p.receive(delta(b"\x10" * 800))
    assert p.receive(STARTED) == [Hold()]
    assert p.receive(STARTED) == []
    assert p.holds == 1


def test_client_releases_a_cough_without_truncating_and_the_reply_talks_on():
    p = ready(interrupt_response="false")
    p.receive(ev("response.created", response={"id": "resp_1"}))
    p.receive(delta(b"\x10" * 4000))
    assert p.receive(STARTED) == [Hold()]
    # The response is not cancelled: its audio keeps coming (held at the gateway).
    assert p.receive(delta(b"\x11" * 800)) == [Audio(b"\x11" * 800)]
    assert p.receive(STOPPED) == []  # the server could not answer: a response is active
    assert p.receive(transcript("[cough]")) == [Release(), Transcript("caller", "[cough]")]
    assert p.receive(delta(b"\x12" * 800)) == [Audio(b"\x12" * 800)]
    assert sent(p) == []  # no truncate, no cancel, no response.create
    assert p.truncations == [] and p.stale_deltas_dropped == 0
    assert (p.holds, p.commits, p.releases) == (1, 0, 1)


def test_client_releases_no_words_and_backchannels_and_keeps_the_caller_transcript():
    p = ready(interrupt_response="false")
    p.receive(ev("response.created", response={"id": "resp_1"}))
    p.receive(delta(b"\x10" * 4000))
    for said, events in (
        ("", [Release()]),
        ("Uh-huh.", [Release(), Transcript("caller", "Uh-huh.")]),
        ("Hmm.", [Release(), Transcript("caller", "Hmm.")]),
        ("Right.", [Release(), Transcript("caller", "Right.")]),
    ):
        assert p.receive(STARTED) == [Hold()]
        p.receive(STOPPED)
        assert p.receive(transcript(said)) == events, said
    assert sent(p) == [] and p.releases == 4


def test_client_commits_words_cancels_the_kept_reply_and_asks_for_an_answer_after_it():
    p = ready(interrupt_response="false")
    p.receive(ev("response.created", response={"id": "resp_1"}))
    p.receive(delta(b"\x10" * 4000))
    assert p.receive(STARTED) == [Hold()]
    p.receive(delta(b"\x10" * 800))
    p.receive(STOPPED)
    said = "No, I said Tuesday."
    assert p.receive(transcript(said)) == [Commit(), Transcript("caller", said)]
    assert sent(p) == []  # nothing until the gateway reports what was heard
    p.played(250)
    assert [(m["type"], m.get("response_id"), m.get("audio_end_ms")) for m in sent(p)] == [
        ("response.cancel", "resp_1", None),
        ("conversation.item.truncate", None, 250),
    ]
    assert p.receive(delta(b"\x10" * 800)) == []  # the cancelled reply's late audio
    # One response at a time: the answer is asked for once the cancelled one is done.
    p.receive(ev("response.done", response={"id": "resp_1", "status": "cancelled"}))
    assert sent(p) == [{"type": "response.create"}]
    p.receive(ev("response.created", response={"id": "resp_2"}))
    assert p.receive(delta(b"\x20" * 160, "item_b", "resp_2")) == [Audio(b"\x20" * 160)]


def test_client_without_transcription_commits_when_the_speech_stops():
    p = ready(interrupt_response="false", transcription_model="none")
    p.receive(ev("response.created", response={"id": "resp_1"}))
    p.receive(delta(b"\x10" * 4000))
    assert p.receive(STARTED) == [Hold()]
    assert p.receive(STOPPED) == [Commit()]


def test_client_refusal_of_the_servers_own_answer_holds_no_request():
    p = ready(interrupt_response="false")
    p.receive(ev("response.created", response={"id": "resp_1"}))
    p.receive(delta(b"\x10" * 4000))
    p.receive(STARTED)
    p.receive(STOPPED)
    error = {
        "type": "invalid_request_error",
        "code": "conversation_already_has_active_response",
        "message": "Conversation already has an active response in progress: resp_1.",
    }
    p.receive(ev("error", error=error))
    assert p.receive(transcript("(laughs)"))[0] == Release()
    p.receive(ev("response.done", response={"id": "resp_1", "status": "completed"}))
    assert sent(p) == []  # the laugh gets no reply of its own


def test_gateway_commit_of_an_open_hold_cancels_and_answers_through_played():
    p = ready(interrupt_response="false")
    p.receive(ev("response.created", response={"id": "resp_1"}))
    p.receive(delta(b"\x10" * 4000))
    p.receive(STARTED)
    p.receive(STOPPED)
    p.played(100)  # the gateway's hold limit committed before any words came
    kinds = [m["type"] for m in sent(p)]
    assert kinds == ["response.cancel", "conversation.item.truncate"]
    assert p.commits == 1
    assert p.receive(transcript("I want to talk to someone.")) == [
        Transcript("caller", "I want to talk to someone.")
    ]  # too late to decide: the hold is over
    p.receive(ev("response.done", response={"id": "resp_1", "status": "cancelled"}))
    assert sent(p) == [{"type": "response.create"}]


# -- through the gateway's call core ---------------------------------------------------------


class RealtimeEngine(EngineSession):
    """The protocol as the gateway sees it: mu-law at 8 kHz, ``played`` to the protocol."""

    def __init__(self, protocol: RealtimeProtocol) -> None:
        super().__init__(8000, "mulaw")
        self.protocol = protocol

    def send_audio(self, pcm: bytes) -> None:
        self.protocol.append(pcm)

    def played(self, ms: int) -> None:
        self.protocol.played(ms)


class Call:
    """The call core fed by server messages, with the carrier's side collected."""

    def __init__(self, protocol: RealtimeProtocol) -> None:
        self.protocol = protocol
        self.now = 100.0
        self.session = CallSession(
            RealtimeEngine(protocol),
            CallLedger("CAhold", "fake"),
            origin=self.now,
            playout=Playout(lead=0.06, mark_every=1),  # holds clear, as in production
        )
        self.frames: list[tuple[int, bytes]] = []  # (generation, payload)
        self.marks: list[str] = []
        self.clears = 0
        self.generation = 0

    def server(self, message: bytes) -> list[object]:
        events = self.protocol.receive(message)
        for event in events:
            self.session.engine_event(event, self.now)
        self._drain()
        return events

    def advance(self, seconds: float) -> None:
        """Time passes; the carrier plays and echoes every mark it has."""
        self.now += seconds
        marks, self.marks = self.marks, []
        for name in marks:
            self.session.receive_mark(name, self.now)
        self.session.handle_timer(self.now)
        self._drain()

    def _drain(self) -> None:
        for command in self.session.commands_to_send():
            match command:
                case SendFrame(frame=frame):
                    self.frames.append((self.generation, bytes(frame)))
                case SendMark(name=name):
                    self.marks.append(name)
                case ClearAudio():
                    self.clears += 1
                    self.generation += 1
                    self.marks.clear()  # their echoes are stale

    def heard(self) -> bytes:
        """What the caller heard: each generation's frames up to where the next began (the
        position the core kept), so a release's audio follows the held sample."""
        return b"".join(frame for _, frame in self.frames)


def reply_audio(ms: int) -> bytes:
    """Mu-law bytes that differ sample to sample, so a repeat or a skip shows."""
    return bytes((i * 7 + 3) % 251 for i in range(ms * 8))


def test_gateway_release_carries_on_from_the_held_sample_with_no_truncate():
    p = ready(interrupt_response="false")
    call = Call(p)
    audio = reply_audio(600)
    call.server(ev("response.created", response={"id": "resp_1"}))
    call.server(delta(audio[:2400]))  # 300 ms
    call.advance(0.04)  # 40 ms played and echoed
    played_before = sum(len(f) for _, f in call.frames)
    assert call.server(STARTED) == [Hold()]
    assert call.clears == 1  # quiet within a network trip
    heard_at_hold = call.session.playout.heard(call.now)
    call.server(delta(audio[2400:]))  # the reply talks on while held
    call.server(STOPPED)
    call.advance(0.2)
    assert call.server(transcript("[coughs]"))[0] == Release()
    for _ in range(40):  # 800 ms of playback, 20 ms at a time
        call.advance(0.02)
    # The caller hears the held sample onward: the first generation up to where it was heard,
    # then the rest with nothing repeated or skipped.
    first = b"".join(f for g, f in call.frames if g == 0)
    rest = b"".join(f for g, f in call.frames if g == 1)
    cut = round(heard_at_hold * 8)
    assert played_before >= cut
    assert first[:cut] + rest == audio
    assert sent_types(p) == []
    assert call.session.ledger.releases == 1 and call.session.ledger.commits == 0
    call.session.close("test", call.now, 1.0e9)


def test_gateway_commit_truncates_at_the_heard_position():
    p = ready()
    call = Call(p)
    call.server(ev("response.created", response={"id": "resp_1"}))
    call.server(delta(reply_audio(500)))
    call.advance(0.04)
    call.server(STARTED)
    heard = call.session.playout.heard(call.now)
    call.advance(0.3)  # the caller talks; the bot stays quiet
    done = ev("response.done", response={"id": "resp_1", "status": "cancelled"})
    assert call.server(done) == [Commit()]
    truncates = [m for m in sent(p) if m["type"] == "conversation.item.truncate"]
    assert [(m["item_id"], m["audio_end_ms"]) for m in truncates] == [("item_a", int(heard))]
    assert call.clears == 1  # the hold's clear; the commit needs none
    assert call.session.ledger.commits == 1
    call.session.close("test", call.now, 1.0e9)


def test_gateway_hold_the_service_leaves_open_is_committed_and_truncated():
    p = ready(interrupt_response="false")
    call = Call(p)
    call.server(ev("response.created", response={"id": "resp_1"}))
    call.server(delta(reply_audio(500)))
    call.advance(0.04)
    call.server(STARTED)
    call.advance(MAX_HOLD + 0.1)
    assert [m["type"] for m in sent(p)] == ["response.cancel", "conversation.item.truncate"]
    assert call.session.ledger.commits == 1
    call.session.close("test", call.now, 1.0e9)


def sent_types(protocol: RealtimeProtocol) -> list[str]:
    return [
        t
        for t in (orjson.loads(m)["type"] for m in protocol.outbox)
        if t != "input_audio_buffer.append"
    ]
