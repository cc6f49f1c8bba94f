"""SIP messages on the wire: :meth:`SipMessage.parse` and :meth:`SipMessage.serialize`.

One class for requests and responses (``method``/``uri`` or ``status``/``reason``), headers kept
in order as ``(name, value)`` pairs with names in their canonical spelling, so that
``parse(serialize(m)) == m`` and ``serialize(parse(raw))`` is ``raw`` in canonical form. Compact
header names (``v``, ``f``, ``i``...) are expanded on parse (RFC 3261 7.3.3).

Limits are arguments (:class:`SipLimits`): a datagram or stream message over ``max_size`` is
refused with 513 (RFC 3261 21.5.14), too many headers or an overlong line with 400. A message
whose start line cannot be read raises with ``status=None``: there is nobody to answer.
:class:`SipFramer` cuts a TCP byte stream into messages by ``Content-Length`` (18.3) and
answers RFC 5626 CRLF keep-alive pings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.carriers.sip.errors import RemoteProtocolError
from gateway.carriers.sip.headers import Address, CSeq, Via, split_list

__all__ = ["SipFramer", "SipLimits", "SipMessage", "check_request"]

#: RFC 3261 7.3.3 and later RFCs' compact forms.
COMPACT = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}
_KNOWN = (
    "Accept Accept-Contact Accept-Encoding Accept-Language Alert-Info Allow Allow-Events "
    "Authentication-Info Authorization Call-ID Call-Info Contact Content-Disposition "
    "Content-Encoding Content-Language Content-Length Content-Type CSeq Date Error-Info Event "
    "Expires From In-Reply-To Max-Forwards Min-Expires Min-SE MIME-Version Organization "
    "P-Asserted-Identity Priority Proxy-Authenticate Proxy-Authorization Proxy-Require RAck "
    "Reason Record-Route Refer-To Referred-By Reply-To Require Retry-After Route RSeq Server "
    "Session-Expires Subject Subscription-State Supported Timestamp To Unsupported User-Agent "
    "Via Warning WWW-Authenticate"
).split()
_CANONICAL = {name.lower(): name for name in _KNOWN}
#: Headers whose comma-separated values are separate entries (7.3.1); others keep commas.
_LISTS = frozenset({"via", "route", "record-route", "contact", "allow", "supported", "require"})
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6]\d\d) ?(.*)$")
#: Control characters no header value or Request-URI may hold: RFC 3261 25.1 builds them from
#: TEXT-UTF8char (%x21-7E / UTF8-NONASCII) and LWS (SP / HTAB), never CTLs other than HTAB.
#: A CR or NUL inside a value is how a peer smuggles a header or a log line past us.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Headers a request must carry to be answered at all (8.1.1).
MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")


def canonical(name: str) -> str:
    """The usual spelling of a header name (``call-id`` -> ``Call-ID``, ``v`` -> ``Via``)."""
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT:
        return COMPACT[lower]
    return _CANONICAL.get(lower) or "-".join(p.capitalize() for p in name.split("-"))


@dataclass(frozen=True, slots=True)
class SipLimits:
    """Hard bounds on what the parser accepts; one hostile peer cannot make it allocate more."""

    max_size: int = 65535
    max_headers: int = 128
    max_line: int = 8192


LIMITS = SipLimits()


@dataclass(slots=True)
class SipMessage:
    """A SIP request (``method`` set) or response (``status`` set)."""

    method: str = ""
    uri: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    # -- headers -----------------------------------------------------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any spelling), or ``default``."""
        key = canonical(name)
        for n, v in self.headers:
            if n == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, list headers split at their commas, in order."""
        key = canonical(name)
        split = key.lower() in _LISTS
        out: list[str] = []
        for n, v in self.headers:
            if n == key:
                out.extend(split_list(v) if split else [v])
        return out

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` header by one with ``value`` (kept at the first's place)."""
        key = canonical(name)
        for i, (n, _) in enumerate(self.headers):
            if n == key:
                self.headers[i] = (key, value)
                self.headers[i + 1 :] = [h for h in self.headers[i + 1 :] if h[0] != key]
                return
        self.headers.append((key, value))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        entry = (canonical(name), value)
        if first:
            self.headers.insert(0, entry)
        else:
            self.headers.append(entry)

    def remove(self, name: str) -> None:
        key = canonical(name)
        self.headers = [h for h in self.headers if h[0] != key]

    # Typed views of the headers every transaction and dialog reads.

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self.get("CSeq") or "")

    @property
    def via(self) -> Via:
        """The top Via."""
        vias = self.get_all("Via")
        if not vias:
            raise RemoteProtocolError("no Via", None)
        return Via.parse(vias[0])

    @property
    def from_(self) -> Address:
        return Address.parse(self.get("From") or "")

    @property
    def to(self) -> Address:
        return Address.parse(self.get("To") or "")

    # -- codec -------------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes, limits: SipLimits = LIMITS) -> SipMessage:
        """Read one whole message (a datagram, or one framed by :class:`SipFramer`)."""
        if len(data) > limits.max_size:
            raise RemoteProtocolError(f"message of {len(data)} bytes is too large", 513)
        head_end = data.find(b"\r\n\r\n")
        sep = 4
        if head_end < 0:
            head_end = data.find(b"\n\n")
            sep = 2
        if head_end < 0:
            head, body = data, b""  # a message without a blank line has no body
        else:
            head, body = data[:head_end], data[head_end + sep :]
        lines = head.decode("utf-8", "surrogateescape").replace("\r\n", "\n").split("\n")
        while lines and not lines[0].strip():
            lines.pop(0)  # 7.5: CRLFs before the start line are ignored
        if not lines:
            raise RemoteProtocolError("empty message", None)
        msg = cls._start_line(lines[0], limits)
        try:
            msg.headers, fault = _read_headers(lines[1:], limits)
            if _CONTROL.search(msg.uri):
                fault = "control character in the Request-URI"
            if fault:
                raise RemoteProtocolError(fault)
            length_text = msg.get("Content-Length")
            if length_text is not None:
                if not length_text.strip().isdigit():
                    raise RemoteProtocolError(f"bad Content-Length {length_text!r}")
                length = int(length_text)
                if length > len(body):
                    raise RemoteProtocolError(
                        f"Content-Length {length} but only {len(body)} bytes of body"
                    )
                body = body[:length]
            msg.body = body
        except RemoteProtocolError as exc:
            exc.partial = msg  # lets the caller answer it
            if not msg.is_request:
                exc.status = None  # 18.1.2: a bad response is discarded
            raise
        return msg

    @classmethod
    def _start_line(cls, line: str, limits: SipLimits) -> SipMessage:
        if len(line) > limits.max_line:
            raise RemoteProtocolError("start line too long", None)
        if line.startswith("SIP/"):
            match = _STATUS_LINE.match(line)
            if match is None:
                raise RemoteProtocolError(f"bad status line {line[:80]!r}", None)
            return cls(status=int(match.group(1)), reason=match.group(2).strip())
        parts = line.split(" ")
        if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
            raise RemoteProtocolError(f"bad request line {line[:80]!r}", None)
        if parts[2] != "SIP/2.0":
            # 505 needs a readable message to answer; the caller decides (see check_request).
            msg = cls(method=parts[0], uri=parts[1])
            msg.reason = parts[2]
            return msg
        return cls(method=parts[0], uri=parts[1])

    def serialize(self) -> bytes:
        """The wire form; ``Content-Length`` always states the body's true length."""
        if self.is_request:
            start = f"{self.method} {self.uri} SIP/2.0"
        else:
            start = f"SIP/2.0 {self.status} {self.reason}"
        lines = [start]
        lines.extend(f"{n}: {v}" for n, v in self.headers if n != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()

    def summary(self) -> str:
        """One line for logs: ``INVITE sip:...`` or ``200 OK (INVITE)``."""
        if self.is_request:
            return f"{self.method} {self.uri} [{self.call_id}]"
        return f"{self.status} {self.reason} ({self.get('CSeq', '?')}) [{self.call_id}]"


def _read_headers(lines: list[str], limits: SipLimits) -> tuple[list[tuple[str, str]], str]:
    """The headers, and the first control-character fault ("" if none).

    A line holding a control character is left out rather than raised at once, so that the
    400 it earns can still be addressed from the clean Via, From, To, Call-ID and CSeq, and
    never echoes the peer's control bytes back.
    """
    headers: list[tuple[str, str]] = []
    fault = ""
    for line in lines:
        if len(line) > limits.max_line:
            raise RemoteProtocolError("header line too long")
        if _CONTROL.search(line):
            fault = fault or f"control character in header line {line[:40]!r}"
            continue
        if line[:1] in (" ", "\t"):
            if not headers:
                raise RemoteProtocolError("continuation line before any header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")  # 7.3.1 line folding
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.match(name):
            raise RemoteProtocolError(f"bad header line {line[:80]!r}")
        headers.append((canonical(name), value.strip()))
        if len(headers) > limits.max_headers:
            raise RemoteProtocolError(f"more than {limits.max_headers} headers")
    return headers, fault


def check_request(msg: SipMessage) -> None:
    """Refuse a request the transaction layer cannot work with (8.2, 16.3).

    Raises :class:`RemoteProtocolError` with the status to answer: 505 for another SIP version,
    400 for missing or unreadable mandatory headers, 400 when the CSeq method disagrees with
    the request line. Without a readable Via the status is None: there is nowhere to answer.
    """
    try:
        via = msg.via
    except RemoteProtocolError as exc:
        exc.status = None
        raise
    if not via.branch:
        via.params["branch"] = ""  # RFC 2543 peers: tolerated, matched by Call-ID/CSeq
    if msg.reason:
        raise RemoteProtocolError(f"SIP version {msg.reason!r} not supported", 505)
    for name in MANDATORY:
        if not msg.get(name):
            raise RemoteProtocolError(f"missing {name} header")
    msg.from_  # noqa: B018 - parsing is the check
    msg.to  # noqa: B018
    cseq = msg.cseq
    if cseq.method != msg.method and not (msg.method == "ACK" and cseq.method == "ACK"):
        raise RemoteProtocolError(f"CSeq method {cseq.method} does not match {msg.method}")
    max_forwards = msg.get("Max-Forwards")
    if max_forwards is not None and not max_forwards.strip().isdigit():
        raise RemoteProtocolError(f"bad Max-Forwards {max_forwards!r}")


class SipFramer:
    """Cut a stream transport's bytes into whole messages (RFC 3261 18.3).

    :meth:`feed` returns the complete messages now buffered, or raises
    :class:`RemoteProtocolError` when the stream can no longer be framed (no Content-Length,
    a message over ``max_size``): the connection must then be closed. A double CRLF between
    messages is an RFC 5626 keep-alive ping, counted in :attr:`pings` so the owner can answer
    a single CRLF pong.
    """

    def __init__(self, limits: SipLimits = LIMITS) -> None:
        self.limits = limits
        self._buffer = bytearray()
        self.pings = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buffer
        buf += data
        out: list[bytes] = []
        while True:
            while buf.startswith(b"\r\n"):
                if buf.startswith(b"\r\n\r\n"):
                    self.pings += 1
                    del buf[:4]
                elif len(buf) < 4:
                    return out  # perhaps the start of a ping: wait for the rest
                else:
                    del buf[:2]
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.limits.max_size:
                    raise RemoteProtocolError("header section too large", 513)
                return out
            head = bytes(buf[:end])
            match = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", head)
            if match is None:
                raise RemoteProtocolError("stream message without Content-Length")
            total = end + 4 + int(match.group(1))
            if total > self.limits.max_size:
                raise RemoteProtocolError(f"message of {total} bytes is too large", 513)
            if len(buf) < total:
                return out
            out.append(bytes(buf[:total]))
            del buf[:total]
