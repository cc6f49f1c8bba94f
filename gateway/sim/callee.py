"""The people (and machines) an outbound call reaches in the simulated phone network.

A :class:`Callee` says how a number answers a call placed through the REST stand-in
(:mod:`gateway.sim.rest`): it rings for a while and then answers as a person speaking a
:class:`~gateway.sim.script.CallerScript`, answers as a voicemail box (greeting, beep, then it
records until the caller hangs up or its maximum length passes), or never answers: busy, no
answer (rings until the request's ``Timeout``), failed (the network could not connect).

What Twilio's answering-machine detection would report is part of the callee, because the
simulator does not analyse audio: a person is ``human`` shortly after answering; a voicemail
box is ``machine_start`` early (``MachineDetection=Enable``) or ``machine_end_beep`` once its
beep has played (``DetectMessageEnd``), the values Twilio documents (REFERENCE.md 1.7).

Pure: nothing here reads a clock or opens a socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from gateway.sim.media import SAMPLE_RATE
from gateway.sim.script import CallerScript

__all__ = ["Callee", "CalleeBook", "Kind", "beep"]


class Kind(StrEnum):
    PERSON = "person"
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"


def beep(ms: int = 400, freq: float = 1000.0) -> bytes:
    """A voicemail beep: a 1 kHz tone, 8 kHz int16 PCM."""
    t = np.arange(ms * SAMPLE_RATE // 1000) / SAMPLE_RATE
    return (np.sin(2 * np.pi * freq * t) * 0.4 * 32767).astype("<i2").tobytes()


@dataclass(frozen=True)
class Callee:
    """How one number answers. Build with the class methods; times are seconds."""

    kind: Kind
    #: Ringing before the outcome (busy and failed calls end after it; answered calls answer).
    ring_s: float = 1.0
    #: What the callee does on the media stream once answered (person: their lines; voicemail:
    #: greeting, beep, then listening).
    script: CallerScript | None = None
    #: AMD's verdict for this callee, and seconds after answer at which it is reached.
    answered_by: str = "human"
    amd_after_s: float = 1.0
    #: Voicemail only: the greeting and beep last this long (AMD's DetectMessageEnd point).
    greeting_s: float = 0.0

    @classmethod
    def person(cls, script: CallerScript, *, ring_s: float = 1.0, amd_after_s: float = 1.0
               ) -> Callee:  # fmt: skip
        """A person who answers and follows ``script``, then hangs up."""
        return cls(Kind.PERSON, ring_s, script, "human", amd_after_s)

    @classmethod
    def voicemail(
        cls, greeting: bytes, *, ring_s: float = 2.0, record_s: float = 30.0, beep_ms: int = 400
    ) -> Callee:
        """A voicemail box: ``greeting`` (8 kHz int16 PCM), a beep, then up to ``record_s``
        of listening before it hangs up."""
        script = (
            CallerScript()
            .say(greeting, "voicemail greeting")
            .say(beep(beep_ms), "beep")
            .pause(round(record_s * 1000))
        )
        greeting_s = len(greeting) / 2 / SAMPLE_RATE + beep_ms / 1000
        return cls(Kind.VOICEMAIL, ring_s, script, "machine_end_beep", greeting_s, greeting_s)

    @classmethod
    def busy(cls, *, ring_s: float = 0.5) -> Callee:
        return cls(Kind.BUSY, ring_s)

    @classmethod
    def no_answer(cls) -> Callee:
        return cls(Kind.NO_ANSWER, ring_s=float("inf"))

    @classmethod
    def failed(cls, *, ring_s: float = 0.2) -> Callee:
        return cls(Kind.FAILED, ring_s)

    def amd(self, mode: str) -> tuple[str, float]:
        """``(AnsweredBy, seconds after answer)`` for ``MachineDetection=mode``."""
        if self.kind is Kind.VOICEMAIL:
            if mode == "DetectMessageEnd":
                return "machine_end_beep", self.greeting_s
            return "machine_start", min(self.amd_after_s, 1.5)
        return self.answered_by, self.amd_after_s


@dataclass
class CalleeBook:
    """Who answers which number; numbers not listed get ``default``."""

    numbers: dict[str, Callee] = field(default_factory=dict)
    default: Callee = field(default_factory=lambda: Callee.person(CallerScript().pause(1000)))

    def __getitem__(self, number: str) -> Callee:
        return self.numbers.get(number, self.default)

    def update(self, numbers: Mapping[str, Callee]) -> None:
        self.numbers.update(numbers)
