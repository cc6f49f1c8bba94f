"""SIP settings: defaults < ``OVERTALK_SIP_*`` environment < explicit overrides.

Credentials come only from the environment (``OVERTALK_SIP_USERNAME``,
``OVERTALK_SIP_PASSWORD``), never from files that end up in version control.

============================== ========================================================
variable                       meaning
============================== ========================================================
OVERTALK_SIP_ENABLED           ``1``/``true`` to start the SIP carrier
OVERTALK_SIP_HOST              address to listen on (``0.0.0.0`` for all)
OVERTALK_SIP_PORT              SIP port (UDP and TCP), default 5060
OVERTALK_SIP_TRANSPORTS        ``udp,tcp`` (default) or one of them
OVERTALK_SIP_PUBLIC_HOST       address written into Via, Contact and SDP behind NAT
OVERTALK_SIP_RTP_PORTS         RTP port range ``20000-20999`` (RTP even, RTCP odd)
OVERTALK_SIP_USER              user part of our Contact (default ``overtalk``)
OVERTALK_SIP_TRUNK             outbound calls go here: ``host[:port][;transport=tcp]``
OVERTALK_SIP_REGISTRAR         ``sip:registrar.example.com[:port]``: REGISTER there
OVERTALK_SIP_AOR               address-of-record to register (``sip:bot@example.com``)
OVERTALK_SIP_REGISTER_EXPIRES  seconds asked for each registration (default 3600)
OVERTALK_SIP_USERNAME          digest user name for the trunk and registrar
OVERTALK_SIP_PASSWORD          digest password (environment only)
OVERTALK_SIP_TRANSFER_DOMAIN   host appended to E.164 numbers in transfer targets
OVERTALK_SIP_BUSY_STATUS       answer when the engine is full: 503 (default: a trunk tries
                               its next gateway; with Retry-After) or 486 (Busy Here)
============================== ========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from gateway.config import ConfigError

__all__ = ["SipSettings", "load_sip_settings"]


@dataclass(frozen=True)
class SipSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 5060
    transports: tuple[str, ...] = ("udp", "tcp")
    #: Address peers reach us at (Via, Contact, SDP ``c=``); empty = ``host`` (or, when that
    #: is a wildcard, the address of the interface facing each peer).
    public_host: str = ""
    rtp_port_min: int = 20000
    rtp_port_max: int = 20999
    user: str = "overtalk"
    trunk: str = ""
    registrar: str = ""
    aor: str = ""
    register_expires: int = 3600
    username: str = ""
    password: str = ""
    transfer_domain: str = ""
    #: Seconds an outbound call may ring before it is cancelled.
    answer_timeout: float = 60.0
    #: The answer to a call when its engine is full (gateway/ops/admission.py): 503 with
    #: Retry-After sends the trunk to its next gateway (RFC 3261 21.5.4); 486 is Busy Here.
    busy_status: int = 503

    @property
    def contact_host(self) -> str:
        return self.public_host or self.host


_SECRETS = {"username", "password"}


def _coerce(name: str, text: str, source: str) -> Any:
    default = getattr(SipSettings(), name)
    try:
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return lowered in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(p.strip().lower() for p in text.split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{source}: bad value {text!r} for {name}") from None
    return text


def load_sip_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> SipSettings:
    """Read ``OVERTALK_SIP_*``; ``overrides`` (command-line options) win when not None."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(SipSettings):
        var = "OVERTALK_SIP_" + f.name.upper()
        if var in env:
            values[f.name] = _coerce(f.name, env[var], var)
    if "OVERTALK_SIP_RTP_PORTS" in env:
        low, dash, high = env["OVERTALK_SIP_RTP_PORTS"].partition("-")
        if not dash or not low.strip().isdigit() or not high.strip().isdigit():
            raise ConfigError(f"OVERTALK_SIP_RTP_PORTS must be LOW-HIGH, not {low}{dash}{high}")
        values["rtp_port_min"], values["rtp_port_max"] = int(low), int(high)
    for name, value in overrides.items():
        if name in _SECRETS:
            raise ConfigError(f"{name} comes from the environment only")
        if value is not None:
            values[name] = value
    settings = replace(SipSettings(), **values)
    check(settings)
    return settings


def check(settings: SipSettings) -> None:
    """Refuse settings that cannot work, naming the setting."""
    if not set(settings.transports) <= {"udp", "tcp"} or not settings.transports:
        raise ConfigError(f"SIP transports must be udp and/or tcp, not {settings.transports}")
    if not 0 <= settings.port < 65536:
        raise ConfigError(f"SIP port {settings.port} out of range")
    low, high = settings.rtp_port_min, settings.rtp_port_max
    if not 1024 <= low < high < 65536 or high - low < 1:
        raise ConfigError(f"RTP port range {low}-{high} must be within 1024-65535, low < high")
    if settings.registrar and not settings.registrar.startswith(("sip:", "sips:")):
        raise ConfigError(f"the registrar must be a sip: URI, not {settings.registrar!r}")
    if settings.busy_status not in (486, 503):
        raise ConfigError(f"busy_status must be 486 or 503, not {settings.busy_status}")
