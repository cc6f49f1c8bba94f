"""The engines a gateway process uses, created on first use and closed at shut-down.

A dial plan may send calls to several engines; each is built once (models load once) and then
serves every call routed to it. ``engine.registry`` says which engines exist and how each judges
a route's settings; this set holds the instances one process has built, and closes them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from engine.base import Engine, EngineUnavailable
from engine.registry import ENGINE_NAMES, create_engine

log = logging.getLogger("overtalk.engines")


class EngineSet:
    """Engines by name; ``default`` serves calls that name none."""

    def __init__(
        self,
        default: str,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        prebuilt: Engine | None = None,
    ) -> None:
        self.default = default
        self._options = dict(options or {})
        self._engines: dict[str, Engine] = {}
        if prebuilt is not None:
            self._engines[default] = prebuilt

    def available(self, name: str) -> bool:
        """Whether ``name`` can serve calls: a known engine (built or buildable)."""
        return name in self._engines or name in ENGINE_NAMES

    def get(self, name: str | None = None) -> Engine:
        """The engine called ``name`` (default if None); EngineUnavailable if it cannot be had."""
        name = name or self.default
        engine = self._engines.get(name)
        if engine is None:
            try:
                engine = create_engine(name, **dict(self._options.get(name, {})))
            except Exception as exc:  # a missing model or library: this engine, not the gateway
                raise EngineUnavailable(f"engine {name!r} cannot start: {exc}") from exc
            self._engines[name] = engine
            log.info("= engine %s ready", name)
        return engine

    async def aclose(self) -> None:
        for engine in self._engines.values():
            try:
                await engine.aclose()
            except Exception as exc:  # shut-down continues for the others
                log.warning("x engine %s did not close cleanly: %s", engine.name, exc)
