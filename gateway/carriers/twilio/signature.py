"""``X-Twilio-Signature`` checks for the voice webhook and the Media Streams upgrade.

Twilio signs the URL *it* requested: behind a proxy or load balancer the gateway sees another
host, scheme or port, so the URL is rebuilt from the configured public base URL, never from the
request's Host. The websocket upgrade is signed over the ``wss://`` form of that URL with empty
parameters (REFERENCE.md 1.6).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator


def public_url(base: str, path: str, query: str = "", *, websocket: bool = False) -> str:
    """The URL Twilio requested: ``base`` (scheme://host[:port][/prefix]) + ``path`` + query.

    ``websocket`` maps http->ws and https->wss, the scheme Twilio signs an upgrade with.
    """
    scheme, netloc, prefix, _, _ = urlsplit(base)
    if websocket:
        scheme = {"https": "wss", "http": "ws"}.get(scheme, scheme)
    return urlunsplit((scheme, netloc, prefix.rstrip("/") + path, query, ""))


class SignatureChecker:
    """Validates Twilio's signatures with the ``twilio`` library's RequestValidator."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def check_webhook(self, url: str, params: Mapping[str, str], signature: str | None) -> bool:
        """True when ``signature`` is Twilio's for a form POST of ``params`` to ``url``."""
        if not signature:
            return False
        try:
            return bool(self._validator.validate(url, dict(params), signature))
        except (TypeError, ValueError):  # e.g. a JSON body signed without bodySHA256
            return False

    def check_upgrade(self, url: str, signature: str | None) -> bool:
        """True when ``signature`` is Twilio's for the websocket upgrade to ``url`` (wss://)."""
        return self.check_webhook(url, {}, signature)

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """Compute the signature Twilio would send (for the simulator and tests)."""
        return str(self._validator.compute_signature(url, dict(params)))
