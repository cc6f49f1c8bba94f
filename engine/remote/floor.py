"""Whether a caller's transcript took the floor: the judgement a hosted engine's hold waits for.

Pure text rules, for a transcript the vendor's recogniser wrote of a sound made over the bot
(:mod:`engine.remote.openai_protocol`): no words, a recogniser's annotation of a sound
("[cough]", "(laughs)", "*sigh*"), the words recognisers make of noise ("Thank you.", "you"), a
non-lexical vocal sound ("hmm", "ha ha", "ugh") or a backchannel ("uh-huh", "yeah, right") do
not take the floor; anything else does. The same judgement as the embedded engine's
(``engine/local/nlu.py``: ``is_vocal_sound``, ``is_backchannel``, its empty utterances), kept
here because a hosted engine must not load the embedded engine's package (its model threads).
"""

from __future__ import annotations

import re

__all__ = ["takes_floor"]

_WORD_RE = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
#: A recogniser's note of a sound it did not take for words.
_ANNOTATION_RE = re.compile(r"[\[(*][^\])*]*[\])*]")
#: Vowels and h (laughter, "oh", "ahh"), hums ("hmm", "mm"), single letters, and the usual
#: spellings of coughs, sneezes and sighs.
_VOCAL_RE = re.compile(
    r"[aeiouh]*[aeiou][aeiouh]*|h*m+h*m*|[b-df-hj-np-tv-z]|"
    r"oof|ugh|ow|ouch|achoo|atchoo|ahem|phew|whew|pfft|psst|sh+|tsk|eek|brr+|argh|erm|hmph|"
    r"whoa|wo+w|w?hoo+"
)
#: Words of the vowel-and-h shape that are words.
_NOT_VOCAL = frozenset({"a", "i", "he", "hi", "hue", "hoe", "hie", "ohio", "eau"})
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
    if not _words(_ANNOTATION_RE.sub(" ", text)):
        return False  # nothing, or only the recogniser's notes of sounds
    words = _words(text)
    if " ".join(words) in _NOISE_WORDS:
        return False
    if all(w not in _NOT_VOCAL and all(map(_VOCAL_RE.fullmatch, w.split("-"))) for w in words):
        return False
    return not (len(words) <= _BACKCHANNEL_WORDS and all(w in _BACKCHANNELS for w in words))


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower().replace("’", "'"))
