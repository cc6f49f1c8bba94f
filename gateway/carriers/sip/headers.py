"""Structured SIP header values: URIs, name-addr (From/To/Contact), Via, CSeq, parameters.

Each type parses from and prints back to its wire text (``Uri.parse(text)`` / ``str(uri)``),
and raises :class:`RemoteProtocolError` (status 400) for text it cannot read. Grammar: RFC 3261
section 25.1 (``name-addr``, ``addr-spec``, ``via-parm``, ``generic-param``), read leniently
where real peers differ (spaces around ``;`` and ``=``, case of parameter names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.carriers.sip.errors import RemoteProtocolError

__all__ = [
    "Address",
    "CSeq",
    "Uri",
    "Via",
    "format_params",
    "parse_params",
    "split_list",
]

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$")
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, leaving commas inside quotes or <...> alone."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def parse_params(text: str) -> dict[str, str | None]:
    """``;a=1;b;c="x y"`` (leading ``;`` optional) -> ``{"a": "1", "b": None, "c": '"x y"'}``.

    Names are lower-cased (RFC 3261 7.3.1: parameter names are case-insensitive); values are
    kept as written, quotes included, so printing gives back what the peer sent.
    """
    params: dict[str, str | None] = {}
    for part in _split_semicolons(text):
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not name:
            raise RemoteProtocolError(f"empty parameter name in {text!r}")
        params[name] = value.strip() if eq else None
    return params


def _split_semicolons(text: str) -> list[str]:
    parts: list[str] = []
    quoted = False
    start = 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _host_port(text: str, what: str) -> tuple[str, int | None]:
    match = _HOST_PORT.match(text.strip())
    if match is None:
        raise RemoteProtocolError(f"bad host in {what}: {text!r}")
    port = int(match.group(2)) if match.group(2) else None
    if port is not None and not 0 < port < 65536:
        raise RemoteProtocolError(f"bad port in {what}: {text!r}")
    return match.group(1), port


@dataclass(slots=True)
class Uri:
    """A ``sip:``/``sips:``/``tel:`` URI: ``sip:user:password@host:port;params?headers``."""

    scheme: str = "sip"
    user: str = ""
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    password: str = ""
    headers: str = ""

    @classmethod
    def parse(cls, text: str) -> Uri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips", "tel"):
            raise RemoteProtocolError(f"unsupported URI {text!r}", 416)
        if scheme == "tel":
            number, _, params = rest.partition(";")
            if not number:
                raise RemoteProtocolError(f"empty tel URI {text!r}")
            return cls(scheme, number, "", None, parse_params(params))
        rest, _, headers = rest.partition("?")
        userinfo, at, hostpart = rest.rpartition("@")
        if not at:
            hostpart = rest
        user, _, password = userinfo.partition(":")
        hostport, _, params = hostpart.partition(";")
        host, port = _host_port(hostport, "URI")
        return cls(scheme, user, host, port, parse_params(params), password, headers)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        userinfo = ""
        if self.user:
            userinfo = self.user + (f":{self.password}" if self.password else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{headers}"

    @property
    def transport(self) -> str:
        """The ``transport`` parameter, lower-cased (``udp`` when absent)."""
        return (self.params.get("transport") or "udp").lower()


@dataclass(slots=True)
class Address:
    """A From/To/Contact/Refer-To value: ``"Name" <uri>;tag=...`` or a bare ``uri;tag=...``."""

    uri: Uri
    display: str = ""
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Address:
        text = text.strip()
        if "<" in text:
            display, _, rest = text.partition("<")
            uri_text, close, params = rest.partition(">")
            if not close:
                raise RemoteProtocolError(f"unclosed '<' in {text!r}")
            return cls(Uri.parse(uri_text), display.strip(), parse_params(params))
        # addr-spec form: parameters after the URI belong to the header, not the URI (25.1).
        uri_text, _, params = text.partition(";")
        if " " in uri_text.strip():
            raise RemoteProtocolError(f"bad address {text!r}")
        return cls(Uri.parse(uri_text), "", parse_params(params))

    def __str__(self) -> str:
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str:
        return self.params.get("tag") or ""


@dataclass(slots=True)
class Via:
    """One Via hop: ``SIP/2.0/UDP host:port;branch=z9hG4bK...;rport;received=...``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        proto, _, rest = text.strip().partition(" ")
        pieces = [p.strip() for p in proto.split("/")]
        if len(pieces) != 3 or pieces[0].upper() != "SIP" or not pieces[2]:
            raise RemoteProtocolError(f"bad Via {text!r}")
        sent_by, _, params = rest.strip().partition(";")
        host, port = _host_port(sent_by, "Via")
        return cls(pieces[2].upper(), host, port, parse_params(params))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str:
        return self.params.get("branch") or ""

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port or 5060}"


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq: 314159 INVITE``."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit() or not _TOKEN.match(parts[1]):
            raise RemoteProtocolError(f"bad CSeq {text!r}")
        seq = int(parts[0])
        if seq >= 2**31:  # 8.1.1.5: less than 2**31
            raise RemoteProtocolError(f"CSeq out of range {text!r}")
        return cls(seq, parts[1].upper())

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
