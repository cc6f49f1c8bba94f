"""Whether a caller's transcript took the floor: the judgement a hosted engine's hold waits for.

Pure text rules, for a transcript the vendor's recogniser wrote of a sound made over the bot
(:mod:`engine.remote.openai_protocol`): no words, a recogniser's annotation of a sound
("[cough]", "(laughs)", "*sigh*"), the words recognisers make of noise ("Thank you.", "you"), a
non-lexical vocal sound ("hmm", "ha ha", "ugh") or a backchannel ("uh-huh", "yeah, right") do
not take the floor; anything else does. The same judgement as the embedded engine's
(``engine/local/nlu.py``: ``is_backchannel``, its empty utterances), kept here because a
hosted engine must not load the embedded engine's package (its model threads); the spelling
of vocal sounds is shared with it (:mod:`engine.vocal`).
"""

from __future__ import annotations

from engine.vocal import is_vocal_sound, without_annotations, words

__all__ = ["takes_floor"]

#: What recognisers write for a noise or a breath.
_NOISE_WORDS = frozenset(
    {"you", "thank you", "thanks for watching", "bye", "the", "so", "i", "uh", "um"}
)
_BACKCHANNELS = frozenset(
    """uh-huh uh huh mm-hmm mhm mm hmm yeah yes yep yup right okay ok sure alright aha ah oh
    wow i see got it""".split()
)
#: A backchannel is short: "yeah, right, okay" is still listening; more is saying something.
_BACKCHANNEL_WORDS = 3


def takes_floor(text: str) -> bool:
    """True when ``text`` (a caller's transcript) says the sound was a turn, not a cough, a
    laugh, noise or a backchannel."""
    if not words(without_annotations(text)):
        return False  # nothing, or only the recogniser's notes of sounds
    ws = words(text)
    if " ".join(ws) in _NOISE_WORDS or is_vocal_sound(text):
        return False
    return not (len(ws) <= _BACKCHANNEL_WORDS and all(w in _BACKCHANNELS for w in ws))
