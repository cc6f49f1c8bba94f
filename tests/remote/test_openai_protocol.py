"""The OpenAI Realtime protocol object alone: no sockets, no event loop."""

from __future__ import annotations

import base64

import orjson
import pytest

from engine.base import (
    Audio,
    Commit,
    Hangup,
    Hold,
    Metric,
    Result,
    SendDtmf,
    Transcript,
    Transfer,
)
from engine.remote.openai_protocol import RealtimeConfig, RealtimeProtocol
from engine.remote.output_timeline import OutputTimeline
from engine.remote.settings import CallSettings


def config(**params: str) -> RealtimeConfig:
    return RealtimeConfig.from_call(
        CallSettings(params), model="gpt-realtime", audio="pcmu", voice="alloy"
    )


def sent(protocol: RealtimeProtocol) -> list[dict]:
    out = [orjson.loads(m) for m in protocol.outbox]
    protocol.outbox.clear()
    return out


def ev(kind: str, **fields: object) -> bytes:
    return orjson.dumps({"type": kind, **fields})


def delta(item: str, ms: int, response: str = "resp_1") -> bytes:
    audio = base64.b64encode(b"\x10" * (ms * 8)).decode()
    return ev("response.output_audio.delta", response_id=response, item_id=item, delta=audio)


def ready(protocol: RealtimeProtocol) -> RealtimeProtocol:
    protocol.connection_made()
    protocol.receive(ev("session.created", session={}))
    protocol.receive(ev("session.updated", session={}))
    sent(protocol)
    return protocol


def test_client_renders_ga_session_with_pcmu_and_server_vad_from_options():
    cfg = config(silence_duration_ms="300", interrupt_response="true", prompt="Be brief.")
    session = cfg.session_update()["session"]
    assert session["type"] == "realtime" and session["instructions"] == "Be brief."
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"] == {"format": {"type": "audio/pcmu"}, "voice": "alloy"}
    td = session["audio"]["input"]["turn_detection"]
    assert td == {"type": "server_vad", "silence_duration_ms": 300, "interrupt_response": True}
    assert not {"input_audio_format", "modalities", "turn_detection"} & set(session)


def test_client_renders_pcm_at_24k_and_semantic_vad_in_the_ga_shape():
    session = config(audio_format="pcm", turn_detection="semantic_vad",
                     eagerness="low").session_update()["session"]  # fmt: skip
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    td = session["audio"]["input"]["turn_detection"]
    assert td == {"type": "semantic_vad", "eagerness": "low"}
    assert not {"input_audio_format", "modalities", "turn_detection"} & set(session)


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("api", "beta", "beta_api_shape_disabled"),
        ("turn_detection", "none", "never answer"),
        ("create_response", "false", "never answer"),
    ],
)
def test_client_refuses_options_the_service_refuses_or_that_leave_the_caller_unanswered(
    key, value, says
):
    with pytest.raises(ValueError, match=says) as caught:
        config(**{key: value})
    assert f"option {key}=" in str(caught.value)


def test_client_rejects_bad_options_naming_the_key():
    with pytest.raises(ValueError, match="silence_duration_ms"):
        config(silence_duration_ms="soon")
    with pytest.raises(ValueError, match="turn_detection"):
        config(turn_detection="psychic")
    with pytest.raises(ValueError, match="transfer_to"):
        config(tools="transfer_call")


def test_client_holds_audio_until_session_updated_then_sends_it_in_order():
    protocol = RealtimeProtocol(config(greeting="Hi there"))
    protocol.append(b"\x01" * 160)
    protocol.connection_made()
    protocol.append(b"\x02" * 160)
    assert [m["type"] for m in sent(protocol)] == ["session.update"]
    protocol.receive(ev("session.updated", session={}))
    out = sent(protocol)
    assert [m["type"] for m in out] == [
        "response.create", "input_audio_buffer.append", "input_audio_buffer.append"
    ]  # fmt: skip
    assert "Hi there" in out[0]["response"]["instructions"]
    assert base64.b64decode(out[1]["audio"]) == b"\x01" * 160


def test_server_speech_started_holds_and_late_deltas_are_dropped():
    protocol = ready(RealtimeProtocol(config()))
    protocol.receive(ev("response.created", response={"id": "resp_1"}))
    assert protocol.receive(delta("item_a", 100)) == [Audio(b"\x10" * 800)]
    assert protocol.receive(ev("input_audio_buffer.speech_started", audio_start_ms=1)) == [Hold()]
    assert protocol.receive(delta("item_a", 100)) == []
    assert protocol.stale_deltas_dropped == 1
    # The server's cancel commits; a new response plays normally.
    done = ev("response.done", response={"id": "resp_1", "status": "cancelled"})
    assert protocol.receive(done) == [Commit()]
    protocol.receive(ev("response.created", response={"id": "resp_2"}))
    assert protocol.receive(delta("item_b", 20, "resp_2")) == [Audio(b"\x10" * 160)]


def test_server_speech_with_nothing_emitted_since_the_last_cut_does_not_interrupt():
    protocol = ready(RealtimeProtocol(config()))
    assert protocol.receive(ev("input_audio_buffer.speech_started")) == []
    protocol.receive(delta("item_a", 40))
    protocol.played(40)
    assert protocol.receive(ev("input_audio_buffer.speech_started")) == []


def test_client_truncates_the_playing_item_clamped_and_zeroes_unheard_ones():
    protocol = ready(RealtimeProtocol(config()))
    protocol.receive(delta("item_a", 500))
    protocol.receive(delta("item_b", 300))
    protocol.played(620)  # 500 of a, 120 of b
    assert [(m["item_id"], m["audio_end_ms"]) for m in sent(protocol)] == [("item_b", 120)]
    protocol.receive(delta("item_c", 200))
    protocol.played(10_000)  # beyond what was received: nothing to cut
    assert sent(protocol) == []


def test_client_does_not_truncate_items_of_a_closed_session():
    protocol = ready(RealtimeProtocol(config()))
    protocol.receive(delta("item_a", 500))
    protocol.connection_lost()
    protocol.played(100)
    assert sent(protocol) == []


def test_timeline_maps_positions_inside_an_item_that_played_in_two_runs():
    timeline = OutputTimeline()
    timeline.add("a", 300)
    timeline.add("b", 100)
    timeline.add("a", 200)  # the same item again after another
    cuts = timeline.cut(450)
    assert [(c.item, c.audio_end_ms, c.received_ms) for c in cuts] == [("a", 350, 500.0)]
    assert not timeline.unsettled


def test_server_function_calls_become_actions_with_outputs_for_the_model():
    protocol = ready(RealtimeProtocol(config(transfer_to="+12125550111")))

    def call(name: str, args: dict) -> list:
        item = {"type": "function_call", "name": name, "call_id": "call_1",
                "arguments": orjson.dumps(args).decode()}  # fmt: skip
        return protocol.receive(ev("response.output_item.done", item=item))

    assert call("end_call", {"reason": "bye"})[1:] == [Hangup("bye")]
    out = sent(protocol)
    assert out[0]["item"]["type"] == "function_call_output" and len(out) == 1
    assert call("transfer_call", {"target": "+12125550111"})[1:] == [Transfer("+12125550111")]
    sent(protocol)
    assert call("transfer_call", {"target": "+19005550000"}) == [Metric("tool_transfer_call", 1)]
    out = sent(protocol)
    assert "must be one of" in out[0]["item"]["output"] and out[1]["type"] == "response.create"
    assert call("send_dtmf", {"digits": "12#"})[1:] == [SendDtmf("12#")]


def test_server_transcripts_of_both_sides_with_the_cut_noted():
    protocol = ready(RealtimeProtocol(config()))
    caller = protocol.receive(
        ev("conversation.item.input_audio_transcription.completed", transcript=" Hello ")
    )
    assert caller == [Transcript("caller", "Hello")]
    protocol.receive(delta("item_a", 1000))
    protocol.played(400)
    (bot,) = protocol.receive(
        ev("response.output_audio_transcript.done", item_id="item_a", transcript="Hi there")
    )
    assert bot == Transcript("bot", "Hi there [cut at 0.40 s of 1.00 s]")


def test_server_errors_before_ready_are_fatal_after_only_session_expiry():
    protocol = RealtimeProtocol(config())
    protocol.connection_made()
    protocol.receive(ev("error", error={"type": "invalid_request_error", "message": "bad"}))
    assert protocol.fatal is not None and "bad" in str(protocol.fatal)
    protocol = ready(RealtimeProtocol(config()))
    protocol.receive(ev("error", error={"type": "invalid_request_error", "message": "meh"}))
    assert protocol.fatal is None and protocol.errors == ["invalid_request_error: meh"]
    protocol.receive(ev("error", error={"code": "session_expired", "message": "limit"}))
    assert protocol.fatal is not None and protocol.fatal.code == "session_expired"


def test_server_garbage_is_counted_per_message():
    protocol = ready(RealtimeProtocol(config()))
    assert protocol.receive(b"{not json") == []
    assert protocol.receive(b"[1, 2]") == []
    assert protocol.receive(ev("response.output_audio.delta", delta="!!", item_id="x")) == []
    assert protocol.receive(ev("some.future.event")) == []
    assert protocol.violations == 3


def test_reconnect_replays_the_conversation_and_unsent_audio():
    protocol = ready(RealtimeProtocol(config(greeting="Hi")))
    protocol.receive(
        ev("conversation.item.input_audio_transcription.completed", transcript="my order")
    )
    protocol.receive(ev("response.output_audio_transcript.done", item_id="i", transcript="ok"))
    protocol.append(b"\x03" * 160)  # queued, never written
    protocol.connection_lost()
    protocol.connection_made()
    protocol.receive(ev("session.updated", session={}))
    out = sent(protocol)
    kinds = [m["type"] for m in out]
    assert kinds == ["session.update", "conversation.item.create",
                     "conversation.item.create", "input_audio_buffer.append"]  # fmt: skip
    assert out[1]["item"]["content"] == [{"type": "input_text", "text": "my order"}]
    assert out[2]["item"]["content"] == [{"type": "output_text", "text": "ok"}]


def test_keys_become_a_user_message_answered_now_or_after_the_reply_in_progress():
    p = ready(RealtimeProtocol(config()))
    sent(p)
    p.keys("The caller pressed 1 on the phone keypad.")
    item, create = sent(p)
    assert item["type"] == "conversation.item.create"
    assert item["item"]["content"] == [
        {"type": "input_text", "text": "The caller pressed 1 on the phone keypad."}
    ]
    assert create == {"type": "response.create"}
    # Keys pressed while the model speaks: response.create now would be refused by the API.
    p.receive(ev("response.created", response={"id": "resp_9"}))
    p.keys("The caller pressed 2 on the phone keypad.")
    assert [m["type"] for m in sent(p)] == ["conversation.item.create"]
    p.receive(ev("response.done", response={"id": "resp_9", "status": "completed"}))
    assert sent(p) == [{"type": "response.create"}]


def test_function_call_output_waits_for_the_response_carrying_the_call_to_be_done():
    # The function call item is done while its response is still active: response.create
    # now is refused with conversation_already_has_active_response.
    p = ready(RealtimeProtocol(config(results="outcome")))
    p.receive(ev("response.created", response={"id": "resp_1"}))
    item = {"type": "function_call", "name": "record_result", "call_id": "call_1",
            "arguments": '{"name": "outcome", "value": "confirmed"}'}  # fmt: skip
    p.receive(ev("response.output_item.done", response_id="resp_1", item=item))
    assert [m["type"] for m in sent(p)] == ["conversation.item.create"]
    p.receive(ev("response.done", response={"id": "resp_1", "status": "completed"}))
    assert sent(p) == [{"type": "response.create"}]


def test_one_response_create_in_flight_until_response_created_then_done():
    p = ready(RealtimeProtocol(config()))
    p.keys("The caller pressed 1 on the phone keypad.")
    p.keys("The caller pressed 2 on the phone keypad.")  # before response.created arrived
    kinds = [m["type"] for m in sent(p)]
    assert kinds == ["conversation.item.create", "response.create", "conversation.item.create"]
    p.receive(ev("response.created", response={"id": "resp_1"}))
    assert not p.outbox
    p.receive(ev("response.done", response={"id": "resp_1", "status": "completed"}))
    assert sent(p) == [{"type": "response.create"}]


def test_a_refused_create_is_held_until_the_servers_own_response_is_done():
    p = ready(RealtimeProtocol(config()))
    p.keys("The caller pressed 5 on the phone keypad.")
    sent(p)
    # The server's turn detection started a response in the same instant and refused ours.
    p.receive(ev("response.created", response={"id": "resp_vad"}))
    error = {
        "type": "invalid_request_error",
        "code": "conversation_already_has_active_response",
        "message": "Conversation already has an active response in progress: resp_vad.",
    }
    p.receive(ev("error", error=error))
    assert p.fatal is None and not p.outbox
    p.receive(ev("response.done", response={"id": "resp_vad", "status": "completed"}))
    assert sent(p) == [{"type": "response.create"}]


def test_a_cut_response_stays_active_until_its_done():
    p = ready(RealtimeProtocol(config()))
    p.receive(ev("response.created", response={"id": "resp_1"}))
    p.receive(delta("item_1", 100))
    assert p.receive(ev("input_audio_buffer.speech_started")) == [Hold()]
    p.keys("The caller pressed 9 on the phone keypad.")  # the cancelled reply is not done yet
    assert [m["type"] for m in sent(p)] == ["conversation.item.create"]
    p.receive(ev("response.done", response={"id": "resp_1", "status": "cancelled"}))
    assert sent(p) == [{"type": "response.create"}]


def test_keys_before_the_session_is_ready_wait_for_it():
    p = RealtimeProtocol(config())
    p.keys("The caller pressed 3 on the phone keypad.")
    assert not p.outbox
    p.connection_made()
    p.receive(ev("session.updated", session={}))
    kinds = [m["type"] for m in sent(p)]
    assert kinds[-2:] == ["conversation.item.create", "response.create"]


def test_server_record_result_calls_keep_the_results_the_plan_names():
    protocol = ready(RealtimeProtocol(config(results="outcome, do_not_call")))
    tools = {t["name"]: t for t in protocol.config.session_update()["session"]["tools"]}
    assert tools["record_result"]["parameters"]["properties"]["name"]["enum"] == [
        "outcome", "do_not_call",
    ]  # fmt: skip

    def call(args: dict) -> list:
        item = {"type": "function_call", "name": "record_result", "call_id": "call_2",
                "arguments": orjson.dumps(args).decode()}  # fmt: skip
        return protocol.receive(ev("response.output_item.done", item=item))

    assert call({"name": "outcome", "value": "confirmed"})[1:] == [Result({"outcome": "confirmed"})]
    out = sent(protocol)
    assert out[0]["item"]["output"] == '{"result":"recorded"}'
    assert out[1]["type"] == "response.create"  # and the model goes on talking
    assert call({"name": "do_not_call", "value": "yes"})[1:] == [
        Result({"outcome": "confirmed", "do_not_call": "yes"})
    ]
    sent(protocol)
    assert call({"name": "credit_card", "value": "4111"}) == [Metric("tool_record_result", 1)]
    assert "must be one of" in sent(protocol)[0]["item"]["output"]


def test_client_refuses_record_result_without_result_names():
    with pytest.raises(ValueError, match="record_result needs results"):
        config(tools="end_call, record_result")
