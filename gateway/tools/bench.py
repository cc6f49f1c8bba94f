"""``overtalk bench``: how many calls one gateway process carries, and what it adds per frame.

Three measurements, each printed as a table:

1. **On the wire.** A gateway process (``overtalk serve``, echo engine in stream mode at
   8 kHz, so every caller frame comes straight back) and a load generator in this process,
   N concurrent Twilio-shaped calls sending a 20 ms ``media`` frame on an absolute schedule and
   echoing marks. Each frame carries its index, so the generator measures every frame's echo
   delay (gateway round trip); the gateway's CPU time over the steady window gives CPU per
   call. A run is real-time when p99 echo delay < 20 ms. The generator shares the machine, so
   its own send lateness is printed too: when it is late the figures are the generator's limit,
   not the gateway's. ``--carrier telnyx,plivo,vonage,exotel`` runs the same load over those
   carriers' media-stream wires on the same server, after Twilio's, side by side.
2. **Per frame, in process.** The gateway's own work for one frame each way (JSON, base64,
   G.711, resampling 8 <-> 16 kHz, framing, pacing), timed over many frames of many sessions.
3. **Interrupt -> clear.** Sessions mid-speech are interrupted; the time from the engine's
   ``Interrupt`` being handled to ``clear`` written, and the stale frames written after it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pybase64

from gateway.audio.g711 import ulaw_decode, ulaw_encode
from gateway.carriers.twilio.stream_token import TOKEN_PARAMETER, StreamTokens

SID = "MZ" + "b" * 32
#: The stream-token key the benchmarked gateway is started with, so calls can present tokens.
STREAM_SECRET = "overtalk-bench-stream-secret"
_TOKENS = StreamTokens(STREAM_SECRET.encode())
_SERVER_ENV = {**os.environ, "OVERTALK_STREAM_SECRET": STREAM_SECRET}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


# -- 1. on the wire ----------------------------------------------------------------------------


def _frame_payload(index: int) -> bytes:
    """160 mu-law bytes whose first four carry ``index`` in base 126.

    Codes 0x01-0x7E survive the gateway's decode/encode unchanged (only 0x7F, negative zero,
    comes back as 0xFF), so the echoed frame names itself.
    """
    digits = bytes((index // 126**k) % 126 + 1 for k in range(4))
    return digits + b"\x55" * 156


@dataclass
class _WireStats:
    echo_delays: list[float] = field(default_factory=list)
    send_lateness: list[float] = field(default_factory=list)
    frames_sent: int = 0
    frames_back: int = 0
    failures: int = 0


@dataclass(frozen=True)
class _Dialect:
    """One carrier's media-stream wire, as the load generator speaks it: the websocket path,
    the opening messages (with a valid stream token), how a caller frame is framed, where a
    gateway frame's audio is, how a mark is echoed, and the closing message."""

    name: str
    path: Callable[[int], str]
    opening: Callable[[int], list[str]]
    media: Callable[[int, int], tuple[str, str]]  # (call, frame index) -> payload's prefix, suffix
    audio_event: str
    payload: Callable[[dict[str, object]], object]
    mark_event: str
    echo: Callable[[dict[str, object], int], str]
    stop: Callable[[int], str | None]
    #: The wire's audio from the caller's 8 kHz mu-law, and back (L16 carriers transcode).
    encode: Callable[[bytes], bytes] = bytes
    decode: Callable[[bytes], bytes] = bytes
    #: Audio travels as binary websocket frames both ways (Vonage), not base64 in JSON.
    binary: bool = False
    #: The JSON field naming a text message's kind (Vonage's commands say ``action``).
    kind: str = "event"


def _telnyx_ids(n: int) -> tuple[str, str]:
    return f"v3:bench{n:032d}", f"00000000-0000-4000-8000-{n:012d}"


def _plivo_ids(n: int) -> tuple[str, str]:
    return f"10000000-0000-4000-8000-{n:012d}", f"20000000-0000-4000-8000-{n:012d}"


def _token(call_id: str) -> str:
    return _TOKENS.issue(call_id, {}, time.time())


def _dialects() -> dict[str, _Dialect]:
    def media_payload(msg: dict[str, object]) -> object:
        media = msg.get("media")
        return media.get("payload") if isinstance(media, dict) else None

    twilio = _Dialect(
        "twilio",
        lambda n: "/twilio/media",
        lambda n: [
            orjson.dumps(
                {
                    "event": "start",
                    "streamSid": SID,
                    "start": {
                        "streamSid": SID,
                        "callSid": f"CA{n:032d}",
                        "customParameters": {TOKEN_PARAMETER: _token(f"CA{n:032d}")},
                    },
                }
            ).decode()
        ],
        lambda n, i: (
            '{"event":"media","streamSid":"'
            + SID
            + '","media":{"timestamp":"'
            + str(i * 20)
            + '","payload":"',
            '"}}',
        ),  # fmt: skip
        "media",
        media_payload,
        "mark",
        lambda msg, n: orjson.dumps(msg).decode(),
        lambda n: '{"event":"stop","streamSid":"' + SID + '","stop":{}}',
    )
    telnyx = _Dialect(
        "telnyx",
        lambda n: "/telnyx/media",
        lambda n: [
            orjson.dumps(
                {
                    "event": "start",
                    "stream_id": _telnyx_ids(n)[1],
                    "start": {
                        "call_control_id": _telnyx_ids(n)[0],
                        "custom_parameters": {TOKEN_PARAMETER: _token(_telnyx_ids(n)[0])},
                        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
                    },
                }
            ).decode()
        ],
        lambda n, i: (
            '{"event":"media","stream_id":"'
            + _telnyx_ids(n)[1]
            + '","media":{"track":"inbound","payload":"',
            '"}}',
        ),  # fmt: skip
        "media",
        media_payload,
        "mark",
        lambda msg, n: orjson.dumps(
            {"event": "mark", "stream_id": _telnyx_ids(n)[1], "mark": msg.get("mark")}
        ).decode(),
        lambda n: '{"event":"stop","stream_id":"' + _telnyx_ids(n)[1] + '"}',
    )
    plivo = _Dialect(
        "plivo",
        lambda n: f"/plivo/media?{TOKEN_PARAMETER}={_token(_plivo_ids(n)[0])}",
        lambda n: [
            orjson.dumps(
                {
                    "event": "start",
                    "sequenceNumber": 0,
                    "start": {
                        "callId": _plivo_ids(n)[0],
                        "streamId": _plivo_ids(n)[1],
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                    },
                }
            ).decode()
        ],
        lambda n, i: (
            '{"event":"media","streamId":"'
            + _plivo_ids(n)[1]
            + '","media":{"track":"inbound","payload":"',
            '"}}',
        ),  # fmt: skip
        "playAudio",
        media_payload,
        "checkpoint",
        lambda msg, n: orjson.dumps(
            {"event": "playedStream", "streamId": _plivo_ids(n)[1], "name": msg.get("name")}
        ).decode(),
        lambda n: None,  # Plivo just closes the socket
    )
    vonage = _Dialect(
        "vonage",
        lambda n: "/vonage/media",
        lambda n: [
            orjson.dumps(
                {
                    "event": "websocket:connected",
                    "content-type": "audio/l16;rate=8000",
                    "call_uuid": _vonage_id(n),
                    TOKEN_PARAMETER: _token(_vonage_id(n)),
                }
            ).decode()
        ],
        lambda n, i: ("", ""),  # binary frames
        "",
        media_payload,
        "notify",
        lambda msg, n: orjson.dumps(
            {"event": "websocket:notify", "payload": msg.get("payload")}
        ).decode(),
        lambda n: None,  # Vonage just closes the socket
        encode=ulaw_decode,
        decode=ulaw_encode,
        binary=True,
        kind="action",
    )
    exotel = _Dialect(
        "exotel",
        lambda n: "/exotel/media",
        lambda n: [
            orjson.dumps(
                {
                    "event": "start",
                    "stream_sid": f"s{n:031d}",
                    "start": {
                        "stream_sid": f"s{n:031d}",
                        "call_sid": f"c{n:031d}",
                        "custom_parameters": {TOKEN_PARAMETER: _token(f"c{n:031d}")},
                        "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000"},
                    },
                }
            ).decode()
        ],
        lambda n, i: (
            '{"event":"media","stream_sid":"s' + f"{n:031d}" + '","media":{"payload":"',
            '"}}',
        ),  # fmt: skip
        "media",
        media_payload,
        "mark",
        lambda msg, n: orjson.dumps(
            {"event": "mark", "stream_sid": f"s{n:031d}", "mark": msg.get("mark")}
        ).decode(),
        lambda n: '{"event":"stop","stream_sid":"s' + f"{n:031d}" + '","stop":{}}',
        encode=ulaw_decode,
        decode=ulaw_encode,
    )
    return {d.name: d for d in (twilio, telnyx, plivo, vonage, exotel)}


def _vonage_id(n: int) -> str:
    return f"30000000-0000-4000-8000-{n:012d}"


#: The carriers ``--carrier`` can name.
CARRIERS = ("twilio", "telnyx", "plivo", "vonage", "exotel")


async def _one_call(
    base: str, n: int, seconds: float, t0: float, stats: _WireStats, dialect: _Dialect
) -> None:
    from websockets.asyncio.client import connect

    frames = int(seconds / 0.02)
    payloads = [_frame_payload(i) for i in range(frames)]
    index_of = {p[:4]: i for i, p in enumerate(payloads)}
    sent_at = [0.0] * frames
    clock = time.perf_counter
    try:
        async with connect(base + dialect.path(n), max_queue=None, compression=None) as ws:
            for message in dialect.opening(n):
                await ws.send(message)

            def matched(payload: bytes, now: float) -> None:
                # A server may send several frames in one message: match each.
                for at in range(0, len(payload) - 3, 160):
                    i = index_of.get(payload[at : at + 4])
                    if i is not None:
                        stats.echo_delays.append(now - sent_at[i])
                        stats.frames_back += 1

            async def reader() -> None:
                async for raw in ws:
                    now = clock()
                    if isinstance(raw, bytes) and dialect.binary:
                        matched(dialect.decode(raw), now)
                        continue
                    msg = orjson.loads(raw)
                    event = msg.get(dialect.kind)
                    if event == dialect.audio_event:
                        matched(dialect.decode(pybase64.b64decode(dialect.payload(msg))), now)
                    elif event == dialect.mark_event:  # played out at once by this caller
                        await ws.send(dialect.echo(msg, n))

            task = asyncio.create_task(reader())
            for i, payload in enumerate(payloads):
                due = t0 + i * 0.02
                delay = due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = clock()
                stats.send_lateness.append(max(0.0, now - due))
                sent_at[i] = now
                wire = dialect.encode(payload)
                if dialect.binary:
                    await ws.send(wire)
                else:
                    prefix, suffix = dialect.media(n, i)
                    await ws.send(prefix + pybase64.b64encode_as_string(wire) + suffix)
                stats.frames_sent += 1
            await asyncio.sleep(0.3)
            stop = dialect.stop(n)
            if stop is not None:
                await ws.send(stop)
            task.cancel()
    except Exception:  # noqa: BLE001 - a failed call is a result, counted
        stats.failures += 1


def _overtalk_command(port: int, workdir: Path) -> list[str]:
    config = workdir / "bench.toml"
    config.write_text(
        '[gateway]\nengine = "echo"\nlog_level = "warning"\n'
        '[gateway.engine_options]\nmode = "stream"\nrate = 8000\n'
    )
    return [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
            "--port", str(port), "--log-level", "warning"]  # fmt: skip


PIPECAT_BOT = Path(__file__).resolve().parents[2] / "tests" / "bench" / "pipecat_echo.py"


def _pipecat_command(python: str) -> Callable[[int, Path], list[str]]:
    def command(port: int, workdir: Path) -> list[str]:
        return [python, str(PIPECAT_BOT), "--port", str(port)]

    return command


def _pin(pid: int, cpus: set[int]) -> None:
    """Server on one core, load generator on the other (DESIGN.md's method), where allowed."""
    try:
        os.sched_setaffinity(pid, cpus)
    except (AttributeError, OSError):
        pass


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wire_run(
    url: str, calls: int, seconds: float, pid: int, dialect: _Dialect
) -> dict[str, float]:
    import psutil

    stats = _WireStats()
    proc = psutil.Process(pid)
    t0 = time.perf_counter() + 0.5 + calls * 0.002
    tasks = [
        asyncio.create_task(_one_call(url, n, seconds, t0, stats, dialect)) for n in range(calls)
    ]
    # Measure the server's CPU over the steady middle of the run.
    await asyncio.sleep(max(0.0, t0 - time.perf_counter()) + seconds * 0.2)
    cpu0, w0 = proc.cpu_times(), time.perf_counter()
    await asyncio.sleep(seconds * 0.6)
    cpu1, w1 = proc.cpu_times(), time.perf_counter()
    rss = proc.memory_info().rss
    await asyncio.gather(*tasks)
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (w1 - w0)
    delays = [d * 1000 for d in stats.echo_delays]
    late = [d * 1000 for d in stats.send_lateness]
    return {
        "calls": calls,
        "echo_p50_ms": _pct(delays, 50),
        "echo_p99_ms": _pct(delays, 99),
        "frames_back_pct": 100.0 * stats.frames_back / max(1, stats.frames_sent),
        "gen_late_p99_ms": _pct(late, 99),
        "server_cpu_pct": cpu * 100,
        "cpu_per_call_pct": cpu * 100 / calls,
        "rss_mib": rss / 2**20,
        "failed_calls": stats.failures,
        "realtime": float(_pct(delays, 99) < 20 and stats.failures == 0),
    }


async def _wire(
    calls_list: list[int],
    seconds: float,
    command: Callable[[int, Path], list[str]],
    carriers: tuple[str, ...] = (),
) -> list[dict[str, float]]:
    """Each count of ``calls_list`` over Twilio's wire; then, on the same server, over each
    of ``carriers`` (rows tagged with their carrier)."""
    import httpx

    port = _free_port()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    with tempfile.TemporaryDirectory() as tmp:
        argv = command(port, Path(tmp))
        # The server's log goes to a file: an undrained pipe would stall a chatty server.
        log_path = Path(tmp) / "server.log"
        log_file = log_path.open("wb")
        server = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=log_file, env=_SERVER_ENV
        )
        if len(cpus) >= 2:
            _pin(server.pid, {cpus[0]})
            _pin(0, {cpus[1]})
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(400):
                    try:
                        await client.get(f"http://127.0.0.1:{port}/healthz")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            dialects = _dialects()
            url = f"ws://127.0.0.1:{port}"
            rows = [
                await _wire_run(url, n, seconds, server.pid, dialects["twilio"]) for n in calls_list
            ]
            for carrier in carriers:
                for n in calls_list:
                    row = await _wire_run(url, n, seconds, server.pid, dialects[carrier])
                    rows.append({"carrier": carrier, **row})  # type: ignore[dict-item]
            return rows
        finally:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), 15)
            except TimeoutError:
                server.kill()
                await server.wait()
                print(f"{argv[0]} did not stop within 15 s of SIGTERM", file=sys.stderr)
            log_file.close()
            err = log_path.read_text(errors="replace")
            if "Traceback" in err or "ERROR" in err:
                print("server stderr:\n" + err[-3000:], file=sys.stderr)
            if len(cpus) >= 2:
                _pin(0, set(cpus))


# -- soak ----------------------------------------------------------------------------------

SHARED_SPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech"


def _caller_frames(seconds: float) -> list[bytes]:
    """What a SIP soak caller says: a real utterance from the shared recordings (so the local
    engine recognises and answers), then silence, ``seconds`` in all; a tone without them."""
    from gateway.audio.g711 import ulaw_encode

    count = int(seconds / 0.02)
    path = SHARED_SPEECH / "pocketsphinx" / "cards_001.wav"
    if path.is_file():
        import soundfile
        import soxr

        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
        pcm = soxr.resample(audio.mean(axis=1), rate, 8000)
    else:
        pcm = 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    ulaw = ulaw_encode((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    ulaw += b"\xff" * max(0, count * 160 - len(ulaw))
    return [ulaw[i : i + 160] for i in range(0, count * 160, 160)]


def _soak_command(port: int, workdir: Path, engine: str) -> list[str]:
    options = '[gateway.engine_options]\nmode = "stream"\nrate = 8000\n' if engine == "echo" else ""
    config = workdir / "soak.toml"
    config.write_text(f'[gateway]\nengine = "{engine}"\nlog_level = "warning"\n{options}')
    return [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
            "--port", str(port), "--log-level", "warning", "--sip", "--sip-host", "127.0.0.1",
            "--sip-port", str(_free_port()), "--rtp-ports", "31000-32999"]  # fmt: skip


@dataclass
class _SoakCounts:
    sip: int = 0
    twilio: int = 0
    failed: int = 0


async def _soak(
    calls: int,
    minutes: float,
    call_seconds: float,
    *,
    engine: str = "echo",
    carriers: tuple[str, ...] = ("sip", "twilio"),
    max_calls: int = 0,
    sample_s: float = 10.0,
    progress: bool = False,
) -> list[dict[str, float]]:
    """Keep ``calls`` calls up (each ``call_seconds`` long, replaced when it ends; slots take
    turns over ``carriers``) for ``minutes`` or ``max_calls`` calls; sample the gateway's
    memory, file descriptors, threads and tasks every ``sample_s``."""
    import httpx
    import psutil

    from gateway.tools.sipcaller import SipCaller

    port = _free_port()
    frames = _caller_frames(call_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        argv = _soak_command(port, Path(tmp), engine)
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log_file:
            server = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=log_file, env=_SERVER_ENV
            )
        proc = psutil.Process(server.pid)
        sip_port = int(argv[argv.index("--sip-port") + 1])
        url = f"ws://127.0.0.1:{port}/twilio/media"
        stats = _WireStats()
        counts = _SoakCounts()
        samples: list[dict[str, float]] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + minutes * 60

        def more() -> bool:
            done = counts.sip + counts.twilio
            return loop.time() < end and (not max_calls or done < max_calls)

        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for _ in range(1200):  # the local engine loads its models first
                    try:
                        await http.get("/healthz")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)

                async def slot(n: int) -> None:
                    k = 0
                    await asyncio.sleep(n * call_seconds / max(1, calls))  # staggered
                    while more():
                        carrier = carriers[(n + k) % len(carriers)]
                        if carrier == "sip":
                            try:
                                result = await SipCaller(("127.0.0.1", sip_port)).call(frames)
                                counts.failed += result.status != 200
                            except (TimeoutError, OSError, ValueError):
                                counts.failed += 1
                            counts.sip += 1
                        else:
                            failures = stats.failures
                            t0 = time.perf_counter() + 0.05
                            await _one_call(url, n * 100000 + k, call_seconds, t0, stats)
                            counts.failed += stats.failures - failures
                            counts.twilio += 1
                        k += 1

                slots = [asyncio.create_task(slot(n)) for n in range(calls)]
                started = loop.time()
                while not all(task.done() for task in slots):
                    await asyncio.sleep(sample_s)
                    health = (await http.get("/healthz")).json()
                    samples.append(
                        {
                            "minute": (loop.time() - started) / 60,
                            "calls": counts.sip + counts.twilio,
                            "sip": counts.sip,
                            "twilio": counts.twilio,
                            "failed": counts.failed,
                            "rss_mib": proc.memory_info().rss / 2**20,
                            "fds": proc.num_fds(),
                            "threads": proc.num_threads(),  # each may hold a malloc arena
                            "tasks": health["tasks"],
                            "active_calls": health["active_calls"],
                        }
                    )
                    if progress:  # a 30-minute run shows its curve as it goes
                        table = _table(samples).splitlines()
                        print("\n".join(table if len(samples) == 1 else table[-1:]), flush=True)
                await asyncio.gather(*slots)
        finally:
            server.terminate()
            await server.wait()
            err = log_path.read_text(errors="replace")
            if "Traceback" in err:
                print("server stderr:\n" + err[-3000:], file=sys.stderr)
    return samples


def _growth(samples: list[dict[str, float]], key: str) -> float:
    """Least-squares slope of ``key`` per hour over the second half (after warm-up)."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return float("nan")
    x = np.array([s["minute"] for s in half]) / 60
    y = np.array([s[key] for s in half])
    return float(np.polyfit(x, y, 1)[0])


def flatness(samples: list[dict[str, float]], warmup: float = 0.2) -> dict[str, float]:
    """RSS after warm-up (the first ``warmup`` share of the samples): the first value, the
    highest, the last, and the highest as a rise over the first, in per cent."""
    rest = samples[max(1, int(len(samples) * warmup)) :] if len(samples) > 1 else samples
    if not rest:
        return {}
    base = rest[0]["rss_mib"]
    peak = max(s["rss_mib"] for s in rest)
    return {
        "after_warmup_mib": base,
        "max_mib": peak,
        "last_mib": rest[-1]["rss_mib"],
        "rise_pct": 100.0 * (peak - base) / base,
    }


# -- 2. per frame, in process ------------------------------------------------------------------


def _inprocess(sessions: int = 100, frames: int = 500) -> dict[str, float]:
    from engine.base import Audio, EngineSession
    from gateway.call.ledger import CallLedger
    from gateway.call.playout import Playout
    from gateway.call.runner import CallRunner
    from gateway.call.session import CallSession
    from gateway.carriers.twilio.stream import AudioChunk, TwilioStream

    class Sink(EngineSession):
        def send_audio(self, pcm: bytes) -> None:
            pass

    class Transport:
        def __init__(self, stream: TwilioStream) -> None:
            self.stream = stream
            self.send_frame = stream.send_audio
            self.send_mark = stream.send_mark
            self.send_clear = stream.send_clear

        def flush(self) -> None:
            pass

        async def hangup(self) -> None:
            pass

        async def transfer(self, target: str) -> None:
            pass

    async def run() -> dict[str, float]:
        pairs = []
        for n in range(sessions):
            stream = TwilioStream(max_rate=1e9, burst=1e9)
            stream.receive_message(
                orjson.dumps(
                    {"event": "start", "start": {"streamSid": SID, "callSid": f"CA{n:032d}"}}
                ).decode(),
                0.0,
            )
            stream.events_received()
            session = CallSession(
                Sink(16000), CallLedger(f"CA{n}", "bench"), origin=time.monotonic(),
                playout=Playout(lead=1e6),
            )  # fmt: skip
            pairs.append((stream, CallRunner(session, Transport(stream))))
        inbound = (
            '{"event":"media","sequenceNumber":"3","streamSid":"' + SID + '","media":{"track":'
            '"inbound","chunk":"1","timestamp":"0","payload":"'
            + pybase64.b64encode_as_string(bytes(range(1, 161)))
            + '"}}'
        )
        pcm16k = (np.sin(np.arange(320) / 7) * 9000).astype(np.int16).tobytes()
        t_in: list[float] = []
        t_out: list[float] = []
        clock = time.perf_counter_ns
        for _ in range(frames):
            for stream, runner in pairs:
                a = clock()
                stream.receive_message(inbound, 0.0)
                for event in stream.events_received():
                    if type(event) is AudioChunk:
                        runner.receive_audio(event.payload, event.timestamp)
                b = clock()
                runner.engine_event(Audio(pcm16k))
                stream.messages_to_send()
                c = clock()
                t_in.append((b - a) / 1000)
                t_out.append((c - b) / 1000)
        for _, runner in pairs:
            await runner.close("bench")
        return {
            "sessions": sessions,
            "in_p50_us": _pct(t_in, 50),
            "in_p99_us": _pct(t_in, 99),
            "out_p50_us": _pct(t_out, 50),
            "out_p99_us": _pct(t_out, 99),
        }

    return asyncio.run(run())


# -- 3. interrupt -> clear ---------------------------------------------------------------------


def _interrupts(sessions: int = 100, rounds: int = 20) -> dict[str, float]:
    from engine.base import Audio, EngineSession, Interrupt
    from gateway.call.ledger import CallLedger
    from gateway.call.playout import Playout
    from gateway.call.runner import CallRunner
    from gateway.call.session import CallSession
    from gateway.carriers.twilio.aio import _TwilioTransport
    from gateway.carriers.twilio.stream import TwilioStream

    class Sink(EngineSession):
        def send_audio(self, pcm: bytes) -> None:
            pass

    class Socket:
        """Records what is written after each clear; yields like a real socket write."""

        def __init__(self) -> None:
            self.cleared = False
            self.stale = 0

        async def send_text(self, text: str) -> None:
            # A socket write returns without yielding unless the peer applies backpressure.
            if '"clear"' in text[:20]:
                self.cleared = True
            elif self.cleared and '"0:' in text:
                self.stale += 1  # a generation-0 mark after the clear: stale audio went out

    async def run() -> dict[str, float]:
        speech = (np.sin(np.arange(16000 * 3) / 7) * 9000).astype(np.int16).tobytes()
        latencies: list[float] = []
        stale = 0
        for _ in range(rounds):
            items = []
            for n in range(sessions):
                stream = TwilioStream()
                stream.receive_message(
                    orjson.dumps(
                        {"event": "start", "start": {"streamSid": SID, "callSid": f"CA{n:032d}"}}
                    ).decode(),
                    0.0,
                )
                sock = Socket()
                transport = _TwilioTransport(stream, sock)  # type: ignore[arg-type]
                session = CallSession(
                    Sink(16000), CallLedger(f"CA{n}", "bench"), origin=time.monotonic(),
                    playout=Playout(lead=0.2),
                )  # fmt: skip
                runner = CallRunner(session, transport)
                transport.runner = runner
                items.append((runner, transport, sock, asyncio.create_task(transport.run_writer())))
            for runner, *_ in items:
                runner.engine_event(Audio(speech))
            await asyncio.sleep(0.05)
            # Interrupts arrive spread over time while every other session keeps streaming.
            for runner, *_ in items:
                runner.engine_event(Interrupt())
                await asyncio.sleep(0.0005)
            await asyncio.sleep(0.05)
            for runner, _, sock, task in items:
                latencies.extend(runner.session.ledger.clear_latencies)
                stale += sock.stale
                task.cancel()
                await runner.close("bench")
        ms = [x * 1000 for x in latencies]
        return {
            "sessions": sessions,
            "clears": len(ms),
            "p50_ms": _pct(ms, 50),
            "p99_ms": _pct(ms, 99),
            "stale_frames_after_clear": stale,
        }

    return asyncio.run(run())


# -- the command -------------------------------------------------------------------------------


def _table(rows: list[dict[str, float]]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    lines = [" | ".join(keys), " | ".join("---" for _ in keys)]
    for row in rows:
        lines.append(
            " | ".join(f"{row[k]:.3g}" if isinstance(row[k], float) else str(row[k]) for k in keys)
        )
    return "\n".join(lines)


def _highest_realtime(rows: list[dict[str, float]]) -> int:
    return max((int(row["calls"]) for row in rows if row["realtime"]), default=0)


def main(args: argparse.Namespace) -> int:
    calls = [int(x) for x in str(args.calls).split(",") if x]
    if args.soak:
        carriers = tuple(c for c in args.carriers.split(",") if c)
        print(
            f"Soak: engine {args.engine}, {calls[0]} concurrent calls over "
            f"{'+'.join(carriers)} for up to {args.soak:g} min"
            + (f" or {args.max_calls} calls" if args.max_calls else "")
            + f", each {args.seconds:g} s:",
            flush=True,
        )
        samples = asyncio.run(
            _soak(calls[0], args.soak, args.seconds, engine=args.engine, carriers=carriers,
                  max_calls=args.max_calls, progress=True)
        )  # fmt: skip
        growth = {k: _growth(samples, k) for k in ("rss_mib", "fds", "threads", "tasks")}
        print(
            "\nGrowth per hour over the second half: "
            + ", ".join(f"{k} {v:+.1f}" for k, v in growth.items())
        )
        flat = flatness(samples)
        if flat:
            verdict = "yes" if flat["rise_pct"] <= 10 else "NO"
            print(
                f"RSS after warm-up: {flat['after_warmup_mib']:.0f} MiB, highest "
                f"{flat['max_mib']:.0f} MiB ({flat['rise_pct']:+.1f} %), last "
                f"{flat['last_mib']:.0f} MiB; flat within 10 %: {verdict}"
            )
        return 0
    others = tuple(
        c for c in (getattr(args, "carrier", "") or "").split(",") if c and c != "twilio"
    )
    unknown = sorted(set(others) - set(CARRIERS))
    if unknown:
        print(f"overtalk bench: unknown carrier {', '.join(unknown)}; one of {CARRIERS}")
        return 2
    rows = asyncio.run(_wire(calls, args.seconds, _overtalk_command, others))
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "per_frame_in_process": _inprocess(),
        "interrupt_to_clear": _interrupts(),
        "wire": [row for row in rows if "carrier" not in row],
    }
    if others:
        results["wire_by_carrier"] = [
            {"carrier": "twilio", **row} if "carrier" not in row else row for row in rows
        ]
    if args.pipecat:
        pipecat_calls = [int(x) for x in str(args.pipecat_calls or args.calls).split(",") if x]
        results["pipecat_wire"] = asyncio.run(
            _wire(pipecat_calls, args.seconds, _pipecat_command(args.pipecat))
        )
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return 0
    print("Gateway work per 20 ms frame, in process (microseconds):")
    print(_table([results["per_frame_in_process"]]))  # type: ignore[list-item]
    print("\nEngine Interrupt -> clear written (ms):")
    print(_table([results["interrupt_to_clear"]]))  # type: ignore[list-item]
    print(f"\nOvertalk on the wire: echo engine, {args.seconds:.0f} s calls:")
    print(_table(results["wire"]))  # type: ignore[arg-type]
    if "wire_by_carrier" in results:
        print(f"\nPer carrier on the wire, side by side: echo engine, {args.seconds:.0f} s calls:")
        print(_table(results["wire_by_carrier"]))  # type: ignore[arg-type]
    if args.pipecat:
        print(f"\nPipecat on the wire: Twilio echo bot, {args.seconds:.0f} s calls:")
        print(_table(results["pipecat_wire"]))  # type: ignore[arg-type]
        ours = _highest_realtime(results["wire"])  # type: ignore[arg-type]
        theirs = _highest_realtime(results["pipecat_wire"])  # type: ignore[arg-type]
        ratio = f"{ours / theirs:.1f}x" if theirs else "n/a"
        print(f"\nHighest real-time calls: Overtalk {ours}, Pipecat {theirs} ({ratio})")
    return 0
