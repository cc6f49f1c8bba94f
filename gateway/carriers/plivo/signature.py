"""Plivo V3 signatures on webhooks and the stream's websocket upgrade.

Plivo signs each request with ``X-Plivo-Signature-V3`` (HMAC-SHA256 of the URL, the sorted
POST parameters and ``X-Plivo-Signature-V3-Nonce``, keyed with the auth token; several
signatures comma-separated when sub-accounts sign too): "Validating requests", plivo.com/docs/
voice/concepts/signature-validation. The check is the ``plivo`` SDK's own
``plivo.utils.signature_v3.validate_v3_signature``; this wrapper bounds the headers and turns
the SDK's argument errors into a refusal. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from plivo.exceptions import PlivoRestError, ValidationError
from plivo.utils.signature_v3 import validate_v3_signature

__all__ = ["NONCE_HEADER", "SIGNATURE_HEADER", "V3Checker"]

SIGNATURE_HEADER = "x-plivo-signature-v3"
NONCE_HEADER = "x-plivo-signature-v3-nonce"
#: A V3 signature is 44 base64 characters; a few comma-separated ones fit well inside this.
MAX_HEADER_CHARS = 1024


class V3Checker:
    """Checks Plivo's V3 signatures with one auth token."""

    def __init__(self, auth_token: str) -> None:
        self._token = auth_token

    def check(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        signature: str | None,
        nonce: str | None,
    ) -> bool:
        """True when ``signature`` is Plivo's for ``method`` ``url`` with form ``params``."""
        if not signature or not nonce:
            return False
        if len(signature) > MAX_HEADER_CHARS or len(nonce) > MAX_HEADER_CHARS:
            return False
        try:
            return bool(
                validate_v3_signature(method, url, nonce, self._token, signature, dict(params))
            )
        except (ValidationError, PlivoRestError, ValueError, TypeError):
            return False
