"""The simulated phone network: a local Twilio (and Telnyx, Plivo) for tests, the demo and
benchmarks.

It plays the carrier's side over the wire only (HTTP webhooks and the media websocket), never
through the gateway's internals. Pure modules first: :mod:`~gateway.sim.media` (the playout
buffer every carrier's stand-in shares, and Twilio's end of a Media Stream),
:mod:`~gateway.sim.script` (what the caller says and does), :mod:`~gateway.sim.report` (what
was measured); then the asyncio adapter
:mod:`~gateway.sim.caller` and the CLI :mod:`~gateway.sim.cli`. The other carriers' stand-ins
are in :mod:`gateway.sim.carriers`.

Names are imported lazily: ``overtalk`` imports :mod:`gateway.sim.cli` for every command, and
should not pay for httpx, websockets, numpy and Piper unless a call is placed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.sim.caller import parse_twiml, place_call
    from gateway.sim.media import MediaStreamSim
    from gateway.sim.report import CallReport, TurnResult, TwimlVerb
    from gateway.sim.script import CallerScript, load_audio, synthesize

_EXPORTS = {
    "CallReport": "report",
    "CallerScript": "script",
    "MediaStreamSim": "media",
    "TurnResult": "report",
    "TwimlVerb": "report",
    "load_audio": "script",
    "parse_twiml": "caller",
    "place_call": "caller",
    "synthesize": "script",
}

__all__ = [
    "CallReport",
    "CallerScript",
    "MediaStreamSim",
    "TurnResult",
    "TwimlVerb",
    "load_audio",
    "parse_twiml",
    "place_call",
    "synthesize",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gateway.sim.{module}"), name)
