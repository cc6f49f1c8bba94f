"""The call core's closed vocabularies: how a call ended, who spoke, what audio an engine speaks.

Each is a :class:`~enum.StrEnum`, so a member *is* its string: call records, the call store's
columns, JSON and metric labels keep the values they always had, and records written before
these enums existed still load and compare equal.
"""

from __future__ import annotations

from enum import StrEnum


class CallOutcome(StrEnum):
    """A short class of how a call ended (the ledger's ``outcome``, a metric label)."""

    COMPLETED = "completed"
    CALLER_HUNG_UP = "caller-hung-up"
    ENGINE_FAILED = "engine-failed"
    ENGINE_UNAVAILABLE = "engine-unavailable"
    PROTOCOL_ERROR = "protocol-error"
    INTERNAL_ERROR = "internal-error"
    #: The bot's ``max_duration`` or an operator ended it.
    LIMIT = "limit"
    #: The gateway was draining and its deadline came.
    DRAINED = "drained"
    #: Twilio: the media stream did not start, or went quiet, for too long.
    MEDIA_TIMEOUT = "media-timeout"
    #: SIP: our 2xx was never acknowledged (the caller never had the answer).
    NO_ACK = "no-ack"


class Role(StrEnum):
    """Who said a transcript line (``engine.base.Transcript.role``)."""

    CALLER = "caller"
    BOT = "bot"


class AudioFormat(StrEnum):
    """The audio an engine session takes and gives (``EngineSession.audio_format``)."""

    PCM16 = "pcm16"
    #: G.711 mu-law at 8 kHz: the carrier's bytes pass through untouched, both ways.
    MULAW = "mulaw"
