"""Digest authentication as a client (RFC 3261 22.2; the digest itself is ``digest.py``).

A registrar or trunk answers 401/407 with a challenge; :meth:`DigestClient.answer` adds the
matching Authorization (or Proxy-Authorization) to the request to send again. One answer per
nonce unless the challenge says the nonce was merely ``stale``: a wrong password must end in
the 401/407 standing, never in a loop. Nonce counts are kept per nonce, and both tables are
bounded.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.carriers.sip.digest import Challenge, Credentials, authorization
from gateway.carriers.sip.message import SipMessage

__all__ = ["DigestClient"]

#: Nonces remembered at most; past this the tables start again.
MAX_NONCES = 64


class DigestClient:
    """Our side of digest challenges, for one user agent."""

    def __init__(self, credentials: Credentials | None, cnonce: Callable[[], str]) -> None:
        self.credentials = credentials
        self.cnonce = cnonce
        self._tries: dict[str, int] = {}
        self._nonce_counts: dict[str, int] = {}

    def answer(self, request: SipMessage, response: SipMessage) -> bool:
        """Authorise ``request`` against the challenge in ``response`` (401 or 407).

        False when we have no credentials for it, or already failed with this nonce. Raises
        :class:`~gateway.carriers.sip.errors.RemoteProtocolError` for a challenge that does
        not parse.
        """
        credentials = self.credentials
        if credentials is None:
            return False
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        answer = "Authorization" if response.status == 401 else "Proxy-Authorization"
        challenge = Challenge.parse(response.get(header) or "")
        if credentials.realm and credentials.realm != challenge.realm:
            return False
        tries = self._tries.get(challenge.nonce, 0)
        if tries >= 1 and not challenge.stale:
            return False
        if len(self._tries) > MAX_NONCES:
            self._tries.clear()
            self._nonce_counts.clear()
        self._tries[challenge.nonce] = tries + 1
        count = self._nonce_counts.get(challenge.nonce, 0) + 1
        self._nonce_counts[challenge.nonce] = count
        value = authorization(
            challenge,
            credentials,
            method=request.method,
            uri=request.uri,
            cnonce=self.cnonce(),
            nonce_count=count,
        )
        request.remove("Authorization")
        request.remove("Proxy-Authorization")
        request.add(answer, value)
        return True
