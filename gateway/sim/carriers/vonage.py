"""Vonage's side of one Voice API websocket and its REST calls, sans I/O: the stand-in.

It writes what Vonage sends a gateway's websocket and judges what the gateway sends back, as
Vonage documents them. Every rule cites its source:

- [WS] "WebSockets in the Vonage Voice API",
  https://developer.vonage.com/en/voice/voice-api/concepts/websockets
- [NCCO] NCCO reference, ``connect`` with a ``websocket`` endpoint,
  https://developer.vonage.com/en/voice/voice-api/ncco-reference#websocket-the-websocket-to-connect-to
- [API] Voice API reference, "Modify an in progress call",
  https://developer.vonage.com/en/api/voice#updateCall
- [SIGNED] "Signed webhooks",
  https://developer.vonage.com/en/getting-started/concepts/webhooks#signed-webhooks

Garbage from the gateway never raises: each bad message is recorded in :attr:`violations` with
its reason and otherwise ignored. Time is passed in to every method that depends on it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson

from gateway.sim.carriers.playback import DueMark, PcmPlayback, PlayedPcm

__all__ = ["Inbound", "VonageMediaSim", "VonageVoiceApi", "new_uuid"]

#: [NCCO] the content-types a websocket endpoint may ask for.
RATES = (8000, 16000, 24000)
_CONTENT_TYPE = re.compile(r"audio/l16;rate=(8000|16000|24000)")
#: [WS] keys a caller may press.
DTMF_DIGITS = frozenset("0123456789*#")


def new_uuid() -> str:
    """A call leg UUID in Vonage's canonical form."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Inbound:
    """What one gateway message was: ``audio``, ``notify``, ``clear`` or ``invalid``."""

    event: str
    reason: str = ""


@dataclass
class VonageMediaSim:
    """The Vonage end of one websocket call leg."""

    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        match = _CONTENT_TYPE.fullmatch(self.content_type)
        if match is None:
            raise ValueError(f"[NCCO] no such content-type: {self.content_type!r}")
        self.rate = int(match.group(1))
        #: [WS] one message carries 20 ms of audio: 640 bytes at 16 kHz, 320 at 8 kHz.
        self.frame_bytes = self.rate // 50 * 2
        self.playback = PcmPlayback(self.rate)
        self.received = 0
        self.frames_received = 0
        self.notifies_received = 0
        self.notifies_echoed = 0
        self.clears_received = 0

    # ------------------------------------------------------------------ Vonage -> gateway

    def connected(self) -> str:
        """[WS] the first message: the content-type, and the NCCO's ``headers`` as fields."""
        return orjson.dumps(
            {"event": "websocket:connected", "content-type": self.content_type, **self.headers}
        ).decode()

    def audio(self, pcm: bytes) -> bytes:
        """[WS] caller audio: one binary message of 20 ms of 16-bit little-endian PCM."""
        if len(pcm) != self.frame_bytes:
            raise ValueError(f"a Vonage frame at {self.rate} Hz is {self.frame_bytes} bytes")
        return pcm

    def dtmf(self, digit: str) -> str:
        """[WS] a key press, as a ``websocket:dtmf`` event."""
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        return orjson.dumps({"event": "websocket:dtmf", "digit": digit, "duration": 100}).decode()

    # ------------------------------------------------------------------ gateway -> Vonage

    def receive(self, message: str | bytes, now: float) -> tuple[Inbound, list[str]]:
        """Take one message from the gateway (bytes: binary frame); returns what it was and
        the text messages Vonage answers with at once (``websocket:cleared``)."""
        self.received += 1
        if isinstance(message, bytes):
            # [WS] audio to play is binary 16-bit PCM at the connection's rate, 20 ms a message.
            if len(message) != self.frame_bytes:
                return self._violation(f"binary frame of {len(message)} bytes, not 20 ms"), []
            self.frames_received += 1
            self.playback.audio(message, now)
            return Inbound("audio"), []
        try:
            msg = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            return self._violation(f"text frame is not JSON: {exc}"), []
        if not isinstance(msg, dict):
            return self._violation("text frame is not a JSON object"), []
        action = msg.get("action")
        if action == "notify":
            payload = msg.get("payload")
            # [WS] notify carries a payload object, sent back once the audio before it played.
            if not isinstance(payload, dict):
                return self._violation("notify without a payload object"), []
            self.notifies_received += 1
            self.playback.mark(orjson.dumps(payload).decode(), now)
            return Inbound("notify"), []
        if action == "clear":
            # [WS] clear empties the playback buffer and is answered with websocket:cleared.
            # The guide promises no echo for notifies queued behind the cleared audio, so the
            # stand-in sends none: a gateway must not wait for them.
            self.clears_received += 1
            self.playback.clear(now)
            return Inbound("clear"), ['{"event":"websocket:cleared"}']
        return self._violation(f"unknown action {action!r} (expected notify or clear)"), []

    def advance(self, now: float) -> tuple[list[PlayedPcm], list[str]]:
        """Play up to ``now``: what played, and the ``websocket:notify`` messages now due."""
        played, due = self.playback.take(now)
        return played, [self._notify(mark) for mark in due]

    def _notify(self, mark: DueMark) -> str:
        self.notifies_echoed += 1
        return '{"event":"websocket:notify","payload":' + mark.name + "}"

    def _violation(self, reason: str) -> Inbound:
        self.violations.append(f"#{self.received}: {reason}")
        return Inbound("invalid", reason)


@dataclass
class VonageVoiceApi:
    """[API] the two call updates a gateway makes, checked as Vonage checks them.

    Requests carry an application JWT (RS256, signed with the application's private key, claim
    ``application_id``); ``public_key`` is the application's public key (PEM).
    """

    application_id: str
    public_key: str
    #: UUID -> what happened to the call: "hangup" or ("transfer", ncco).
    updates: dict[str, list[Any]] = field(default_factory=dict)

    def handle(self, method: str, path: str, authorization: str, body: bytes) -> tuple[int, Any]:
        """One request; returns the status and the JSON body Vonage would answer with."""
        match = re.fullmatch(r"/v1/calls/([0-9a-f-]{36})", path)
        if method != "PUT" or match is None:
            return 404, {"title": "Not found"}
        token = authorization.removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return 401, {"title": "Unauthorized", "detail": "invalid application JWT"}
        if claims.get("application_id") != self.application_id:
            return 401, {"title": "Unauthorized", "detail": "JWT for another application"}
        try:
            update = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, {"title": "Bad request", "detail": "body is not JSON"}
        action = update.get("action") if isinstance(update, dict) else None
        call = match.group(1)
        if action == "hangup":
            self.updates.setdefault(call, []).append("hangup")
            return 204, None
        destination = update.get("destination") if isinstance(update, dict) else None
        if (
            action == "transfer"
            and isinstance(destination, dict)
            and destination.get("type") == "ncco"
            and isinstance(destination.get("ncco"), list)
        ):
            self.updates.setdefault(call, []).append(("transfer", destination["ncco"]))
            return 204, None
        return 400, {"title": "Bad request", "detail": f"unsupported action {action!r}"}
