"""Engines by name: the one place the gateway and dial plans learn which engines exist."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.base import Engine, Problem


def _echo() -> type[Engine]:
    from engine.echo import EchoEngine

    return EchoEngine


def _tone() -> type[Engine]:
    from engine.tone import ToneEngine

    return ToneEngine


def _local() -> type[Engine]:
    from engine.local import LocalEngine

    return LocalEngine


def _openai() -> type[Engine]:
    from engine.remote.openai import OpenAIRealtimeEngine

    return OpenAIRealtimeEngine


def _gemini() -> type[Engine]:
    from engine.remote.gemini import GeminiLiveEngine

    return GeminiLiveEngine


def _moshi() -> type[Engine]:
    from engine.remote.moshi import MoshiEngine

    return MoshiEngine


#: Name -> the engine's class. Imports are deferred so that naming an engine costs nothing
#: until it is used (model-backed engines load heavy libraries).
ENGINES: Mapping[str, Callable[[], type[Engine]]] = {
    "local": _local,
    "echo": _echo,
    "tone": _tone,
    "openai": _openai,
    "gemini": _gemini,
    "moshi": _moshi,
}

ENGINE_NAMES = frozenset(ENGINES)


def engine_class(name: str) -> type[Engine]:
    """The class of the engine called ``name``; ValueError names the known ones otherwise."""
    try:
        load = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}") from None
    return load()


def create_engine(name: str, **options: Any) -> Engine:
    """Build the engine called ``name``; ValueError names the known ones otherwise."""
    return engine_class(name)(**options)


def check_settings(name: str | None, settings: Mapping[str, str]) -> list[Problem]:
    """What the engine called ``name`` would refuse in a route's ``settings`` (see
    :meth:`Engine.check`). None, a route that takes the gateway's default engine, asks every
    engine, since any of them may be the default where the plan runs. An unknown name has no
    problems here: naming it is the problem, which the dial plan reports on its own."""
    names = sorted(ENGINES) if name is None else [name] if name in ENGINES else []
    return [problem for each in names for problem in engine_class(each).check(settings)]
