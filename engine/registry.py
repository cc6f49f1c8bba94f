"""Engines by name: the one place the gateway and dial plans learn which engines exist."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.base import Engine


def _echo(**options: Any) -> Engine:
    from engine.echo import EchoEngine

    return EchoEngine(**options)


def _tone(**options: Any) -> Engine:
    from engine.tone import ToneEngine

    return ToneEngine(**options)


def _local(**options: Any) -> Engine:
    from engine.local import LocalEngine

    return LocalEngine(**options)


def _openai(**options: Any) -> Engine:
    from engine.remote.openai import OpenAIRealtimeEngine

    return OpenAIRealtimeEngine(**options)


def _gemini(**options: Any) -> Engine:
    from engine.remote.gemini import GeminiLiveEngine

    return GeminiLiveEngine(**options)


def _moshi(**options: Any) -> Engine:
    from engine.remote.moshi import MoshiEngine

    return MoshiEngine(**options)


#: Name -> factory taking the engine's options. Imports are deferred so that naming an engine
#: costs nothing until it is used (model-backed engines load heavy libraries).
ENGINES: Mapping[str, Callable[..., Engine]] = {
    "local": _local,
    "echo": _echo,
    "tone": _tone,
    "openai": _openai,
    "gemini": _gemini,
    "moshi": _moshi,
}

ENGINE_NAMES = frozenset(ENGINES)


def create_engine(name: str, **options: Any) -> Engine:
    """Build the engine called ``name``; ValueError names the known ones otherwise."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}") from None
    return factory(**options)
