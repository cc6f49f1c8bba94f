"""The plumbing every websocket media-stream carrier shares (Telnyx, Plivo, Vonage, Exotel).

Twilio predates it and keeps its own copy in ``gateway/carriers/twilio/aio.py``; SIP is not a
websocket carrier. Carriers never import each other, so what they share lives here.

How a carrier plugs in
----------------------
1. **Its wire, sans-I/O** (``gateway/carriers/<name>/stream.py``): a class satisfying
   :class:`~gateway.streams.events.MediaStream`. ``receive_message(data, now)`` parses one
   websocket frame and queues carrier-neutral events (:class:`StreamOpened` once, with the call
   id, the REST control id and the answer's custom parameters, all validated against the
   carrier's formats; :class:`CallerAudio` as 8 kHz mu-law; :class:`DigitPressed`;
   :class:`PlayedUpTo` for mark/checkpoint echoes; :class:`StreamEnded`; :class:`Violation` for
   garbage, per message). Fatal abuse raises :class:`RemoteProtocolError`. Outbound it takes
   20 ms mu-law frames, marks and clears and frames them (``next_message`` returns ``str`` for
   text frames, ``bytes`` for binary). :class:`~gateway.streams.codec.WireCodec` transcodes
   A-law and L16 (8/16 kHz); :class:`RatePolicer` and :func:`bounded_parameters` are the
   bounds. Set ``exact_heard = False`` when the carrier echoes no marks: the gateway then
   estimates the heard position from its pacing clock (:mod:`gateway.streams.heard`) and the
   call record says "estimated".
2. **Its call control**: an object with ``async hangup()`` and ``async transfer(target)``
   (:class:`~gateway.streams.carrier.CallControl`), built per call from the
   :class:`StreamOpened` by a factory that also gets a callable closing the stream. Where the
   carrier's API plays DTMF into a call, the control is also a
   :class:`~gateway.call.runner.RequestsDtmf` (``can_request_dtmf``, ``async request_dtmf``;
   the digits in the API's alphabet with :class:`gateway.streams.dtmf.DtmfAlphabet`); else
   the bot's DTMF is played as tones.
3. **Its routes** (``gateway/carriers/<name>/aio.py``): the call webhook checks the vendor's
   signature, validates identifiers (``gateway.ids``), then asks
   :meth:`StreamCarrier.decide` (dial plan + admission) and answers in the vendor's document
   with :meth:`StreamCarrier.stream_parameters` carried to the stream (they hold the stream
   token). The websocket route checks whatever the vendor signs, accepts, and calls
   ``await carrier.serve(ws, MyStream(...), control_factory)``: start timeout, token check, one
   stream per call, engine, session, runner, writer, watchdog and call record are done here.
4. **Mount** it in ``gateway/app.py`` with a :class:`StreamCarrier` built from the app's shared
   engines, registry, plans, lifecycle, admission and metrics.

The simulator side is :mod:`gateway.sim.carriers`. This package's ``__init__`` re-exports
only the pure parts, so a carrier's core importing it stays light.
"""

from gateway.streams.codec import Encoding, WireCodec, WireFormat
from gateway.streams.events import (
    CallerAudio,
    DigitPressed,
    LocalProtocolError,
    MediaStream,
    PlayedUpTo,
    RatePolicer,
    RemoteProtocolError,
    StreamEnded,
    StreamError,
    StreamEvent,
    StreamOpened,
    StreamState,
    Violation,
    bounded_parameters,
)

__all__ = [
    "CallerAudio",
    "DigitPressed",
    "Encoding",
    "LocalProtocolError",
    "MediaStream",
    "PlayedUpTo",
    "RatePolicer",
    "RemoteProtocolError",
    "StreamEnded",
    "StreamError",
    "StreamEvent",
    "StreamOpened",
    "StreamState",
    "Violation",
    "WireCodec",
    "WireFormat",
    "bounded_parameters",
]
