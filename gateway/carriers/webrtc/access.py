"""Who may open the browser phone: a decision from what a request carries, with no I/O.

Without ``OVERTALK_PHONE_TOKEN`` only loopback clients are served, and not requests a local
proxy forwarded (their forwarding headers give them away): a deployment must never expose a
free bot line by accident. With a token, a request must carry it: ``Authorization: Bearer``,
``?token=`` (the page's own URL, once: a cookie scoped to ``/phone`` carries it after), or that
cookie. The comparison is constant-time, over at most 256 bytes of what was given.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

__all__ = ["COOKIE", "PhoneGate"]

COOKIE = "overtalk_phone"
#: Headers a proxy adds (the runbook's nginx sets both).
_FORWARDED = ("x-forwarded-for", "forwarded")


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PhoneGate:
    """The access rule above, for one configured token ("" for none)."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    @property
    def needs_token(self) -> bool:
        return bool(self._token)

    def allows(
        self,
        client: str | None,
        headers: Mapping[str, str],
        query_token: str | None,
        cookie: str | None,
    ) -> bool:
        """True when this request may have the page or place a call."""
        if not self._token:
            return not any(h in headers for h in _FORWARDED) and _is_loopback(client)
        given = headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = given or query_token or cookie or ""
        return hmac.compare_digest(given.encode()[:256], self._token)
