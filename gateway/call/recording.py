"""Stereo call recordings: the caller on the left, the bot as the caller heard it on the right.

The caller's channel is the carrier's audio in arrival order (its clock is the media
timestamps). The bot's channel places each outbound frame at the time the playout model says
it starts playing, and a ``clear`` erases what was scheduled after it: the recording holds
what the caller heard, not what the gateway sent. Both are kept as mu-law (8 KB/s per
channel) and converted once, off the event loop, when the call ends.
"""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import numpy as np

from gateway.audio.g711 import ULAW_SILENCE, ulaw_decode
from gateway.ids import path_inside

log = logging.getLogger("overtalk.session")

BYTES_PER_SECOND = 8000
#: A recording stops growing past this length by default (a runaway call must not eat memory;
#: the gateway's ``max_recording_seconds`` sets it).
MAX_SECONDS = 3600.0


def recording_path(
    call_id: str, *, recordings_dir: str | Path, records_dir: str | Path | None, record: bool
) -> Path | None:
    """Where a call's recording goes, or None when it is not recorded; the same on every carrier.

    Every call goes into ``recordings_dir`` when it is set; otherwise a bot with
    ``record: true`` goes beside the call records. ``call_id`` comes from the wire: it must be
    a plain token that stays inside the folder (:class:`~gateway.ids.InvalidIdentifier` if not).
    """
    if recordings_dir:
        return path_inside(recordings_dir, call_id, ".wav")
    if record:
        if records_dir:
            return path_inside(records_dir, call_id, ".wav")
        log.warning("x call %s asks to be recorded but no recordings_dir is set", call_id)
    return None


class CallRecorder:
    """Collects both channels during a call; :meth:`write` makes the WAV."""

    __slots__ = ("origin", "_caller", "_bot", "_limit")

    def __init__(self, origin: float, max_seconds: float = MAX_SECONDS) -> None:
        #: Monotonic time of the call's start: sample 0 of both channels.
        self.origin = origin
        self._caller = bytearray()
        self._bot = bytearray()
        self._limit = int(max_seconds * BYTES_PER_SECOND)

    def caller(self, ulaw: bytes) -> None:
        room = self._limit - len(self._caller)
        if room > 0:
            self._caller += ulaw[:room]

    def bot(self, at: float, ulaw: bytes) -> None:
        """A bot frame that starts playing at monotonic time ``at``."""
        start = int((at - self.origin) * BYTES_PER_SECOND)
        if start < 0 or start + len(ulaw) > self._limit:
            return
        bot = self._bot
        if len(bot) < start:
            bot += bytes([ULAW_SILENCE]) * (start - len(bot))
        bot[start : start + len(ulaw)] = ulaw

    def cut_bot(self, at: float) -> None:
        """A clear at ``at``: nothing scheduled after it was heard."""
        end = max(0, int((at - self.origin) * BYTES_PER_SECOND))
        del self._bot[end:]

    def write(self, path: Path) -> None:
        """Write the stereo 8 kHz 16-bit WAV (blocking: run it in a thread)."""
        length = max(len(self._caller), len(self._bot))
        silence = bytes([ULAW_SILENCE])
        left = np.frombuffer(
            ulaw_decode(bytes(self._caller) + silence * (length - len(self._caller))), "<i2"
        )
        right = np.frombuffer(
            ulaw_decode(bytes(self._bot) + silence * (length - len(self._bot))), "<i2"
        )
        frames = np.empty(2 * length, dtype="<i2")
        frames[0::2] = left
        frames[1::2] = right
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(frames.tobytes())
