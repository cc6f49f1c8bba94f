"""The import contract (README, "How it works"), read from the source: who may import what.

- Protocol cores are sans-I/O: they import no ``asyncio``, ``socket``, ``selectors``,
  ``threading`` or ``time`` (time is passed in), so they run and are tested without a loop.
- ``engine/`` never imports ``gateway/``: an engine knows nothing of carriers or calls.
- A carrier never imports another carrier.
- The dial plan reaches engines only through their interface (``engine.base``,
  ``engine.registry``), never an engine's internals.

Every ``import`` counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The sans-I/O cores: wire protocols, their state machines, codecs and pure helpers.
PURE = (
    "engine/remote/errors.py",
    "engine/remote/floor.py",
    "engine/vocal.py",
    "engine/remote/gemini_protocol.py",
    "engine/remote/keypad.py",
    "engine/remote/moshi_protocol.py",
    "engine/remote/ogg.py",
    "engine/remote/openai_protocol.py",
    "engine/remote/output_timeline.py",
    "engine/remote/refused.py",
    "engine/remote/tools.py",
    "gateway/audio/dtmf.py",
    "gateway/audio/fir.py",
    "gateway/audio/g711.py",
    "gateway/audio/resample.py",
    "gateway/call/commands.py",
    "gateway/call/holds.py",
    "gateway/call/labels.py",
    "gateway/call/ledger.py",
    "gateway/call/playout.py",
    "gateway/call/session.py",
    "gateway/carriers/exotel/stream.py",
    "gateway/carriers/plivo/answer.py",
    "gateway/carriers/plivo/signature.py",
    "gateway/carriers/plivo/stream.py",
    "gateway/carriers/sip/auth.py",
    "gateway/carriers/sip/deadlines.py",
    "gateway/carriers/sip/dialogs.py",
    "gateway/carriers/sip/digest.py",
    "gateway/carriers/sip/errors.py",
    "gateway/carriers/sip/headers.py",
    "gateway/carriers/sip/jitter.py",
    "gateway/carriers/sip/media.py",
    "gateway/carriers/sip/message.py",
    "gateway/carriers/sip/refer.py",
    "gateway/carriers/sip/registration.py",
    "gateway/carriers/sip/rtp.py",
    "gateway/carriers/sip/sdp.py",
    "gateway/carriers/sip/transaction.py",
    "gateway/carriers/sip/ua.py",
    "gateway/carriers/telnyx/signature.py",
    "gateway/carriers/telnyx/stream.py",
    "gateway/carriers/telnyx/texml.py",
    "gateway/carriers/twilio/signature.py",
    "gateway/carriers/twilio/stream.py",
    "gateway/carriers/twilio/stream_token.py",
    "gateway/carriers/twilio/twiml.py",
    "gateway/carriers/twilio/voicemail.py",
    "gateway/carriers/webrtc/access.py",
    "gateway/carriers/webrtc/errors.py",
    "gateway/carriers/webrtc/line.py",
    "gateway/carriers/webrtc/playback.py",
    "gateway/carriers/webrtc/signalling.py",
    "gateway/carriers/vonage/ncco.py",
    "gateway/carriers/vonage/signature.py",
    "gateway/carriers/vonage/stream.py",
    "gateway/dialplan/router.py",
    "gateway/dialplan/timing.py",
    "gateway/histogram.py",
    "gateway/ids.py",
    "gateway/streams/codec.py",
    "gateway/streams/dtmf.py",
    "gateway/streams/events.py",
    "gateway/streams/heard.py",
    "gateway/streams/wire.py",
)

IO_MODULES = frozenset({"asyncio", "selectors", "socket", "threading", "time"})
CARRIERS = tuple(p.name for p in (ROOT / "gateway" / "carriers").iterdir() if p.is_dir())
#: ``engine.files`` is the bounded file reader that dial plans and flows share (not an engine).
ENGINE_INTERFACE = frozenset({"engine", "engine.base", "engine.files", "engine.registry"})


def imported(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_reader_sees_imports_inside_functions_and_ignores_relatives(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import os.path\nfrom datetime import time\nfrom . import x\n"
        "def f():\n    import asyncio\n    from time import monotonic\n"
    )
    assert imported(module) == {"os.path", "datetime", "asyncio", "time"}


@pytest.mark.parametrize("name", PURE)
def test_protocol_cores_do_no_io_and_read_no_clock(name):
    found = {n for n in imported(ROOT / name) if n.split(".")[0] in IO_MODULES}
    assert not found, f"{name} imports {sorted(found)}: pass time in, leave I/O to the adapter"


def test_engines_never_import_the_gateway():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imported(path) if under(n, "gateway"))
        for path in sources("engine")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_carriers_never_import_each_other():
    assert len(CARRIERS) >= 2
    offenders: dict[str, list[str]] = {}
    for carrier in CARRIERS:
        others = [f"gateway.carriers.{c}" for c in CARRIERS if c != carrier]
        for path in sources(f"gateway/carriers/{carrier}"):
            bad = sorted(n for n in imported(path) if any(under(n, o) for o in others))
            if bad:
                offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_the_dial_plan_reaches_engines_only_through_their_interface():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n for n in imported(path) if under(n, "engine") and n not in ENGINE_INTERFACE
        )
        for path in sources("gateway/dialplan")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_simulator_meets_the_gateway_on_the_wire_only():
    """The simulated carriers import nothing of the gateway but the simulator (DESIGN.md 1)."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n for n in imported(path) if under(n, "gateway") and not under(n, "gateway.sim")
        )
        for path in sources("gateway/sim")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
