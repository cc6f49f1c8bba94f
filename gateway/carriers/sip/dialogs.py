"""Dialogs (RFC 3261 12): a call's dialog state and the rules that move it, sans-I/O.

:class:`Call` is one dialog as the user agent keeps it: its tags and URIs, route set, remote
target, CSeq numbers both ways, and what is in flight (our 2xx awaiting its ACK, an offer
awaiting our answer). The helpers here read dialog facts off messages; the
:class:`~gateway.carriers.sip.ua.UserAgent` owns the calls and drives them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from gateway.carriers.sip.errors import RemoteProtocolError
from gateway.carriers.sip.headers import Address, Uri
from gateway.carriers.sip.message import SipMessage
from gateway.carriers.sip.transaction import Peer

__all__ = ["Call", "CallState", "first_contact", "peer_of", "refresh_target", "without_tag"]


class CallState(enum.Enum):
    INCOMING = "incoming"  # INVITE received, no final response yet
    CALLING = "calling"  # our INVITE sent, no final response yet
    ANSWERED = "answered"  # our 2xx sent, its ACK not yet here
    CONFIRMED = "confirmed"
    ENDED = "ended"


@dataclass(slots=True)
class Call:
    call_id: str
    outbound: bool
    state: CallState
    local_tag: str
    local_uri: str
    remote_uri: str
    invite: SipMessage
    peer: Peer  # where in-dialog requests go
    remote_tag: str = ""
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int = -1
    invite_key: tuple[str, ...] | None = None
    #: Our 2xx to an INVITE awaiting its ACK: (wire, peer, CSeq number, interval).
    pending_2xx: tuple[bytes, Peer, int, float] | None = None
    #: A re-INVITE/UPDATE of the peer's awaiting our answer: (server key, request).
    pending_offer: tuple[tuple[str, ...], SipMessage] | None = None
    reliable: bool = False
    session_expires: int = 0
    # outbound only
    provisional: bool = False
    cancel_wanted: bool = False
    ack_wire: bytes = b""
    redirects: int = 0
    bye_wanted: bool = False


def refresh_target(call: Call, request: SipMessage) -> None:
    """12.2.2: a target refresh request replaces the remote target with its Contact."""
    contacts = request.get_all("Contact")
    if contacts:
        try:
            target = Address.parse(contacts[0]).uri
        except RemoteProtocolError:
            return
        call.remote_target = str(target)
        if not call.reliable:
            call.peer = peer_of(target, call.peer)


def without_tag(value: str) -> str:
    """A From/To value with its tag removed (the dialog's URI, 12.1)."""
    address = Address.parse(value)
    address.params.pop("tag", None)
    return str(address)


def peer_of(uri: Uri, fallback: Peer) -> Peer:
    """Where requests to ``uri`` go: its host and port over its transport (no DNS SRV here:
    the asyncio adapter resolves names before anything is sent)."""
    transport = uri.params.get("transport") or fallback.transport
    return Peer((transport or "udp").lower(), uri.host.strip("[]"), uri.port or 5060)


def first_contact(response: SipMessage) -> Uri | None:
    """The first usable SIP(S) Contact of a response (a 3xx target, a 2xx remote target)."""
    for value in response.get_all("Contact"):
        try:
            uri = Address.parse(value).uri
        except RemoteProtocolError:
            continue
        if uri.scheme in ("sip", "sips"):
            return uri
    return None
