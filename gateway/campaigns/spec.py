"""The campaign file: a YAML document, validated, with every error at its file:line:col.

::

    version: 1
    name: spring-reminders            # the campaign's id in the store
    caller_id: "+13125550150"         # the number we call from (a Twilio number)
    contacts: spring-contacts.csv     # relative to this file; or given at `create`
    dialplan: ../dialplans/campaign-callback.yaml   # routes the answered call (on caller_id)
    timezone: America/Chicago         # for contacts whose zone cannot be told
    windows: ["mon-fri 09:00-20:00", "sat 10:00-14:00"]   # the callee's local time
    start: 2026-03-02                 # first and last calling day (callee's local dates)
    stop: 2026-03-31
    pacing: {calls_per_second: 1, max_concurrent: 10}
    ring_timeout: 30                  # seconds before no-answer
    max_attempts: 4
    retry:                            # per outcome: how many retries, and the back-off
      busy: {times: 2, after: [10m, 30m]}
      no-answer: {times: 2, after: [2h]}
      failed: {times: 1, after: [30m]}
      machine: {times: 1, after: [4h]}
    amd:
      enabled: true
      on_machine: message             # leave `message` after the beep, or `hangup`
      message: "Hello {first_name}, this is Lakeside Clinic about your appointment."
    do_not_call: [dnc.csv, "+13125550199"]   # files (one number per line) or numbers

The YAML reader is the dial plan's (positions kept, duplicate keys and alias bombs refused).
``{name}`` in ``message`` is filled from the contact's columns when the message is left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
import yaml.reader
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.campaigns.errors import CampaignInvalid
from gateway.campaigns.outcomes import Outcome, Retry, RetryPolicy
from gateway.campaigns.pacing import Pacing
from gateway.campaigns.windows import CallingWindows
from gateway.dialplan import DialPlan, DialPlanInvalid, Positions, Problem
from gateway.dialplan import load as load_dialplan
from gateway.dialplan import parse_yaml as parse
from gateway.dialplan.numbers import is_e164

__all__ = ["AmdSpec", "CampaignSpec", "LoadedCampaign", "load_campaign", "parse_duration"]

_DURATION = re.compile(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s)?")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
#: A campaign file is a page of settings; the contacts are in their own file.
MAX_CAMPAIGN_BYTES = 256 * 1024


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"45s"``, ``"10m"``, ``"2h"`` or ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text such as '10m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        match = _DURATION.fullmatch(value.strip())
        if match is None or not any(match.groups()):
            raise ValueError(f"{value!r} is not a duration: write '45s', '10m', '2h' or '1h30m'")
        h, m, s = match.groups()
        seconds = int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)
    else:
        raise ValueError("a duration is a number of seconds or text such as '10m'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySpec(_Model):
    times: int = Field(default=0, ge=0, le=20)
    after: list[Duration] = Field(default_factory=lambda: [3600.0], min_length=1)


class PacingSpec(_Model):
    calls_per_second: float = Field(default=1.0, gt=0, le=1000)
    max_concurrent: int = Field(default=10, ge=1, le=10000)


class AmdSpec(_Model):
    """Twilio answering-machine detection, run asynchronously (the bot talks at once)."""

    enabled: bool = True
    on_machine: Literal["message", "hangup"] = "hangup"
    message: str | None = None
    voice: str | None = None
    language: str | None = None
    #: Seconds Twilio may take to decide (``MachineDetectionTimeout``, 3-59).
    timeout: int | None = Field(default=None, ge=3, le=59)

    @model_validator(mode="after")
    def _message_for_machines(self) -> AmdSpec:
        if self.on_machine == "message" and not self.message:
            raise ValueError("on_machine: message needs the message to leave")
        return self

    @property
    def mode(self) -> str:
        """``DetectMessageEnd`` waits for the beep (to leave a message); ``Enable`` is faster."""
        return "DetectMessageEnd" if self.on_machine == "message" else "Enable"


class CampaignSpec(_Model):
    version: Literal[1] = 1
    name: str
    caller_id: str
    contacts: str | None = None
    phone_column: str = "phone"
    timezone_column: str = "timezone"
    default_country_code: str = Field(default="1", pattern=r"[1-9][0-9]{0,2}")
    dialplan: str | None = None
    timezone: str = "UTC"
    windows: list[str] = Field(default_factory=lambda: ["mon-fri 09:00-20:00"], min_length=1)
    start: date | None = None
    stop: date | None = None
    pacing: PacingSpec = Field(default_factory=PacingSpec)
    ring_timeout: int = Field(default=30, ge=5, le=600)
    time_limit: int | None = Field(default=None, ge=1, le=14400)
    max_attempts: int = Field(default=3, ge=1, le=50)
    retry: dict[Literal["busy", "no-answer", "failed", "machine"], RetrySpec] = Field(
        default_factory=dict
    )
    amd: AmdSpec = Field(default_factory=lambda: AmdSpec(enabled=False))
    record: bool = False
    do_not_call: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a campaign name: lower-case letters, digits, '-' and '_', "
                "at most 63 characters"
            )
        return value

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, value: str) -> str:
        if not is_e164(value):
            raise ValueError(f"{value!r} is not an E.164 number such as +13125550150")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as "
                             "America/Chicago)") from None  # fmt: skip
        return value

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        CallingWindows.parse(value)  # ValueError names the bad one
        return value

    @field_validator("stop")
    @classmethod
    def _dates(cls, value: date | None, info: ValidationInfo) -> date | None:
        # A field validator (start is checked first), so the error points at ``stop``.
        start = info.data.get("start")
        if value is not None and start is not None and value < start:
            raise ValueError(f"stop ({value}) is before start ({start})")
        return value

    # -- what the scheduler uses ----------------------------------------------------------

    def calling_windows(self) -> CallingWindows:
        return CallingWindows.parse(self.windows, self.start, self.stop)

    def pacing_rules(self) -> Pacing:
        return Pacing(self.pacing.calls_per_second, self.pacing.max_concurrent)

    def retry_policy(self) -> RetryPolicy:
        rules = {Outcome(k): Retry(v.times, tuple(v.after)) for k, v in self.retry.items()}
        return RetryPolicy(self.max_attempts, rules)


@dataclass(frozen=True, slots=True)
class LoadedCampaign:
    """A checked campaign file: its spec, where it was, and its dial plan (if it names one)."""

    spec: CampaignSpec
    path: Path
    dialplan: DialPlan | None

    def resolve(self, relative: str) -> Path:
        return (self.path.parent / relative).resolve()


def load_campaign(
    path: str | Path, engines: frozenset[str] | None = None, *, confine: Path | None = None
) -> LoadedCampaign:
    """Read and check a campaign file; raise :class:`CampaignInvalid` with every problem.

    ``engines``: engine names the dial plan may use (default: the registry's). ``confine``:
    the files the campaign names (contacts, dial plan, do-not-call lists) must be regular
    files inside this directory, links resolved (a campaign sent over the API may not name
    ``/etc/passwd`` or ``../../secret``); a problem never says what an outside file holds.
    """
    path = Path(path)
    try:
        if not path.is_file():  # a device such as /dev/zero would be read for ever
            raise CampaignInvalid([Problem(path, 1, 1, "a campaign is a regular file")])
        with path.open("rb") as handle:
            data = handle.read(MAX_CAMPAIGN_BYTES + 1)
        if len(data) > MAX_CAMPAIGN_BYTES:
            raise CampaignInvalid([Problem(path, 1, 1, f"a campaign file is at most "
                                           f"{MAX_CAMPAIGN_BYTES} bytes")])  # fmt: skip
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CampaignInvalid([Problem(path, line, 1, "not UTF-8: save the file as UTF-8")]
                              ) from None  # fmt: skip
    except OSError as exc:
        raise CampaignInvalid([Problem(path, 1, 1, f"cannot read campaign: {exc.strerror}")]
                              ) from None  # fmt: skip
    try:
        data, positions = parse(text, path)
    except DialPlanInvalid as exc:  # the YAML reader reports syntax errors this way
        raise CampaignInvalid(exc.problems) from None
    except yaml.YAMLError as exc:  # what it lets through: a control character (ReaderError)
        raise CampaignInvalid([_yaml_problem(path, text, exc)]) from None
    if not isinstance(data, dict):
        raise CampaignInvalid([Problem(path, 1, 1, "a campaign file is a mapping (name, ...)")])
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise CampaignInvalid(_problems(exc, positions)) from None
    problems: list[Problem] = []
    loaded_plan = None
    named: list[tuple[tuple[str | int, ...], str]] = [
        ((key,), name) for key in ("contacts", "dialplan") if (name := getattr(spec, key))
    ]
    named += [(("do_not_call", i), e) for i, e in enumerate(spec.do_not_call) if not is_e164(e)]
    for loc, name in named:
        line, col = positions.locate(loc)
        if confine is not None and not _inside(path.parent / name, confine):
            reason = f"{loc[0]}: {name!r} is outside the campaign directory: upload the file"
            problems.append(Problem(path, line, col, reason + " or put it there"))
            continue
        if (path.parent / name).is_file():
            continue
        if loc[0] == "do_not_call":
            reason = f"do_not_call: {name!r} is neither a number nor a file"
        else:
            reason = f"{loc[0]} file not found: {name}"
        problems.append(Problem(path, line, col, reason))
    if spec.dialplan is not None and not problems:
        if engines is None:
            from engine.registry import ENGINE_NAMES

            engines = ENGINE_NAMES
        try:
            loaded_plan = load_dialplan(path.parent / spec.dialplan, engines)
        except DialPlanInvalid as exc:
            problems.extend(exc.problems)
    if problems:
        raise CampaignInvalid(problems)
    return LoadedCampaign(spec, path.resolve(), loaded_plan)


def _yaml_problem(path: Path, text: str, exc: yaml.YAMLError) -> Problem:
    """A YAML error at its line and column, without the text it quotes."""
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: max(exc.position, 0)]
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        return Problem(path, line, column, f"not YAML: character U+{exc.character:04X} is not "
                       "allowed in a campaign file")  # fmt: skip
    mark = getattr(exc, "problem_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return Problem(path, line, column, f"not YAML: {getattr(exc, 'problem', None) or exc}")


def _inside(path: Path, directory: Path) -> bool:
    """Whether ``path``, links and ``..`` resolved, is a file under ``directory``."""
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte
        return False


def _problems(exc: ValidationError, positions: Positions) -> list[Problem]:
    out = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        line, col = positions.locate(loc, key=error["type"] == "extra_forbidden")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
        elif error["type"] == "missing":
            message = f"{loc[-1]} is required"
        where = ".".join(str(p) for p in loc)
        out.append(Problem(positions.file, line, col, f"{where}: {message}" if where else message))
    return out
