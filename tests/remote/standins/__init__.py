"""Local stand-ins for hosted duplex models, following each vendor's published protocol.

Tests and benchmarks start them on loopback (``async with OpenAIStandIn(...) as s: s.url``):
:mod:`.openai` (OpenAI Realtime), :mod:`.gemini` (Gemini Live ``BidiGenerateContent``),
:mod:`.moshi` (Kyutai's Moshi server). :mod:`.common` holds what they share.
"""
