"""HTTP digest authentication for SIP clients (RFC 3261 22, RFC 2617, RFC 8760 for SHA-256).

A registrar or trunk answers 401 (``WWW-Authenticate``) or 407 (``Proxy-Authenticate``); the
client repeats the request with ``Authorization`` / ``Proxy-Authorization`` computed here. Pure
functions: the client nonce comes in as an argument, so tests give fixed vectors (RFC 2617
3.5's example is one of them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.carriers.sip.errors import RemoteProtocolError
from gateway.carriers.sip.headers import split_list

__all__ = ["Challenge", "Credentials", "authorization"]

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass(frozen=True, slots=True)
class Credentials:
    """A SIP account: ``realm`` empty = use whatever realm the challenge names."""

    username: str
    password: str
    realm: str = ""


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``Digest`` challenge from a 401/407."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> Challenge:
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "digest":
            raise RemoteProtocolError(f"unsupported auth scheme {scheme!r}", None)
        fields: dict[str, str] = {}
        for item in split_list(rest):
            name, eq, val = item.partition("=")
            if eq:
                fields[name.strip().lower()] = val.strip().strip('"')
        if "nonce" not in fields or "realm" not in fields:
            raise RemoteProtocolError("digest challenge without realm or nonce", None)
        algorithm = fields.get("algorithm", "MD5").upper()
        if algorithm.removesuffix("-SESS") not in _HASHES:
            raise RemoteProtocolError(f"unsupported digest algorithm {algorithm}", None)
        qop = tuple(q.strip() for q in fields.get("qop", "").split(",") if q.strip())
        return cls(
            fields["realm"],
            fields["nonce"],
            algorithm,
            qop,
            fields.get("opaque"),
            fields.get("stale", "").lower() == "true",
        )


def authorization(
    challenge: Challenge,
    credentials: Credentials,
    *,
    method: str,
    uri: str,
    cnonce: str,
    nonce_count: int = 1,
) -> str:
    """The ``Authorization`` header value answering ``challenge`` for ``method uri``.

    ``qop=auth`` is used when offered (auth-int would need the body; servers offering both
    accept auth); without qop the RFC 2069 form is computed.
    """
    algorithm = challenge.algorithm
    digest = _HASHES[algorithm.removesuffix("-SESS")]

    def h(text: str) -> str:
        return digest(text.encode()).hexdigest()

    ha1 = h(f"{credentials.username}:{challenge.realm}:{credentials.password}")
    if algorithm.endswith("-SESS"):
        ha1 = h(f"{ha1}:{challenge.nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    nc = f"{nonce_count:08x}"
    if "auth" in challenge.qop:
        response = h(f"{ha1}:{challenge.nonce}:{nc}:{cnonce}:auth:{ha2}")
    else:
        response = h(f"{ha1}:{challenge.nonce}:{ha2}")
    parts = [
        f'username="{credentials.username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={algorithm}",
    ]
    if "auth" in challenge.qop:
        parts += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)
