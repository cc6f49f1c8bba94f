"""The dial-plan file format, as pydantic models: what one YAML file may say.

Models here describe *one file*; the loader merges a file with its includes into a
:class:`~gateway.dialplan.plan.DialPlan` and runs the checks that need the whole plan (unknown
engines, overlapping windows, unreachable branches, shadowed numbers).

Every model forbids unknown keys (a misspelt key must not be silently ignored) and is frozen (a
plan in force is shared by every call routed through it). Relative paths (``flow``,
voicemail ``store``) are resolved against the directory of the file that names them, passed in
the validation context as ``base_dir``.

An action is a mapping with an ``action`` key naming its kind, or just the kind's name when it
needs no settings (``then: hangup``).
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.registry import check_settings
from gateway.call.holds import HoldPolicy
from gateway.dialplan.numbers import NumberPattern
from gateway.dialplan.templates import check_template
from gateway.dialplan.timing import DAY_NAMES, DateRange, Window, parse_days

#: Twilio's longest call is four hours; nothing in a plan can usefully exceed it.
MAX_CALL_SECONDS = 4 * 60 * 60
#: Twilio transcribes recordings of at most two minutes.
MAX_TRANSCRIBED_SECONDS = 120

#: ``browser``: a call from the browser phone (``/phone``); it has no numbers, and its route is
#: the one the page chose.
Direction = Literal["inbound", "outbound-api", "outbound-dial", "browser"]
DIRECTIONS: tuple[str, ...] = ("inbound", "outbound-api", "outbound-dial", "browser")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LANGUAGE = re.compile(r"[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*")


#: Separates a field name from the message in errors raised by model-level checks, so the
#: loader can point at that field's line rather than at the whole mapping.
FIELD_MARK = "\x1f"


def _field_error(field: str, message: str) -> ValueError:
    return ValueError(f"{field}{FIELD_MARK}{message}")


def _as_tuple(value: Any) -> Any:
    """Let a single value stand for a one-item list (``days: mon-fri``)."""
    if isinstance(value, str | dict | int) or value is None:
        return value if value is None else (value,)
    return value


def _non_empty(value: Any) -> Any:
    if isinstance(value, list | tuple) and not value:
        raise ValueError("an empty list never matches: remove the key instead")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a name: use letters, digits, '_', '.' or '-' (at most 64)"
        )
    return value


def _number_spec(value: Any) -> NumberPattern:
    if isinstance(value, NumberPattern):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value} is not E.164: phone numbers start with '+' (quote them)")
    if not isinstance(value, str):
        raise ValueError("a phone number or pattern is text such as '+14155550100' or '+1415*'")
    return NumberPattern.parse(value)


def _e164(value: Any) -> str:
    pattern = _number_spec(value)
    if not pattern.is_exact:
        raise ValueError(f"{value!r} is a pattern; an exact E.164 number is needed here")
    return pattern.text


def _template(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected text")
    check_template(value)
    return value


def _days(value: Any) -> frozenset[int]:
    if isinstance(value, frozenset):
        return value
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("days are a word or list: mon-fri, [mon, wed], weekends")
    days: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a day (use mon, tue, ... sun)")
        days |= parse_days(item)
    return frozenset(days)


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a time zone is an IANA name such as 'America/New_York'")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = difflib.get_close_matches(value, sorted(_zone_names()), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"unknown time zone {value!r}{suggestion}") from None
    return value


def _language(value: Any) -> str:
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        raise ValueError(f"{value!r} is not a language tag such as 'en-US'")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://\S+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


Name = Annotated[str, PlainValidator(_name)]
NumberSpec = Annotated[NumberPattern, PlainValidator(_number_spec), PlainSerializer(str)]
E164 = Annotated[str, PlainValidator(_e164)]
Template = Annotated[str, PlainValidator(_template)]
Language = Annotated[str, PlainValidator(_language)]
TimeZoneName = Annotated[str, PlainValidator(_timezone)]
Url = Annotated[str, PlainValidator(_url)]
Days = Annotated[
    frozenset[int],
    PlainValidator(_days),
    PlainSerializer(lambda days: [DAY_NAMES[d] for d in sorted(days)]),
]
WindowSpec = Annotated[Window, PlainValidator(Window.parse), PlainSerializer(lambda w: w.text)]
DateSpec = Annotated[DateRange, PlainValidator(DateRange.parse), PlainSerializer(str)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve(value: str | Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    return path if path.is_absolute() or base is None else Path(base) / path


# -- actions ---------------------------------------------------------------------------------


def _soft_db(value: Any) -> float | Literal["off"]:
    if value is False or value == "off":
        return "off"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"soft_db is a level in dB (between -20 and 0) or off, not {value!r}")
    if not -20.0 < value < 0.0:  # NaN fails too
        raise ValueError(
            f"soft_db must be between -20 and 0 dB (deeper is the deep level), not {value}"
        )
    return float(value)


class Interruption(_Model):
    """How the bot gives way to a sound over it; unset keys keep the gateway's settings
    (``hold``, ``hold_duck_db``, ``hold_soft_db``; see gateway/call/holds.py)."""

    hold: Literal["clear", "stop", "duck"] | None = None
    duck_db: float | None = Field(default=None, ge=-60.0, le=-20.0)
    #: dB, or ``off`` (YAML reads a bare ``off`` as false: both mean no soft level).
    soft_db: Annotated[float | Literal["off"], PlainValidator(_soft_db)] | None = None

    def policy(self, base: HoldPolicy) -> HoldPolicy:
        """The gateway's policy with this bot's settings on top."""
        soft = base.soft_db if self.soft_db is None else self.soft_db
        return HoldPolicy(
            self.hold or base.mode,
            base.duck_db if self.duck_db is None else self.duck_db,
            None if soft == "off" else soft,  # type: ignore[arg-type]
        )


class BotAction(_Model):
    """Answer with a duplex voice engine, streamed over ``<Connect><Stream>``."""

    TEMPLATES: ClassVar[tuple[str, ...]] = ("greeting", "prompt")

    action: Literal["bot"]
    engine: Name | None = None
    voice: str | None = None
    language: Language | None = None
    greeting: Template | None = None
    flow: Path | None = None
    prompt: Template | None = None
    max_duration: int | None = Field(default=None, ge=1, le=MAX_CALL_SECONDS)
    record: bool | None = None
    options: dict[Name, str | int | float | bool] = Field(default_factory=dict)
    interruption: Interruption | None = None
    fallback: Action | None = None

    def holds(self, base: HoldPolicy) -> HoldPolicy:
        """How this bot's holds sound: ``base`` (the gateway's settings) unless it says."""
        return base if self.interruption is None else self.interruption.policy(base)

    def context_parameters(self) -> dict[str, str]:
        """The bot's settings as an engine sees them: strings in ``CallContext.parameters``."""
        values: dict[str, object] = {
            "greeting": self.greeting,
            "prompt": self.prompt,
            "voice": self.voice,
            "language": self.language,
            "flow": self.flow,
            "record": self.record,
            **self.options,
        }
        return {k: str(v) for k, v in values.items() if v is not None}

    @field_validator("flow", mode="before")
    @classmethod
    def _flow_exists(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ValueError("a flow is a path to a flow file, relative to this plan file")
        path = _resolve(value, info)
        if not path.is_file():
            raise ValueError(f"flow file not found: {value} (looked for {path})")
        # A broken flow breaks the plan: refused now, not at a call. Every engine is asked, not
        # only the route's: a flow file is the plan's, and must run wherever it is used.
        problems = check_settings(None, {"flow": str(path)})
        if problems:
            raise ValueError("; ".join(f"flow {value} {p.message}" for p in problems))
        return path

    @model_validator(mode="after")
    def _flow_or_prompt(self) -> BotAction:
        if self.flow is not None and self.prompt is not None:
            raise _field_error("prompt", "a bot takes a flow or a prompt, not both")
        return self

    @model_validator(mode="after")
    def _options_the_service_accepts(self) -> BotAction:
        # Options the engine refuses (a hosted service's retired interface, settings that leave
        # the caller unanswered): refused here so that a plan fails its check, not every call.
        options = self.options
        problems = check_settings(self.engine, {k: str(v) for k, v in options.items()})
        if problems:
            raise _field_error(
                "options",
                "; ".join(f"option {p.option}={options[p.option]!r} {p.message}" for p in problems),
            )
        return self


class TransferAction(_Model):
    """Ring a person (a number or SIP URI) with ``<Dial>``; ``on_no_answer`` when they don't."""

    action: Literal["transfer"]
    to: str
    caller_id: str | None = None
    timeout: int = Field(default=30, ge=5, le=600)
    record: bool = False
    sip_username: str | None = None
    sip_password: str | None = None
    on_no_answer: Action | None = None
    on_busy: Action | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _target(cls, value: Any) -> str:
        if isinstance(value, str) and value.lower().startswith(("sip:", "sips:")):
            user, at, host = value.partition(":")[2].rpartition("@")
            if not at or not host:
                raise ValueError(f"{value!r} is not a SIP URI such as 'sip:alice@pbx.example.com'")
            if ":" in user:
                raise ValueError(
                    "a SIP URI must not carry a password: use sip_username and "
                    "sip_password: ${ENV_NAME}"
                )
            return value
        return _e164(value)

    @field_validator("caller_id", mode="before")
    @classmethod
    def _caller_id(cls, value: Any) -> str | None:
        if value is None:
            return None
        if value in ("{caller}", "{called}"):
            return str(value)
        return _e164(value)

    @property
    def is_sip(self) -> bool:
        return self.to.lower().startswith(("sip:", "sips:"))

    @model_validator(mode="after")
    def _sip_only(self) -> TransferAction:
        if (self.sip_username or self.sip_password) and not self.is_sip:
            field = "sip_username" if self.sip_username else "sip_password"
            raise _field_error(field, "sip_username and sip_password only apply to a SIP URI")
        return self


class VoicemailAction(_Model):
    """Take a message: greeting, beep, ``<Record>``; the recording goes to ``store``."""

    TEMPLATES: ClassVar[tuple[str, ...]] = ("greeting",)

    action: Literal["voicemail"]
    greeting: Template | None = None
    greeting_audio: Url | None = None
    voice: str | None = None
    language: Language | None = None
    beep: bool = True
    max_length: int = Field(default=120, ge=1, le=MAX_CALL_SECONDS)
    transcribe: bool = True
    store: str | None = None

    @field_validator("store", mode="before")
    @classmethod
    def _store(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ValueError("store is a directory (relative to this file) or an http(s) URL")
        if re.match(r"[a-z][a-z0-9+.-]*://", value, re.IGNORECASE):
            return _url(value)
        return str(_resolve(value, info))

    @property
    def store_is_url(self) -> bool:
        return self.store is not None and self.store.startswith(("http://", "https://"))

    @model_validator(mode="after")
    def _check(self) -> VoicemailAction:
        if self.greeting is not None and self.greeting_audio is not None:
            raise _field_error(
                "greeting_audio", "a voicemail greeting is spoken text or audio, not both"
            )
        if self.transcribe and self.max_length > MAX_TRANSCRIBED_SECONDS:
            raise _field_error(
                "max_length",
                f"Twilio transcribes recordings of at most {MAX_TRANSCRIBED_SECONDS} s: lower "
                "max_length or set transcribe: false",
            )
        return self


class SayAction(_Model):
    """Speak text with Twilio's ``<Say>``, then carry on with ``then`` (hang up if none)."""

    TEMPLATES: ClassVar[tuple[str, ...]] = ("text",)

    action: Literal["say"]
    text: Template
    voice: str | None = None
    language: Language | None = None
    loop: int = Field(default=1, ge=1, le=100)
    then: Action | None = None


class PlayAction(_Model):
    """Play an audio URL with ``<Play>``, then carry on with ``then`` (hang up if none)."""

    action: Literal["play"]
    url: Url
    loop: int = Field(default=1, ge=1, le=100)
    then: Action | None = None


class HangupAction(_Model):
    """End the call."""

    action: Literal["hangup"]


class RejectAction(_Model):
    """Refuse the call unanswered (no charge): ``busy`` tone or ``rejected`` (not in service)."""

    action: Literal["reject"]
    reason: Literal["busy", "rejected"] = "rejected"


def _action_shorthand(value: Any) -> Any:
    return {"action": value} if isinstance(value, str) else value


Action = Annotated[
    BotAction
    | TransferAction
    | VoicemailAction
    | SayAction
    | PlayAction
    | HangupAction
    | RejectAction,
    Field(discriminator="action"),
    BeforeValidator(_action_shorthand),
]

ACTION_MODELS: dict[str, type[_Model]] = {
    "bot": BotAction,
    "transfer": TransferAction,
    "voicemail": VoicemailAction,
    "say": SayAction,
    "play": PlayAction,
    "hangup": HangupAction,
    "reject": RejectAction,
}

#: Fields of an action that hold another action, in the order they are walked.
NESTED_ACTIONS: tuple[str, ...] = ("fallback", "on_no_answer", "on_busy", "then")


# -- routing ---------------------------------------------------------------------------------


class When(_Model):
    """Conditions of a branch. Different keys must all hold; items of one list are
    alternatives. ``callers`` and ``caller_lists`` together form one set of callers."""

    callers: Annotated[tuple[NumberSpec, ...], BeforeValidator(_non_empty)] | None = None
    caller_lists: Annotated[tuple[Name, ...], BeforeValidator(_non_empty)] | None = None
    anonymous: bool | None = None
    direction: (
        Annotated[tuple[Direction, ...], BeforeValidator(_as_tuple), BeforeValidator(_non_empty)]
        | None
    ) = None
    days: Days | None = None
    hours: (
        Annotated[tuple[WindowSpec, ...], BeforeValidator(_as_tuple), BeforeValidator(_non_empty)]
        | None
    ) = None
    dates: (
        Annotated[tuple[DateSpec, ...], BeforeValidator(_as_tuple), BeforeValidator(_non_empty)]
        | None
    ) = None
    holidays: (
        Annotated[tuple[Name, ...], BeforeValidator(_as_tuple), BeforeValidator(_non_empty)] | None
    ) = None

    @model_validator(mode="after")
    def _consistent(self) -> When:
        if self.anonymous and (self.callers or self.caller_lists):
            raise _field_error(
                "anonymous",
                "this branch can never match: anonymous callers have no number to be in callers",
            )
        if self.days is not None and self.hours and all(w.days is not None for w in self.hours):
            raise _field_error(
                "days", "days has no effect: every window in hours names its own days"
            )
        return self

    @property
    def has_time(self) -> bool:
        return any(x is not None for x in (self.days, self.hours, self.dates, self.holidays))


class Branch(_Model):
    """``when`` these conditions hold, ``do`` this; a branch without ``when`` always matches."""

    name: Name | None = None
    when: When = Field(default_factory=When)
    do: Action


class Route(_Model):
    """The numbers a route answers and what it does, by branch, first match wins."""

    description: str | None = None
    numbers: tuple[NumberSpec, ...] = ()
    timezone: TimeZoneName | None = None
    branches: tuple[Branch, ...] = ()
    otherwise: Action | None = None


class BotDefaults(_Model):
    """Settings every ``bot`` action takes unless it says otherwise."""

    engine: Name | None = None
    voice: str | None = None
    language: Language | None = None
    max_duration: int | None = Field(default=None, ge=1, le=MAX_CALL_SECONDS)
    record: bool | None = None


class Defaults(_Model):
    bot: BotDefaults = Field(default_factory=BotDefaults)


class PlanFile(_Model):
    """One dial-plan file. Every key is optional so that included fragments can hold only
    shared settings; the merged plan must have routes and a ``default_route``."""

    version: Literal[1] = 1
    description: str | None = None
    include: tuple[str, ...] = ()
    timezone: TimeZoneName | None = None
    default_route: Name | None = None
    defaults: Defaults | None = None
    holidays: dict[Name, Annotated[tuple[DateSpec, ...], BeforeValidator(_as_tuple)]] = Field(
        default_factory=dict
    )
    caller_lists: dict[Name, tuple[NumberSpec, ...]] = Field(default_factory=dict)
    routes: dict[Name, Route] = Field(default_factory=dict)


for _model in (BotAction, TransferAction, VoicemailAction, SayAction, PlayAction, Branch, Route):
    _model.model_rebuild()
PlanFile.model_rebuild()

AnyAction = (
    BotAction
    | TransferAction
    | VoicemailAction
    | SayAction
    | PlayAction
    | HangupAction
    | RejectAction
)
