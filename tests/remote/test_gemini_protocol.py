"""The Gemini Live protocol object alone: no sockets, no event loop, time passed in."""

from __future__ import annotations

import base64

import orjson
import pytest

from engine.base import Audio, Hangup, Interrupt, Result, Transcript
from engine.remote.gemini_protocol import GeminiConfig, GeminiProtocol, parse_duration
from engine.remote.settings import CallSettings


def config(**params: str) -> GeminiConfig:
    return GeminiConfig.from_call(CallSettings(params), model="gemini-live", voice="Kore")


def sent(protocol: GeminiProtocol) -> list[dict]:
    out = [orjson.loads(m) for m in protocol.outbox]
    protocol.outbox.clear()
    return out


def audio(ms: int) -> bytes:
    data = base64.b64encode(b"\x01\x00" * (ms * 24)).decode()
    part = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}
    return orjson.dumps({"serverContent": {"modelTurn": {"parts": [part]}}})


def msg(**fields: object) -> bytes:
    return orjson.dumps(fields)


def ready(protocol: GeminiProtocol, now: float = 0.0) -> GeminiProtocol:
    protocol.connection_made()
    protocol.receive(msg(setupComplete={}), now)
    sent(protocol)
    return protocol


def test_client_setup_carries_config_and_resumption_handle():
    cfg = config(prompt="Be kind.", language="en-US", silence_duration_ms="300",
                 start_sensitivity="low")  # fmt: skip
    setup = cfg.setup(None)["setup"]
    assert setup["model"] == "models/gemini-live"
    assert setup["generationConfig"]["responseModalities"] == ["AUDIO"]
    assert setup["generationConfig"]["speechConfig"] == {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}, "languageCode": "en-US"
    }  # fmt: skip
    assert setup["realtimeInputConfig"] == {
        "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
        "automaticActivityDetection": {
            "startOfSpeechSensitivity": "START_SENSITIVITY_LOW", "silenceDurationMs": 300},
    }  # fmt: skip
    assert setup["sessionResumption"] == {} and "transparent" not in setup["sessionResumption"]
    assert setup["systemInstruction"] == {"parts": [{"text": "Be kind."}]}
    assert cfg.setup("h1")["setup"]["sessionResumption"] == {"handle": "h1"}


def test_client_audio_waits_for_setup_complete_and_declares_its_rate():
    protocol = GeminiProtocol(config(greeting="Welcome"))
    protocol.connection_made()
    protocol.append(b"\x00\x01" * 480)
    assert list(sent(protocol)[0]) == ["setup"]
    protocol.receive(b'{"setupComplete": {}}', 0.0)  # binary frames carry JSON too
    greeting, chunk = sent(protocol)
    assert "Welcome" in greeting["clientContent"]["turns"][0]["parts"][0]["text"]
    assert chunk["realtimeInput"]["audio"]["mimeType"] == "audio/pcm;rate=24000"
    assert base64.b64decode(chunk["realtimeInput"]["audio"]["data"]) == b"\x00\x01" * 480


def test_server_audio_interrupted_and_transcripts_per_turn():
    protocol = ready(GeminiProtocol(config()))
    content = {"serverContent": {"inputTranscription": {"text": "hello"}}}
    assert protocol.receive(orjson.dumps(content), 0.0) == []
    assert protocol.receive(audio(40), 0.1) == [Audio(b"\x01\x00" * 960)]
    protocol.receive(msg(serverContent={"outputTranscription": {"text": "Hi, how"}}), 0.1)
    assert protocol.receive(msg(serverContent={"interrupted": True}), 0.2) == [Interrupt()]
    events = protocol.receive(msg(serverContent={"turnComplete": True}), 0.3)
    assert events == [Transcript("caller", "hello"), Transcript("bot", "Hi, how [interrupted]")]


def test_caller_speech_over_a_finished_reply_interrupts_it_client_side():
    protocol = ready(GeminiProtocol(config()))
    protocol.receive(audio(2000), 0.0)  # 2 s generated at once: audible until ~2 s
    protocol.receive(msg(serverContent={"turnComplete": True}), 0.05)
    speech = msg(serverContent={"inputTranscription": {"text": "wait"}})
    assert protocol.receive(speech, 0.5) == [Interrupt()]
    assert protocol.receive(speech, 0.6) == []  # once per reply
    protocol.receive(audio(100), 3.0)
    assert protocol.receive(speech, 3.5) == []  # that reply ended long ago


def test_caller_cut_mid_generation_drops_the_rest_of_that_reply():
    protocol = ready(GeminiProtocol(config()))
    protocol.receive(audio(500), 0.0)  # the reply is still being generated
    speech = msg(serverContent={"inputTranscription": {"text": "stop"}})
    assert protocol.receive(speech, 0.2) == [Interrupt()]
    # The server had more of that reply on the wire before it saw the caller: none plays.
    assert protocol.receive(audio(200), 0.25) == []
    assert protocol.stale_audio_dropped == 1
    protocol.receive(msg(serverContent={"interrupted": True}), 0.3)
    # The answer to the interruption is a new turn and plays.
    assert protocol.receive(audio(100), 0.6) == [Audio(b"\x01\x00" * 2400)]


def test_caller_cut_after_the_reply_finished_lets_the_next_reply_play():
    protocol = ready(GeminiProtocol(config()))
    protocol.receive(audio(2000), 0.0)
    protocol.receive(msg(serverContent={"turnComplete": True}), 0.05)
    assert protocol.receive(msg(serverContent={"inputTranscription": {"text": "wait"}}), 0.5) == [
        Interrupt()
    ]
    assert protocol.receive(audio(100), 0.9) == [Audio(b"\x01\x00" * 2400)]


def test_go_away_switches_between_turns_once_a_fresh_handle_arrives():
    protocol = ready(GeminiProtocol(config()))
    protocol.receive(msg(sessionResumptionUpdate={"newHandle": "h1", "resumable": True}), 0.0)
    protocol.receive(audio(100), 1.0)  # a turn is running
    protocol.receive(msg(goAway={"timeLeft": "30s"}), 1.1)
    assert not protocol.switch_requested and protocol.next_deadline() == pytest.approx(26.1)
    protocol.receive(msg(serverContent={"turnComplete": True}), 2.0)
    assert not protocol.switch_requested  # h1 predates the turn: its audio would replay
    protocol.receive(msg(sessionResumptionUpdate={"newHandle": "h2", "resumable": True}), 2.1)
    assert protocol.switch_requested and protocol.handle == "h2"
    protocol.append(b"\x00\x00" * 480)  # after the switch decision: held for the next one
    protocol.connection_lost()
    protocol.connection_made()
    assert sent(protocol)[0]["setup"]["sessionResumption"] == {"handle": "h2"}
    protocol.receive(msg(setupComplete={}), 2.5)
    assert [list(m) for m in sent(protocol)] == [["realtimeInput"]]
    assert protocol.resumed == 1


def test_go_away_deadline_forces_the_switch():
    protocol = ready(GeminiProtocol(config()))
    protocol.receive(audio(100), 0.0)
    protocol.receive(msg(goAway={"timeLeft": "6s"}), 0.0)
    protocol.on_timer(0.5)
    assert not protocol.switch_requested
    protocol.on_timer(1.0)
    assert protocol.switch_requested and protocol.next_deadline() is None


def test_audio_since_the_last_handle_is_replayed_after_a_drop():
    protocol = ready(GeminiProtocol(config()))
    protocol.append(b"\x01\x00" * 10)
    protocol.receive(msg(sessionResumptionUpdate={"newHandle": "h1", "resumable": True}), 0.0)
    protocol.append(b"\x02\x00" * 10)
    protocol.append(b"\x03\x00" * 10)
    protocol.connection_lost()
    protocol.connection_made()
    protocol.receive(msg(setupComplete={}), 1.0)
    replayed = [base64.b64decode(m["realtimeInput"]["audio"]["data"])[:1] for m in sent(protocol)
                if "realtimeInput" in m]  # fmt: skip
    assert replayed == [b"\x02", b"\x03"]


def test_tool_calls_answered_and_garbage_counted():
    protocol = ready(GeminiProtocol(config()))
    call = {"functionCalls": [{"id": "f1", "name": "end_call", "args": {}}]}
    assert protocol.receive(msg(toolCall=call), 0.0)[1:] == [Hangup("")]
    (response,) = sent(protocol)
    assert response == {"toolResponse": {"functionResponses": [
        {"id": "f1", "name": "end_call", "response": {"result": "ok"}}]}}  # fmt: skip
    assert protocol.receive(b"\xff\xfe", 0.0) == []
    wrong_rate = audio(10).replace(b"rate=24000", b"rate=16000")
    assert protocol.receive(wrong_rate, 0.0) == []
    assert protocol.violations == 2


def test_durations_parse_as_protobuf_json():
    assert parse_duration("50s") == 50.0 and parse_duration("1.5s") == 1.5
    assert parse_duration("soon") is None and parse_duration(None) is None


def test_keys_go_as_realtime_text_in_order_with_the_audio():
    p = GeminiProtocol(config(), 24000)
    p.append(b"\x00\x00" * 480)
    p.keys("The caller pressed 7 on the phone keypad.")  # before set-up: both wait
    p.connection_made()
    p.receive(msg(setupComplete={}), 0.0)
    inputs = [m["realtimeInput"] for m in sent(p) if "realtimeInput" in m]
    assert "audio" in inputs[0]
    assert inputs[1] == {"text": "The caller pressed 7 on the phone keypad."}


def test_record_result_is_declared_with_the_plans_names_and_reported():
    protocol = ready(GeminiProtocol(config(results="outcome")))
    (tools,) = protocol.config.setup(None)["setup"]["tools"]
    record = next(d for d in tools["functionDeclarations"] if d["name"] == "record_result")
    assert record["parameters"]["properties"]["name"] == {"type": "STRING", "enum": ["outcome"]}
    call = {"functionCalls": [{"id": "f2", "name": "record_result",
                               "args": {"name": "outcome", "value": "cancelled"}}]}  # fmt: skip
    assert protocol.receive(msg(toolCall=call), 0.0)[1:] == [Result({"outcome": "cancelled"})]


def test_greeting_goes_as_client_content_to_2x_and_as_realtime_text_to_3x():
    # Gemini 3.x takes clientContent only as initial history (historyConfig), which never
    # triggers a reply: the greeting request goes in realtimeInput there.
    old = ready_greeting("gemini-2.5-flash-native-audio-preview-12-2025")
    assert "Hello there" in old["clientContent"]["turns"][0]["parts"][0]["text"]
    for model in ("gemini-3.1-flash-live-preview", "models/gemini-3-pro-live"):
        new = ready_greeting(model)
        assert list(new) == ["realtimeInput"] and "Hello there" in new["realtimeInput"]["text"]


def ready_greeting(model: str) -> dict:
    p = GeminiProtocol(config(model=model, greeting="Hello there"))
    p.connection_made()
    sent(p)
    p.receive(msg(setupComplete={}), 0.0)
    (greeting,) = sent(p)
    return greeting


def test_tool_call_cancellation_undoes_a_recorded_result_and_withdraws_unsent_outputs():
    p = ready(GeminiProtocol(config(results="outcome")))
    first = {"functionCalls": [{"id": "f1", "name": "record_result",
                                "args": {"name": "outcome", "value": "interested"}}]}  # fmt: skip
    p.receive(msg(toolCall=first), 0.0)
    sent(p)
    second = {"functionCalls": [{"id": "f2", "name": "record_result",
                                 "args": {"name": "outcome", "value": "confirmed"}}]}  # fmt: skip
    assert p.receive(msg(toolCall=second), 0.1)[1:] == [Result({"outcome": "confirmed"})]
    # Cancelled before its output was written: the output is withdrawn, the value restored.
    events = p.receive(msg(toolCallCancellation={"ids": ["f2"]}), 0.2)
    assert Result({"outcome": "interested"}) in events
    assert not p.outbox and p.tools_cancelled == 1
    assert p.config.tools.settled == {"outcome": "interested"}
    p.receive(msg(toolCallCancellation={"ids": ["f1", "unknown"]}), 0.3)
    assert p.config.tools.settled == {} and p.tools_cancelled == 2


def test_tool_call_cancellation_of_an_action_already_taken_is_counted():
    p = ready(GeminiProtocol(config()))
    p.receive(msg(toolCall={"functionCalls": [{"id": "f1", "name": "end_call", "args": {}}]}), 0)
    sent(p)
    p.receive(msg(toolCallCancellation={"ids": ["f1"]}), 0.1)
    assert p.tools_not_undone == 1 and p.violations == 0


@pytest.mark.parametrize(
    "error",
    [
        {"code": 400, "message": "Request contains an invalid argument.",
         "status": "INVALID_ARGUMENT"},
        {"error": {"code": 429, "message": "Resource has been exhausted.",
                   "status": "RESOURCE_EXHAUSTED"}},
    ],
)  # fmt: skip
def test_server_json_errors_end_the_session_with_the_vendors_words(error):
    p = ready(GeminiProtocol(config()))
    p.receive(orjson.dumps(error), 0.0)
    body = error.get("error", error)
    assert p.fatal is not None and p.fatal.message == body["message"]
    assert body["status"] in p.fatal.code


def test_unknown_server_kinds_are_neither_errors_nor_violations():
    p = ready(GeminiProtocol(config()))
    p.receive(msg(usageMetadata={"totalTokenCount": 5}), 0.0)
    p.receive(msg(someFutureKind={}), 0.0)
    assert p.fatal is None and p.violations == 0


def test_interrupted_after_turn_complete_cuts_audible_audio_but_marks_no_next_turn():
    p = ready(GeminiProtocol(config()))
    p.receive(audio(1000), 0.0)
    p.receive(msg(serverContent={"outputTranscription": {"text": "first"}}), 0.0)
    assert p.receive(msg(serverContent={"turnComplete": True}), 0.5) == [Transcript("bot", "first")]
    assert p.receive(msg(serverContent={"interrupted": True}), 0.6) == [Interrupt()]
    p.receive(audio(100), 1.0)
    p.receive(msg(serverContent={"outputTranscription": {"text": "second"}}), 1.0)
    events = p.receive(msg(serverContent={"turnComplete": True}), 1.2)
    assert events == [Transcript("bot", "second")]  # not "[interrupted]"


def test_resumable_false_updates_keep_the_last_handle():
    p = ready(GeminiProtocol(config()))
    p.receive(msg(sessionResumptionUpdate={"newHandle": "h1", "resumable": True}), 0.0)
    p.receive(audio(100), 0.1)
    p.receive(msg(sessionResumptionUpdate={"newHandle": "", "resumable": False}), 0.2)
    p.receive(msg(goAway={"timeLeft": "30s"}), 0.3)
    assert p.handle == "h1" and not p.switch_requested  # mid-turn: wait for a fresh handle


def test_activity_detection_off_is_refused():
    with pytest.raises(ValueError, match="activityStart"):
        config(vad="off")
