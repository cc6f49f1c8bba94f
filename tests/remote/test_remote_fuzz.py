"""Property-based fuzzing of the hosted engines' server-message parsers.

Whatever a vendor sends, one message can only be dropped, counted, or end the session with a
``VendorError``: ``receive`` never raises. Messages are built from each protocol's own keys so
that the fuzzer reaches the branches behind them, with any JSON value in any place.
"""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.remote.gemini_protocol import GeminiConfig, GeminiProtocol
from engine.remote.moshi_protocol import MoshiProtocol
from engine.remote.openai_protocol import RealtimeConfig, RealtimeProtocol
from engine.remote.settings import CallSettings

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Each server message kind and the fields under it (python-genai types.py, wire names).
GEMINI_TOP = {
    "serverContent": ["modelTurn", "interrupted", "turnComplete", "inputTranscription",
                      "outputTranscription"],
    "toolCall": ["functionCalls"],
    "toolCallCancellation": ["ids"],
    "goAway": ["timeLeft"],
    "sessionResumptionUpdate": ["newHandle", "resumable"],
    "error": ["code", "message", "status"],
}  # fmt: skip
GEMINI_KEYS = ["code", "message", "status", "modelTurn",
               "parts", "inlineData", "mimeType", "data", "interrupted", "turnComplete",
               "inputTranscription", "outputTranscription", "text", "functionCalls", "id",
               "name", "args", "ids", "newHandle", "resumable", "timeLeft"]  # fmt: skip
OPENAI_KEYS = ["type", "response", "id", "status", "delta", "item_id", "response_id",
               "item", "call_id", "arguments", "name", "transcript", "error", "code",
               "message"]  # fmt: skip
OPENAI_TYPES = ["response.output_audio.delta", "input_audio_buffer.speech_started",
                "response.created", "response.done", "response.output_audio_transcript.done",
                "conversation.item.input_audio_transcription.completed",
                "response.output_item.done", "session.updated", "error", "function_call",
                "record_result", "end_call"]  # fmt: skip


def json_values(
    keys: list[str], words: list[str], top: dict[str, list[str]] | None = None
) -> st.SearchStrategy[object]:
    """Objects keyed by the protocol's own names, two levels deep at least, so that every
    branch meets every kind of value (a number where a list belongs, an object for an id)."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(words), st.text(max_size=8)
    )
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(keys), inner, max_size=4),
        ),
        max_leaves=12,
    )
    level = st.dictionaries(st.sampled_from(keys), values, max_size=4)
    if top is None:  # OpenAI: every event names its type
        fields = {k: st.one_of(level, values) for k in keys if k != "type"}
        return st.fixed_dictionaries(
            {"type": st.sampled_from(words)}, optional=fields
        ) | st.dictionaries(st.sampled_from(keys), st.one_of(level, values), max_size=4)
    kinds = [
        st.fixed_dictionaries({kind: st.dictionaries(st.sampled_from(fields), values, max_size=3)})
        for kind, fields in top.items()
    ]
    return st.one_of(*kinds, level)


@FUZZ
@given(st.lists(json_values(GEMINI_KEYS, ["outcome", "f1", "AUDIO", "audio/pcm;rate=24000",
                                          "record_result", "end_call", "5s", "AAAA"],
                            GEMINI_TOP), max_size=6))  # fmt: skip
def test_gemini_receive_never_raises(messages):
    protocol = GeminiProtocol(GeminiConfig.from_call(
        CallSettings({"results": "outcome"}), model="gemini-live", voice=""))  # fmt: skip
    protocol.connection_made()
    protocol.receive(b'{"setupComplete": {}}', 0.0)
    for i, message in enumerate(messages):
        protocol.receive(orjson.dumps(message), float(i))
    assert protocol.violations >= 0


@FUZZ
@given(st.lists(json_values(OPENAI_KEYS, OPENAI_TYPES + ["resp_1", "item_1", "AAAA", "{}"]),
                max_size=6))  # fmt: skip
def test_openai_receive_never_raises(messages):
    protocol = RealtimeProtocol(RealtimeConfig.from_call(
        CallSettings({"results": "outcome"}), model="gpt-realtime", audio="pcmu",
        voice="alloy"))  # fmt: skip
    protocol.connection_made()
    protocol.receive(b'{"type": "session.updated"}')
    for message in messages:
        protocol.receive(orjson.dumps(message))
    protocol.played(100)
    assert protocol.violations >= 0


class _Codec:
    class _Enc:
        frame_bytes = 3840

        def head(self) -> bytes:
            return b"OpusHead"

        def encode(self, pcm: bytes) -> list[bytes]:
            return [b"x"]

    class _Dec:
        def decode(self, packet: bytes) -> bytes:
            return b"\x00\x00" * 10

    def encoder(self) -> _Enc:
        return self._Enc()

    def decoder(self) -> _Dec:
        return self._Dec()


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_moshi_receive_never_raises(messages):
    protocol = MoshiProtocol(_Codec(), serial=lambda: 1)
    protocol.connection_made()
    protocol.receive(b"\x00", 0.0)
    for message in messages:
        protocol.receive(message, 0.0)
    assert protocol.ready or protocol.fatal is not None or protocol.violations >= 0
