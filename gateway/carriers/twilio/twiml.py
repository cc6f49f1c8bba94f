"""TwiML answers, built with the real ``twilio.twiml.voice_response`` builder.

Twilio drops any query string from ``<Stream url>``, so per-call context travels only as
``<Parameter>`` children, which arrive in the Media Streams ``start`` message.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, VoiceResponse

#: Twilio's limit on len(name) + len(value) of one <Parameter>.
MAX_PARAMETER_CHARS = 500


def connect_stream(stream_url: str, parameters: Mapping[str, str]) -> str:
    """A bidirectional ``<Connect><Stream>`` to ``stream_url`` carrying ``parameters``.

    Raises ValueError for a parameter Twilio would reject (too long) rather than let Twilio
    fail the call with an opaque 11200-class error.
    """
    if "?" in stream_url:
        raise ValueError(f"<Stream url> cannot carry a query string: {stream_url}")
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        if len(name) + len(value) >= MAX_PARAMETER_CHARS:
            raise ValueError(f"<Parameter> {name!r} is {len(name) + len(value)} characters")
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)
