"""HTTP for campaigns: Twilio's callbacks, and a small authenticated management API.

:func:`campaign_router` returns one FastAPI ``APIRouter`` for the gateway (or any app) to
mount. It holds two kinds of routes:

- **Twilio callbacks** (``POST {prefix}/twilio/status|amd|recording?attempt=KEY``), signed with
  ``X-Twilio-Signature`` and checked like the gateway's own webhooks (the URL is rebuilt from
  the public base URL; without an auth token only loopback clients are accepted). Each report
  goes to the store, which applies it idempotently. On an AMD result that says a machine
  answered, the campaign's ``on_machine`` runs at once: the call is updated with the message
  TwiML (it plays after the beep, then hangs up) or hung up.
- **Management** (bearer token, compared in constant time; no token configured: the routes
  answer 503): list, create (campaign YAML and contacts CSV in a JSON body), status, start,
  pause, resume, cancel, and export as CSV. A create's body is read only once the token is
  checked, and only up to a limit (413 past it). The files a campaign names (dial plan,
  contacts, do-not-call lists) must lie in the configured campaign directory, and an error in
  one of them says where it is, never what it holds. Starting only marks the campaign running; the
  diallers (``overtalk campaign start|dial``) do the dialling.

The store is synchronous, so every store call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from gateway.campaigns.answer import machine_twiml
from gateway.campaigns.carrier import Carrier
from gateway.campaigns.errors import (
    CampaignExists,
    CampaignInvalid,
    CampaignNotFound,
    CampaignStateError,
    CarrierError,
)
from gateway.campaigns.export import export_csv
from gateway.campaigns.outcomes import FINAL_STATUSES, MACHINE_ANSWERS
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import Store
from gateway.carriers.twilio.signature import SignatureChecker, public_url
from gateway.dialplan import Problem

__all__ = ["DIR_ENV", "TOKEN_ENV", "campaign_router"]

log = logging.getLogger("overtalk.campaigns")

#: The environment variable holding the management API's bearer token.
TOKEN_ENV = "OVERTALK_CAMPAIGN_TOKEN"
#: The environment variable naming the campaign directory (default: the working directory).
DIR_ENV = "OVERTALK_CAMPAIGN_DIR"
#: Largest ``POST /campaigns`` body by default: a campaign and a list of ~100,000 contacts.
MAX_CREATE_BYTES = 16 * 1024 * 1024
#: Largest Twilio callback form: Twilio's are well under 4 KB.
MAX_CALLBACK_BYTES = 64 * 1024
#: A call cannot last longer than Twilio's 24-hour limit (``TimeLimit``).
MAX_CALL_SECONDS = 86_400
#: Twilio's Call SID: ``CA`` and 32 hex digits (the Call resource's ``sid``, "Pattern:
#: ^CA[0-9a-fA-F]{32}$", twilio.com/docs/voice/api/call-resource).
CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
#: An attempt key as the store makes it (``Store._new_attempt``): campaign name (spec's
#: ``_NAME``), contact id, attempt number.
ATTEMPT_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}:[0-9]{1,18}:[0-9]{1,4}")
#: ``CallStatus`` values of the Call resource (same page, "Call Status values").
CALL_STATUSES = FINAL_STATUSES | {"queued", "initiated", "ringing", "in-progress"}
#: ``AnsweredBy`` values answering-machine detection reports (twilio.com/docs/voice/answering-
#: machine-detection, "AnsweredBy").
ANSWERED_BY = MACHINE_ANSWERS | {"human", "unknown"}
#: A recording's URL as Twilio gives it: https, printable, bounded.
_RECORDING_URL = re.compile(r"https?://[!-~]{1,2000}")


class CreateBody(BaseModel):
    """``campaign``: the YAML text; ``contacts``: the CSV text (else the file it names)."""

    campaign: str
    contacts: str | None = None


def answered(params: dict[str, str]) -> str | None:
    """A callback's ``AnsweredBy`` when it is one Twilio documents, else None."""
    value = params.get("AnsweredBy", "")
    return value if value in ANSWERED_BY else None


def seconds(value: str | None) -> float | None:
    """A callback's ``CallDuration``: whole seconds as Twilio sends them, else None (ignored,
    never a 500: a report is worth keeping without its duration)."""
    if value is None or not value.isascii() or not value.strip().isdigit():
        return None
    return float(min(int(value), MAX_CALL_SECONDS))


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 past ``limit`` bytes (before reading it, when
    ``Content-Length`` says so)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _public_problem(problem: Problem, root: Path, uploaded: set[Path]) -> dict[str, Any]:
    """A problem as the API reports it. In what was uploaded (the campaign text and its
    contacts) it is given whole; in a server file (a dial plan or list in the campaign
    directory) only where it is, so an error can never show what a server file holds."""
    file = Path(problem.file)
    where = {"line": problem.line, "column": problem.column}
    if file in uploaded:
        return {**where, "reason": problem.message}
    try:
        name = str(file.resolve().relative_to(root))
    except (OSError, ValueError):
        name = file.name
    return {**where, "file": name,
            "reason": "this file of the campaign directory is not valid; check it on the server "
                      "(overtalk dialplan check / overtalk campaign create)"}  # fmt: skip


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def campaign_router(
    store: Store,
    *,
    api_token: str | None = None,
    twilio_auth_token: str | None = None,
    public_base: str | None = None,
    carrier: Carrier | None = None,
    base_dir: str | Path | None = None,
    prefix: str = "/campaigns",
    clock: Callable[[], float] = time.time,
    max_body_bytes: int = MAX_CREATE_BYTES,
) -> APIRouter:
    """The campaign routes over ``store``.

    ``api_token``: the management bearer token (default: ``$OVERTALK_CAMPAIGN_TOKEN``).
    ``twilio_auth_token`` checks callback signatures against ``public_base`` (the URL Twilio
    calls; default: each request's own base). ``carrier`` carries out machine actions (no
    carrier: AMD results are only recorded). ``base_dir``: the campaign directory: where
    relative paths in a campaign created over the API (dial plan, do-not-call files) are
    resolved, and the only place they may lead (default ``$OVERTALK_CAMPAIGN_DIR``, else the
    working directory). ``max_body_bytes`` bounds a create's body.
    """
    token = api_token if api_token is not None else os.environ.get(TOKEN_ENV) or None
    checker = SignatureChecker(twilio_auth_token) if twilio_auth_token else None
    root = Path(base_dir or os.environ.get(DIR_ENV) or Path.cwd()).resolve()
    router = APIRouter()

    async def twilio_form(request: Request) -> dict[str, str]:
        body = await read_bounded(request, MAX_CALLBACK_BYTES)
        try:
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            raise HTTPException(400, "the form is not UTF-8 url-encoded") from None
        if checker is None:
            if not _is_loopback(request.client.host if request.client else None):
                raise HTTPException(403, "forbidden")
            return params
        url = public_url(public_base or str(request.base_url), request.url.path,
                         request.url.query)  # fmt: skip
        if not checker.check_webhook(url, params, request.headers.get("x-twilio-signature")):
            log.warning("x rejected unsigned or forged callback to %s", request.url.path)
            raise HTTPException(403, "forbidden")
        return params

    def identified(request: Request, params: dict[str, str]) -> tuple[str | None, str]:
        """The attempt key (query) and call SID (form) of a callback, checked before they
        reach the store or a log line: 400 for anything that is not their shape."""
        key = request.query_params.get("attempt")
        if key is not None and not ATTEMPT_KEY.fullmatch(key):
            raise HTTPException(400, "the attempt key is not campaign:contact:number")
        sid = params.get("CallSid", "")
        if not CALL_SID.fullmatch(sid):
            raise HTTPException(400, "CallSid is not a Twilio call SID")
        return key, sid

    def authorized(request: Request) -> None:
        if token is None:
            raise HTTPException(503, f"the campaign API is off: set {TOKEN_ENV}")
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "bad or missing bearer token",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    # -- Twilio callbacks ---------------------------------------------------------------------

    @router.post(f"{prefix}/twilio/status")
    async def status(request: Request) -> Response:
        params = await twilio_form(request)
        key, sid = identified(request, params)
        call_status = params.get("CallStatus", "")
        if call_status not in CALL_STATUSES:
            log.info("x status callback for %s with an unknown CallStatus; ignored", sid)
            return Response(status_code=204)
        outcome = await asyncio.to_thread(
            store.record_status, key, sid, call_status, clock(),
            answered_by=answered(params), duration=seconds(params.get("CallDuration")),
        )  # fmt: skip
        log.info("< status %s of %s (%s)%s", call_status, sid, key,
                 f": {outcome}" if outcome else "")  # fmt: skip
        return Response(status_code=204)

    @router.post(f"{prefix}/twilio/amd")
    async def amd(request: Request) -> Response:
        params = await twilio_form(request)
        key, sid = identified(request, params)
        answered_by = answered(params)
        if answered_by is None:
            log.info("x AMD callback for %s with an unknown AnsweredBy; ignored", sid)
            return Response(status_code=204)
        found = await asyncio.to_thread(store.record_amd, key, sid, answered_by)
        log.info("< AMD %s for %s (%s)", answered_by, sid, key)
        if found is None or answered_by not in MACHINE_ANSWERS:
            return Response(status_code=204)
        attempt, spec = found
        action = spec.amd.on_machine
        await asyncio.to_thread(store.record_machine_action, attempt.key, action)
        if carrier is None:
            log.warning("x no REST credentials: cannot %s on the machine at %s", action, sid)
            return Response(status_code=204)
        try:
            if action == "message":
                twiml = machine_twiml(spec.amd, attempt.variables)
                await asyncio.to_thread(carrier.update, sid, twiml=twiml)
            else:
                await asyncio.to_thread(carrier.update, sid, status="completed")
        except CarrierError as exc:
            log.warning("x %s on machine at %s failed: %s", action, sid, exc)
        return Response(status_code=204)

    @router.post(f"{prefix}/twilio/recording")
    async def recording(request: Request) -> Response:
        params = await twilio_form(request)
        key, sid = identified(request, params)
        url = params.get("RecordingUrl", "")
        if not _RECORDING_URL.fullmatch(url):
            log.info("x recording callback for %s without a usable RecordingUrl; ignored", sid)
        elif params.get("RecordingStatus", "completed") == "completed":
            await asyncio.to_thread(store.record_recording, key, sid, url)
        return Response(status_code=204)

    # -- management ---------------------------------------------------------------------------

    manage = [Depends(authorized)]

    def not_found(exc: Exception) -> HTTPException:
        return HTTPException(404, str(exc))

    @router.get(prefix, dependencies=manage)
    async def list_campaigns() -> JSONResponse:
        def read() -> list[dict[str, Any]]:
            return [{"id": cid, **store.stats(cid).to_dict()} for cid in store.campaign_ids()]

        return JSONResponse(await asyncio.to_thread(read))

    @router.post(prefix, dependencies=manage, status_code=201)
    async def create(request: Request) -> JSONResponse:
        # The body is read here, after the token was checked (a parameter typed CreateBody
        # would make FastAPI read and parse any body first), and only up to the limit.
        raw = await read_bounded(request, max_body_bytes)
        try:
            body = CreateBody.model_validate_json(raw)
        except ValidationError as exc:
            errors = [{"loc": list(e["loc"]), "reason": e["msg"]} for e in exc.errors()[:20]]
            return JSONResponse({"error": "invalid request body", "problems": errors}, 422)

        # The YAML's relative paths resolve against base_dir, as if the file lived there,
        # and may not leave it. Its contacts, when uploaded, are named after it.
        path = root / f".api-{secrets.token_hex(8)}.yaml"
        uploaded = {path, path.with_suffix(".csv")}

        def make() -> dict[str, Any]:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(body.campaign)
            try:
                created = create_campaign(
                    store, path, clock(), contacts_text=body.contacts, confine=root
                )
            finally:
                path.unlink(missing_ok=True)
            return created.to_dict()

        try:
            return JSONResponse(await asyncio.to_thread(make), status_code=201)
        except CampaignInvalid as exc:
            problems = [_public_problem(p, root, uploaded) for p in exc.problems]
            return JSONResponse({"error": "invalid campaign", "problems": problems}, 422)
        except CampaignExists as exc:
            raise HTTPException(409, str(exc)) from None

    @router.get(f"{prefix}/{{campaign_id}}", dependencies=manage)
    async def campaign_status(campaign_id: str) -> JSONResponse:
        try:
            stats = await asyncio.to_thread(store.stats, campaign_id)
        except CampaignNotFound as exc:
            raise not_found(exc) from None
        return JSONResponse({"id": campaign_id, **stats.to_dict()})

    async def change(campaign_id: str, request: str) -> JSONResponse:
        try:
            state = await asyncio.to_thread(store.change_state, campaign_id, request, clock())
        except CampaignNotFound as exc:
            raise not_found(exc) from None
        except CampaignStateError as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse({"id": campaign_id, "state": state})

    def changer(verb: str) -> Callable[[str], Any]:
        async def endpoint(campaign_id: str) -> JSONResponse:
            return await change(campaign_id, verb)

        return endpoint

    for verb in ("start", "pause", "resume", "cancel"):
        router.add_api_route(
            f"{prefix}/{{campaign_id}}/{verb}", changer(verb), methods=["POST"],
            dependencies=manage,
        )  # fmt: skip

    @router.get(f"{prefix}/{{campaign_id}}/export", dependencies=manage)
    async def export(campaign_id: str) -> Response:
        try:
            text = await asyncio.to_thread(export_csv, store, campaign_id)
        except CampaignNotFound as exc:
            raise not_found(exc) from None
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{campaign_id}.csv"'})  # fmt: skip

    return router
