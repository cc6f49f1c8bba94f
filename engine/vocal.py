"""Words, and the sounds a voice makes that are not words, as a recogniser spells them.

Pure text rules shared by the embedded engine's judgement of a sound over the bot
(:mod:`engine.local.nlu`) and a hosted engine's (:mod:`engine.remote.floor`): one spelling
rule, so the two cannot drift apart. It lives outside ``engine.local`` because importing that
package loads the embedded engine's models.
"""

from __future__ import annotations

import re

__all__ = ["is_vocal_sound", "without_annotations", "words"]

_WORD_RE = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
#: Sounds a voice makes that are not words, as a recogniser spells them: laughter ("hahaha",
#: "heh"), vowels, hums and fillers ("oh", "ooh", "ahh", "hmm", "mm", "um"), coughs and
#: sneezes ("oof", "ugh", "achoo", "ahem"), and runs of bare consonants ("w-h-h-h", "f"). A
#: property of English spelling, not of any recording: throat clearing and sighs come out the
#: same way.
_VOCAL_RE = re.compile(
    r"[aeiouh]*[aeiou][aeiouh]*|h*m+h*m*|u+h?m+|[b-df-hj-np-tv-z]|"
    r"oof|ugh|ow|ouch|achoo|atchoo|ahem|phew|whew|pfft|psst|sh+|tsk|eek|brr+|argh|erm|hmph|"
    r"whoa|wo+w|w?hoo+"
)
#: Words of ``_VOCAL_RE``'s vowel-and-h shape that are words.
_NOT_VOCAL = frozenset({"a", "i", "he", "hi", "hue", "hoe", "hie", "ohio", "eau"})
#: A recogniser's notes of sounds it did not take for words: "(coughs)", "[laughter]", "*sigh*".
_ANNOTATION_RE = re.compile(r"[\[(*][^\])*]*[\])*]")


def words(text: str) -> list[str]:
    """Lower-case words with punctuation removed (apostrophes and hyphens inside words kept)."""
    return _WORD_RE.findall(text.lower().replace("’", "'"))


def without_annotations(text: str) -> str:
    """``text`` without the recogniser's notes of sounds ("(coughs) Sorry" -> " Sorry")."""
    return _ANNOTATION_RE.sub(" ", text)


def is_vocal_sound(text: str) -> bool:
    """Every word is a vocal sound that is not a word (a laugh, a cough, "hmm"), or the
    recogniser marked the sound as such: not a turn, whatever its length."""
    if _ANNOTATION_RE.search(text) and not words(without_annotations(text)):
        return True
    ws = words(text)
    return bool(ws) and all(
        w not in _NOT_VOCAL and all(_VOCAL_RE.fullmatch(part) for part in w.split("-")) for w in ws
    )
