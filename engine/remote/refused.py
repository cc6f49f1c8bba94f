"""Per-call options the hosted services no longer accept, or that would leave a caller in silence.

One table, read in three places: the engines refuse these when a call's settings are built (and
at start-up, for engine defaults), and ``overtalk dialplan check`` refuses a plan that sets them,
so an operator learns at check time, not from a silent call.

- ``api: beta`` (OpenAI): the beta Realtime interface (header ``OpenAI-Beta: realtime=v1``, the
  beta session shape) was retired in 2026; the service answers error ``beta_api_shape_disabled``
  and closes the socket with code 4000.
- ``turn_detection: none`` and ``create_response: false`` (OpenAI): without server turn
  detection, or with it but without automatic responses, the client must commit the input
  buffer and send ``response.create`` at each end of the caller's turn (openai-python
  ``types/realtime/realtime_audio_input_turn_detection.py``: ``create_response``; the Realtime
  API reference on ``input_audio_buffer.commit``: "it will not create a response").
  The gateway does not take turns for the model, so the bot would never answer.
- ``vad: off`` (Gemini, ``automaticActivityDetection.disabled``): the service then waits for
  ``realtimeInput.activityStart``/``activityEnd`` around each caller turn (python-genai
  ``types.py`` ``AutomaticActivityDetection.disabled``, ``ActivityStart``); the gateway does not
  send them, so the bot would never answer.

Pure: strings in, reasons out.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.base import Problem

__all__ = ["REFUSED", "problems", "refusals"]

#: (option, value as written, lower-cased) -> (engines it applies to, why it is refused).
REFUSED: Mapping[tuple[str, str], tuple[frozenset[str], str]] = {
    ("api", "beta"): (
        frozenset({"openai"}),
        "the OpenAI Realtime beta interface (OpenAI-Beta: realtime=v1) was retired; the "
        "service answers beta_api_shape_disabled and closes every call. Remove the option: "
        "the GA interface is the only one",
    ),
    ("turn_detection", "none"): (
        frozenset({"openai"}),
        "with server turn detection off the client must commit each caller turn and ask for "
        "a response, which this gateway does not do: the bot would never answer. Use "
        "server_vad or semantic_vad",
    ),
    ("create_response", "false"): (
        frozenset({"openai"}),
        "without automatic responses the client must ask for each reply, which this gateway "
        "does not do: the bot would never answer. Remove the option",
    ),
    ("vad", "off"): (
        frozenset({"gemini"}),
        "with automatic activity detection off the service waits for activityStart and "
        "activityEnd around each caller turn, which this gateway does not send: the bot "
        "would never answer. Remove the option",
    ),
}

_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def _normal(key: str, value: object) -> str:
    word = str(value).strip().lower()
    if key == "create_response" and word in _FALSE_WORDS:
        return "false"
    return word


def problems(options: Mapping[str, object], engine: str | None = None) -> list[Problem]:
    """Each refused option in ``options`` with why (what :meth:`Engine.check` answers).

    ``engine`` narrows the check to that engine's options; None checks them all.
    """
    found: list[Problem] = []
    for key, value in options.items():
        entry = REFUSED.get((key, _normal(key, value)))
        if entry is None:
            continue
        engines, why = entry
        if engine is None or engine in engines:
            found.append(Problem(key, f"is refused: {why}"))
    return found


def refusals(options: Mapping[str, object], engine: str | None = None) -> list[str]:
    """Why each option in ``options`` is refused (``"option api='beta' is refused: ..."``), as
    an engine's settings error says it; empty when all are fine."""
    return [
        f"option {p.option}={options[p.option]!r} {p.message}" for p in problems(options, engine)
    ]
