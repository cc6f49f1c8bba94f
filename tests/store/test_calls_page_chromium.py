"""The /calls page as a browser renders it: Debian's headless Chromium loads it from a running
gateway, and both the DOM it built and its screenshot are checked.

The screenshot stays in the test's temporary directory (pytest keeps the last runs), and a
failure names its path."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_calls_page import seeded
from test_two_gateways import LISTENING, stop

pytest.importorskip("PIL", reason="pillow (the test extra) reads the screenshot")

from PIL import Image  # noqa: E402


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    return found


def browse(binary: str, url: str, shot: Path) -> str:
    """The DOM after load, and a 1400x900 screenshot into ``shot``."""
    flags = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--disable-extensions", f"--user-data-dir={shot.parent / 'prof'}",
             "--window-size=1400,900"]  # fmt: skip
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120,
                   check=True)  # fmt: skip
    return dom


async def test_calls_page_renders_in_chromium(tmp_path: Path) -> None:
    binary = chromium()
    settings, ids = seeded(tmp_path)
    env = {
        **os.environ,
        "OVERTALK_STORE": settings.store,
        "OVERTALK_AUDIO_STORE": settings.audio_store,
        "OVERTALK_SPOOL_DIR": settings.spool_dir,
    }
    env.pop("OVERTALK_ADMIN_TOKEN", None)  # loopback only: the browser runs here
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve", "--port", "0", "--engine", "echo",
            stderr=out, env=env,
        )  # fmt: skip
    try:
        url = ""
        for _ in range(600):
            found = LISTENING.search(log.read_text())
            if found:
                url = found.group(1)
                break
            assert proc.returncode is None, log.read_text()
            await asyncio.sleep(0.1)
        assert url, log.read_text()
        shot = tmp_path / "calls.png"
        dom = await asyncio.to_thread(browse, binary, url + "/calls", shot)
        timeline = await asyncio.to_thread(browse, binary, f"{url}/calls/{ids[0]}",
                                           tmp_path / "timeline.png")  # fmt: skip
    finally:
        await stop(proc)
    assert "<h1>Calls</h1>" in dom
    assert all(f'href="/calls/{cid}"' in dom for cid in ids), dom[:2000]
    assert dom.count("<audio") == 1 and "sales" in dom and "support" in dom
    assert f"call {ids[0]}" in timeline and "<svg" in timeline
    assert f'src="/calls/{ids[0]}/audio"' in timeline
    image = Image.open(shot).convert("L")
    assert image.size == (1400, 900), f"screenshot {shot}"

    # Dark pixels (text) where the heading and the two rows are; a blank or error page has none.
    def ink(box: tuple[int, int, int, int]) -> int:
        return sum(image.crop(box).histogram()[:110])

    assert ink((0, 0, 400, 80)) > 200, f"no heading in the screenshot {shot}"
    assert ink((0, 110, 1400, 220)) > 1000, f"no table rows in the screenshot {shot}"
    assert ink((0, 400, 1400, 900)) < 50, f"more than two calls drawn? {shot}"
