"""Hosted duplex models as engines: OpenAI Realtime, Gemini Live and Moshi, over websockets.

Pure modules first, the asyncio adapter last::

    errors.py            RemoteError tree (who caused what)
    settings.py          a call's dial-plan strings as typed settings
    refused.py           options the services refuse (at start-up and in Engine.check)
    output_timeline.py   output-timeline position -> vendor item and offset (for truncation)
    tools.py             end_call / transfer_call / send_dtmf -> Hangup / Transfer / SendDtmf
    openai_protocol.py   OpenAI Realtime, sans I/O (GA session shape, one response at a time)
    gemini_protocol.py   Gemini Live BidiGenerateContent, sans I/O (goAway, resumption)
    ogg.py, opus.py      Ogg pages (ours) and Opus (libopus via PyAV) for Moshi
    moshi_protocol.py    Moshi server, sans I/O
    link.py              RemoteSession: one websocket at a time, reader + writer, reconnects
    openai.py, gemini.py, moshi.py   the engines ("openai", "gemini", "moshi")

Engine modules are imported by name from the registry; importing this package loads nothing
heavy (PyAV only loads with the Moshi engine).
"""
