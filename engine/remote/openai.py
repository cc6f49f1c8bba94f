"""The ``openai`` engine: calls answered by an OpenAI Realtime model over its websocket.

Configuration (constructor options, from the gateway's ``engine_options``; then the
environment): ``url`` (``OPENAI_REALTIME_URL``, default the public endpoint), ``api_key``
(``OPENAI_API_KEY``; required), ``model``, ``api`` (``ga``, the only interface the service
still serves), ``audio`` (``pcmu``:
8 kHz mu-law passed through untouched, the right choice for Twilio; ``pcm``: 24 kHz 16-bit),
``voice``, and ``options``: defaults for the per-call settings below.

Per call (dial plan ``bot``: ``prompt``, ``greeting``, ``voice``, ``language``; ``options``):
``model``, ``audio_format``, ``turn_detection`` (``server_vad``, ``semantic_vad``),
``vad_threshold``, ``prefix_padding_ms``, ``silence_duration_ms``,
``idle_timeout_ms``, ``eagerness``, ``create_response``, ``interrupt_response``,
``transcription_model`` (``none`` turns caller transcripts off), ``tools``, ``transfer_to``,
``results``.
See :mod:`engine.remote.openai_protocol` for the protocol and :mod:`engine.remote.tools` for
the call-control functions. Options the service no longer accepts (``api: beta``) or that would
leave the caller unanswered (``turn_detection: none``, ``create_response: false``) are refused
at start-up and by ``overtalk dialplan check`` (:mod:`engine.remote.refused`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engine.base import CallContext, Engine, EngineSession, EngineUnavailable, Problem
from engine.remote.link import Dial, RemoteSession, dial
from engine.remote.openai_protocol import RealtimeConfig, RealtimeProtocol
from engine.remote.refused import problems, refusals
from engine.remote.settings import CallSettings, env_or

__all__ = ["OpenAIRealtimeEngine", "OpenAIRealtimeSession"]

DEFAULT_URL = "wss://api.openai.com/v1/realtime"


class OpenAIRealtimeSession(RemoteSession):
    """One call's Realtime session(s); audio is mu-law at 8 kHz or PCM at 24 kHz."""

    protocol: RealtimeProtocol

    def __init__(self, config: RealtimeConfig, dial: Dial, *, ready_timeout: float) -> None:
        rate, fmt = (8000, "mulaw") if config.audio == "pcmu" else (24000, "pcm16")
        super().__init__(
            rate, fmt, RealtimeProtocol(config), dial, name="openai", ready_timeout=ready_timeout
        )

    def encode_audio(self, pcm: bytes) -> bool:
        self.protocol.append(pcm)
        return self.protocol.ready

    def played(self, ms: int) -> None:
        self.protocol.played(ms)
        self.wake()

    def send_keys(self, text: str) -> bool:
        self.protocol.keys(text)
        return True


class OpenAIRealtimeEngine(Engine):
    """Factory of :class:`OpenAIRealtimeSession`; see the module docstring for settings."""

    name: ClassVar[str] = "openai"

    @classmethod
    def check(cls, options: Mapping[str, str]) -> list[Problem]:
        """The options the service refuses, or that would leave the caller unanswered."""
        return problems(options, cls.name)

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        model: str = "gpt-realtime",
        api: str = "ga",
        audio: str = "pcmu",
        voice: str = "alloy",
        options: Mapping[str, str] | None = None,
        ready_timeout: float = 10.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.url = env_or(url, env, "OPENAI_REALTIME_URL") or DEFAULT_URL
        self.api_key = env_or(api_key, env, "OPENAI_API_KEY")
        if not self.api_key:
            raise ValueError("the openai engine needs an API key: set OPENAI_API_KEY")
        self.options = {k: str(v) for k, v in (options or {}).items()}
        refused = refusals({"api": api, **self.options}, "openai")
        if refused:
            raise ValueError("openai engine: " + "; ".join(refused))
        if api != "ga":
            raise ValueError(f"api must be 'ga', not {api!r}")
        if audio not in ("pcmu", "pcm"):
            raise ValueError(f"audio must be 'pcmu' or 'pcm', not {audio!r}")
        self.model, self.audio, self.voice = model, audio, voice
        self.ready_timeout = ready_timeout

    def session_url(self, model: str) -> str:
        """The endpoint with ``?model=`` (kept if the configured URL already names one)."""
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query))
        query.setdefault("model", model)
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def open(self, context: CallContext) -> EngineSession:
        params = CallSettings({**self.options, **context.parameters})
        try:
            config = RealtimeConfig.from_call(
                params, model=self.model, audio=self.audio, voice=self.voice
            )
        except ValueError as exc:
            raise EngineUnavailable(f"openai: {exc}") from exc
        headers = {"Authorization": f"Bearer {self.api_key}"}
        session = OpenAIRealtimeSession(
            config,
            dial(self.session_url(config.model), headers, open_timeout=self.ready_timeout),
            ready_timeout=self.ready_timeout,
        )
        await session.start()
        return session
