"""Dial-plan voicemail: the pure callback/record logic, then a real gateway that keeps messages
fetched from a local stand-in for Twilio's recording media URL."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import math
import struct
import time
import wave
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from twilio.request_validator import RequestValidator

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.carriers.twilio.voicemail import (
    BadCallback,
    RecordEnded,
    RecordingReport,
    RecordingStatus,
    TranscriptionReport,
    TranscriptionStatus,
    audio_url,
    classify,
    message_files,
    recording_record,
    transcription_record,
    with_audio,
)
from gateway.carriers.twilio.voicemail_io import VoicemailKeeper
from gateway.config import Settings
from gateway.ops.server import serve

TOKEN = "voicemail-test-token-0123456789"
ACCOUNT = "AC" + "0a" * 16
CALL = "CA" + "1b" * 16
REC = "RE" + "2c" * 16
REC2 = "RE" + "3d" * 16
TR = "TR" + "4e" * 16
MEDIA = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{REC}"
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
WHERE = {"route": "closed", "branch": "otherwise", "caller": "+14085551234", "called": "+1555"}


def status_form(rec: str = REC, url: str = MEDIA, status: str = "completed") -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT, "CallSid": CALL, "RecordingSid": rec, "RecordingUrl": url,
        "RecordingStatus": status, "RecordingDuration": "3", "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
    }  # fmt: skip


def transcription_form(rec: str = REC, url: str = MEDIA) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT, "CallSid": CALL, "RecordingSid": rec, "RecordingUrl": url,
        "TranscriptionSid": TR, "TranscriptionText": "Please call me back.",
        "TranscriptionStatus": "completed",
        "TranscriptionUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Transcriptions/{TR}",
    }  # fmt: skip


# -- pure: which callback, what it becomes ---------------------------------------------------


def test_classify_tells_the_three_callbacks_apart():
    action = classify({"CallSid": CALL, "RecordingUrl": MEDIA, "RecordingDuration": "3",
                       "Digits": "hangup", "From": "+14085551234"})  # fmt: skip
    assert action == RecordEnded(CALL, MEDIA, 3, "hangup")
    status = classify(status_form())
    assert status == RecordingReport(CALL, REC, RecordingStatus.COMPLETED, MEDIA, 3)
    text = classify(transcription_form())
    assert isinstance(text, TranscriptionReport)
    assert (text.sid, text.status, text.text) == (TR, TranscriptionStatus.COMPLETED,
                                                  "Please call me back.")  # fmt: skip


def test_classify_absent_recording_needs_no_url():
    form = status_form(status="absent")
    del form["RecordingUrl"]
    assert classify(form).status is RecordingStatus.ABSENT


GARBAGE = [
    ({"CallSid": None}, "CallSid is missing"),
    ({"RecordingSid": None}, "RecordingSid is missing"),
    ({"RecordingSid": "RE123"}, "not a Twilio SID"),
    ({"RecordingSid": "RE" + "2c" * 15 + "/."}, "not a Twilio SID"),
    ({"CallSid": "CA" + "1b" * 15 + ".."}, "not a Twilio SID"),
    ({"CallSid": "../../etc/passwd"}, "not a Twilio SID"),
    ({"RecordingStatus": "deleted"}, "unknown RecordingStatus"),
    ({"RecordingUrl": ""}, "without RecordingUrl"),
    ({"RecordingUrl": MEDIA.replace(REC, REC2)}, "is not recording"),
    ({"RecordingUrl": MEDIA + "?x=1"}, "is not recording"),
    ({"RecordingUrl": MEDIA.replace("https://", "https://u:p@")}, "is not recording"),
    ({"RecordingUrl": MEDIA.replace("/Accounts/", "/../Accounts/")}, "is not recording"),
    ({"RecordingUrl": "file:///Recordings/" + REC}, "is not recording"),
]


@pytest.mark.parametrize(("change", "reason"), GARBAGE)
def test_classify_garbage_status_raises_bad_callback(change, reason):
    form = {k: v for k, v in {**status_form(), **change}.items() if v is not None}
    with pytest.raises(BadCallback, match=reason) as raised:
        classify(form)
    assert raised.value.status_hint == 400


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"TranscriptionSid": "TR../x"}, "not a Twilio SID"),
     ({"TranscriptionStatus": "done"}, "unknown TranscriptionStatus"),
     ({"RecordingSid": "RE" + "g" * 32}, "not a Twilio SID")],
)  # fmt: skip
def test_classify_garbage_transcription_raises_bad_callback(change, reason):
    with pytest.raises(BadCallback, match=reason):
        classify({**transcription_form(), **change})


def test_message_files_are_named_by_call_and_recording():
    files = message_files(CALL, REC)
    assert (files.audio, files.record) == (f"{CALL}-{REC}.wav", f"{CALL}-{REC}.json")
    with pytest.raises(BadCallback):
        message_files(CALL, "../" + REC)


def test_audio_url_trusts_twilio_or_the_configured_api_base_only():
    report = classify(status_form())
    assert audio_url(report) == MEDIA + ".wav"
    local = "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Recordings/" + REC
    stand_in = classify(status_form(url=local))
    assert audio_url(stand_in, "http://127.0.0.1:9") == local + ".wav"
    for url in (local, MEDIA.replace("https://api.twilio.com", "https://twilio.com.evil.example"),
                MEDIA.replace("https://", "http://")):  # fmt: skip
        with pytest.raises(BadCallback, match="not on Twilio's API"):
            audio_url(classify(status_form(url=url)))


def test_record_transcription_first_then_recording_is_one_record():
    text = classify(transcription_form())
    first = transcription_record(None, text, received_at=AT, **WHERE)
    assert first["status"] is None and first["audio"] is None
    assert first["received_at"] == "2026-03-04T05:06:07Z"
    later = datetime(2026, 3, 4, 5, 7, tzinfo=UTC)
    record = recording_record(first, classify(status_form()), received_at=later, **WHERE)
    assert record == {
        "call_sid": CALL, "recording_sid": REC, "caller": "+14085551234", "called": "+1555",
        "received_at": "2026-03-04T05:06:07Z", "duration": 3, "route": "closed",
        "branch": "otherwise", "recording_url": MEDIA, "status": "completed", "audio": None,
        "transcription": {"status": "completed", "text": "Please call me back.", "sid": TR},
    }  # fmt: skip


def test_record_recording_then_transcription_keeps_audio():
    record = recording_record(None, classify(status_form()), received_at=AT, **WHERE)
    record = with_audio(record, "x.wav")
    again = recording_record(record, classify(status_form()), received_at=AT, **WHERE)
    merged = transcription_record(again, classify(transcription_form()), received_at=AT, **WHERE)
    assert merged["audio"] == "x.wav"
    assert merged["transcription"]["text"] == "Please call me back."
    assert merged["status"] == "completed"


# -- the keeper over a mock transport (no sockets) -------------------------------------------


async def test_keeper_retries_404_then_writes_audio_and_record(tmp_path):
    seen: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        return httpx.Response(404 if len(seen) == 1 else 200, content=b"RIFF-audio")

    keeper = VoicemailKeeper(ACCOUNT, TOKEN, transport=httpx.MockTransport(answer),
                             retry_delays=(0, 0), clock=lambda: AT)  # fmt: skip
    report = classify(status_form())
    await keeper.recording(tmp_path, report, media_url=MEDIA + ".wav", **WHERE)
    files = message_files(CALL, REC)
    record = await poll(lambda: read_json(tmp_path / files.record), lambda r: r["audio"])
    assert (tmp_path / files.audio).read_bytes() == b"RIFF-audio"
    assert record["audio"] == files.audio and len(seen) == 2
    assert seen[0][0] == MEDIA + ".wav" and seen[1][1] == basic_auth()
    await keeper.aclose()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([files.audio, files.record])


async def test_keeper_without_credentials_keeps_url_only_and_warns_once(tmp_path, caplog):
    keeper = VoicemailKeeper("", "", clock=lambda: AT)
    for rec in (REC, REC2):
        report = classify(status_form(rec=rec, url=MEDIA.replace(REC, rec)))
        await keeper.recording(tmp_path, report, media_url=report.recording_url + ".wav", **WHERE)
    await keeper.aclose()
    records = sorted(tmp_path.glob("*.json"))
    assert len(records) == 2 and not list(tmp_path.glob("*.wav"))
    assert all(read_json(p)["recording_url"].startswith(MEDIA[:40]) for p in records)
    assert sum("not fetched" in r.message for r in caplog.records) == 1


async def test_keeper_aclose_cancels_a_fetch_in_back_off(tmp_path):
    busy = httpx.MockTransport(lambda _: httpx.Response(503))
    keeper = VoicemailKeeper(ACCOUNT, TOKEN, retry_delays=(3600,), transport=busy)
    await keeper.recording(tmp_path, classify(status_form()), media_url=MEDIA + ".wav", **WHERE)
    await asyncio.wait_for(keeper.aclose(), 5)
    (record,) = tmp_path.glob("*.json")
    assert read_json(record)["audio"] is None and not list(tmp_path.glob("*.wav"))


# -- end to end: a real gateway, a stand-in for Twilio's media URL ---------------------------


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()


def small_wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
            for i in range(1600)
        ))  # fmt: skip
    return out.getvalue()


@dataclass
class MediaStandIn:
    """Twilio's recording media: basic auth enforced, each file 404 on its first request (still
    processing), then served."""

    audio: bytes = field(default_factory=small_wav)
    requests: list[str] = field(default_factory=list)
    not_ready: set[str] = field(default_factory=set)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/2010-04-01/Accounts/{account}/Recordings/{name}")
        async def media(account: str, name: str, request: Request) -> Response:
            if account != ACCOUNT or request.headers.get("authorization") != basic_auth():
                return Response(status_code=401, headers={"WWW-Authenticate": "Basic"})
            self.requests.append(name)
            if name not in self.not_ready:
                self.not_ready.add(name)
                return Response(status_code=404)
            return Response(self.audio, media_type="audio/x-wav")

        return app


PLAN = """
default_route: closed
routes:
  closed:
    numbers: ["+15550000004"]
    otherwise:
      action: voicemail
      greeting: "We are closed."
      max_length: 60
      store: {store}
  crm:
    numbers: ["+15550000005"]
    otherwise: {{action: voicemail, store: "https://crm.example.com/vm"}}
"""


@dataclass
class Rig:
    url: str
    media: str
    store: Path
    stand_in: MediaStandIn
    client: httpx.AsyncClient

    async def post(self, url: str, form: dict[str, str], signature: str | None = None):
        if signature is None:
            signature = sign(url, form)
        return await self.client.post(url, data=form, headers={"X-Twilio-Signature": signature})

    def recording_url(self, rec: str) -> str:
        return f"{self.media}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{rec}"

    async def record_verb(self, to: str = "+15550000004") -> ET.Element:
        form = {"CallSid": CALL, "AccountSid": ACCOUNT, "From": "+14085551234", "To": to,
                "Direction": "inbound", "CallStatus": "ringing"}  # fmt: skip
        answer = await self.post(self.url + "/twilio/voice", form)
        assert answer.status_code == 200
        record = ET.fromstring(answer.text).find("Record")
        assert record is not None
        return record


@contextlib.asynccontextmanager
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = tmp_path / "messages"
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(store=store))
    stand_in = MediaStandIn()
    async with serve(stand_in.app()) as media:
        settings = Settings(dialplan=str(plan), twilio_auth_token=TOKEN,
                            twilio_account_sid=ACCOUNT, twilio_api_base=media)  # fmt: skip
        async with serve(create_app(settings, EchoEngine())) as url, httpx.AsyncClient() as client:
            yield Rig(url, media, store, stand_in, client)


def sign(url: str, form: dict[str, str]) -> str:
    return RequestValidator(TOKEN).compute_signature(url, form)


def read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None


async def poll(read, done, deadline_s: float = 10.0):
    """``read()`` until ``done(value)``; fails after ``deadline_s`` with the last value."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = read()
        if value is not None and done(value):
            return value
        assert time.monotonic() < deadline, f"not done by the deadline: {value!r}"
        await asyncio.sleep(0.02)


async def test_gateway_voicemail_twiml_points_callbacks_at_voicemail_webhook(tmp_path):
    async with rig(tmp_path) as r:
        record = await r.record_verb()
        crm = await r.record_verb("+15550000005")
    for attribute in ("action", "recordingStatusCallback", "transcribeCallback"):
        url = urlsplit(record.get(attribute))
        assert url.path == "/twilio/voicemail"
        query = parse_qs(url.query)
        assert (query["route"], query["branch"]) == (["closed"], ["otherwise"])
        assert query["from"] == ["+14085551234"] and query["to"] == ["+15550000004"]
    # A URL store still gets Twilio's callbacks itself.
    assert crm.get("recordingStatusCallback") == "https://crm.example.com/vm"
    assert crm.get("transcribeCallback") == "https://crm.example.com/vm"


async def test_gateway_voicemail_saves_audio_and_record_with_transcription(tmp_path):
    async with rig(tmp_path) as r:
        record = await r.record_verb()
        status_url = record.get("recordingStatusCallback")
        text_url = record.get("transcribeCallback")
        # The stand-in refuses a request without the account's credentials.
        anonymous = await r.client.get(r.recording_url(REC) + ".wav")
        assert anonymous.status_code == 401
        # REC: the recording's callback first; REC2: the transcription's first.
        answer = await r.post(status_url, status_form(REC, r.recording_url(REC)))
        assert answer.status_code == 204
        early = await r.post(text_url, transcription_form(REC2, r.recording_url(REC2)))
        assert early.status_code == 204
        late = await r.post(status_url, status_form(REC2, r.recording_url(REC2)))
        assert late.status_code == 204
        text = await r.post(text_url, transcription_form(REC, r.recording_url(REC)))
        assert text.status_code == 204
        done = {}
        for rec in (REC, REC2):
            files = message_files(CALL, rec)
            done[rec] = await poll(lambda f=files: read_json(r.store / f.record),
                                   lambda v: v["audio"] and v["transcription"])  # fmt: skip
        # The <Record action> (the caller finished) is answered with a hang-up.
        action = {"CallSid": CALL, "RecordingUrl": r.recording_url(REC),
                  "RecordingDuration": "3", "Digits": "#"}  # fmt: skip
        ended = await r.post(record.get("action"), action)
    assert ended.status_code == 200
    assert [verb.tag for verb in ET.fromstring(ended.text)] == ["Hangup"]
    for rec, saved in done.items():
        files = message_files(CALL, rec)
        assert (r.store / files.audio).read_bytes() == r.stand_in.audio
        assert saved["status"] == "completed" and saved["duration"] == 3
        assert (saved["caller"], saved["called"]) == ("+14085551234", "+15550000004")
        assert (saved["route"], saved["branch"]) == ("closed", "otherwise")
        assert saved["recording_url"] == r.recording_url(rec)
        assert saved["transcription"] == {"status": "completed", "text": "Please call me back.",
                                          "sid": TR}  # fmt: skip
        datetime.fromisoformat(saved["received_at"].replace("Z", "+00:00"))
    # each file 404'd once (retried), then came
    assert sorted(r.stand_in.requests) == sorted([f"{REC}.wav"] * 2 + [f"{REC2}.wav"] * 2)
    assert sorted(p.name for p in r.store.iterdir()) == sorted(
        n for rec in (REC, REC2) for n in (f"{CALL}-{rec}.wav", f"{CALL}-{rec}.json")
    )


async def test_gateway_voicemail_forged_or_garbage_writes_nothing(tmp_path):
    async with rig(tmp_path) as r:
        status_url = (await r.record_verb()).get("recordingStatusCallback")
        good = status_form(REC, r.recording_url(REC))
        forged = await r.post(status_url, good, signature="forged")
        # signed for one route, posted for another: the query is part of what Twilio signs
        moved = await r.post(status_url.replace("route=closed", "route=crm"), good,
                             signature=sign(status_url, good))  # fmt: skip
        garbage = [
            await r.post(status_url, {**good, "RecordingSid": "RE../../../etc/passwd"}),
            await r.post(status_url, {k: v for k, v in good.items() if k != "CallSid"}),
            await r.post(
                status_url, {**good, "RecordingUrl": "https://evil.example/Recordings/" + REC}
            ),  # fmt: skip
            # a route whose store is a URL: the gateway has no directory to write to
            await r.post(status_url.replace("route=closed", "route=crm"), good),
        ]
    assert forged.status_code == 403 and moved.status_code == 403
    assert [a.status_code for a in garbage] == [400, 400, 400, 400]
    assert not r.store.exists() and r.stand_in.requests == []


async def test_gateway_dial_url_passes_voicemail_callbacks_on(tmp_path):
    async with rig(tmp_path) as r:
        status_url = (await r.record_verb()).get("recordingStatusCallback")
        dial_url = status_url.replace("/twilio/voicemail", "/twilio/dial")
        answer = await r.post(dial_url, status_form(REC, r.recording_url(REC)))
        assert answer.status_code == 204
        files = message_files(CALL, REC)
        saved = await poll(lambda: read_json(r.store / files.record), lambda v: v["audio"])
    assert (r.store / files.audio).read_bytes() == r.stand_in.audio
    assert saved["route"] == "closed"
