"""The asyncio side of a remote engine session: one websocket at a time, pumped both ways.

Every vendor's protocol lives in a sans-I/O object (``openai_protocol``, ``gemini_protocol``,
``moshi_protocol``) that takes server messages in, gives engine events out and keeps the
messages to write in its ``outbox``. :class:`RemoteSession` only moves bytes:

- ``send_audio`` (the gateway's per-frame hot path) hands the frame to the protocol, which
  encodes it into the outbox, and wakes the writer: no await, no task per frame;
- per connection one reader (server messages -> protocol -> ``self.channel``) and one writer
  (the only coroutine that writes the socket), both owned by one runner task per call;
- when a connection ends under a live call (the vendor's session limit, a ``goAway``, a dropped
  socket) the runner dials again and the protocol re-establishes the conversation (Gemini
  resumes by handle, OpenAI replays the transcript, Moshi starts afresh); caller audio waits in
  the protocol's bounded queue meanwhile, so none is lost to the switch;
- a session that cannot open raises ``EngineUnavailable`` from :meth:`RemoteSession.start`
  (the call takes its route's fallback); one that breaks beyond repair ends ``events()`` with
  ``EngineFailed``.

Vendor errors are mapped here, at the boundary: websockets' ``InvalidStatus`` (HTTP 401/403/404
on the upgrade), ``InvalidHandshake``, ``OSError`` and time-outs while opening, and a
``VendorError`` the protocol reports before it is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from engine.base import EngineEvent, EngineFailed, EngineSession, EngineUnavailable, Metric
from engine.remote.errors import RemoteError, VendorError
from engine.remote.keypad import KeypadBuffer

__all__ = ["Dial", "RemoteSession", "WireProtocol", "dial"]

log = logging.getLogger("overtalk.engine.remote")

#: Opens one websocket to the vendor (the seam tests and benchmarks may replace).
Dial = Callable[[], Awaitable[ClientConnection]]

#: Delays before each reconnect attempt; after the last one fails the call's engine failed.
RECONNECT_DELAYS = (0.0, 0.25, 1.0)
#: Reconnects allowed over one call (a vendor that keeps dropping us is a failed engine).
MAX_RECONNECTS = 20
#: How long close() lets the writer flush what is queued before it cuts the socket.
CLOSE_FLUSH_S = 1.0
#: Largest server message accepted (a long audio delta is ~100 KiB of base64).
MAX_MESSAGE = 4 * 1024 * 1024


class WireProtocol(Protocol):
    """What :class:`RemoteSession` needs of a vendor's sans-I/O protocol object."""

    fatal: VendorError | None
    connections: int

    @property
    def outbox(self) -> deque[str] | deque[bytes]:
        """Messages to write, in order (read-only here: each protocol owns its queue)."""
        ...

    @property
    def ready(self) -> bool: ...

    def connection_made(self) -> None: ...

    def connection_lost(self) -> None: ...

    def receive(self, data: str | bytes, now: float) -> list[EngineEvent]: ...


def dial(url: str, headers: Mapping[str, str], *, open_timeout: float = 10.0) -> Dial:
    """A :data:`Dial` for ``url`` with ``headers`` (credentials travel in headers, not URLs)."""

    async def open_socket() -> ClientConnection:
        return await connect(
            url,
            additional_headers=dict(headers),
            open_timeout=open_timeout,
            max_size=MAX_MESSAGE,
            compression=None,  # per-message deflate costs CPU on every 20 ms frame
            close_timeout=2,
            user_agent_header="overtalk",
        )

    return open_socket


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} on the websocket upgrade"
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        return f"closed {rcvd.code} {rcvd.reason}".strip() if rcvd else "connection lost"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


class RemoteSession(EngineSession):
    """An engine session whose model is a websocket away. See the module docstring.

    Subclasses pass their protocol and override :meth:`encode_audio` (how a frame becomes an
    outbox message) and, when the protocol keeps time, :meth:`next_deadline`/:meth:`on_timer`.
    """

    def __init__(
        self,
        sample_rate: int,
        audio_format: str,
        protocol: WireProtocol,
        dial: Dial,
        *,
        name: str,
        ready_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(sample_rate, audio_format)
        self.protocol = protocol
        self.name = name
        self._dial = dial
        self._ready_timeout = ready_timeout
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self.reconnects = 0
        self._keypad = KeypadBuffer()
        self._keypad_timer: asyncio.TimerHandle | None = None

    # -- hot path (gateway) ------------------------------------------------------------------

    def send_audio(self, pcm: bytes) -> None:
        if self.encode_audio(pcm):
            self._wakeup.set()

    def encode_audio(self, pcm: bytes) -> bool:
        """Hand one caller frame to the protocol; True when there is something to write."""
        raise NotImplementedError

    def before_write(self) -> None:
        """The writer is about to drain the outbox: last chance to fill it (Opus encoding)."""

    def wake(self) -> None:
        """The protocol queued messages outside the reader (played, dtmf): write them."""
        if self.protocol.outbox:
            self._wakeup.set()

    # -- the caller's keypad -----------------------------------------------------------------

    def dtmf(self, digit: str) -> None:
        """Group the caller's keys (:mod:`engine.remote.keypad`) and tell the model in words."""
        if self._keypad_timer is not None:
            self._keypad_timer.cancel()
            self._keypad_timer = None
        text = self._keypad.press(digit, self._clock())
        if text is not None:
            self._tell_keys(text)
        elif self._keypad.deadline is not None:
            delay = self._keypad.deadline - self._clock()
            self._keypad_timer = asyncio.get_running_loop().call_later(delay, self._keys_due)

    def _keys_due(self) -> None:
        self._keypad_timer = None
        text = self._keypad.due(self._clock())
        if text is not None:
            self._tell_keys(text)

    def _tell_keys(self, text: str) -> None:
        if self.send_keys(text):
            self.wake()
        else:
            log.info("= %s takes no text: keys not passed on (%s)", self.name, text)

    def send_keys(self, text: str) -> bool:
        """Give the model the words for the caller's keys; False: it takes audio only."""
        return False

    # -- time (for protocols with deadlines) -------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` is next due, on ``clock``; None: no deadline."""
        return None

    def on_timer(self, now: float) -> None:
        """A deadline from :meth:`next_deadline` passed."""

    # -- lifetime ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open and set up the first connection, then run; EngineUnavailable if it cannot."""
        try:
            ws = await self._open_ready()
        except (RemoteError, OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
            raise EngineUnavailable(f"{self.name}: {_describe(exc)}") from exc
        self._runner = asyncio.get_running_loop().create_task(
            self._run(ws), name=f"{self.name}-session"
        )

    async def _open_ready(self) -> ClientConnection:
        """Dial and drive the protocol's set-up until it is ready (or fails)."""
        protocol = self.protocol
        async with asyncio.timeout(self._ready_timeout):
            ws = await self._dial()
            try:
                protocol.connection_made()
                await self._flush(ws)
                while not protocol.ready:
                    data = await ws.recv()
                    self._deliver(protocol.receive(data, self._clock()))
                    if protocol.fatal is not None:
                        raise protocol.fatal
                    await self._flush(ws)
            except BaseException:
                protocol.connection_lost()
                await ws.close()
                raise
        log.info("= %s session ready (connection %d)", self.name, protocol.connections)
        return ws

    async def _flush(self, ws: ClientConnection) -> None:
        outbox = self.protocol.outbox
        while outbox:
            await ws.send(outbox.popleft())

    def _deliver(self, events: list[EngineEvent]) -> None:
        put = self.channel.put
        for event in events:
            put(event)

    async def _run(self, ws: ClientConnection) -> None:
        """One call's connections, in turn, until the call or the engine ends."""
        error: EngineFailed | None = None
        try:
            while True:
                why = await self._pump(ws)
                self.protocol.connection_lost()
                if self._closing:
                    return
                if self.switch_requested():
                    log.info("= %s moving the call to a new connection", self.name)
                else:
                    log.warning("x %s connection ended mid-call (%s); reconnecting", self.name, why)
                ws = await self._reconnect(why)
        except EngineFailed as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - any fault ends this call's engine only
            log.exception("x %s session failed", self.name)
            error = EngineFailed(f"{self.name}: {exc!r}")
        finally:
            self.channel.close(error)

    async def _reconnect(self, why: str) -> ClientConnection:
        if self.reconnects >= MAX_RECONNECTS:
            raise EngineFailed(f"{self.name}: {why}; {MAX_RECONNECTS} reconnects used up")
        last = why
        for delay in RECONNECT_DELAYS:
            if delay:
                await asyncio.sleep(delay)
            if self._closing:
                raise EngineFailed(f"{self.name}: closed while reconnecting")
            try:
                ws = await self._open_ready()
            except (RemoteError, OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                last = _describe(exc)
                log.warning("x %s reconnect failed: %s", self.name, last)
                continue
            self.reconnects += 1
            self.channel.put(Metric("engine_reconnects", float(self.reconnects)))
            return ws
        raise EngineFailed(f"{self.name}: {why}; reconnecting failed: {last}")

    async def _pump(self, ws: ClientConnection) -> str:
        """Read and write one connection until it ends; returns why it ended."""
        writer = asyncio.get_running_loop().create_task(self._write(ws))
        try:
            return await self._read(ws, writer)
        finally:
            if not writer.done():
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer
            await ws.close()

    async def _read(self, ws: ClientConnection, writer: asyncio.Task[None]) -> str:
        protocol = self.protocol
        clock = self._clock
        loop = asyncio.get_running_loop()
        while True:
            deadline = self.next_deadline()
            at = None if deadline is None else loop.time() + (deadline - clock())
            try:
                async with asyncio.timeout_at(at):
                    data = await ws.recv()
            except TimeoutError:
                self.on_timer(clock())
            except ConnectionClosed as exc:
                return _describe(exc)
            else:
                self._deliver(protocol.receive(data, clock()))
            if protocol.fatal is not None:
                return f"vendor ended the session: {protocol.fatal}"
            if self.switch_requested():
                return "switching connection"
            if writer.done():
                return "writer stopped"
            if protocol.outbox:
                self._wakeup.set()

    def switch_requested(self) -> bool:
        """Whether the protocol asked to move to a new connection now (Gemini ``goAway``)."""
        return False

    async def _write(self, ws: ClientConnection) -> None:
        outbox = self.protocol.outbox
        wakeup = self._wakeup
        while True:
            wakeup.clear()  # before filling: a wake-up from here on means another round
            self.before_write()
            while outbox:
                await ws.send(outbox.popleft())
            if self._closing:
                await ws.close()
                return
            if not wakeup.is_set():
                await wakeup.wait()

    async def close(self) -> None:
        """Flush what is queued for the vendor, close the socket, end the event stream."""
        self._closing = True
        if self._keypad_timer is not None:
            self._keypad_timer.cancel()
        self._wakeup.set()
        runner = self._runner
        if runner is not None and not runner.done():
            try:
                await asyncio.wait_for(asyncio.shield(runner), CLOSE_FLUSH_S)
            except TimeoutError:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
        self.channel.close()
