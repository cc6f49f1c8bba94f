"""The ``gemini`` engine: calls answered by a Gemini Live model over ``BidiGenerateContent``.

Configuration (constructor options, then the environment): ``url`` (``GEMINI_LIVE_URL``,
default the Gemini API's v1beta endpoint), ``api_key`` (``GEMINI_API_KEY`` or
``GOOGLE_API_KEY``; required; sent in the ``x-goog-api-key`` header, never in the URL),
``model``, ``voice``, and ``options``: defaults for the per-call settings below.

Per call (dial plan ``bot``: ``prompt``, ``greeting``, ``voice``, ``language``; ``options``):
``model`` (a 3.x model gets its greeting as realtime text), ``start_sensitivity``
and ``end_sensitivity`` (``high``/``low``), ``prefix_padding_ms``, ``silence_duration_ms``,
``interrupt_response``, ``transcripts``, ``context_compression``, ``tools``, ``transfer_to``,
``results``.
The protocol, barge-in and session-limit handling are described in
:mod:`engine.remote.gemini_protocol`. ``vad: off`` is refused at start-up and by ``overtalk
dialplan check``: the service would wait for activity signals nobody sends
(:mod:`engine.remote.refused`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar

from engine.base import CallContext, Engine, EngineSession, EngineUnavailable, Problem
from engine.remote.gemini_protocol import OUTPUT_RATE, GeminiConfig, GeminiProtocol
from engine.remote.link import Dial, RemoteSession, dial
from engine.remote.refused import problems, refusals
from engine.remote.settings import CallSettings, env_or

__all__ = ["GeminiLiveEngine", "GeminiLiveSession"]

DEFAULT_URL = (
    "wss://generativelanguage.googleapis.com/ws/"
    "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
)


class GeminiLiveSession(RemoteSession):
    """One call's Live session(s), 16-bit PCM at 24 kHz both ways."""

    protocol: GeminiProtocol

    def __init__(self, config: GeminiConfig, dial: Dial, *, ready_timeout: float) -> None:
        super().__init__(
            OUTPUT_RATE,
            "pcm16",
            GeminiProtocol(config, OUTPUT_RATE),
            dial,
            name="gemini",
            ready_timeout=ready_timeout,
        )

    def encode_audio(self, pcm: bytes) -> bool:
        self.protocol.append(pcm)
        return self.protocol.ready

    def next_deadline(self) -> float | None:
        return self.protocol.next_deadline()

    def on_timer(self, now: float) -> None:
        self.protocol.on_timer(now)

    def switch_requested(self) -> bool:
        return self.protocol.switch_requested

    def send_keys(self, text: str) -> bool:
        self.protocol.keys(text)
        return True


class GeminiLiveEngine(Engine):
    """Factory of :class:`GeminiLiveSession`; see the module docstring for settings."""

    name: ClassVar[str] = "gemini"

    @classmethod
    def check(cls, options: Mapping[str, str]) -> list[Problem]:
        """The options the service refuses, or that would leave the caller unanswered."""
        return problems(options, cls.name)

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        model: str = "gemini-2.5-flash-native-audio-preview-12-2025",
        voice: str = "",
        options: Mapping[str, str] | None = None,
        ready_timeout: float = 10.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.url = env_or(url, env, "GEMINI_LIVE_URL") or DEFAULT_URL
        self.api_key = env_or(api_key, env, "GEMINI_API_KEY", "GOOGLE_API_KEY")
        if not self.api_key:
            raise ValueError("the gemini engine needs an API key: set GEMINI_API_KEY")
        self.model, self.voice = model, voice
        self.options = {k: str(v) for k, v in (options or {}).items()}
        refused = refusals(self.options, "gemini")
        if refused:
            raise ValueError("gemini engine: " + "; ".join(refused))
        self.ready_timeout = ready_timeout

    async def open(self, context: CallContext) -> EngineSession:
        params = CallSettings({**self.options, **context.parameters})
        try:
            config = GeminiConfig.from_call(params, model=self.model, voice=self.voice)
        except ValueError as exc:
            raise EngineUnavailable(f"gemini: {exc}") from exc
        session = GeminiLiveSession(
            config,
            dial(self.url, {"x-goog-api-key": self.api_key}, open_timeout=self.ready_timeout),
            ready_timeout=self.ready_timeout,
        )
        await session.start()
        return session
