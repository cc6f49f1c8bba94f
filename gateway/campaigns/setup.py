"""Creating a campaign: the file, its contacts and do-not-call lists, checked and stored.

Everything that can be wrong with one contact is found here, before the first call: a bad
row of the list, and a contact whose variables would make the call's inline TwiML longer than
Twilio accepts. Such contacts are skipped and reported with their line numbers; the campaign
is created with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.campaigns.answer import answer_twiml
from gateway.campaigns.contacts import ContactList, RowProblem, numbers_of, read_contacts
from gateway.campaigns.errors import CampaignInvalid
from gateway.campaigns.spec import CampaignSpec, LoadedCampaign, load_campaign
from gateway.campaigns.store import Store
from gateway.carriers.twilio.stream_token import SAMPLE_TOKEN
from gateway.dialplan import Problem

__all__ = ["Created", "create_campaign"]

#: Stand-in URLs for the size check: long enough for a real deployment's host names.
_PROBE_STREAM = "wss://gateway.overtalk.example.com:443/twilio/media"
_PROBE_ACTION = "https://gateway.overtalk.example.com:443/twilio/dial"


@dataclass
class Created:
    """What ``create`` stored; ``summary`` accounts for every line of the contact list."""

    id: str
    contacts: int
    skipped: list[RowProblem] = field(default_factory=list)
    do_not_call: int = 0
    summary: str = ""
    lines: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contacts": self.contacts,
            "lines": self.lines,
            "do_not_call": self.do_not_call,
            "skipped": [
                {"line": p.line, "end": max(p.end, p.line), "reason": p.reason}
                for p in self.skipped
            ],  # fmt: skip
            "skipped_by_reason": self.skipped_by_reason,
            "warnings": self.warnings,
        }


def create_campaign(
    store: Store,
    campaign_file: str | Path,
    now: float,
    *,
    contacts_path: str | Path | None = None,
    contacts_text: str | None = None,
    confine: Path | None = None,
) -> Created:
    """Load ``campaign_file`` and its lists and store the campaign (state ``ready``).

    The contacts come from ``contacts_text``, else ``contacts_path``, else the file the
    campaign names. Raises :class:`CampaignInvalid` when the campaign or the list as a whole
    is unusable. ``confine``: every file the campaign names must lie in this directory (see
    :func:`~gateway.campaigns.spec.load_campaign`).
    """
    campaign = load_campaign(campaign_file, confine=confine)
    spec = campaign.spec
    if contacts_text is not None:
        source = Path(campaign_file).with_suffix(".csv")
    elif contacts_path is not None:
        source = Path(contacts_path)
    elif spec.contacts is not None:
        source = campaign.resolve(spec.contacts)
    else:
        raise CampaignInvalid(
            [Problem(Path(campaign_file), 1, 1, "no contacts: name a file or give one")]
        )
    contacts = read_contacts(
        source,
        phone_column=spec.phone_column,
        timezone_column=spec.timezone_column,
        default_zone=spec.timezone,
        default_country_code=spec.default_country_code,
        text=contacts_text,
    )
    contacts = _fits_twilio(campaign, contacts, now)
    if not contacts.contacts:
        # A campaign of nobody would start, finish at once and use its name up.
        problems = [Problem(source, 1, 1, f"no contacts to call ({contacts.summary()})")]
        problems += [Problem(source, p.line, 1, p.reason) for p in contacts.skipped[:20]]
        raise CampaignInvalid(problems)
    numbers, bad_numbers = numbers_of(
        spec.do_not_call, campaign.path.parent, spec.default_country_code
    )
    store.create_campaign(
        spec,
        contacts,
        now,
        source=str(campaign.path),
        do_not_call={n: f"campaign {spec.name}" for n in numbers},
        skipped=[RowProblem(p.line, f"do-not-call list: {p.reason}", p.text) for p in bad_numbers],
    )
    return Created(
        spec.name, len(contacts.contacts), contacts.skipped, len(numbers), contacts.summary(),
        contacts.lines, contacts.by_reason(), stop_warnings(spec, now),
    )  # fmt: skip


def stop_warnings(spec: CampaignSpec, now: float) -> list[str]:
    """What to tell whoever creates a campaign that cannot call anyone as it stands."""
    today = datetime.fromtimestamp(now, ZoneInfo(spec.timezone)).date()
    if spec.stop is not None and spec.stop < today:
        return [f"the stop date {spec.stop} has passed (today is {today} in {spec.timezone}): "
                "every contact would finish as expired without a call; change stop and create "
                "it under another name"]  # fmt: skip
    return []


def _fits_twilio(campaign: LoadedCampaign, contacts: ContactList, now: float) -> ContactList:
    at = datetime.fromtimestamp(now, UTC)
    kept = ContactList(skipped=list(contacts.skipped), lines=contacts.lines,
                       blank=contacts.blank)  # fmt: skip
    for contact in contacts.contacts:
        try:
            answer_twiml(
                campaign,
                stream_url=_PROBE_STREAM,
                action_url=_PROBE_ACTION,
                attempt=f"{campaign.spec.name}:{10**12}:99",
                phone=contact.phone,
                variables=contact.variables,
                at=at,
                stream_token=lambda params: SAMPLE_TOKEN,
            )
        except ValueError as exc:
            end = contact.line + contact.lines - 1
            kept.skipped.append(RowProblem(contact.line, str(exc), end=end, kind="twiml"))
            continue
        kept.contacts.append(contact)
    kept.skipped.sort(key=lambda p: p.line)
    return kept
