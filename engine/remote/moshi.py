"""The ``moshi`` engine: calls answered by a Moshi server (Kyutai's full-duplex model).

Configuration (constructor options, then the environment): ``url`` (``MOSHI_URL``, e.g.
``ws://gpu-host:8998/api/chat``; required), ``frame_ms`` (Opus frame length sent, 80 ms by
default as Moshi's client does), ``bitrate`` (Opus bits per second), ``headers`` (extra
upgrade headers for a proxy in front of the server; values may name environment variables as
``${NAME}``). Moshi takes no per-call settings: its persona is the model's.

Audio is 16-bit PCM at 24 kHz both ways (the gateway resamples from and to the telephone's
8 kHz); Opus coding runs in the session's writer and reader tasks (about 0.3 ms per 80 ms
frame each way), never on the gateway's per-frame path. See
:mod:`engine.remote.moshi_protocol`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import ClassVar

from engine.base import CallContext, Engine, EngineSession
from engine.remote.link import Dial, RemoteSession, dial
from engine.remote.moshi_protocol import RATE, MoshiProtocol
from engine.remote.opus import OpusDecoder, OpusEncoder
from engine.remote.settings import env_or

__all__ = ["MoshiEngine", "MoshiSession"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _PyAvCodec:
    """Opus by libopus through PyAV, one encoder and decoder per connection."""

    def __init__(self, frame_ms: int, bitrate: int) -> None:
        self.frame_ms = frame_ms
        self.bitrate = bitrate

    def encoder(self) -> OpusEncoder:
        return OpusEncoder(self.frame_ms, self.bitrate)

    def decoder(self) -> OpusDecoder:
        return OpusDecoder()


class MoshiSession(RemoteSession):
    protocol: MoshiProtocol

    def __init__(self, protocol: MoshiProtocol, dial: Dial, *, ready_timeout: float) -> None:
        super().__init__(RATE, "pcm16", protocol, dial, name="moshi", ready_timeout=ready_timeout)

    def encode_audio(self, pcm: bytes) -> bool:
        return self.protocol.append(pcm)

    def before_write(self) -> None:
        self.protocol.encode_ready()


class MoshiEngine(Engine):
    """Factory of :class:`MoshiSession`; see the module docstring for settings."""

    name: ClassVar[str] = "moshi"

    def __init__(
        self,
        *,
        url: str | None = None,
        frame_ms: int = 80,
        bitrate: int = 32000,
        headers: Mapping[str, str] | None = None,
        ready_timeout: float = 10.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.url = env_or(url, env, "MOSHI_URL")
        if not self.url:
            raise ValueError("the moshi engine needs the server's URL: set MOSHI_URL")
        OpusEncoder(frame_ms, bitrate)  # fail now, not on the first call, if libopus is missing
        self.codec = _PyAvCodec(frame_ms, bitrate)
        self.headers = {
            k: _ENV_REF.sub(lambda m: env.get(m.group(1), ""), str(v))
            for k, v in (headers or {}).items()
        }
        self.ready_timeout = ready_timeout

    async def open(self, context: CallContext) -> EngineSession:
        session = MoshiSession(
            MoshiProtocol(self.codec),
            dial(self.url, self.headers, open_timeout=self.ready_timeout),
            ready_timeout=self.ready_timeout,
        )
        await session.start()
        return session
