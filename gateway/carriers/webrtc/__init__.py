"""The browser phone: ``/phone``, a page that calls the bot over WebRTC (aiortc).

Pure modules first: ``errors``, ``signalling`` (the offer and the data channel's messages),
``access`` (who may call), ``line`` (connection deadlines), ``playback`` (the bot's frame
queue); ``aio`` (aiortc and FastAPI) last. ``aio`` is imported by the app, not here, so the
pure modules load without aiortc.
"""
