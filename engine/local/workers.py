"""The engine's model work, off the event loop: one thread each for VAD, recognition, synthesis.

Sessions hand work over with cheap synchronous calls from the event loop's thread (a deque
append and a wake-up) and get results back as callbacks scheduled on that loop with
``call_soon_threadsafe``, so no model step ever runs on the loop and a slow one delays nothing
but its own queue.

Batching is by backlog: each worker takes everything queued when it wakes (one window per call
per forward, so a call's windows stay in order). The VAD worker also keeps its forwards at
least ``min_interval_s`` apart (10 ms): one call's windows come every 32 ms, so a lone call is
never made to wait, while many calls' windows, which arrive spread over the 32 ms, gather into
one forward instead of one each. A forward of one window costs most of a forward of forty
(measured here on one core: 0.59 ms of CPU for one window, 2.2 ms for forty, 56 us each), so
at 40 calls scoring them one by one took about 0.7 of a core and batching by 10 ms about 0.15,
for at most 10 ms more before a window is scored (5 ms on average). The recogniser batches by
backlog alone, up to ``max_batch`` requests per pass.

torch, ctranslate2 and onnxruntime release the GIL while they compute, so the loop keeps
running frames while a model works.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.local.asr import AsrRequest, Recognizer, Transcription
from engine.local.echo import EchoMonitor
from engine.local.tts import Synthesizer
from engine.local.vad import WINDOW, VadState

log = logging.getLogger("overtalk.engine.local")

__all__ = ["AsrWorker", "TtsWorker", "VadModel", "VadResult", "VadStream", "VadWorker"]


class VadModel(Protocol):
    """Scores a batch of windows, advancing each stream's state (see :class:`SileroVad`)."""

    def forward(self, windows: np.ndarray, states: list[VadState]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class VadResult:
    """One scored window: speech probability, echo residual (dB), level (dBFS)."""

    end: int
    prob: float
    echo_db: float
    level_db: float


class VadStream:
    """One call's VAD state, echo monitor and result callback; owned by the VAD worker thread
    once registered (the session only calls the worker's submit methods)."""

    __slots__ = ("state", "echo", "deliver", "closed", "__weakref__")

    def __init__(
        self, deliver: Callable[[list[VadResult]], None], echo: EchoMonitor | None
    ) -> None:
        self.state = VadState()
        self.echo = echo
        self.deliver = deliver
        self.closed = False


class _Thread:
    """Daemon threads (one unless ``threads`` says more) draining one queue; subclasses
    implement :meth:`_work`."""

    name = "worker"

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"{self.name}: threads must be at least 1, not {threads}")
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._stop = False
        self._count = threads
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stats = threading.Lock()
        #: Seconds spent in model calls, and how many calls (for the benchmark).
        self.busy_s = 0.0
        self.calls = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver results on ``loop``; starts the threads on first use."""
        if self._loop is not None and self._loop is not loop and not self._loop.is_closed():
            if self._loop.is_running():
                raise RuntimeError("a local engine serves one event loop")
        self._loop = loop
        self._threads = [t for t in self._threads if t.is_alive()]
        if not self._threads:
            self._stop = False
        while len(self._threads) < self._count:
            name = self.name if not self._threads else f"{self.name}-{len(self._threads) + 1}"
            thread = threading.Thread(target=self._run, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def _put(self, item: Any) -> None:
        self._queue.append(item)
        self._wake.set()

    def _run(self) -> None:
        queue = self._queue
        while not self._stop:
            self._wake.wait()
            self._wake.clear()
            while queue and not self._stop:
                self._work_once()

    def _work_once(self) -> None:
        """Take one batch and work it; its items (sessions' streams, audio) are released on
        return, not held by the idle thread until the next batch."""
        queue = self._queue
        items = []
        while len(items) < self._max_items():
            try:
                items.append(queue.popleft())
            except IndexError:  # empty, or another thread of this worker took the last
                break
        if not items:
            return
        try:
            self._work(items)
        except Exception:  # one bad batch must not kill the worker for every call
            log.exception("x %s failed on a batch of %d", self.name, len(items))

    def _max_items(self) -> int:
        return 1 << 30

    def _work(self, items: list[Any]) -> None:
        raise NotImplementedError

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # the loop closed between the check and the call
                pass


class VadWorker(_Thread):
    """Batched VAD and echo scoring for every call (see module docstring)."""

    name = "overtalk-vad"

    def __init__(self, model: VadModel, *, min_interval_s: float = 0.010) -> None:
        super().__init__()
        self.model = model
        self.min_interval_s = min_interval_s
        self.windows = 0
        self.forwards = 0

    def _run(self) -> None:
        queue = self._queue
        next_batch = 0.0
        while not self._stop:
            self._wake.wait()
            self._wake.clear()
            while queue and not self._stop:
                wait = next_batch - time.monotonic()
                if wait > 0:  # other calls' windows join this batch meanwhile
                    time.sleep(wait)
                next_batch = time.monotonic() + self.min_interval_s
                self._work_once()

    def submit(self, stream: VadStream, windows: np.ndarray, end: int) -> None:
        """Score ``windows`` (k x 512 float32), the last ending at caller sample ``end``."""
        self._put((stream, windows, end))

    def add_reference(self, stream: VadStream, audio: np.ndarray, start: int) -> None:
        """Bot audio the caller should hear from sample ``start`` (for the echo check)."""
        self._put((stream, audio, -start - 1))  # a negative end marks a reference

    def cut_reference(self, stream: VadStream, at: int) -> None:
        """The bot was cut off at sample ``at``: no echo of what was to follow."""
        self._put((stream, None, at))

    def _work(self, items: list[tuple[VadStream, np.ndarray | None, int]]) -> None:
        pending: dict[VadStream, list[tuple[np.ndarray, int]]] = {}
        for stream, audio, end in items:
            if stream.closed:
                continue
            if audio is None or end < 0:
                if stream.echo is None:
                    continue
                if audio is None:
                    stream.echo.cut_reference(end)
                else:
                    stream.echo.add_reference(audio, -end - 1)
                continue
            first = end - len(audio) * WINDOW
            todo = pending.setdefault(stream, [])
            for i, window in enumerate(audio):
                todo.append((window, first + (i + 1) * WINDOW))
        results: dict[VadStream, list[VadResult]] = {s: [] for s in pending}
        depth = max((len(v) for v in pending.values()), default=0)
        for r in range(depth):
            streams = [s for s, v in pending.items() if len(v) > r]
            batch = np.stack([pending[s][r][0] for s in streams])
            t0 = time.perf_counter()
            probs = self.model.forward(batch, [s.state for s in streams])
            self.busy_s += time.perf_counter() - t0
            self.forwards += 1
            self.windows += len(streams)
            energy = np.mean(batch.astype(np.float64) ** 2, axis=1)
            levels = 10.0 * np.log10(energy + 1e-12)
            for i, stream in enumerate(streams):
                window, end = pending[stream][r]
                echo_db = stream.echo.assess(window, end) if stream.echo is not None else 0.0
                results[stream].append(VadResult(end, float(probs[i]), echo_db, float(levels[i])))
        if results:
            self._call_soon(_deliver_all, results)


def _deliver_all(results: dict[VadStream, list[VadResult]]) -> None:
    for stream, scored in results.items():
        if not stream.closed and scored:
            stream.deliver(scored)


class AsrWorker(_Thread):
    """Runs the recogniser on batches of requests; each result goes to its callback.

    With ``threads`` > 1, that many passes run at once (the recogniser must allow it, as
    CTranslate2 does with as many replicas): callers' turns come in bursts, and one thread
    making passes one after another left the other core idle while requests queued (the
    overload benchmark's callers, all answering at once, waited 239 ms per request at 40
    calls with the gateway's process at 98 % of one core of two).
    """

    name = "overtalk-asr"

    def __init__(self, recognizer: Recognizer, max_batch: int = 8, threads: int = 1) -> None:
        super().__init__(threads)
        self.recognizer = recognizer
        self.max_batch = max_batch
        #: Recognition time per pass, seconds (for metrics and the benchmark).
        self.last_s = 0.0
        #: Requests recognised, and the seconds they waited in the queue in all (the benchmark
        #: tells a slow pass from a long queue by them).
        self.requests = 0
        self.queued_s = 0.0

    def submit(
        self, request: AsrRequest, done: Callable[[Transcription | None, float], None]
    ) -> None:
        """Transcribe; ``done(result, seconds)`` runs on the loop (None: recognition failed)."""
        self._put((request, done, time.perf_counter()))

    def _max_items(self) -> int:
        return self.max_batch

    def _work(
        self, items: list[tuple[AsrRequest, Callable[[Transcription | None, float], None], float]]
    ) -> None:
        t0 = time.perf_counter()
        queued_s = sum(t0 - queued for _, _, queued in items)
        try:
            texts: Sequence[Transcription | None] = self.recognizer.transcribe(
                [r for r, _, _ in items]
            )
        except Exception:
            log.exception("x recognition failed for %d requests", len(items))
            texts = [None] * len(items)
        elapsed = time.perf_counter() - t0
        with self._stats:
            self.busy_s += elapsed
            self.calls += 1
            self.requests += len(items)
            self.queued_s += queued_s
            self.last_s = elapsed
        for (_, done, _), text in zip(items, texts, strict=True):
            self._call_soon(done, text, elapsed)


class TtsWorker(_Thread):
    """Synthesises phrases; live requests go before pre-rendering of prompts."""

    name = "overtalk-tts"

    def __init__(self) -> None:
        super().__init__()
        self._background: deque[Any] = deque()

    def submit(
        self,
        synthesizer: Synthesizer,
        text: str,
        done: Callable[[bytes | None], None],
        *,
        background: bool = False,
    ) -> None:
        """Render ``text``; ``done(pcm)`` runs on the loop (None: synthesis failed)."""
        item = (synthesizer, text, done)
        if background:
            self._background.append(item)
            self._wake.set()
        else:
            self._put(item)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait()
            self._wake.clear()
            while (self._queue or self._background) and not self._stop:
                source = self._queue if self._queue else self._background
                try:
                    self._work([source.popleft()])
                except Exception:
                    log.exception("x synthesis worker failed")

    def _work(self, items: list[tuple[Synthesizer, str, Callable[[bytes | None], None]]]) -> None:
        for synthesizer, text, done in items:
            t0 = time.perf_counter()
            try:
                pcm: bytes | None = synthesizer.synthesize(text)
            except Exception:
                log.exception("x could not synthesise %r", text)
                pcm = None
            self.busy_s += time.perf_counter() - t0
            self.calls += 1
            self._call_soon(done, pcm)
