"""Telnyx webhook signatures: Ed25519 over ``"{timestamp}|{body}"``, with a replay window.

Telnyx signs every webhook (TeXML fetches included) with its account key: the
``telnyx-signature-ed25519`` header is the base64 Ed25519 signature of the
``telnyx-timestamp`` header, a ``|`` and the raw body; a timestamp more than five minutes from
now is refused ("Webhook signing", developers.telnyx.com/docs/messaging/messages/
receiving-webhooks#webhook-signing; the same rule as the telnyx SDK's
``telnyx/lib/webhook_verification.py``: TIMESTAMP_TOLERANCE_SECONDS = 300).

The SDK's ``verify_webhook_signature`` reads the clock itself and lets a body that is not
UTF-8 escape as ``UnicodeDecodeError``; this check takes ``now`` (sans-I/O, testable at the
window's edges) and verifies the raw bytes with PyNaCl, the library the SDK uses. The tests
check that the SDK accepts what this accepts.
"""

from __future__ import annotations

import binascii

import pybase64
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "TOLERANCE_S", "Ed25519Checker"]

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TOLERANCE_S = 300.0


class Ed25519Checker:
    """Checks Telnyx webhooks against the account's public key (base64, 32 bytes)."""

    def __init__(self, public_key: str, tolerance: float = TOLERANCE_S) -> None:
        try:
            raw = pybase64.b64decode(public_key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the Telnyx public key is not base64") from None
        if len(raw) != 32:
            raise ValueError(f"the Telnyx public key has {len(raw)} bytes, not 32")
        self._key = VerifyKey(raw)
        self.tolerance = tolerance

    def check(
        self, body: bytes, signature: str | None, timestamp: str | None, now: float
    ) -> str | None:
        """None when the request is Telnyx's; otherwise why not (no text of the peer's)."""
        if not signature or not timestamp:
            return "missing Telnyx signature headers"
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return "malformed telnyx-timestamp"
        if abs(now - int(timestamp)) > self.tolerance:
            return "telnyx-timestamp outside the replay window"
        if len(signature) > 128:
            return "malformed signature"
        try:
            raw = pybase64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return "malformed signature"
        if len(raw) != 64:
            return "malformed signature"
        try:
            self._key.verify(timestamp.encode() + b"|" + body, raw)
        except BadSignatureError:
            return "signature does not match"
        return None
