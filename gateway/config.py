"""Gateway settings: defaults < config file (TOML) < ``OVERTALK_*`` environment < command line.

Secrets come only from the environment (``TWILIO_AUTH_TOKEN``, ``TWILIO_ACCOUNT_SID``), never
from files that end up in version control.
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gateway.call.holds import HoldPolicy
from gateway.call.holds import check as check_holds


class ConfigError(ValueError):
    """A setting is missing, unknown or malformed; the message names it and its source."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    #: The base URL Twilio reaches this gateway at (``https://bot.example.com``). Signatures are
    #: checked against it, and ``<Stream url>`` is built from it. Unset: taken from each request,
    #: which is only right when nothing (proxy, tunnel) sits in between.
    public_url: str = ""
    engine: str = "local"
    #: Dial-plan file routing inbound calls (``dialplans/default.yaml``). Unset: every call goes
    #: to ``engine``.
    dialplan: str = ""
    #: Options passed to the engine's factory (``rate``, ``mode``...), from the config file.
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    log_level: str = "info"
    #: "text" for a terminal, "json" (one object per line, call id on each) for production.
    log_format: str = "text"
    #: Outbound pacing: how far ahead of real time audio is sent, and marks per N frames.
    lead_ms: int = 120
    mark_every: int = 2
    #: How the bot gives way while the engine judges a sound over it (README "Sounds over
    #: the bot"): the deep level ``clear`` (silence at once), ``stop`` (the lead plays out) or
    #: ``duck`` (``hold_duck_db`` down); the soft level first ducks ``hold_soft_db`` (0: none).
    #: A dial-plan bot's ``interruption`` overrides them.
    hold: str = "clear"
    hold_duck_db: float = -30.0
    hold_soft_db: float = -10.0
    #: Seconds to wait for the Media Stream's ``start`` message.
    start_timeout: float = 10.0
    #: Where per-call ledgers are written as JSON (unset: logged only).
    records_dir: str = ""
    #: Where stereo recordings go (caller left, bot right); unset: only calls whose dial-plan
    #: bot says ``record: true`` are recorded, into records_dir.
    recordings_dir: str = ""
    #: Seconds active calls may run on after SIGTERM before they are hung up.
    drain_limit: float = 3600.0
    #: What a voice webhook gets while draining: "busy" (<Reject reason="busy">) or
    #: "unavailable" (HTTP 503: Twilio then tries the number's fallback URL).
    drain_answer: str = "busy"
    #: Calls each engine may carry at once: ``6`` (every engine) or ``local=6,echo=400``;
    #: past it new calls are refused busy (see gateway/ops/admission.py). Unset: unlimited.
    capacity: str = ""
    #: Campaign store: a SQLite file path or a postgresql:// URL. Set: the gateway serves the
    #: campaign callbacks and management API under /campaigns.
    campaign_store: str = ""
    # -- limits (README "Limits"): what one peer may cost; every refusal is counted in /metrics
    #: Largest HTTP request body; refused with 413 before it is read, parsed or authenticated.
    max_body_bytes: int = 2 * 1024 * 1024
    #: Seconds a client may take to send a request's headers, and then its body.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    #: Seconds from the stream's ``start`` to its first audio, and the longest gap in audio
    #: (Twilio sends a frame every 20 ms, silence included).
    first_media_timeout: float = 10.0
    media_silence_timeout: float = 15.0
    #: Per stream: the largest audio payload (bytes of mu-law; a 20 ms frame is 160), and the
    #: sustained messages per second with the burst allowed on top (a real call sends ~75).
    media_max_payload: int = 640
    media_max_rate: float = 150.0
    media_burst: float = 300.0
    #: A recording stops growing past this many seconds per channel.
    max_recording_seconds: float = 3600.0
    #: Largest dial-plan file (plan or include) read; larger ones are refused.
    dialplan_max_bytes: int = 1024 * 1024
    #: Seconds a stream token (the ``<Parameter>`` binding a stream to its call) stays valid.
    stream_token_ttl: float = 600.0
    #: Call store: a SQLite file path or a postgresql:// URL (OVERTALK_STORE). Unset: a
    #: SQLite file ``calls.db`` in records_dir when that is set, else no store.
    store: str = ""
    #: Where recordings go once their call ends: ``file:///dir`` (unset: they stay where the
    #: carrier wrote them, recordings_dir or records_dir).
    audio_store: str = ""
    #: Where records wait while the store is unreachable (default ``<records_dir>/spool``).
    spool_dir: str = ""
    #: Days call records, recordings and exports are kept; 0 keeps them.
    retain_days: float = 0.0
    #: Token the /calls page asks for (OVERTALK_ADMIN_TOKEN); unset: loopback clients only.
    admin_token: str = ""
    # -- the browser phone (/phone, gateway/carriers/webrtc)
    #: Token the phone page and its signalling ask for (OVERTALK_PHONE_TOKEN); unset: loopback
    #: clients only.
    phone_token: str = ""
    #: Browser calls at once (the engine's admission applies on top).
    phone_max_calls: int = 8
    #: Seconds from the answer to the caller's first audio (ICE, DTLS, the microphone).
    phone_connect_timeout: float = 15.0
    #: Largest offer the page may POST (a browser's audio offer is 3-6 KiB).
    phone_max_offer_bytes: int = 64 * 1024
    twilio_auth_token: str = ""
    twilio_account_sid: str = ""
    #: Key of the stream tokens; unset: derived from the Twilio auth token.
    stream_secret: str = ""
    #: REST API base URL; only changed to point at a stand-in (the simulator, tests).
    twilio_api_base: str = ""
    # -- Telnyx (README "Telnyx"): TeXML webhook /telnyx/voice, media stream /telnyx/media
    #: Call Control API key (TELNYX_API_KEY): hang-up and transfer. Unset: hang up by closing
    #: the stream; no transfers.
    telnyx_api_key: str = ""
    #: The account's Ed25519 public key, base64 (TELNYX_PUBLIC_KEY): webhooks are checked
    #: against it. Unset: only loopback clients are served.
    telnyx_public_key: str = ""
    #: Call Control API base URL (``https://api.telnyx.com/v2``); a stand-in's in tests.
    telnyx_api_base: str = ""
    #: The stream's codec both ways: PCMU or PCMA.
    telnyx_codec: str = "PCMU"
    # -- Plivo (README "Plivo"): answer webhook /plivo/answer, audio stream /plivo/media
    #: Auth ID and token (PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN): V3 signatures and the REST API.
    #: Unset: only loopback clients are served, and hang-up closes the stream.
    plivo_auth_id: str = ""
    plivo_auth_token: str = ""
    #: REST API base URL (``https://api.plivo.com``); a stand-in's in tests.
    plivo_api_base: str = ""
    #: The ``<Stream contentType>``: audio/x-mulaw;rate=8000, audio/x-l16;rate=8000 or
    #: audio/x-l16;rate=16000.
    plivo_content_type: str = "audio/x-mulaw;rate=8000"
    # -- Vonage (README "Vonage"): answer webhook /vonage/answer, websocket /vonage/media
    #: The signature secret its webhooks are signed with (VONAGE_SIGNATURE_SECRET; unset:
    #: loopback clients only), the application whose private key (VONAGE_PRIVATE_KEY, the PEM
    #: or a path to it) signs hang-ups and transfers (VONAGE_APPLICATION_ID; unset: hang up by
    #: closing the socket, no transfers), the L16 rate asked for (8000 or 16000), and the Voice
    #: API base URL (``https://api.nexmo.com``; a stand-in's in tests).
    vonage_signature_secret: str = ""
    vonage_application_id: str = ""
    vonage_private_key: str = ""
    vonage_rate: int = 8000
    vonage_api_base: str = ""
    # -- Exotel (README "Exotel"): stream URL /exotel/stream-url, websocket /exotel/media
    #: The API key and token the applet's URLs carry as Basic auth (EXOTEL_API_KEY,
    #: EXOTEL_API_TOKEN; unset: loopback clients only).
    exotel_api_key: str = ""
    exotel_api_token: str = ""

    @property
    def signed(self) -> bool:
        return bool(self.twilio_auth_token)

    @property
    def holds(self) -> HoldPolicy:
        """The gateway's hold policy (checked by :func:`load_settings`)."""
        return HoldPolicy(self.hold, self.hold_duck_db, self.hold_soft_db or None)  # type: ignore[arg-type]


_SECRET_ENV = {
    "twilio_auth_token": "TWILIO_AUTH_TOKEN",
    "twilio_account_sid": "TWILIO_ACCOUNT_SID",
    "stream_secret": "OVERTALK_STREAM_SECRET",
    "admin_token": "OVERTALK_ADMIN_TOKEN",
    "phone_token": "OVERTALK_PHONE_TOKEN",
    "telnyx_api_key": "TELNYX_API_KEY",
    "telnyx_public_key": "TELNYX_PUBLIC_KEY",
    "plivo_auth_id": "PLIVO_AUTH_ID",
    "plivo_auth_token": "PLIVO_AUTH_TOKEN",
    "vonage_signature_secret": "VONAGE_SIGNATURE_SECRET",
    "vonage_application_id": "VONAGE_APPLICATION_ID",
    "vonage_private_key": "VONAGE_PRIVATE_KEY",
    "exotel_api_key": "EXOTEL_API_KEY",
    "exotel_api_token": "EXOTEL_API_TOKEN",
}
_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = type(getattr(Settings(), name))
    if kind is dict or name == "engine_options":
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {name} must be a table")
        return dict(value)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {name} must be {kind.__name__}, not {value!r}") from None


def load_settings(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the sources in precedence order; unknown keys are errors, not silently ignored."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get("OVERTALK_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        section = data.get("gateway", data)
        for key, value in section.items():
            name = key.replace("-", "_")
            if name not in _FIELDS or name in _SECRET_ENV:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[name] = _coerce(name, value, str(path))
    for name in _FIELDS:
        if name in _SECRET_ENV:
            if env.get(_SECRET_ENV[name]):
                values[name] = env[_SECRET_ENV[name]]
            continue
        var = "OVERTALK_" + name.upper()
        if var in env and name != "engine_options":
            values[name] = _coerce(name, env[var], var)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    settings = replace(Settings(), **values)
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"log_format must be text or json, not {settings.log_format!r}")
    if settings.drain_answer not in ("busy", "unavailable"):
        raise ConfigError(f"drain_answer must be busy or unavailable: {settings.drain_answer!r}")
    for name in (
        "max_body_bytes", "header_timeout", "body_timeout", "first_media_timeout",
        "media_silence_timeout", "media_max_payload", "media_max_rate", "media_burst",
        "max_recording_seconds", "stream_token_ttl", "dialplan_max_bytes", "phone_max_calls",
        "phone_connect_timeout", "phone_max_offer_bytes",
    ):  # fmt: skip
        if not getattr(settings, name) > 0:
            raise ConfigError(f"{name} must be positive, not {getattr(settings, name)!r}")
    if settings.public_url and not settings.public_url.startswith(("http://", "https://")):
        raise ConfigError(f"public_url must start with http:// or https://: {settings.public_url}")
    if settings.telnyx_public_key:
        try:
            key = base64.b64decode(settings.telnyx_public_key, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise ConfigError(
                "TELNYX_PUBLIC_KEY must be the account's Ed25519 key: 32 bytes, base64"
            )
    if settings.plivo_auth_id and not (
        settings.plivo_auth_id.isascii() and settings.plivo_auth_id.isalnum()
        and len(settings.plivo_auth_id) <= 64
    ):  # fmt: skip
        raise ConfigError("PLIVO_AUTH_ID must be the account's auth ID (letters and digits)")
    if settings.telnyx_codec not in ("PCMU", "PCMA"):
        raise ConfigError(f"telnyx_codec must be PCMU or PCMA, not {settings.telnyx_codec!r}")
    if settings.plivo_content_type not in (
        "audio/x-mulaw;rate=8000", "audio/x-l16;rate=8000", "audio/x-l16;rate=16000",
    ):  # fmt: skip
        raise ConfigError(
            f"plivo_content_type is not one Plivo streams: {settings.plivo_content_type!r}"
        )
    if bool(settings.vonage_application_id) != bool(settings.vonage_private_key):
        raise ConfigError("VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY go together")
    key = settings.vonage_private_key
    if key and "-----BEGIN" not in key and not Path(key).is_file():
        raise ConfigError("VONAGE_PRIVATE_KEY must be the application's PEM key or a path to it")
    if bool(settings.exotel_api_key) != bool(settings.exotel_api_token):
        raise ConfigError("EXOTEL_API_KEY and EXOTEL_API_TOKEN go together")
    if settings.vonage_rate not in (8000, 16000):
        raise ConfigError(f"vonage_rate must be 8000 or 16000, not {settings.vonage_rate}")
    problem = check_holds(settings.hold, settings.hold_duck_db, settings.hold_soft_db or None)
    if problem:
        raise ConfigError(
            problem.replace("duck_db", "hold_duck_db").replace("soft_db", "hold_soft_db")
        )
    if not settings.retain_days >= 0:  # NaN included
        raise ConfigError(f"retain_days must be 0 (keep) or more: {settings.retain_days}")
    return settings
