"""CPU benchmark (issue 17): what the extension costs per audio frame, against a
floor node that sends the same frames through TEN's base class without a network.

    .venv/bin/python bench/cpu.py [--requests 300] [--runs 3] [--json FILE]
        [--detail] [--profile [FILE]]

Method. Each measurement runs in a fresh Python process, which first forks the
local Gradium server (zero latency, synthetic voice, 24 kHz: 80 ms frames of 3,840
bytes) into a process of its own, so the server's CPU is not counted. A lean
tester (it counts frames and waits for each ``tts_audio_end``; it keeps nothing)
then sends N requests, one after the other, each a two-sentence text of about
3.6 s of speech in one ``tts_text_input`` with ``text_input_end``, and measures
the whole process's CPU (``time.process_time``: TEN host, base class, tester and
node) from the first request to the last ``tts_audio_end``. Two warm-up requests
before that are not counted.

- package: this extension, with its prewarmed socket to the local server.
- floor: ``bench/addons/bench_floor``, installed into the app folder as tman
  would. For each text it sends the frames the server sends for that text (their
  sizes are probed once, with a plain websockets client, before the runs) through
  ``send_tts_audio_data``, one call per server frame, plus the audio start, TTFB,
  audio end and ``finish_request``: the runtime, base class and tester cost of
  the same audio, with no network, JSON or base64.

The two alternate (package, floor, floor, package, ...) ``--runs`` times; the
report gives, per node, the p50 of CPU seconds, x real time (seconds of speech per
CPU second) and microseconds per frame (a frame: one 80 ms ``audio`` message of the
server), and the package's own share: (package - floor) per frame.

``--detail`` adds two rows to each run, to say what the package's share is made of:

- floor32: the floor node handing over the same audio joined as the package
  joins it at most (first frame alone, then up to 32 KiB per call): package minus
  floor32 is an upper bound of what the package itself costs (socket, WebSocket
  frames, JSON, base64, routing) beyond the base class.
- ws: a bare websockets client in the same kind of process, no TEN at all, that
  only receives the same messages (``recv(decode=False)``) on one socket: the part
  of that cost the WebSocket library itself takes.

``--profile``: one more package run under cProfile (the extension loop thread of
the stand-ins, over the measured requests), not counted in the table; prints the
top functions by own time and saves the stats to FILE if given.

Numbers are printed, never asserted. Linux or macOS; the real TEN runtime is used
when it is importable (``--profile`` needs the stand-ins).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets
from common import (
    ServerProcess,
    extension_props,
    install_bench_addon,
    quiet_ten_logs,
    tenhost,
)
from gradium_server import LatencyModel, ServerConfig
from ten_runtime import (
    AsyncExtensionTester,
    AsyncTenEnvTester,
    AudioFrame,
    Data,
    TenError,
    TenErrorCode,
)

FLOOR_ADDON = "bench_floor"
COALESCE_BYTES = 32 * 1024  # gradium_tts.COALESCE_MAX_BYTES
PACKAGE_ADDON = tenhost.PACKAGE_NAME
SAMPLE_RATE = 24000
FRAME_BYTES = SAMPLE_RATE * 2 * 80 // 1000  # one 80 ms frame of 16-bit mono PCM
WARMUP = 2
TEXTS = [  # about 3.6 s of speech each in the synthetic voice
    "Sure, I can help with that. It will take about a minute.",
    "The weather in Paris is mild today. Expect light rain later.",
    "Your meeting has been moved to three. I told the others already.",
    "Here is a short summary. We agreed on the plan for next week.",
]


def server_config() -> ServerConfig:
    return ServerConfig(latency=LatencyModel.instant(), voice_engine="synthetic")


# ------------------------------------------------------------------- frame probe
def _setup(cid: str) -> dict[str, Any]:
    """The setup message both raw-websocket measurements send."""
    return {
        "type": "setup",
        "voice_id": "synthetic",
        "output_format": f"pcm_{SAMPLE_RATE}",
        "model_name": "default",
        "client_req_id": cid,
        "close_ws_on_eos": False,
    }


async def _probe(url: str) -> dict[str, list[int]]:
    """The byte sizes of the audio messages the server sends for each text."""
    out: dict[str, list[int]] = {}
    async with websockets.connect(
        url, additional_headers={"x-api-key": "bench-key"}, compression=None
    ) as ws:
        for i, text in enumerate(TEXTS):
            cid = f"probe-{i}"
            setup = _setup(cid)
            for msg in (
                setup,
                {"type": "text", "text": text, "client_req_id": cid},
                {"type": "end_of_stream", "client_req_id": cid},
            ):
                await ws.send(json.dumps(msg))
            sizes = out[text] = []
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("type") == "audio":
                    sizes.append(len(base64.b64decode(msg["audio"])))
                elif msg.get("type") in ("end_of_stream", "error"):
                    break
    return out


def probe_frames() -> dict[str, list[int]]:
    server = ServerProcess(server_config())
    try:
        return asyncio.run(_probe(server.url))
    finally:
        server.close()


# ------------------------------------------------------------------------ tester
class CpuTester(AsyncExtensionTester):
    """Sends the requests one after the other; counts, keeps nothing."""

    def __init__(
        self,
        addon: str,
        props: dict[str, Any],
        requests: int,
        server: ServerProcess,
        profile: cProfile.Profile | None,
    ) -> None:
        super().__init__()
        self.set_test_mode_single(addon, json.dumps(props))
        self.set_timeout(int((120 + requests) * 1_000_000))
        self.requests = requests
        self.wait_for_socket = addon == PACKAGE_ADDON
        self.server = server
        self.profile = profile
        self.frames = 0
        self.nbytes = 0
        self.errors: list[str] = []
        self.result: dict[str, Any] = {}
        self.failure: str | None = None
        self._env: AsyncTenEnvTester | None = None
        self._end: asyncio.Event | None = None
        self._connected: asyncio.Event | None = None

    async def on_start(self, ten_env: AsyncTenEnvTester) -> None:
        self._env = ten_env
        self._end = asyncio.Event()
        self._connected = asyncio.Event()
        self._task = asyncio.create_task(self._script())

    async def on_audio_frame(
        self, ten_env: AsyncTenEnvTester, frame: AudioFrame
    ) -> None:
        self.frames += 1
        self.nbytes += len(frame.get_buf())

    async def on_data(self, ten_env: AsyncTenEnvTester, data: Data) -> None:
        name = data.get_name()
        if name == "tts_audio_end":
            assert self._end is not None
            self._end.set()
        elif name == "connection_status_changed":
            raw, _ = data.get_property_to_json(None)
            if json.loads(raw or "{}").get("current") == "connected":
                assert self._connected is not None
                self._connected.set()
        elif name == "error":
            raw, _ = data.get_property_to_json(None)
            self.errors.append(raw)

    async def _speak(self, i: int) -> None:
        assert self._env is not None and self._end is not None
        self._end.clear()
        data = Data.create("tts_text_input")
        payload = {
            "request_id": f"r{i}",
            "text": TEXTS[i % len(TEXTS)],
            "text_input_end": True,
            "metadata": {"session_id": "cpu", "turn_id": i},
        }
        data.set_property_from_json(None, json.dumps(payload))
        await self._env.send_data(data)
        await asyncio.wait_for(self._end.wait(), 30)

    async def _script(self) -> None:
        assert self._env is not None and self._connected is not None
        try:
            if self.wait_for_socket:
                await asyncio.wait_for(self._connected.wait(), 20)
            for i in range(WARMUP):
                await self._speak(i)
            await asyncio.to_thread(self.server.ask, "clear_log")
            if self.profile is not None:
                await _on_extension_loop(self.profile.enable)
            frames0, bytes0 = self.frames, self.nbytes
            cpu0, wall0 = time.process_time(), time.monotonic()
            for i in range(WARMUP, WARMUP + self.requests):
                await self._speak(i)
            cpu1, wall1 = time.process_time(), time.monotonic()
            if self.profile is not None:
                await _on_extension_loop(self.profile.disable)
            self.result = {
                "cpu_s": cpu1 - cpu0,
                "wall_s": wall1 - wall0,
                "ten_frames": self.frames - frames0,
                "audio_bytes": self.nbytes - bytes0,
            }
        except BaseException as exc:  # noqa: BLE001 - reported by the child
            self.failure = repr(exc)
            error = TenError.create(TenErrorCode.ErrorCodeGeneric, "failed")
            self._env.stop_test(error)
            return
        self._env.stop_test()


async def _on_extension_loop(fn: Any) -> None:
    """Run ``fn`` on the stand-ins' shared extension loop thread (cProfile profiles
    the thread that enables it)."""
    from ten_runtime import _runtime

    loop = _runtime.global_loop()

    async def call() -> None:
        fn()

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), loop))


# ------------------------------------------------------------- bare websockets
async def _ws_only(url: str, requests: int, server: ServerProcess) -> dict[str, Any]:
    """Receive the same requests' messages with websockets alone; parse nothing."""
    async with websockets.connect(
        url,
        additional_headers={"x-api-key": "bench-key"},
        compression=None,
        max_size=2**22,
    ) as ws:

        async def one(i: int) -> int:
            cid = f"ws-{i}"
            setup = _setup(cid)
            text = TEXTS[i % len(TEXTS)]
            for msg in (
                setup,
                {"type": "text", "text": text, "client_req_id": cid},
                {"type": "end_of_stream", "client_req_id": cid},
            ):
                await ws.send(json.dumps(msg))
            n = 0
            while True:
                raw = await ws.recv(decode=False)
                n += len(raw)
                if b'"end_of_stream"' in raw:  # a substring test, no JSON
                    return n

        for i in range(WARMUP):
            await one(i)
        await asyncio.to_thread(server.ask, "clear_log")
        cpu0, wall0 = time.process_time(), time.monotonic()
        received = 0
        for i in range(WARMUP, WARMUP + requests):
            received += await one(i)
        cpu1, wall1 = time.process_time(), time.monotonic()
    sizes = await asyncio.to_thread(server.ask, "audio_bytes")
    return {
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
        "ten_frames": 0,
        "audio_bytes": sum(sizes),
        "frames": len(sizes),
        "wire_bytes": received,
    }


# ----------------------------------------------------------------- one measurement
def measure(
    kind: str, requests: int, frames: dict[str, list[int]], profile_out: str | None
) -> dict[str, Any]:
    if profile_out is not None and (
        not tenhost.is_standin()
        or os.environ.get("TEN_PYTHON_THREAD_MODE") == "multi_thread"
    ):
        return {"kind": kind, "error": "--profile needs the stand-ins, single_thread"}
    server = ServerProcess(server_config())  # first: no thread exists yet
    profile = cProfile.Profile() if profile_out is not None else None
    try:
        if kind == "ws":
            return {"kind": kind, **asyncio.run(_ws_only(server.url, requests, server))}
        if kind in ("floor", "floor32"):
            addon = install_bench_addon(FLOOR_ADDON)
            props: dict[str, Any] = {"sample_rate": SAMPLE_RATE, "frames": frames}
            if kind == "floor32":
                props["coalesce_bytes"] = COALESCE_BYTES
        else:
            addon = PACKAGE_ADDON
            props = extension_props(server.url, sample_rate=SAMPLE_RATE)
        with tenhost.AppRunner():
            quiet_ten_logs()
            tester = CpuTester(addon, props, requests, server, profile)
            err = tester.run()
            if tester.failure or err is not None or not tester.result:
                message = tester.failure or (err.error_message() if err else "")
                return {"kind": kind, "error": message or "no result"}
            result = {"kind": kind, **tester.result, "errors": tester.errors[:3]}
            if kind != "package":
                numbers = range(WARMUP, WARMUP + requests)
                texts = [TEXTS[i % len(TEXTS)] for i in numbers]
                result["frames"] = sum(len(frames[t]) for t in texts)
            else:
                result["frames"] = len(server.ask("audio_bytes"))
            if profile is not None and profile_out:
                profile.dump_stats(profile_out)
            return result
    finally:
        server.close()


# --------------------------------------------------------------------- orchestrator
def run_child(
    kind: str, args: argparse.Namespace, plan: str, profile_out: str | None = None
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, plan]
    cmd.append(f"--requests={args.requests}")
    if profile_out is not None:
        cmd.append(f"--profile={profile_out}")
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300 + 2 * args.requests
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"kind": kind, "error": (done.stderr or done.stdout).strip()[-800:]}
    return json.loads(lines[-1])


def per_run(r: dict[str, Any]) -> dict[str, float]:
    speech_s = r["audio_bytes"] / (SAMPLE_RATE * 2)
    return {
        "cpu_s": r["cpu_s"],
        "x_real_time": speech_s / r["cpu_s"] if r["cpu_s"] else float("inf"),
        "us_per_frame": r["cpu_s"] / max(1, r["frames"]) * 1e6,
        "speech_s": speech_s,
    }


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"\n{'run':<4}{'node':<9}{'CPU s':>8}{'x real time':>13}{'us/frame':>10}"
        f"{'frames':>8}{'TEN frames':>12}{'speech s':>10}{'wall s':>8}"
    )
    ok: dict[str, list[dict[str, float]]] = {}
    run_of = [r.get("run", 0) for r in results]
    for i, r in enumerate(results):
        if "error" in r:
            print(f"{run_of[i]:<4}{r['kind']:<9}failed: {r['error']}")
            continue
        m = per_run(r)
        ok.setdefault(r["kind"], []).append({**m, "frames": r["frames"]})
        print(
            f"{run_of[i]:<4}{r['kind']:<9}{m['cpu_s']:8.3f}{m['x_real_time']:12.0f}x"
            f"{m['us_per_frame']:10.1f}{r['frames']:8d}{r['ten_frames']:12d}"
            f"{m['speech_s']:10.1f}{r['wall_s']:8.2f}"
        )
        for e in r.get("errors") or []:
            print(f"    error sent by the node: {e[:300]}")
    summary: dict[str, Any] = {}
    for kind, rows in ok.items():
        if rows:
            summary[kind] = {
                key: statistics.median(row[key] for row in rows)
                for key in ("cpu_s", "x_real_time", "us_per_frame")
            }
    if "package" in summary and "floor" in summary:
        a, b = summary["package"], summary["floor"]
        share = a["us_per_frame"] - b["us_per_frame"]
        summary["share_us_per_frame"] = share
        summary["ratio"] = a["cpu_s"] / b["cpu_s"] if b["cpu_s"] else float("inf")
        print(
            f"\np50 of {args.runs}: package {a['cpu_s']:.3f} s, "
            f"{a['x_real_time']:.0f}x, "
            f"{a['us_per_frame']:.1f} us/frame; floor {b['cpu_s']:.3f} s, "
            f"{b['x_real_time']:.0f}x, {b['us_per_frame']:.1f} us/frame"
        )
        print(
            f"package's own share (package - floor): {share:.1f} us per frame; "
            f"whole process {summary['ratio']:.2f}x the floor"
        )
        for kind, what in (
            ("floor32", "upper bound of the package's own cost (floor32 joins as"
             " the package does at most)"),
            ("ws", "of which websockets alone (bare recv of the same messages)"),
        ):
            if kind in summary:
                d = summary[kind]["us_per_frame"]
                if kind == "floor32":
                    d = a["us_per_frame"] - d
                    summary["share_vs_floor32_us_per_frame"] = d
                print(f"{what}: {d:.1f} us per frame")
        frames = {row["frames"] for rows in ok.values() for row in rows}
        if len(frames) > 1:
            print(f"warning: the runs saw different frame counts: {sorted(frames)}")
    return summary


def print_profile(path: str, top: int = 30) -> None:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3, help="runs of each node")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument(
        "--detail", action="store_true", help="add the floor32 and ws rows"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help="one more package run under cProfile (not counted)",
    )
    parser.add_argument(
        "--child", nargs=2, metavar=("KIND", "PLAN"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.child:
        kind, plan = args.child
        frames = json.loads(Path(plan).read_text())
        result = measure(kind, args.requests, frames, args.profile)
        print(json.dumps(result), flush=True)
        os._exit(0)  # daemon threads of the finished tester need no orderly shutdown

    print(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, TEN host: "
        f"{tenhost.ensure()}; {args.requests} requests per run, server in another "
        "process at zero latency"
    )
    frames = probe_frames()
    per_request = [len(v) for v in frames.values()]
    print(
        f"texts: {len(TEXTS)}, {statistics.mean(per_request):.1f} frames of "
        f"{FRAME_BYTES} bytes each on average"
    )
    with tempfile.TemporaryDirectory() as tmp:
        plan = str(Path(tmp) / "frames.json")
        Path(plan).write_text(json.dumps(frames))
        results = []
        kinds = ["package", "floor"] + (["floor32", "ws"] if args.detail else [])
        for i in range(args.runs):
            order = kinds if i % 2 == 0 else kinds[::-1]
            for kind in order:
                print(f"  run {i + 1}: {kind} ...", flush=True)
                results.append({**run_child(kind, args, plan), "run": i + 1})
        summary = report(results, args)
        if args.profile is not None:
            path = args.profile or str(Path(tmp) / "package.prof")
            print("\nprofile run (package, extension loop thread) ...", flush=True)
            r = run_child("package", args, plan, profile_out=path)
            if "error" in r:
                print(f"profile run failed: {r['error']}")
            else:
                print_profile(path)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": results, "summary": summary}, f, indent=2)


if __name__ == "__main__":
    main()
