"""The embedded duplex engine: Silero VAD, Whisper (CTranslate2), turn-taking, flows, Piper.

Runs on CPU with nothing downloaded: every model comes from an installed package. See
:mod:`engine.local.engine` for the options, :mod:`engine.local.controller` for turn-taking and
:mod:`engine.local.flow` for the flow format.
"""

from engine.local.engine import LocalEngine, default_flow_path

__all__ = ["LocalEngine", "default_flow_path"]
