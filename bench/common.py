"""Helpers shared by the benchmarks in ``bench/`` (not a benchmark itself).

Importing this module puts ``standalone/`` and ``tests/`` on ``sys.path`` and
decides the TEN host (real runtime or stand-ins), as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "standalone", ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import tenhost  # noqa: E402

tenhost.ensure()

import websockets  # noqa: E402
from gradium_server import LatencyModel, ServerConfig, ServerThread  # noqa: E402
from harness import Rec, Session, named  # noqa: E402

SENTENCES = [
    "Sure, I can help with that.",
    "The weather in Paris is mild today, with light rain in the afternoon.",
    "Your meeting has been moved to three o'clock.",
    "Here is a short summary of what we discussed.",
]


ADDONS = Path(__file__).resolve().parent / "addons"


def install_bench_addon(name: str) -> str:
    """Install the addon package ``bench/addons/<name>`` into the TEN app folder, as
    tman would (TEN loads an addon only as ``ten_packages.extension.<name>``); return
    the addon name to put in a tester's ``set_test_mode_single``."""
    tenhost.install_addon(ADDONS / name, name)
    return name


# ----------------------------------------------------------------- server process
class ServerProcess:
    """The local server in a forked process (its CPU is not this process's); ask it
    for its counters over a pipe.

    Fork before this process starts any thread (the child must not inherit locks)."""

    def __init__(self, config: ServerConfig) -> None:
        ctx = multiprocessing.get_context("fork")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(config, child), daemon=True)
        self._proc.start()
        self.url: str = self._pipe.recv()

    def ask(self, what: str) -> Any:
        self._pipe.send(what)
        return self._pipe.recv()

    def close(self) -> None:
        self._pipe.send("stop")
        self._proc.join(10)


def _serve(config: ServerConfig, pipe) -> None:
    with ServerThread(config) as server:
        pipe.send(server.url)
        while True:
            what = pipe.recv()
            if what == "stop":
                return
            if what == "opened":
                pipe.send(server.connections_opened)
            elif what == "open_times":
                pipe.send([e.t for e in server.events_of("open")])
            elif what == "audio_bytes":  # byte count of every audio message sent
                pipe.send([m.get("audio_bytes", 0) for m in server.sent("audio")])
            elif what == "clear_log":
                server.clear_log()
                pipe.send(None)
            else:
                pipe.send(None)


# ----------------------------------------------------------------------- statistics
def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def describe(
    name: str, values: Sequence[float], target: float | None = None, width: int = 10
) -> str:
    if not values:
        return f"{name:<{width}} n=0"
    line = (
        f"{name:<{width}} n={len(values):<3} p50={statistics.median(values):6.1f}  "
        f"p90={pct(values, 0.9):6.1f}  min={min(values):6.1f}  max={max(values):6.1f} ms"
    )
    if target is not None:
        line += f"   p50 - target = {statistics.median(values) - target:+.1f} ms"
    return line


# -------------------------------------------------------------------- configuration
def add_latency_args(parser: argparse.ArgumentParser, rtf: float) -> None:
    parser.add_argument("--rtt-ms", type=float, default=40, help="network round trip")
    parser.add_argument("--first-audio-ms", type=float, default=150)
    parser.add_argument("--handshake-ms", type=float, default=120)
    parser.add_argument(
        "--rtf", type=float, default=rtf, help="server real-time factor"
    )


def latency_from_args(args: argparse.Namespace) -> LatencyModel:
    return LatencyModel(
        handshake_s=args.handshake_ms / 1000,
        rtt_s=args.rtt_ms / 1000,
        first_audio_s=args.first_audio_ms / 1000,
        rtf=args.rtf,
    )


def extension_props(url: str, **params: Any) -> dict[str, Any]:
    """Node properties pointing the extension at the local server."""
    base = {
        "api_key": "bench-key",
        "url": url,
        "voice_id": "synthetic",
        "sample_rate": 24000,
    }
    return {"params": {**base, **params}}


def quiet_ten_logs(verbose: bool = False) -> None:
    """The test app logs every TEN line to stdout; keep warnings only (stand-ins)."""
    if not verbose:
        logging.getLogger("ten").setLevel(logging.WARNING)


# ------------------------------------------------------------------ tester queries
def is_connected(recs: list[Rec]) -> bool:
    return any(
        r.props.get("current") == "connected"
        for r in named(recs, "connection_status_changed")
    )


async def wait_connected(s: Session, timeout: float = 10) -> None:
    """Wait for the extension's prewarm (its ``connected`` status)."""
    await s.wait_for(is_connected, timeout=timeout)


def first_frame_of(recs: list[Rec], request_id: str) -> Rec | None:
    """The first audio frame after this request's ``tts_audio_start``."""
    started = False
    for r in recs:
        if r.name == "tts_audio_start" and r.request_id == request_id:
            started = True
        elif started and r.kind == "frame":
            return r
    return None


def ttfb_by_turn(recs: list[Rec]) -> dict[int, float]:
    """The extension's TTFB metric (ms) per ``metadata.turn_id`` (metrics carry the
    request's metadata, not its request_id)."""
    out = {}
    for r in named(recs, "metrics"):
        m = r.props.get("metrics", {})
        turn = r.props.get("metadata", {}).get("turn_id")
        if "ttfb" in m and turn is not None:
            out[int(turn)] = float(m["ttfb"])
    return out


# ------------------------------------------------------------------------- baseline
async def socket_per_request(url: str, requests: int, pause_s: float) -> list[float]:
    """TTFB (ms) of a client that opens a socket per request and waits for ``ready``
    before its text (TEN's previous Gradium node's flow), with a raw websockets client."""
    out = []
    for i in range(requests):
        start = time.monotonic()
        async with websockets.connect(
            url, additional_headers={"x-api-key": "bench-key"}, compression=None
        ) as ws:
            setup = {
                "type": "setup",
                "voice_id": "synthetic",
                "output_format": "pcm_24000",
                "model_name": "default",
            }
            await ws.send(json.dumps(setup))
            while json.loads(await ws.recv()).get("type") != "ready":
                pass
            await ws.send(
                json.dumps({"type": "text", "text": SENTENCES[i % len(SENTENCES)]})
            )
            await ws.send(json.dumps({"type": "end_of_stream"}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("type") == "audio":
                    out.append((time.monotonic() - start) * 1000)
                    break
            async for raw in ws:
                if json.loads(raw).get("type") == "end_of_stream":
                    break
        await asyncio.sleep(pause_s)
    return out
