"""Voicemail left through a dial plan's ``voicemail`` action: which Twilio callback arrived, and
what it becomes on disk. Sans-I/O: no sockets, no files, no clock (time is passed in); the
asyncio side is ``gateway.carriers.twilio.voicemail_io``.

A ``<Record>`` makes Twilio send three kinds of request, told apart by their parameters:

- the ``action`` request when the recording ends: ``RecordingUrl``, ``RecordingDuration``,
  ``Digits`` (plus the call's ``CallSid``, ``From``, ``To``...). It asks for the next TwiML;
  the message is left, so the answer is a hang-up (:class:`RecordEnded`).
- the ``recordingStatusCallback``: ``RecordingSid``, ``RecordingUrl``, ``RecordingStatus``
  (``in-progress``, ``completed``, ``absent``, ``failed``), ``RecordingDuration``,
  ``RecordingChannels``, ``RecordingSource``, ``CallSid``, ``AccountSid``; it carries no
  ``From``/``To`` (:class:`RecordingReport`).
- the ``transcribeCallback``: ``TranscriptionSid``, ``TranscriptionText``,
  ``TranscriptionStatus``, ``TranscriptionUrl``, ``RecordingSid``, ``RecordingUrl``,
  ``CallSid`` (:class:`TranscriptionReport`).

Callbacks arrive in any order (a transcription may beat the recording), so each one merges
into the message's record rather than writing it whole.

Sources: https://www.twilio.com/docs/voice/twiml/record (attributes; action and transcribe
callback parameters), https://www.twilio.com/docs/usage/webhooks/voice-webhooks (recording
status callbacks), https://support.twilio.com/hc/en-us/articles/360014251313 (the four
recording statuses), https://support.twilio.com/hc/en-us/articles/15827821586843 (media URLs
need the Account SID and Auth Token), https://www.twilio.com/docs/voice/api/recording-transcription
(``RE``/``TR`` + 32 hex SIDs).

Errors::

    VoicemailError
    └── BadCallback   the request is garbage (status_hint 400); nothing is written
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import SplitResult, urlsplit

from gateway.ids import CALL_SID, RECORDING_SID, TRANSCRIPTION_SID, is_twilio_sid

#: Where recording media lives when no stand-in API base is configured.
TWILIO_API = "https://api.twilio.com"
#: Longest free-text value kept in a record (a transcription of Twilio's 2-minute limit is far
#: shorter; this only bounds garbage).
MAX_TEXT = 20000


_E = TypeVar("_E", bound=enum.StrEnum)


class VoicemailError(Exception):
    """Base of this module's errors."""


class BadCallback(VoicemailError):
    """The request is not a callback this gateway can keep: the peer's fault."""

    status_hint = 400


class RecordingStatus(enum.StrEnum):
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    ABSENT = "absent"
    FAILED = "failed"


class TranscriptionStatus(enum.StrEnum):
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RecordEnded:
    """The ``<Record action>`` request: the caller finished (or hung up, or timed out)."""

    call_sid: str
    recording_url: str
    duration: int | None
    digits: str


@dataclass(frozen=True, slots=True)
class RecordingReport:
    """A ``recordingStatusCallback``."""

    call_sid: str
    recording_sid: str
    status: RecordingStatus
    recording_url: str
    duration: int | None


@dataclass(frozen=True, slots=True)
class TranscriptionReport:
    """A ``transcribeCallback``."""

    call_sid: str
    recording_sid: str
    sid: str
    status: TranscriptionStatus
    text: str
    recording_url: str
    caller: str
    called: str


Callback = RecordEnded | RecordingReport | TranscriptionReport


@dataclass(frozen=True, slots=True)
class MessageFiles:
    """The names of one message's files in its store directory."""

    audio: str
    record: str


def classify(params: Mapping[str, str]) -> Callback:
    """Which callback ``params`` (a form Twilio posted) is; raises :class:`BadCallback`.

    A transcription carries ``TranscriptionSid``, a status callback ``RecordingStatus``; what
    has neither is the action request, which needs nothing valid to be answered.
    """
    if "TranscriptionSid" in params:
        call_sid = _sid(params, "CallSid", CALL_SID)
        recording_sid = _sid(params, "RecordingSid", RECORDING_SID)
        return TranscriptionReport(
            call_sid=call_sid,
            recording_sid=recording_sid,
            sid=_sid(params, "TranscriptionSid", TRANSCRIPTION_SID),
            status=_enum(TranscriptionStatus, params.get("TranscriptionStatus", "")),
            text=params.get("TranscriptionText", "")[:MAX_TEXT],
            recording_url=_recording_url(params),
            caller=params.get("From", "")[:100],
            called=params.get("To", "")[:100],
        )
    if "RecordingStatus" in params:
        call_sid = _sid(params, "CallSid", CALL_SID)
        recording_sid = _sid(params, "RecordingSid", RECORDING_SID)
        status = _enum(RecordingStatus, params["RecordingStatus"])
        url = _recording_url(params)
        if status is RecordingStatus.COMPLETED and not url:
            raise BadCallback("a completed recording without RecordingUrl")
        return RecordingReport(
            call_sid=call_sid,
            recording_sid=recording_sid,
            status=status,
            recording_url=url,
            duration=_seconds(params.get("RecordingDuration")),
        )
    return RecordEnded(
        call_sid=params.get("CallSid", "")[:64],
        recording_url=params.get("RecordingUrl", "")[:1000],
        duration=_seconds(params.get("RecordingDuration")),
        digits=params.get("Digits", "")[:32],
    )


def message_files(call_sid: str, recording_sid: str) -> MessageFiles:
    """``<CallSid>-<RecordingSid>.wav`` and ``.json``; only well-formed SIDs make a name."""
    if not is_twilio_sid(call_sid, CALL_SID) or not is_twilio_sid(recording_sid, RECORDING_SID):
        raise BadCallback(f"not a CallSid/RecordingSid pair: {call_sid!r}, {recording_sid!r}")
    stem = f"{call_sid}-{recording_sid}"
    return MessageFiles(audio=f"{stem}.wav", record=f"{stem}.json")


def audio_url(report: RecordingReport, api_base: str = "") -> str:
    """The WAV to fetch for ``report``: its ``RecordingUrl`` + ``.wav``.

    The account's credentials go with the request, so only Twilio's hosts (``https``,
    ``*.twilio.com``) or the configured ``api_base`` (a stand-in) are trusted with it.
    """
    parts = _split(report.recording_url)
    trusted = parts.scheme == "https" and (
        parts.hostname == "twilio.com" or (parts.hostname or "").endswith(".twilio.com")
    )
    if api_base:
        base = _split(api_base)
        trusted = trusted or (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
    if not trusted:
        raise BadCallback(f"RecordingUrl is not on Twilio's API: {report.recording_url!r}")
    return report.recording_url + ".wav"


def recording_record(
    existing: Mapping[str, Any] | None,
    report: RecordingReport,
    *,
    route: str,
    branch: str,
    caller: str,
    called: str,
    received_at: datetime,
) -> dict[str, Any]:
    """The message's record with ``report`` merged in.

    A transcription that came first is kept; so are the first receipt time, the audio file
    already fetched (Twilio may repeat a callback) and a caller already known.
    """
    record = _base(existing, report.call_sid, report.recording_sid, route, branch, received_at)
    record.update(
        status=str(report.status),
        duration=report.duration,
        recording_url=report.recording_url or record["recording_url"],
        caller=record["caller"] or caller,
        called=record["called"] or called,
    )
    return record


def with_audio(existing: Mapping[str, Any], audio: str) -> dict[str, Any]:
    """The record once its audio file is in the store."""
    return {**existing, "audio": audio}


def transcription_record(
    existing: Mapping[str, Any] | None,
    report: TranscriptionReport,
    *,
    route: str,
    branch: str,
    caller: str,
    called: str,
    received_at: datetime,
) -> dict[str, Any]:
    """The message's record with the transcription set (the record is made if it is the first
    callback to arrive; its ``status`` stays null until the recording's own callback)."""
    record = _base(existing, report.call_sid, report.recording_sid, route, branch, received_at)
    record.update(
        transcription={"status": str(report.status), "text": report.text, "sid": report.sid},
        recording_url=record["recording_url"] or report.recording_url,
        caller=record["caller"] or report.caller or caller,
        called=record["called"] or report.called or called,
    )
    return record


def _base(
    existing: Mapping[str, Any] | None,
    call_sid: str,
    recording_sid: str,
    route: str,
    branch: str,
    received_at: datetime,
) -> dict[str, Any]:
    if received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    fresh: dict[str, Any] = {
        "call_sid": call_sid,
        "recording_sid": recording_sid,
        "caller": "",
        "called": "",
        "received_at": received_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "duration": None,
        "route": route,
        "branch": branch,
        "recording_url": "",
        "status": None,
        "audio": None,
        "transcription": None,
    }
    return {**fresh, **(existing or {})}


def _sid(params: Mapping[str, str], name: str, prefix: str) -> str:
    value = params.get(name, "")
    if not value:
        raise BadCallback(f"{name} is missing")
    if not is_twilio_sid(value, prefix):
        raise BadCallback(f"{name} is not a Twilio SID: {value[:80]!r}")
    return value


def _enum(kind: type[_E], value: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise BadCallback(f"unknown {kind.__name__}: {value[:40]!r}") from None


def _recording_url(params: Mapping[str, str]) -> str:
    """``RecordingUrl`` if it is the URL of this callback's recording, else BadCallback.

    It must end in ``/Recordings/<RecordingSid>`` with no query, fragment or credentials, so
    that ``+ ".wav"`` names that recording's media and nothing else.
    """
    url = params.get("RecordingUrl", "")
    if not url:
        return ""
    parts = _split(url)
    sid = params.get("RecordingSid", "")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or not parts.path.endswith(f"/Recordings/{sid}")
        or "/../" in parts.path
        or "%" in parts.path
    ):
        raise BadCallback(f"RecordingUrl is not recording {sid[:40]!r}'s: {url[:200]!r}")
    return url


def _split(url: str) -> SplitResult:
    """``urlsplit`` with its ValueError (a malformed IPv6 host, a bad port) as BadCallback."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsed lazily; raises for a malformed port
    except ValueError:
        raise BadCallback(f"malformed URL: {url[:200]!r}") from None
    return parts


def _seconds(value: str | None) -> int | None:
    """``RecordingDuration`` as whole seconds; absent or not a count: None (it is informative).
    ASCII digits only: ``"²".isdigit()`` is true, and ``int("²")`` raises."""
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 9:
        return None
    return int(value)
