"""Vonage signed webhooks: the ``Authorization: Bearer <JWT>`` on each Voice API callback.

Vonage's guide "Signed webhooks" (https://developer.vonage.com/en/getting-started/concepts/
webhooks#signed-webhooks) says: the token is signed HS256 with the account's *signature
secret*; its claims carry ``iat`` (when it was issued) and, for a request with a body,
``payload_hash``, the SHA-256 of the body in hex, so a token cannot be moved onto another
body. The signature is checked with the ``vonage-jwt`` package's ``verify_signature``; the
claims it does not look at (``payload_hash``, ``iat``) are checked here, with time passed in.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac

import jwt
from vonage_jwt.errors import VonageVerifyJwtError
from vonage_jwt.verify_jwt import verify_signature

__all__ = ["MAX_TOKEN_CHARS", "SignedWebhooks", "bearer_token"]

#: A Vonage webhook token is a few hundred characters; anything far longer is not one.
MAX_TOKEN_CHARS = 4096


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization or len(authorization) > MAX_TOKEN_CHARS + 7:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class SignedWebhooks:
    """Checks Vonage's webhook tokens with one signature secret.

    ``max_age`` bounds how old (by ``iat``) a token may be, and how far in the future: a
    captured request cannot be replayed after that.
    """

    def __init__(self, signature_secret: str, max_age: float = 300.0) -> None:
        if not signature_secret:
            raise ValueError("a Vonage signature secret is needed to check webhooks")
        self._secret = signature_secret
        self.max_age = max_age

    def check(self, authorization: str | None, body: bytes, now: float) -> str | None:
        """None when the request is Vonage's; otherwise why not (bounded, nothing of the
        peer's)."""
        token = bearer_token(authorization)
        if token is None:
            return "no bearer token"
        try:
            if not verify_signature(token, self._secret):
                return "bad signature"
        except VonageVerifyJwtError:
            return "malformed or expired token"
        claims = jwt.decode(token, options={"verify_signature": False})
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or abs(now - issued) > self.max_age:
            return "token too old or not yet valid"
        digest = claims.get("payload_hash")
        if body or digest is not None:
            expected = hashlib.sha256(body).hexdigest()
            if not isinstance(digest, str) or not hmac.compare_digest(digest.lower(), expected):
                return "payload_hash does not match the body"
        return None
