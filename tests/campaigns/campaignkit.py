"""Helpers for the campaign tests (imported as ``campaignkit``): campaign files, an invented
clock and a fake carrier."""

from __future__ import annotations

import asyncio
import textwrap
import threading
import uuid
from pathlib import Path

from gateway.campaigns.carrier import CallInfo, DialRequest
from gateway.campaigns.errors import CarrierUnavailable
from gateway.campaigns.store import Store

CALLER_ID = "+13125550150"


def write_campaign(
    root: Path, body: str = "", *, contacts: str | None = None, name: str = "spring"
) -> Path:
    """A campaign file (the defaults below unless ``body`` sets them) and its contact list."""
    root.mkdir(parents=True, exist_ok=True)
    body = textwrap.dedent(body)
    given = {line.split(":", 1)[0] for line in body.splitlines() if ":" in line}
    defaults = {
        "version": "1",
        "name": name,
        "caller_id": f'"{CALLER_ID}"',
        "contacts": "contacts.csv",
        "timezone": "America/Chicago",
    }
    text = "".join(f"{k}: {v}\n" for k, v in defaults.items() if k not in given) + body
    path = root / "campaign.yaml"
    path.write_text(text, encoding="utf-8")
    default = "phone,first_name\n+13125550170,Ann\n+12125550171,Bob\n+14155550172,Cy\n"
    (root / "contacts.csv").write_text(
        textwrap.dedent(contacts) if contacts is not None else default, encoding="utf-8"
    )
    return path


class FakeClock:
    """Invented wall-clock time: ``sleep`` advances it at once and runs the listeners."""

    def __init__(self, start: float) -> None:
        self.t = start
        self.listeners: list = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)
        for listener in self.listeners:
            listener(self.t)
        await asyncio.sleep(0)


class FakeCarrier:
    """A carrier in memory: calls end ``plan(number, n)`` seconds after they are created.

    ``plan`` returns ``(status, answered_by, seconds)`` for the n-th call to a number. Ended
    calls are reported to the store as a status callback would be (``settle``, run whenever
    the clock moves).
    """

    def __init__(self, store: Store, clock: FakeClock, plan=None) -> None:
        self.store = store
        self.clock = clock
        self.plan = plan or (lambda number, n: ("completed", "human", 30.0))
        self.calls: dict[str, dict] = {}
        self.created: list[tuple[float, str]] = []  # (time, number)
        self.live = 0
        self.max_live = 0
        self.fail_next: list[Exception] = []
        self.lose_answer_next = 0  # creates that take effect but answer with an error
        self.lock = threading.Lock()  # create runs in a worker thread, settle on the loop
        clock.listeners.append(self.settle)

    def create(self, request: DialRequest) -> CallInfo:
        with self.lock:
            return self._create(request)

    def _create(self, request: DialRequest) -> CallInfo:
        if self.fail_next:
            raise self.fail_next.pop(0)
        n = sum(1 for _, number in self.created if number == request.to) + 1
        status, answered_by, seconds = self.plan(request.to, n)
        sid = f"CA{uuid.uuid4().hex}"
        now = self.clock.now()
        self.calls[sid] = {
            "to": request.to, "from": request.from_, "created": now, "ends": now + seconds,
            "status": status, "answered_by": answered_by, "request": request, "done": False,
        }  # fmt: skip
        self.created.append((now, request.to))
        self.live += 1
        self.max_live = max(self.max_live, self.live)
        if self.lose_answer_next:
            # The call exists, the client sees a timeout, and its callbacks are lost too: only
            # the call list can tell the dialler what happened.
            self.lose_answer_next -= 1
            self.calls[sid]["silent"] = True
            raise CarrierUnavailable("read timed out")
        return CallInfo(sid, request.to, request.from_, "queued", now)

    def settle(self, now: float) -> None:
        with self.lock:
            calls = list(self.calls.items())
        for sid, call in calls:
            if not call["done"] and call["ends"] <= now:
                call["done"] = True
                self.live -= 1
                if call.get("silent"):
                    continue
                key = call["request"].status_callback.partition("attempt=")[2].replace("%3A", ":")
                self.store.record_status(
                    key, sid, call["status"], now, answered_by=call["answered_by"], duration=5.0
                )

    def _info(self, sid: str) -> CallInfo:
        call = self.calls[sid]
        status = call["status"] if call["done"] else "in-progress"
        answered_by = call["answered_by"] if call["done"] else None
        return CallInfo(sid, call["to"], call["from"], status, call["created"], answered_by)

    def find(self, to: str, from_: str, since: float) -> list[CallInfo]:
        return [
            self._info(sid)
            for sid, call in self.calls.items()
            if call["to"] == to and call["from"] == from_ and call["created"] >= since
        ]

    def fetch(self, sid: str) -> CallInfo:
        return self._info(sid)

    def update(self, sid: str, *, status: str | None = None, twiml: str | None = None) -> None:
        self.calls[sid].setdefault("updates", []).append((status, twiml))
