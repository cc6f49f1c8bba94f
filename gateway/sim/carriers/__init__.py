"""Stand-ins for the media-stream carriers besides Twilio, and the one call flow they share.

Each carrier module (``telnyx.py``, ``plivo.py``...) gives a dialer
(:class:`~gateway.sim.carriers.dial.CarrierDialer`): the pure part of placing an inbound call
the way that carrier does it (its call webhook, signed; reading its answer document; its
websocket upgrade) and a :class:`~gateway.sim.media.StreamSimBase` for its wire.
:func:`~gateway.sim.carriers.dial.place_carrier_call` then does the I/O every carrier shares:
POST the webhook, open the websocket the answer names, and run the caller's script through
:class:`~gateway.sim.caller.CallPump`, which plays the gateway's audio out and answers its
marks as the carrier would. Twilio keeps :func:`gateway.sim.caller.place_call`.

:data:`DIALERS` names each carrier's dialer factory, imported lazily, for ``overtalk sim call
--carrier`` and ``overtalk bench --carrier``. A new carrier adds its module and one entry; its
REST stand-in (hang-up, transfer) is told of each running call through ``on_pump``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.sim.carriers.dial import CarrierDialer

__all__ = ["DIALERS", "dialer_for"]

#: ``--carrier`` name -> "module:factory" of its dialer (factory(auth, **options) -> dialer).
#: Imported lazily: ``overtalk`` reads these names for every command.
DIALERS: dict[str, str] = {
    "telnyx": "gateway.sim.carriers.telnyx:TelnyxDialer",
    "plivo": "gateway.sim.carriers.plivo:PlivoDialer",
    "vonage": "gateway.sim.carriers.vonage:VonageDialer",
    "exotel": "gateway.sim.carriers.exotel:ExotelDialer",
}


def dialer_for(carrier: str, auth: str | None, **options: Any) -> CarrierDialer:
    """The dialer of ``carrier`` (a :data:`DIALERS` name) signing with ``auth``; ValueError
    for an unknown carrier or unusable signing material."""
    try:
        target = DIALERS[carrier]
    except KeyError:
        raise ValueError(
            f"unknown carrier {carrier!r}; one of twilio, {', '.join(sorted(DIALERS))}"
        ) from None
    module, _, name = target.partition(":")
    factory: Callable[..., CarrierDialer] = getattr(importlib.import_module(module), name)
    return factory(auth, **options)
