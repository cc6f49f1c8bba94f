"""The test engines on real speech: they listen while they speak."""

import asyncio

import numpy as np
import pytest

from engine.base import Audio, CallContext, Interrupt, Transcript
from engine.echo import EchoEngine
from engine.energy import Edge, EnergySegmenter
from engine.registry import ENGINE_NAMES, create_engine
from engine.tone import ToneEngine

SILENCE = np.zeros(8000, dtype=np.int16)  # 1 s at 8 kHz


def drain(session) -> list:
    events = []
    while session.channel._events:
        events.append(session.channel._events.popleft())
    return events


def feed(session, pcm: np.ndarray, frame: int = 160) -> None:
    data = pcm.astype(np.int16).tobytes()
    for i in range(0, len(data), frame * 2):
        session.send_audio(data[i : i + frame * 2])


def test_engine_segmenter_finds_onset_and_end_of_real_speech(speech_8k):
    seg = EnergySegmenter(8000)
    edges = seg.feed(np.concatenate([SILENCE, speech_8k, SILENCE]).tobytes())
    assert [e.edge for e in edges] == [Edge.ONSET, Edge.END]
    onset_s, end_s = edges[0].at_sample / 8000, edges[1].at_sample / 8000
    assert 1.0 <= onset_s < 1.0 + len(speech_8k) / 8000 / 2
    assert onset_s < end_s <= 1.0 + len(speech_8k) / 8000 + 0.02


async def test_engine_echo_plays_utterance_back_after_it_ends(speech_8k):
    session = await EchoEngine(rate=8000).open(CallContext("CA1"))
    feed(session, np.concatenate([SILENCE, speech_8k]))
    assert not any(isinstance(e, Audio) for e in drain(session))  # still listening
    feed(session, SILENCE)
    audio = [e for e in drain(session) if isinstance(e, Audio)]
    assert len(audio) == 1
    played = np.frombuffer(audio[0].pcm, dtype=np.int16)
    assert len(speech_8k) * 0.7 < len(played) < len(speech_8k) + 8000


async def test_engine_echo_interrupts_itself_when_talked_over(speech_8k):
    session = await EchoEngine(rate=8000).open(CallContext("CA1"))
    feed(session, np.concatenate([SILENCE, speech_8k, SILENCE[:4000]]))
    drain(session)
    feed(session, speech_8k[:4000])  # the caller speaks while the echo plays
    events = drain(session)
    assert any(isinstance(e, Interrupt) for e in events)
    session.played(340)
    assert session.heard == [340]


async def test_engine_echo_does_not_interrupt_after_playback_finished(speech_8k):
    session = await EchoEngine(rate=8000).open(CallContext("CA1"))
    feed(session, np.concatenate([SILENCE, speech_8k, SILENCE, SILENCE, SILENCE]))
    drain(session)
    feed(session, speech_8k)
    assert not any(isinstance(e, Interrupt) for e in drain(session))


async def test_engine_echo_stream_mode_returns_every_frame():
    session = await EchoEngine(rate=8000, mode="stream").open(CallContext("CA1"))
    session.send_audio(b"\x01\x00" * 160)
    assert drain(session) == [Audio(b"\x01\x00" * 160)]


async def test_engine_tone_answers_each_utterance_with_a_tone(speech_8k):
    session = await ToneEngine(rate=8000, seconds=0.5).open(CallContext("CA1"))
    feed(session, np.concatenate([SILENCE, speech_8k, SILENCE]))
    (audio,) = [e for e in drain(session) if isinstance(e, Audio)]
    tone = np.frombuffer(audio.pcm, dtype=np.int16)
    assert len(tone) == 4000
    assert np.argmax(np.abs(np.fft.rfft(tone))) * 8000 / len(tone) == 440


async def test_engine_channel_delivers_events_in_order_and_ends_on_close():
    session = await EchoEngine(rate=8000, mode="stream").open(CallContext("CA1"))

    async def collect() -> list:
        return [e async for e in session.events()]

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)
    session.channel.put(Transcript("bot", "a"))
    session.channel.put(Transcript("bot", "b"))
    await session.close()
    assert await task == [Transcript("bot", "a"), Transcript("bot", "b")]


def test_engine_registry_names_and_errors():
    assert {"echo", "tone"} <= ENGINE_NAMES
    assert create_engine("tone", seconds=0.2).seconds == 0.2
    with pytest.raises(ValueError, match="known: echo, gemini, local, moshi, openai, tone"):
        create_engine("nope")
