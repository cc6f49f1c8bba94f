"""The gateway's 20 ms media clock and its RTP ports, over asyncio.

:class:`MediaClock` is one ``loop.call_at`` every 20 ms on an absolute schedule for every
call's RTP (a call costs no timer of its own): each tick has each call pull the bot's next
frame from its session as the call's :class:`~gateway.carriers.sip.media.RtpStream` packs it,
so the RTP clock is a call's only pacer. :class:`PortPool` hands out the RTP/RTCP port pairs
of the configured range, bound at allocation.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.carriers.sip.calls import SipCall

log = logging.getLogger("overtalk.sip")

__all__ = ["FRAME", "MediaClock", "PortPool"]

FRAME = 0.020


class MediaClock:
    """The gateway's 20 ms clock: one timer for every call's RTP, on an absolute schedule.

    Tick ``k`` is due at ``t0 + k * 20 ms``; a late tick does not shift later ones (each
    stream catches up the frames it owes). It runs only while calls are attached, in a context
    of its own (no call's id), and ticks each call inside that call's context, so whatever a
    tick logs names the call it serves.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.calls: dict[str, SipCall] = {}
        self._next = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._context = contextvars.Context()
        self.ticks = 0

    def next_tick(self) -> float:
        """When the next tick is due (a new stream starts on it, in phase with the rest)."""
        return self._next if self._handle is not None else self.clock()

    def attach(self, call: SipCall) -> None:
        self.calls[call.call_id] = call
        if self._handle is None:
            self._next = self.clock()
            self._schedule()

    def detach(self, call: SipCall) -> None:
        self.calls.pop(call.call_id, None)
        if not self.calls and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._next - self.clock()
        self._handle = loop.call_at(
            loop.time() + max(0.0, delay), self._tick, context=self._context
        )

    def _tick(self) -> None:
        now = self.clock()
        self.ticks += 1
        for call in list(self.calls.values()):
            try:
                call.context.run(call.tick, now)
            except Exception:  # one call's fault must not stop every other call's audio
                call.context.run(
                    log.exception, "x media tick of call %s failed; ending it", call.call_id
                )
                call.gateway.hangup(call.call_id, "internal error in media")
        self._next += FRAME
        if self._next < now - 0.1:
            self._next = now + FRAME  # a long stall: re-base rather than burst
        if self.calls:
            self._schedule()
        else:
            self._handle = None


class PortPool:
    """RTP/RTCP port pairs (even, odd) from the configured range, bound at allocation."""

    def __init__(self, host: str, low: int, high: int) -> None:
        self.host = host
        self.low = low + low % 2
        self.high = high
        self.in_use: set[int] = set()

    def allocate(self) -> tuple[int, socket.socket, socket.socket]:
        """A bound pair; raises OSError when the whole range is taken."""
        ports = list(range(self.low, self.high, 2))
        start = random.randrange(len(ports))
        for port in ports[start:] + ports[:start]:
            if port in self.in_use:
                continue
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtp.bind((self.host, port))
                rtcp.bind((self.host, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            self.in_use.add(port)
            return port, rtp, rtcp
        raise OSError(f"no free RTP port pair in {self.low}-{self.high}")

    def release(self, port: int) -> None:
        self.in_use.discard(port)
