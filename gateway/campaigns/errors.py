"""What can go wrong with a campaign, typed by who caused it.

Exception tree::

    CampaignError                 base of everything this package raises on purpose
    ├── CampaignInvalid           the campaign file or contact list is unusable (every Problem)
    ├── CampaignNotFound          no campaign with that id in the store
    ├── CampaignExists            a campaign with that id is already in the store
    ├── CampaignStateError        the request does not fit the campaign's state (resume a
    │                             canceled campaign...)
    ├── GatewayMisrouted          the gateway the calls are handed to would not route them as
    │                             the campaign's dial plan does (or cannot be reached)
    ├── StoreBusy                 the store refused a transaction for now (a deadlock or
    │                             serialisation conflict): nothing of it was written, so
    │                             doing it again later is safe
    └── CarrierError              the carrier's REST API did not place or change a call
        ├── CarrierRejected       it refused the request (4xx): asking again cannot help
        └── CarrierUnavailable    no answer, a timeout or a 5xx/429: whether the request took
                                  effect is unknown, so a call must be reconciled, never
                                  simply placed again

Bad contact rows are not exceptions: they are reported per row (:class:`RowProblem` in
:mod:`gateway.campaigns.contacts`) and skipped, so one typo never stops a list of thousands.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.dialplan import Problem


class CampaignError(Exception):
    """Base of the campaign exceptions."""


class CampaignInvalid(CampaignError):
    """The campaign was refused; ``problems`` holds every reason with file, line and column."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class CampaignNotFound(CampaignError):
    """No campaign has this id."""


class CampaignExists(CampaignError):
    """A campaign with this id already exists (ids are the campaign's ``name``)."""


class CampaignStateError(CampaignError):
    """A state change the campaign's current state does not allow."""


class GatewayMisrouted(CampaignError):
    """The gateway would send the campaign's calls to another route than its plan's."""


class StoreBusy(CampaignError):
    """The store rolled a transaction back under contention; try again later."""


class CarrierError(CampaignError):
    """The carrier's REST API failed a request; ``code`` is the carrier's error code if any."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class CarrierRejected(CarrierError):
    """A 4xx answer: the request was understood and refused (an invalid number...)."""


class CarrierUnavailable(CarrierError):
    """No usable answer: the request may or may not have taken effect."""
