"""Registration (RFC 3261 10), sans-I/O: our binding at a registrar.

Every REGISTER of one binding shares a Call-ID and From tag, with CSeq rising (10.2). The
grant is the ``expires`` of our Contact in the 2xx, else its Expires (10.2.4); the binding is
refreshed well before it lapses; a 423 asks again for at least its Min-Expires (10.2.8); a
failure is retried after :data:`REGISTER_RETRY`. The
:class:`~gateway.carriers.sip.ua.UserAgent` sends the requests and keeps the timer.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.carriers.sip.errors import RemoteProtocolError
from gateway.carriers.sip.headers import Address
from gateway.carriers.sip.message import SipMessage

__all__ = ["REGISTER_RETRY", "Binding", "granted_expires", "min_expires", "refresh_after"]

#: Seconds before a failed registration is tried again.
REGISTER_RETRY = 60.0
#: The longest Min-Expires we take from a 423 (digits), about 31 years.
_MAX_EXPIRES_DIGITS = 9


@dataclass(slots=True)
class Binding:
    """One registration's identity and CSeq: constant Call-ID and tag, CSeq rising."""

    call_id: str
    tag: str
    #: Seconds we ask for (0 removes the binding).
    expires: int
    seq: int = 0

    def request(self, registrar: str, aor: str, via: str, contact: str, agent: str) -> SipMessage:
        """The next REGISTER of this binding (10.2)."""
        self.seq += 1
        request = SipMessage(method="REGISTER", uri=registrar)
        request.add("Via", via)
        request.add("Max-Forwards", "70")
        request.add("From", f"<{aor}>;tag={self.tag}")
        request.add("To", f"<{aor}>")
        request.add("Call-ID", self.call_id)
        request.add("CSeq", f"{self.seq} REGISTER")
        request.add("Contact", contact)
        request.add("Expires", str(self.expires))
        request.add("User-Agent", agent)
        return request

    def again(self, request: SipMessage, via: str) -> None:
        """Make ``request`` the next of this binding (after a challenge or a 423)."""
        self.seq += 1
        request.set("CSeq", f"{self.seq} REGISTER")
        request.set("Via", via)


def granted_expires(response: SipMessage, asked: int, contact: str) -> int:
    """10.2.4: the registrar's grant is the ``expires`` of our Contact, else Expires."""
    ours = Address.parse(contact).uri
    for value in response.get_all("Contact"):
        try:
            address = Address.parse(value)
        except RemoteProtocolError:
            continue
        if address.uri.host == ours.host and address.uri.port == ours.port:
            granted = address.params.get("expires")
            if granted and granted.isdigit():
                return int(granted)
    expires = response.get("Expires", "")
    return int(expires) if expires and expires.isdigit() else asked


def refresh_after(expires: int) -> float:
    """Seconds until a binding granted for ``expires`` is refreshed: well before it lapses."""
    return max(1.0, expires - min(60.0, expires / 2))


def min_expires(response: SipMessage) -> int | None:
    """A 423's Min-Expires (10.2.8), or None when it has none we can read."""
    value = response.get("Min-Expires") or ""
    if value.isascii() and value.isdigit() and len(value) <= _MAX_EXPIRES_DIGITS:
        return int(value)
    return None
