"""Idle cost benchmark (issue 11): what an idle extension node costs, and when a
herd of nodes recycles its sockets.

    .venv/bin/python bench/idle.py [--nodes 1,100,200] [--window-s 30]
        [--baseline-nodes 200] [--herd-nodes 100] [--herd-age-s 6] [--skip-herd]

Method. Each measurement runs in a fresh Python process (so memory freed by one
does not flatter the next), which first forks the local Gradium server into a
process of its own (so the server's CPU, memory and sockets are not counted) and
then starts N nodes at once: N ``AsyncExtensionTester`` sessions of
tests/harness.py, each ``run()`` in its own thread, each tester on its own loop
and every extension instance on the one shared extension loop, as in a TEN app
where all Python extensions share one loop (the stand-in's
``PythonGlobalMainThread``). The stand-in tester has no graph mode
(``set_test_mode_graph`` raises NotImplementedError); N single-mode testers in
one process give the same N extension instances on one loop without extending it.
The testers' own cost (a loop, a thread and a self-pipe each) is in every
measurement; the baseline row carries exactly the same harness, so the
difference between the two rows is the extension's own cost.

- gradium: the extension as shipped (prewarm on), each node waits for its
  ``connected`` status, then all stay idle.
- baseline: a minimal ``AsyncTTS2BaseExtension`` subclass that does nothing
  (``bench/addons/bench_idle_baseline``, installed into the app folder as tman
  would: TEN loads addons only from there): what any TTS node costs idle, no socket.

After all nodes are up and 2 s of settling, the idle window (``--window-s``)
measures: process CPU time (``time.process_time``) over the window, per node and
in total as % of one core, and the CPU of the shared extension loop thread alone;
RSS (VmRSS) after start minus before, per node; open file descriptors, sockets and
TCP sockets (``/proc/self/fd`` against ``/proc/net/tcp*``) after start minus before,
per node; sockets the server accepted during the window, extrapolated to
handshakes per hour per idle session. A window shorter than the server's idle
timeout (60 s) and the client's socket age (240 s) cannot see either: say so.

Herd: N nodes start together with a short ``params.max_socket_age_s``; the server
records when each socket opens. Opens between age/2 and 1.5 * age after the start
are the first recycle wave: their min/median/max (seconds after start) and spread
show whether recycling is synchronised (no jitter) or spread out.

Numbers are printed, never asserted. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from common import (
    ServerProcess,
    add_latency_args,
    extension_props,
    install_bench_addon,
    latency_from_args,
    quiet_ten_logs,
    tenhost,
    wait_connected,
)
from gradium_server import LatencyModel, ServerConfig
from harness import Session

# A minimal AsyncTTS2BaseExtension subclass that does nothing (no socket): its
# package is bench/addons/bench_idle_baseline, installed into the app folder.
BASELINE_ADDON = "bench_idle_baseline"


# ------------------------------------------------------------------ process gauges
def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_counts() -> dict[str, int]:
    tcp: set[str] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                tcp.update(line.split()[9] for line in f)
        except OSError:
            pass
    fds = sockets = tcp_sockets = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed while listing (the listing's own fd)
        fds += 1
        if target.startswith("socket:["):
            sockets += 1
            tcp_sockets += target[8:-1] in tcp
    return {"fds": fds, "sockets": sockets, "tcp": tcp_sockets}


def loop_thread_cpu() -> float:
    """CPU seconds of the shared extension loop thread (stand-ins only)."""
    for t in threading.enumerate():
        if t.name == "PythonGlobalMainThread" and t.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    return float("nan")


# -------------------------------------------------------------------------- nodes
class Nodes:
    """N tester sessions run concurrently, each held idle until ``release``."""

    def __init__(self, n: int, kind: str, props: dict[str, Any]) -> None:
        self.n = n
        self._lock = threading.Lock()
        self._parked: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._all_up = threading.Event()
        self.failures: list[str] = []
        self._threads = [
            threading.Thread(target=self._run, args=(kind, props), daemon=True)
            for _ in range(n)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def wait_up(self, timeout: float) -> bool:
        return self._all_up.wait(timeout)

    def release(self, timeout: float = 120) -> None:
        with self._lock:
            parked = list(self._parked)
        for loop, fut in parked:
            loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(None))
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))

    def _run(self, kind: str, props: dict[str, Any]) -> None:
        async def script(s: Session) -> None:
            if kind != "baseline":
                await wait_connected(s, timeout=60)
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            with self._lock:
                self._parked.append((loop, fut))
                if len(self._parked) == self.n:
                    self._all_up.set()
            await fut

        session = Session(props, script, timeout_s=3600)
        if kind == "baseline":
            session.set_test_mode_single(BASELINE_ADDON, "{}")
        try:
            err = session.run()
            if session.failure or err is not None:
                self.failures.append(session.failure or err.error_message())
        except Exception as exc:  # noqa: BLE001 - reported, not raised from a thread
            self.failures.append(repr(exc))


# ---------------------------------------------------------------- one measurement
def child_config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(latency=latency_from_args(args), voice_engine="synthetic")


def measure_idle(args: argparse.Namespace, kind: str, n: int) -> dict[str, Any]:
    server = ServerProcess(child_config(args))  # first: no thread exists yet
    try:
        if kind == "baseline":
            install_bench_addon(BASELINE_ADDON)
        with tenhost.AppRunner():
            quiet_ten_logs(args.verbose)
            before_rss, before_fds = rss_kb(), fd_counts()
            nodes = Nodes(n, kind, extension_props(server.url))
            nodes.start()
            if not nodes.wait_up(120):
                return {"error": f"nodes not up after 120 s: {nodes.failures[:3]}"}
            time.sleep(2)  # let start-up work finish
            cpu0, loop0, opened0, t0 = (
                time.process_time(),
                loop_thread_cpu(),
                server.ask("opened"),
                time.monotonic(),
            )
            time.sleep(args.window_s)
            cpu1, loop1, opened1, t1 = (
                time.process_time(),
                loop_thread_cpu(),
                server.ask("opened"),
                time.monotonic(),
            )
            after_rss, after_fds = rss_kb(), fd_counts()
            nodes.release()
            window = t1 - t0
            return {
                "kind": kind,
                "n": n,
                "window_s": window,
                "cpu_s": cpu1 - cpu0,
                "loop_cpu_s": loop1 - loop0,
                "rss_kb": after_rss - before_rss,
                "fds": after_fds["fds"] - before_fds["fds"],
                "sockets": after_fds["sockets"] - before_fds["sockets"],
                "tcp": after_fds["tcp"] - before_fds["tcp"],
                "handshakes": opened1 - opened0,
                "failures": nodes.failures[:3],
            }
    finally:
        server.close()


def measure_herd(args: argparse.Namespace, n: int) -> dict[str, Any]:
    server = ServerProcess(child_config(args))
    try:
        with tenhost.AppRunner():
            quiet_ten_logs(args.verbose)
            nodes = Nodes(
                n,
                "gradium",
                extension_props(server.url, max_socket_age_s=args.herd_age_s),
            )
            start = time.monotonic()
            nodes.start()
            up = nodes.wait_up(120)
            time.sleep(max(0.0, start + 2.2 * args.herd_age_s - time.monotonic()))
            opens = [t - start for t in server.ask("open_times")]
            nodes.release()
            return {
                "kind": "herd",
                "n": n,
                "up": up,
                "age_s": args.herd_age_s,
                "opens": opens,
                "failures": nodes.failures[:3],
            }
    finally:
        server.close()


# --------------------------------------------------------------------- orchestrator
def run_child(args: argparse.Namespace, kind: str, n: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, str(n)] + passthrough(args)
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=args.window_s + 300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {
            "kind": kind,
            "n": n,
            "error": (done.stderr or done.stdout).strip()[-800:],
        }
    return json.loads(lines[-1])


def passthrough(args: argparse.Namespace) -> list[str]:
    return [
        f"--window-s={args.window_s}",
        f"--herd-age-s={args.herd_age_s}",
        f"--rtt-ms={args.rtt_ms}",
        f"--first-audio-ms={args.first_audio_ms}",
        f"--handshake-ms={args.handshake_ms}",
        f"--rtf={args.rtf}",
    ] + (["--verbose"] if args.verbose else [])


COLUMNS = (  # header, unit line, width
    ("node", "", 9),
    ("N", "", 5),
    ("CPU", "us/s/node", 11),
    ("CPU", "% core", 8),
    ("loop CPU", "% core", 10),
    ("RSS", "KB/node", 9),
    ("fds", "/node", 7),
    ("sockets", "/node", 9),
    ("TCP", "/node", 7),
    ("opened", "in window", 11),
    ("handshakes", "/h/session", 12),
)


def idle_row(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r['kind']:<9}{r['n']:>5}  failed: {r['error']}"
    n, w = r["n"], r["window_s"]
    cells = [
        f"{r['cpu_s'] / n / w * 1e6:.1f}",  # CPU microseconds per idle second per node
        f"{100 * r['cpu_s'] / w:.2f}",
        f"{100 * r['loop_cpu_s'] / w:.2f}",
        f"{r['rss_kb'] / n:.1f}",
        f"{r['fds'] / n:.2f}",
        f"{r['sockets'] / n:.2f}",
        f"{r['tcp'] / n:.2f}",
        str(r["handshakes"]),
        f"{r['handshakes'] / n / w * 3600:.2f}",
    ]
    widths = [c[2] for c in COLUMNS[2:]]
    return f"{r['kind']:<9}{n:>5}" + "".join(
        f"{c:>{wd}}" for c, wd in zip(cells, widths, strict=True)
    )


def report(
    idle: list[dict[str, Any]], herd: dict[str, Any] | None, args: argparse.Namespace
) -> None:
    print(
        f"\nidle window {args.window_s:g} s (server idle timeout 60 s, client "
        "max_socket_age_s 240 s: a shorter window sees neither)"
    )
    for line in (0, 1):
        print(
            "".join(
                f"{c[line]:<{c[2]}}" if i == 0 else f"{c[line]:>{c[2]}}"
                for i, c in enumerate(COLUMNS)
            )
        )
    for r in idle:
        print(idle_row(r))
        for failure in r.get("failures") or []:
            print(f"    node failure: {failure[-300:]}")
    ext = [r for r in idle if r["kind"] == "gradium" and "error" not in r]
    base = [r for r in idle if r["kind"] == "baseline" and "error" not in r]
    if ext and base:
        e, b = ext[-1], base[-1]
        print(
            f"\ngradium minus baseline, per node (N={e['n']} vs {b['n']}): "
            f"CPU {(e['cpu_s'] / e['n'] / e['window_s'] - b['cpu_s'] / b['n'] / b['window_s']) * 1e6:+.1f} us/s, "
            f"RSS {e['rss_kb'] / e['n'] - b['rss_kb'] / b['n']:+.1f} KB, "
            f"fds {e['fds'] / e['n'] - b['fds'] / b['n']:+.2f}, TCP sockets {e['tcp'] / e['n'] - b['tcp'] / b['n']:+.2f}"
        )
    print(
        "(CPU us/s per node = microseconds of process CPU per second of idle per node; loop % = the shared extension loop thread alone)"
    )
    if herd is None:
        return
    if "error" in herd:
        print(f"\nherd failed: {herd['error']}")
        return
    age = herd["age_s"]
    wave = sorted(t for t in herd["opens"] if age / 2 <= t <= 1.5 * age)
    first = sorted(t for t in herd["opens"] if t < age / 2)
    print(
        f"\nherd: {herd['n']} nodes started together, max_socket_age_s {age:g}; sockets opened (s after start):"
    )
    if first:
        print(
            f"  start wave    n={len(first):<4} min={min(first):6.2f}  median={statistics.median(first):6.2f}  max={max(first):6.2f}  spread={max(first) - min(first):5.2f} s"
        )
    if wave:
        print(
            f"  recycle wave  n={len(wave):<4} min={min(wave):6.2f}  median={statistics.median(wave):6.2f}  max={max(wave):6.2f}  spread={max(wave) - min(wave):5.2f} s"
        )
    else:
        print("  no socket opened between age/2 and 1.5 * age")
    for failure in herd.get("failures") or []:
        print(f"    node failure: {failure[-300:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--nodes", default="1,100,200", help="comma-separated node counts"
    )
    parser.add_argument("--window-s", type=float, default=30, help="idle window")
    parser.add_argument(
        "--baseline-nodes", type=int, default=200, help="0: no baseline"
    )
    parser.add_argument("--herd-nodes", type=int, default=100)
    parser.add_argument(
        "--herd-age-s", type=float, default=6, help="max_socket_age_s of the herd"
    )
    parser.add_argument("--skip-herd", action="store_true")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--verbose", action="store_true", help="print the TEN log")
    parser.add_argument(
        "--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS
    )
    add_latency_args(parser, rtf=LatencyModel().rtf)
    args = parser.parse_args()

    if args.child:
        kind, n = args.child[0], int(args.child[1])
        result = (
            measure_herd(args, n) if kind == "herd" else measure_idle(args, kind, n)
        )
        print(json.dumps(result), flush=True)
        os._exit(0)  # daemon threads of finished testers need no orderly shutdown

    print(
        f"{os.cpu_count()} CPUs; each measurement in its own process, server in another"
    )
    idle = []
    plan = [("gradium", int(n)) for n in args.nodes.split(",") if n.strip()]
    if args.baseline_nodes > 0:
        plan.append(("baseline", args.baseline_nodes))
    for kind, n in plan:
        print(f"  {kind} x{n} ...", flush=True)
        idle.append(run_child(args, kind, n))
    herd = None
    if not args.skip_herd:
        print(f"  herd x{args.herd_nodes} ...", flush=True)
        herd = run_child(args, "herd", args.herd_nodes)
    report(idle, herd, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"idle": idle, "herd": herd}, f, indent=2)


if __name__ == "__main__":
    main()
