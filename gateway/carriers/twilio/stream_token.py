"""Stream tokens: a Media Stream is served only for a call the gateway announced.

The upgrade's ``X-Twilio-Signature`` covers the URL alone (``wss://host/twilio/media``), so
anyone who once saw a signed upgrade could open streams naming any ``callSid``. The TwiML the
gateway answers with (the voice webhook's ``<Connect><Stream>``, or the inline TwiML of an
outbound call it creates) therefore carries one more ``<Parameter>``: an HMAC-SHA256 token over
the call it is for, the dial-plan route and an expiry. Twilio hands the ``<Parameter>``s back in
the stream's ``start`` message, and the gateway checks the token there. Nobody else sees the
TwiML, so nobody else can produce a token, and a token names one call.

An outbound call's TwiML is written before Twilio has given the call its SID: its token is over
the dialler's attempt key instead (``attempt:<key>``), and the gateway accepts such a token
once (:class:`StreamTokens` remembers it until it expires).

Pure: time is passed in (wall-clock seconds, since the dialler issuing a token and the gateway
checking it may be different processes on different machines).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

__all__ = ["SAMPLE_TOKEN", "TOKEN_PARAMETER", "StreamTokens", "token_subject"]

#: The ``<Parameter>`` name the token travels under.
TOKEN_PARAMETER = "stream_token"
_VERSION = "v1"
#: A token of the real length, for checking that a TwiML document fits Twilio's limits before
#: any token is issued (a campaign's contacts are checked when it is created).
SAMPLE_TOKEN = f"{_VERSION}.{'0' * 10}.{'0' * 40}"
#: How many attempt tokens are remembered as spent (bounded: the oldest expire first).
_MAX_SPENT = 100_000


def token_subject(call_sid: str, parameters: Mapping[str, str]) -> str:
    """What a stream's token must be for: its dialler attempt, or else its call."""
    attempt = parameters.get("attempt")
    return f"attempt:{attempt}" if attempt else call_sid


def _route(parameters: Mapping[str, str]) -> str:
    """The dial-plan identity a stream's action is recalled by (route, branch, path, plan)."""
    return "\x1f".join(parameters.get(k, "") for k in ("route", "branch", "path", "plan"))


class StreamTokens:
    """Issues and checks stream tokens with one secret; ``ttl`` seconds of validity."""

    def __init__(self, secret: bytes, ttl: float = 600.0) -> None:
        if len(secret) < 16:
            raise ValueError("a stream token secret needs at least 16 bytes")
        self._key = secret
        self.ttl = ttl
        self._spent: dict[str, int] = {}

    @classmethod
    def derive(
        cls, stream_secret: str = "", auth_token: str = "", ttl: float = 600.0
    ) -> StreamTokens:
        """The gateway's tokens: from ``OVERTALK_STREAM_SECRET`` if set, else derived from the
        Twilio auth token (so every replica and the dialler agree with no more set-up), else a
        random secret for this process alone (a loopback development gateway)."""
        if stream_secret:
            secret = stream_secret.encode()
        elif auth_token:
            secret = hmac.digest(auth_token.encode(), b"overtalk stream token v1", "sha256")
        else:
            secret = os.urandom(32)
        return cls(secret if len(secret) >= 16 else hashlib.sha256(secret).digest(), ttl)

    def _mac(self, subject: str, route: str, expiry: int) -> str:
        message = f"{_VERSION}\n{subject}\n{route}\n{expiry}".encode()
        return hmac.new(self._key, message, "sha256").hexdigest()[:40]

    def issue(self, subject: str, parameters: Mapping[str, str], now: float) -> str:
        """The token for a stream about ``subject`` whose other ``<Parameter>``s are
        ``parameters`` (only the dial-plan names among them are covered)."""
        expiry = int(now + self.ttl)
        return f"{_VERSION}.{expiry}.{self._mac(subject, _route(parameters), expiry)}"

    def verify(self, call_sid: str, parameters: Mapping[str, str], now: float) -> str | None:
        """None when the ``start`` of ``call_sid`` with these ``<Parameter>``s carries a valid
        token; otherwise why not (bounded text, nothing of the peer's)."""
        token = parameters.get(TOKEN_PARAMETER)
        if not token:
            return "no stream token"
        version, _, rest = token.partition(".")
        expiry_text, _, mac = rest.partition(".")
        if version != _VERSION or not (expiry_text.isascii() and expiry_text.isdigit()):
            return "malformed stream token"
        if len(expiry_text) > 12:
            return "malformed stream token"
        expiry = int(expiry_text)
        subject = token_subject(call_sid, parameters)
        if not hmac.compare_digest(mac, self._mac(subject, _route(parameters), expiry)):
            return "stream token not for this call"
        if now > expiry:
            return "stream token expired"
        if subject != call_sid:  # an attempt token: one stream only
            self._forget_spent(now)
            if token in self._spent:
                return "stream token already used"
            self._spent[token] = expiry
        return None

    def _forget_spent(self, now: float) -> None:
        spent = self._spent
        while spent:
            oldest = next(iter(spent))
            if spent[oldest] >= now and len(spent) < _MAX_SPENT:
                break
            del spent[oldest]
