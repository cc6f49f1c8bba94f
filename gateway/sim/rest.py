"""A stand-in for Twilio's REST API: outbound calls placed, progressed and answered locally.

It serves the Calls resource as the real API does, so the real ``twilio`` client works
against it (``gateway.carriers.twilio.control.rest_client(sid, token, api_base=URL)``):

- ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` with the client's form fields
  (``To``, ``From``, ``Url``/``Twiml``, ``Method``, ``StatusCallback``,
  ``StatusCallbackEvent`` (repeated), ``Timeout``, ``MachineDetection``, ``AsyncAmd``,
  ``AsyncAmdStatusCallback``, ``MachineDetectionTimeout``, ``Record``,
  ``RecordingStatusCallback``, ``TimeLimit``) answers ``201`` with the call resource in
  ``queued`` state; errors come as Twilio's JSON error (``code``, ``message``, ``more_info``,
  ``status``): 21201 no ``To``, 21213 no ``From``, 21211 an invalid ``To``, 21200 no
  instructions (REFERENCE.md 1.7; twilio-python ``rest/api/v2010/account/call/__init__.py``).
- ``GET .../Calls.json`` lists calls newest first with the ``To``, ``From``, ``Status``,
  ``StartTime>``/``StartTime<`` filters and ``Page``/``PageSize`` paging (``calls`` plus the
  page metadata twilio-python's ``Page`` reads); ``GET .../Calls/{Sid}.json`` fetches one.
- ``POST .../Calls/{Sid}.json`` updates: ``Status=canceled`` (only queued or ringing calls),
  ``Status=completed`` (hangs up even in progress), ``Twiml``/``Url`` (replaces the running
  TwiML, which ends a ``<Connect><Stream>``).

Requests need HTTP Basic auth with the account SID and auth token, as Twilio's do.

Each call then lives on its own: ``queued`` -> ``initiated`` -> ``ringing`` -> ``in-progress``
-> ``completed``, or ``busy``/``no-answer``/``failed``/``canceled``, as its
:class:`~gateway.sim.callee.Callee` decides, with status callbacks signed like Twilio's
(``X-Twilio-Signature``, ``RequestValidator.compute_signature``) for the subscribed events
(only ``completed`` when none are named), carrying ``CallStatus``, ``CallbackSource``,
``SequenceNumber``, ``Timestamp`` and, at the end, ``CallDuration``. Answering-machine
detection reports the callee's ``AnsweredBy``: with ``AsyncAmd=true`` to
``AsyncAmdStatusCallback`` (with ``MachineDetectionDuration``) while the TwiML already runs;
otherwise TwiML waits for it and ``AnsweredBy`` goes with the ``Url`` request. The answered
call runs its TwiML: ``<Say>``, ``<Play>``, ``<Pause>``, ``<Hangup>``, ``<Redirect>`` and
``<Connect><Stream>``, whose Media Stream is played by the callee's script through the
simulator's caller machinery (:mod:`gateway.sim.caller`), signed over the stream URL.

``time_scale`` shortens ringing, ``Timeout`` and spoken TwiML (not the media, which runs in
real time); ``create_delay_s`` holds each create's answer back like a slow API, after the call
exists, so a client can die with the call placed and no SID in hand.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import itertools
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator
from websockets.exceptions import InvalidHandshake

from gateway.sim.callee import Callee, CalleeBook, Kind
from gateway.sim.caller import CallPump, open_media, parse_twiml, tls_context
from gateway.sim.media import MediaStreamSim, new_sid
from gateway.sim.report import CallReport, TwimlVerb
from gateway.sim.script import CallerScript, ScriptRunner

__all__ = ["SimCall", "TwilioRestSim"]

log = logging.getLogger("overtalk.sim.rest")

API = "/2010-04-01/Accounts/{account}"
FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
#: Spoken TwiML is timed at this many characters per second (about 150 words a minute).
SAY_CHARS_PER_S = 15.0
#: Most ``<Redirect>``s followed in a row.
MAX_REDIRECTS = 10


def _rfc2822(epoch: float | None) -> str | None:
    return None if epoch is None else format_datetime(datetime.fromtimestamp(epoch, UTC))


@dataclass
class SimCall:
    """One call's record: what was asked, what happened, and when."""

    sid: str
    account_sid: str
    to: str
    from_: str
    params: dict[str, str]
    status_events: frozenset[str]
    created: float
    status: str = "queued"
    updated: float = 0.0
    start_time: float | None = None
    answered_at: float | None = None
    end_time: float | None = None
    duration: int | None = None
    answered_by: str | None = None
    #: Who ended it: "callee", "api", "twiml", "timeout", or the status for unanswered calls.
    ended_by: str = ""
    timeline: list[tuple[float, str]] = field(default_factory=list)
    #: Every callback sent: (url, params, HTTP status or None when it could not be sent).
    callbacks: list[tuple[str, dict[str, str], int | None]] = field(default_factory=list)
    #: Text spoken by ``<Say>`` (after a machine's beep: the message left on it).
    said: list[str] = field(default_factory=list)
    #: One report per Media Stream the call ran.
    streams: list[CallReport] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    _update: asyncio.Event = field(default_factory=asyncio.Event)
    _next: tuple[str, str] | None = None  # ("twiml", doc) or ("url", url) to run next
    _hangup: bool = False
    _sequence: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def done(self) -> bool:
        return self.status in FINAL

    def resource(self) -> dict[str, Any]:
        """The call as Twilio's JSON call resource."""
        uri = f"{API.format(account=self.account_sid)}/Calls/{self.sid}.json"
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "parent_call_sid": None,
            "date_created": _rfc2822(self.created),
            "date_updated": _rfc2822(self.updated or self.created),
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "phone_number_sid": None,
            "status": self.status,
            "start_time": _rfc2822(self.start_time),
            "end_time": _rfc2822(self.end_time),
            "duration": None if self.duration is None else str(self.duration),
            "price": None,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "api_version": "2010-04-01",
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": uri,
            "subresource_uris": {
                "recordings": uri.replace(".json", "/Recordings.json"),
                "streams": uri.replace(".json", "/Streams.json"),
            },
        }


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


class TwilioRestSim:
    """The stand-in; serve :meth:`app` (``gateway.ops.server.serve``) and point the client at it.

    ``route`` maps a URL found in TwiML or callbacks to where this process can reach it (a
    public ``wss://`` host to the local gateway); identity by default.
    """

    def __init__(
        self,
        callees: CalleeBook | None = None,
        *,
        account_sid: str | None = None,
        auth_token: str = "sim-auth-token",
        time_scale: float = 1.0,
        create_delay_s: float = 0.0,
        route: Callable[[str], str] | None = None,
    ) -> None:
        self.callees = callees or CalleeBook()
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token
        self.time_scale = time_scale
        self.create_delay_s = create_delay_s
        self.route = route or (lambda url: url)
        self.validator = RequestValidator(auth_token)
        self.calls: dict[str, SimCall] = {}
        #: Creates received (set as each is registered, before its answer is sent).
        self.creates = 0
        self._http: httpx.AsyncClient | None = None

    # -- HTTP ---------------------------------------------------------------------------------

    def app(self) -> FastAPI:
        app = FastAPI(title="Twilio REST stand-in", docs_url=None, redoc_url=None)
        base = "/2010-04-01/Accounts/{account}"
        app.add_api_route(base + "/Calls.json", self._create, methods=["POST"])
        app.add_api_route(base + "/Calls.json", self._list, methods=["GET"])
        app.add_api_route(base + "/Calls/{sid}.json", self._fetch, methods=["GET"])
        app.add_api_route(base + "/Calls/{sid}.json", self._modify, methods=["POST"])
        return app

    async def aclose(self) -> None:
        """End every call still running (cancels their tasks) and close the HTTP client."""
        tasks = [c.task for c in self.calls.values() if c.task is not None and not c.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def _authorized(self, request: Request, account: str) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.account_sid == account and hmac.compare_digest(
            password.encode(), self.auth_token.encode()
        )

    async def _create(self, account: str, request: Request) -> JSONResponse:
        if not self._authorized(request, account):
            return _error(401, 20003, "Authenticate")
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        to, from_ = params.get("To", ""), params.get("From", "")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not _reachable(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not any(params.get(k) for k in ("Url", "Twiml", "ApplicationSid")):
            return _error(400, 21200, "Url, Twiml or ApplicationSid is required")
        events: set[str] = set()
        for value in form.getlist("StatusCallbackEvent"):
            if isinstance(value, str):
                events.update(value.replace(",", " ").split())
        now = time.time()
        call = SimCall(
            sid=new_sid("CA"),
            account_sid=account,
            to=to,
            from_=from_,
            params=params,
            status_events=frozenset(events or {"completed"}),
            created=now,
        )
        call.timeline.append((now, "queued"))
        self.calls[call.sid] = call
        self.creates += 1
        call.task = asyncio.create_task(self._run(call), name=f"sim-call-{call.sid}")
        if self.create_delay_s:
            await asyncio.sleep(self.create_delay_s)
        snapshot = call.resource()
        snapshot["status"] = "queued"
        return JSONResponse(snapshot, status_code=201)

    async def _fetch(self, account: str, sid: str, request: Request) -> JSONResponse:
        if not self._authorized(request, account):
            return _error(401, 20003, "Authenticate")
        call = self.calls.get(sid)
        if call is None:
            return _error(404, 20404, f"The requested resource {request.url.path} was not found")
        return JSONResponse(call.resource())

    async def _list(self, account: str, request: Request) -> JSONResponse:
        if not self._authorized(request, account):
            return _error(401, 20003, "Authenticate")
        q = request.query_params
        calls = sorted(self.calls.values(), key=lambda c: c.created, reverse=True)
        if q.get("To"):
            calls = [c for c in calls if c.to == q["To"]]
        if q.get("From"):
            calls = [c for c in calls if c.from_ == q["From"]]
        if q.get("Status"):
            calls = [c for c in calls if c.status == q["Status"]]
        for key, keep in (("StartTime>", lambda a, b: a >= b), ("StartTime<", lambda a, b: a < b)):
            if q.get(key):
                bound = _iso(q[key])
                calls = [c for c in calls if c.start_time is not None and keep(c.start_time, bound)]
        size = min(max(int(q.get("PageSize", 50)), 1), 1000)
        page = max(int(q.get("Page", 0)), 0)
        chunk = calls[page * size : (page + 1) * size]
        path = API.format(account=account) + "/Calls.json"
        filters = {k: v for k, v in q.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(n: int) -> str:
            return f"{path}?{urlencode({**filters, 'PageSize': size, 'Page': n})}"

        more = (page + 1) * size < len(calls)
        return JSONResponse(
            {
                "calls": [c.resource() for c in chunk],
                "start": page * size,
                "end": page * size + max(len(chunk) - 1, 0),
                "page": page,
                "page_size": size,
                "uri": uri(page),
                "first_page_uri": uri(0),
                "next_page_uri": uri(page + 1) if more else None,
                "previous_page_uri": uri(page - 1) if page else None,
            }
        )

    async def _modify(self, account: str, sid: str, request: Request) -> JSONResponse:
        if not self._authorized(request, account):
            return _error(401, 20003, "Authenticate")
        call = self.calls.get(sid)
        if call is None:
            return _error(404, 20404, f"The requested resource {request.url.path} was not found")
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        status = params.get("Status")
        if call.done:
            if status or params.get("Twiml") or params.get("Url"):
                return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        elif status == "canceled":
            if call.status in ("queued", "ringing"):
                call._hangup = True
                call._update.set()
        elif status == "completed":
            call._hangup = True
            call._update.set()
        elif params.get("Twiml") or params.get("Url"):
            if call.status != "in-progress":
                return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
            call._next = (
                ("twiml", params["Twiml"]) if params.get("Twiml") else ("url", params["Url"])
            )
            call._update.set()
        call.timeline.append((time.time(), f"update {params}"))
        return JSONResponse(call.resource())

    # -- the call -----------------------------------------------------------------------------

    async def _run(self, call: SimCall) -> None:
        try:
            await self._progress(call, self.callees[call.to])
        except asyncio.CancelledError:
            if not call.done:
                self._set(call, "canceled" if call.answered_at is None else "completed")
            raise
        except Exception as exc:  # the simulator's own bug: the call fails, others go on
            log.exception("x sim call %s failed", call.sid)
            call.timeline.append((time.time(), f"error {exc!r}"))
            if not call.done:
                await self._end(call, "failed", "error")

    async def _progress(self, call: SimCall, callee: Callee) -> None:
        scale = self.time_scale
        await self._callback(call, "initiated", "initiated")
        if call._hangup:  # canceled while queued: no further callbacks (REFERENCE.md 1.7)
            self._set(call, "canceled")
            call.ended_by = "api"
            return
        self._set(call, "ringing")
        call.start_time = time.time()
        await self._callback(call, "ringing", "ringing")
        timeout = min(float(call.params.get("Timeout") or 60), 600.0)
        ring = callee.ring_s
        if callee.kind in (Kind.PERSON, Kind.VOICEMAIL) and ring <= timeout:
            outcome = "answer"
        elif callee.kind in (Kind.BUSY, Kind.FAILED) and ring <= timeout:
            outcome = "busy" if callee.kind is Kind.BUSY else "failed"
        else:
            outcome, ring = "no-answer", timeout
        if await self._wait(call, ring * scale) and call._hangup:
            await self._end(call, "canceled", "api")
            return
        if outcome != "answer":
            await self._end(call, outcome, outcome)
            return
        await self._answer(call, callee)

    async def _answer(self, call: SimCall, callee: Callee) -> None:
        call.answered_at = time.time()
        self._set(call, "in-progress")
        await self._callback(call, "answered", "in-progress")
        mode = call.params.get("MachineDetection")
        amd_task = None
        if mode in ("Enable", "DetectMessageEnd"):
            answered_by, after = callee.amd(mode)
            if call.params.get("AsyncAmd", "").lower() == "true":
                amd_task = asyncio.create_task(self._async_amd(call, answered_by, after))
            else:
                await self._wait(call, after)
                call.answered_by = answered_by
        try:
            if call._hangup:
                ended_by = "api"
            elif call.params.get("Twiml") and not call.params.get("Url"):
                ended_by = await self._execute(call, callee, call.params["Twiml"], None)
            else:
                ended_by = await self._execute_url(call, callee, call.params.get("Url", ""),
                                                   call.params.get("Method", "POST"))  # fmt: skip
            while call._next is not None and not call._hangup:
                kind, value = call._next
                call._next = None
                call._update.clear()
                if kind == "twiml":
                    ended_by = await self._execute(call, callee, value, None)
                else:
                    ended_by = await self._execute_url(call, callee, value, "POST")
            if call._hangup:
                ended_by = "api"
        finally:
            if amd_task is not None:
                amd_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await amd_task
        await self._end(call, "completed", ended_by)

    async def _async_amd(self, call: SimCall, answered_by: str, after: float) -> None:
        await asyncio.sleep(after)
        if call.done:
            return
        call.answered_by = answered_by
        url = call.params.get("AsyncAmdStatusCallback")
        if url:
            await self._post(call, url, {
                "AccountSid": call.account_sid,
                "AnsweredBy": answered_by,
                "CallSid": call.sid,
                "MachineDetectionDuration": str(round(after * 1000)),
            })  # fmt: skip

    async def _wait(self, call: SimCall, seconds: float) -> bool:
        """Sleep ``seconds`` unless an update comes first; True if one did."""
        if call._update.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call._update.wait(), timeout=max(seconds, 0.0))
            return True
        return False

    async def _execute_url(self, call: SimCall, callee: Callee, url: str, method: str) -> str:
        """Request TwiML from ``url`` as Twilio does for an answered outbound call, and run it."""
        params = {
            "AccountSid": call.account_sid, "ApiVersion": "2010-04-01", "CallSid": call.sid,
            "CallStatus": "in-progress", "Called": call.to, "Caller": call.from_,
            "Direction": "outbound-api", "From": call.from_, "To": call.to,
            "CalledCity": "", "CalledCountry": "", "CalledState": "", "CalledZip": "",
            "CallerCity": "", "CallerCountry": "", "CallerState": "", "CallerZip": "",
            "FromCity": "", "FromCountry": "", "FromState": "", "FromZip": "",
            "ToCity": "", "ToCountry": "", "ToState": "", "ToZip": "",
        }  # fmt: skip
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        try:
            if method.upper() == "GET":
                split = urlsplit(url)
                query = "&".join(p for p in (split.query, urlencode(params)) if p)
                full = urlunsplit(split._replace(query=query))
                resp = await self._client().get(
                    self.route(full),
                    headers={"X-Twilio-Signature": self.validator.compute_signature(full, {})},
                )
            else:
                resp = await self._client().post(
                    self.route(url),
                    data=params,
                    headers={"X-Twilio-Signature": self.validator.compute_signature(url, params)},
                )
        except httpx.HTTPError as exc:
            call.timeline.append((time.time(), f"TwiML fetch failed: {exc}"))
            return "error"
        if resp.status_code != 200:
            call.timeline.append((time.time(), f"TwiML fetch answered HTTP {resp.status_code}"))
            return "error"
        return await self._execute(call, callee, resp.text, url)

    async def _execute(self, call: SimCall, callee: Callee, doc: str, doc_url: str | None,
                       depth: int = 0) -> str:  # fmt: skip
        """Run a TwiML document until it ends, hangs up, or an update interrupts it."""
        try:
            verbs = parse_twiml(doc)
        except ValueError as exc:
            call.timeline.append((time.time(), f"bad TwiML: {exc}"))
            return "error"
        scale = self.time_scale
        for verb in verbs:
            if call._update.is_set():
                return "api"
            match verb.verb:
                case "Say":
                    call.said.append(verb.text)
                    call.timeline.append((time.time(), f"say {verb.text!r}"))
                    await self._wait(call, len(verb.text) / SAY_CHARS_PER_S * scale)
                case "Play":
                    call.timeline.append((time.time(), f"play {verb.text}"))
                    await self._wait(call, 1.0 * scale)
                case "Pause":
                    await self._wait(call, float(verb.attributes.get("length", 1)) * scale)
                case "Hangup" | "Reject":
                    return "twiml"
                case "Redirect" if depth < MAX_REDIRECTS:
                    target = urljoin(doc_url or "", verb.text)
                    return await self._execute_url(
                        call, callee, target, verb.attributes.get("method", "POST")
                    )
                case "Connect":
                    stream = next((c for c in verb.children if c.verb == "Stream"), None)
                    if stream is None:
                        continue
                    ended = await self._stream(call, callee, stream, doc_url)
                    if ended != "gateway":
                        return ended
                case _:
                    call.timeline.append((time.time(), f"skipped <{verb.verb}>"))
        return "twiml"

    async def _stream(self, call: SimCall, callee: Callee, stream: TwimlVerb,
                      doc_url: str | None) -> str:  # fmt: skip
        """Run a bidirectional Media Stream with the callee's script; who ended it."""
        url = urljoin(doc_url or "", stream.attributes.get("url", ""))
        split = urlsplit(url)
        signed = urlunsplit((split.scheme, split.netloc, split.path, "", ""))
        custom = {
            p.attributes.get("name", ""): p.attributes.get("value", "")
            for p in stream.children
            if p.verb == "Parameter"
        }
        sim = MediaStreamSim(account_sid=call.account_sid, call_sid=call.sid,
                             custom_parameters=custom, keep_media_log=False)  # fmt: skip
        report = CallReport(
            call_sid=call.sid,
            account_sid=call.account_sid,
            stream_sid=sim.stream_sid,
            caller=call.from_,
            called=call.to,
        )
        runner = ScriptRunner(callee.script or CallerScript().pause(600_000))
        limit = float(call.params.get("TimeLimit") or 14400)
        target = self.route(signed)
        try:
            headers = {"X-Twilio-Signature": self.validator.compute_signature(signed, {})}
            async with open_media(target, headers) as ws:
                report.streamed = True
                pump = CallPump(ws, sim, runner, limit, False)
                stopper = asyncio.create_task(self._stop_on_update(call, runner))
                try:
                    await pump.run()
                finally:
                    stopper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await stopper
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            report.ended_by, report.error = "error", f"{type(exc).__name__}: {exc}"
            call.streams.append(report)
            call.timeline.append((time.time(), f"stream failed: {report.error}"))
            return "gateway"  # Twilio goes on with the TwiML after </Connect>
        pump.fill(report)
        call.streams.append(report)
        if call._update.is_set():
            return "api"
        if pump.timed_out:
            return "timeout"
        return "gateway" if pump.gateway_closed else "callee"

    @staticmethod
    async def _stop_on_update(call: SimCall, runner: ScriptRunner) -> None:
        """An update (new TwiML, hang-up) ends the stream: Twilio sends ``stop`` and closes."""
        await call._update.wait()
        runner.done = True

    async def _end(self, call: SimCall, status: str, ended_by: str) -> None:
        now = time.time()
        call.end_time = now
        call.ended_by = ended_by
        if status == "completed" and call.answered_at is not None:
            call.duration = math.ceil(now - call.answered_at)
        elif status != "completed":
            call.duration = 0
        self._set(call, status)
        extra = {}
        if call.duration is not None:
            extra["CallDuration"] = str(call.duration)
            extra["Duration"] = str(math.ceil(call.duration / 60))
        await self._callback(call, "completed", status, extra)
        url = call.params.get("RecordingStatusCallback")
        if call.params.get("Record", "").lower() == "true" and url and call.answered_at:
            sid = new_sid("RE")
            await self._post(call, url, {
                "AccountSid": call.account_sid,
                "CallSid": call.sid,
                "RecordingSid": sid,
                "RecordingUrl": f"https://api.twilio.com{API.format(account=call.account_sid)}"
                f"/Recordings/{sid}",
                "RecordingStatus": "completed",
                "RecordingDuration": str(call.duration or 0),
                "RecordingChannels": "1",
                "RecordingSource": "OutboundAPI",
                "RecordingStartTime": _rfc2822(call.answered_at) or "",
            })  # fmt: skip

    def _set(self, call: SimCall, status: str) -> None:
        now = time.time()
        call.status = status
        call.updated = now
        call.timeline.append((now, status))

    async def _callback(self, call: SimCall, event: str, status: str,
                        extra: Mapping[str, str] | None = None) -> None:  # fmt: skip
        url = call.params.get("StatusCallback")
        if not url or event not in call.status_events:
            return
        params = {
            "AccountSid": call.account_sid, "ApiVersion": "2010-04-01",
            "CallSid": call.sid, "CallStatus": status, "Called": call.to, "Caller": call.from_,
            "Direction": "outbound-api", "From": call.from_, "To": call.to,
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(next(call._sequence)),
            "Timestamp": _rfc2822(time.time()) or "",
            **(extra or {}),
        }  # fmt: skip
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        await self._post(call, url, params)

    async def _post(self, call: SimCall, url: str, params: dict[str, str]) -> None:
        """A signed form POST, as Twilio sends callbacks; failures are recorded, not retried."""
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params),
                   "User-Agent": "TwilioProxy/1.1"}  # fmt: skip
        try:
            resp = await self._client().post(self.route(url), data=params, headers=headers)
            call.callbacks.append((url, params, resp.status_code))
        except httpx.HTTPError as exc:
            call.callbacks.append((url, params, None))
            log.info("x callback to %s failed: %s", url, exc)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0, verify=tls_context())
        return self._http


def _reachable(number: str) -> bool:
    if number.startswith(("client:", "sip:")):
        return True
    return number.startswith("+") and number[1:].isdigit() and 8 <= len(number) - 1 <= 15


def _iso(text: str) -> float:
    """``YYYY-MM-DD`` or ISO 8601 (as twilio-python's ``serialize.iso8601_datetime`` writes)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
