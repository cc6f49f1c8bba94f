"""Identifiers from the wire, validated once at the edge.

A carrier's identifier ends up in file names (call records, recordings), REST URLs (hang up
*this* call) and log lines. Anything that does not match the carrier's own format is refused
where it enters, so nothing downstream ever has to wonder whether ``../x``, a NUL byte or
``CA.../../IncomingPhoneNumbers/PN...`` is a call.

File names built from an identifier are still resolved and checked to stay inside their
directory (:func:`path_inside`): defence in depth, should a format ever be loosened.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "ACCOUNT_SID",
    "CALL_SID",
    "RECORDING_SID",
    "STREAM_SID",
    "TRANSCRIPTION_SID",
    "InvalidIdentifier",
    "is_exotel_sid",
    "is_file_token",
    "is_telnyx_call_control_id",
    "is_twilio_sid",
    "is_uuid",
    "path_inside",
    "twilio_sid",
]

# Twilio SIDs are two upper-case letters naming the resource type and 32 hex digits; the
# OpenAPI description of the REST API (twilio/twilio-oas, spec/json/twilio_api_v2010.json)
# gives each one as ``pattern: ^CA[0-9a-fA-F]{32}$`` and so on, ``minLength``/``maxLength`` 34.
CALL_SID = "CA"
STREAM_SID = "MZ"
ACCOUNT_SID = "AC"
RECORDING_SID = "RE"
TRANSCRIPTION_SID = "TR"

_TWILIO_SID = re.compile(r"([A-Z]{2})[0-9a-fA-F]{32}")
#: An identifier of another carrier used as a file name and a store key: a SIP Call-ID (RFC 3261
#: ``word``, ``a84b4c76e66710@pc33.atlanta.com``) is any printable ASCII but space. Kept out: path
#: separators (``/``, ``\``), a leading dot or symbol, spaces and control characters, more than
#: 128 characters; so it is safe as ``<id>.wav``, in a log line, and in a URL once quoted.
_FILE_TOKEN = re.compile(r"[A-Za-z0-9][!-.0-\[\]-~]{0,127}")
#: A Telnyx call control id (also a TeXML call's ``CallSid``): a version tag and URL-safe base64,
#: ``v3:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ`` in the Call Control docs
#: (developers.telnyx.com, "Call Control" / "Answer call"); it names REST paths
#: (``/v2/calls/{call_control_id}/actions/hangup``), so nothing else gets through.
_TELNYX_CALL_CONTROL = re.compile(r"v[0-9]:[A-Za-z0-9_-]{8,120}")
#: An RFC 9562 UUID in its 36-character text form (Plivo's CallUUID and streamId, Telnyx's
#: stream_id and account ids), either case.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: How much of a refused value an error message quotes.
_QUOTE = 40


class InvalidIdentifier(ValueError):
    """An identifier from a peer does not have its carrier's format (the peer's fault)."""

    def __init__(self, kind: str, value: object) -> None:
        shown = repr(value)
        if len(shown) > _QUOTE:
            shown = shown[:_QUOTE] + "..."
        super().__init__(f"{kind} is not valid: {shown}")
        self.kind = kind


def is_twilio_sid(value: object, prefix: str) -> bool:
    """True when ``value`` is a Twilio SID of the type ``prefix`` (``CA``, ``MZ``...)."""
    if not isinstance(value, str) or len(value) != 34:
        return False
    match = _TWILIO_SID.fullmatch(value)
    return match is not None and match.group(1) == prefix


def twilio_sid(value: object, prefix: str, kind: str = "") -> str:
    """``value`` if it is a Twilio SID of type ``prefix``; raises InvalidIdentifier otherwise."""
    if not is_twilio_sid(value, prefix):
        raise InvalidIdentifier(kind or f"{prefix} SID", value)
    assert isinstance(value, str)
    return value


def is_telnyx_call_control_id(value: object) -> bool:
    """True when ``value`` has the format of a Telnyx call control id (``v3:...``)."""
    return (
        isinstance(value, str)
        and len(value) <= 123
        and _TELNYX_CALL_CONTROL.fullmatch(value) is not None
    )


def is_uuid(value: object) -> bool:
    """True when ``value`` is a UUID in its 36-character text form."""
    return isinstance(value, str) and len(value) == 36 and _UUID.fullmatch(value) is not None


def is_file_token(value: object) -> bool:
    """True when ``value`` can name a file as it is (no separator, no dot-dot, no control)."""
    return isinstance(value, str) and _FILE_TOKEN.fullmatch(value) is not None


def path_inside(directory: str | Path, name: str, suffix: str) -> Path:
    """``directory/name+suffix``, refused unless ``name`` is a plain token and the resolved
    path stays inside the resolved ``directory`` (symbolic links included)."""
    if not is_file_token(name):
        raise InvalidIdentifier("file name", name)
    root = Path(directory).resolve()
    path = (root / f"{name}{suffix}").resolve()
    if path.parent != root:
        raise InvalidIdentifier("file name", name)
    return path


#: Exotel's call and stream SIDs are opaque alphanumeric strings (its examples show 32 hex
#: digits, or ``CA``/``MZ`` and letters); nothing else is accepted: no separator, no dot.
_EXOTEL_SID = re.compile(r"[A-Za-z0-9]{1,64}")


def is_exotel_sid(value: object) -> bool:
    """True when ``value`` can be an Exotel call, stream or account SID."""
    return isinstance(value, str) and _EXOTEL_SID.fullmatch(value) is not None
