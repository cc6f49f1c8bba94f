"""A stand-in for Kyutai's Moshi server (``/api/chat``), message for message.

Follows kyutai-labs/moshi ``moshi/moshi/server.py``: on connect the handshake ``b"\\x00"``;
binary messages of kind ``1`` carry an Ogg-Opus stream (decoded here with Kyutai's own ``sphn``
``OpusStreamReader``, so the engine's Ogg and Opus are checked against the implementation the
real server uses); for every 80 ms (1920-sample) frame of caller audio, one frame of output
(``sphn.OpusStreamWriter``, sent as kind ``1``) and, when the model says a word, a kind ``2``
text message. Output is paced by input, as the real server's loop is.

The "model" is full-duplex like Moshi: silence while the caller talks, a reply (a 440 Hz tone
with the words ``" reply N"``) once the caller has been quiet ``gap_ms`` after speaking, and it
stops by itself ``yield_ms`` after the caller starts talking over it. ``busy`` never sends the
handshake (a server whose single model is taken); ``error_after_frames`` sends a kind ``5``
error and closes.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import sphn
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .common import run_server

__all__ = ["MoshiRecord", "MoshiScript", "MoshiStandIn"]

RATE = 24000
FRAME = 1920  # 80 ms
FRAME_MS = 80
REPLY_FREQ = 440.0


@dataclass
class MoshiScript:
    reply_ms: int = 1200
    gap_ms: int = 320
    yield_ms: int = 160
    threshold: float = 0.02  # float RMS of a speech frame
    busy: bool = False
    error_after_frames: int | None = None


@dataclass
class MoshiRecord:
    frames_in: int = 0
    messages_in: int = 0
    #: Caller audio as the server decoded it (float32 at 24 kHz).
    decoded: list[np.ndarray] = field(default_factory=list)
    words_sent: list[str] = field(default_factory=list)
    replies: int = 0
    yielded: int = 0
    kinds_in: set[int] = field(default_factory=set)
    #: time.monotonic() at each audio message's arrival and each audio message's send.
    in_times: list[float] = field(default_factory=list)
    out_times: list[float] = field(default_factory=list)
    closed: bool = False

    def caller_audio(self) -> np.ndarray:
        return np.concatenate(self.decoded) if self.decoded else np.zeros(0, np.float32)


class MoshiStandIn:
    def __init__(self, script: MoshiScript | None = None) -> None:
        self.script = script or MoshiScript()
        self.connections: list[MoshiRecord] = []
        self.url = ""
        self._stack = contextlib.AsyncExitStack()

    async def _handle(self, ws: ServerConnection) -> None:
        record = MoshiRecord()
        self.connections.append(record)
        script = self.script
        reader = sphn.OpusStreamReader(RATE)
        writer = sphn.OpusStreamWriter(RATE)
        pending = np.zeros(0, np.float32)
        speaking_left = 0  # ms of reply still to say
        heard_speech, quiet_ms, overlap_ms, phase = False, 0, 0, 0
        try:
            if script.busy:
                await ws.wait_closed()
                return
            await ws.send(b"\x00")
            async for message in ws:
                if not isinstance(message, bytes) or not message:
                    continue
                record.messages_in += 1
                record.in_times.append(time.monotonic())
                record.kinds_in.add(message[0])
                if message[0] != 1:
                    continue
                pcm = reader.append_bytes(message[1:])
                pending = np.concatenate([pending, pcm])
                while len(pending) >= FRAME:
                    frame, pending = pending[:FRAME], pending[FRAME:]
                    record.frames_in += 1
                    record.decoded.append(frame)
                    if (
                        script.error_after_frames is not None
                        and record.frames_in >= script.error_after_frames
                        and len(self.connections) == 1
                    ):
                        await ws.send(b"\x05model crashed")
                        await ws.close()
                        return
                    loud = float(np.sqrt(np.mean(frame * frame))) > script.threshold
                    if speaking_left > 0:
                        overlap_ms = overlap_ms + FRAME_MS if loud else 0
                        if overlap_ms >= script.yield_ms:  # talked over: stop
                            speaking_left, overlap_ms = 0, 0
                            record.yielded += 1
                    elif loud:
                        heard_speech, quiet_ms = True, 0
                    elif heard_speech:
                        quiet_ms += FRAME_MS
                        if quiet_ms >= script.gap_ms:
                            heard_speech, quiet_ms = False, 0
                            speaking_left = script.reply_ms
                            record.replies += 1
                            for word in (" reply", f" {record.replies}"):
                                record.words_sent.append(word)
                                await ws.send(b"\x02" + word.encode())
                    if speaking_left > 0:
                        t = (np.arange(FRAME) + phase) / RATE
                        out = (0.3 * np.sin(2 * np.pi * REPLY_FREQ * t)).astype(np.float32)
                        phase += FRAME
                        speaking_left -= FRAME_MS
                    else:
                        out = np.zeros(FRAME, np.float32)
                    data = writer.append_pcm(out)
                    if len(data):
                        record.out_times.append(time.monotonic())
                        await ws.send(b"\x01" + bytes(data))
        except ConnectionClosed:
            pass
        finally:
            record.closed = True

    async def __aenter__(self) -> MoshiStandIn:
        self.url = await self._stack.enter_async_context(run_server(self._handle)) + "/api/chat"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
