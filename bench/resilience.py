"""Issue 15 (client side): deadlines under hung connects, backoff against sockets
that close after N seconds, and many concurrent requests on one client.

Three measurements, each printed as numbers (no assertion):

1. ``hung``: the issue's scenario 1, through the extension at default settings
   (``response_timeout_s`` 5, ``connect_timeout_s`` 10, ``flush_mode`` close).
   The prewarmed socket works, then the server stops answering upgrades
   (``set_hang_handshake``). Request 1 is flushed after 3 frames; request 2 is
   sent with ``text_input_end``: the time from its text to its ``tts_audio_end``.
2. ``close_after``: an idle client (default settings) against a server that
   closes every socket N s after its upgrade, for N from 0.5 to 30, in two
   forms: a plain close 1000, and the server's idle-expiry form (``error`` 1008
   "idle timeout" then close 1008). Per N: the most handshakes and the most
   ``connection_status`` events in any 10 s window, and the totals, over
   ``--observe`` seconds (all N run side by side).
3. ``concurrent``: 40 and 100 requests at once on one client (default settings,
   local server with its default per-socket cap of 16): how many end Done.
4. ``budget`` (issue 25): the connect budget, idle and under traffic. One client
   (default settings) per server pattern: every socket closed by the server 0.5,
   1.5 or 2.5 s after its upgrade (close 1000), an ``error`` 1008 cap message
   then close 1008 1.5 s after the upgrade, or HTTP 503 on every upgrade. Each
   pattern idle and with one request per second for 30 s (``--observe``): the
   most handshakes (upgrade attempts the server saw) and the most
   ``connection_status`` events in any 10 s, and how the requests ended (each
   must end exactly once).

    .venv/bin/python bench/resilience.py               # all four (~110 s)
    .venv/bin/python bench/resilience.py --only close_after --observe 90
    .venv/bin/python bench/resilience.py --only budget
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

from common import extension_props, quiet_ten_logs
from gradium_server import (
    Fault,
    GradiumServer,
    LatencyModel,
    ServerConfig,
    ServerThread,
)
from harness import Session, ext_module, named, run_session

KEY = "bench-key"
SETUP = {"model_name": "default", "voice_id": "synthetic", "output_format": "pcm_16000"}
NS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0)
IDLE_MESSAGE = "idle timeout: no message received"


# ------------------------------------------------------------------ 1. hung connect
def hung_connect() -> float:
    server = ServerThread(ServerConfig(voice_engine="synthetic")).start()
    took: dict[str, float] = {}

    async def script(s: Session) -> None:
        await s.wait_for(
            lambda recs: any(
                r.props.get("current") == "connected"
                for r in named(recs, "connection_status_changed")
            ),
            10,
        )
        await asyncio.to_thread(server.set_hang_handshake, True)
        await s.text("r1", "a long first answer " * 12, end=True)
        await s.wait_frames(3, 10)
        await s.flush("f1")
        await s.wait_for(lambda recs: named(recs, "tts_flush_end"), 10)
        started = time.monotonic()
        await s.text("r2", "the second answer.", end=True)
        end = await s.wait_end("r2", 60)
        took["r2"] = end.t - started

    try:
        run_session(extension_props(server.url), script, timeout_s=90)
    finally:
        server.stop()
    return took["r2"]


# ---------------------------------------------------------------- 2. close after N
class _Statuses:
    def __init__(self) -> None:
        self.times: list[float] = []

    async def on_connection_status(self, current: str, last: str) -> None:
        self.times.append(time.monotonic())

    async def on_connected(self, connect_ms: int) -> None:
        pass

    async def on_connection_error(self, error: Any) -> None:
        pass


def busiest(times: list[float], window: float = 10.0) -> int:
    return max((sum(1 for t in times if a <= t < a + window) for a in times), default=0)


async def close_after_one(
    n: float, idle_form: bool, observe: float
) -> tuple[int, int, int, int]:
    server = await GradiumServer(ServerConfig.for_tests()).start()
    if idle_form:
        server.set_close_after(n, 1008, IDLE_MESSAGE)
    else:
        server.set_close_after(n)
    listener = _Statuses()
    client = ext_module("gradium_tts").GradiumTTSClient(
        server.url, KEY, listener=listener
    )
    try:
        client.start()
        await asyncio.sleep(observe)
        statuses = list(listener.times)  # before our aclose() adds one
        handshakes = [e.t for e in server.events_of("connect")]
    finally:
        await client.aclose()
        await server.stop()
    return busiest(handshakes), busiest(statuses), len(handshakes), len(statuses)


async def close_after_table(observe: float) -> None:
    cases = [(n, form) for n in NS for form in (False, True)]
    results = await asyncio.gather(
        *(close_after_one(n, form, observe) for n, form in cases)
    )
    print(
        f"\nclose_after N (idle client, {observe:g} s observed; "
        "max in any 10 s / total)"
    )
    print(f"{'N (s)':>6} | {'plain close 1000':^27} | {'error 1008 idle + close':^27}")
    print(
        f"{'':>6} | {'handshakes':>12} {'statuses':>12}  | {'handshakes':>12} "
        f"{'statuses':>12}"
    )
    by = dict(zip(cases, results, strict=True))
    for n in NS:
        row = []
        for form in (False, True):
            h10, s10, h, s = by[(n, form)]
            row.append(f"{h10:>5} / {h:<5} {s10:>5} / {s:<5}")
        print(f"{n:>6g} | {row[0]} | {row[1]}")
    worst_h = max(r[0] for r in results)
    worst_s = max(r[1] for r in results)
    print(f"worst: {worst_h} handshakes and {worst_s} status events in 10 s")


# ------------------------------------------------------------------- 4. budget
CAP_MESSAGE = "concurrency cap reached for this API key"
PATTERNS = (
    ("close 0.5 s", lambda s: s.set_close_after(0.5)),
    ("close 1.5 s", lambda s: s.set_close_after(1.5)),
    ("close 2.5 s", lambda s: s.set_close_after(2.5)),
    ("1008 cap 1.5 s", lambda s: s.set_close_after(1.5, 1008, CAP_MESSAGE)),
    ("HTTP 503", lambda s: s.inject(Fault("reject_handshake", arg=503, count=10**6))),
)


async def budget_one(
    pattern: int, traffic: bool, observe: float
) -> tuple[int, int, dict[str, int]]:
    server = await GradiumServer(ServerConfig.for_tests()).start()
    PATTERNS[pattern][1](server)
    listener = _Statuses()
    gt = ext_module("gradium_tts")
    client = gt.GradiumTTSClient(server.url, KEY, listener=listener)
    ends: dict[str, int] = {"done": 0, "failed": 0, "ended twice": 0, "open": 0}

    async def one(i: int) -> None:
        req = client.request(SETUP)
        req.send_text(f"request number {i} says hello.")
        req.end()
        finals = 0
        try:
            async for ev in req.events():
                if isinstance(ev, gt.Done | gt.Failed):
                    finals += 1
                    ends["done" if isinstance(ev, gt.Done) else "failed"] += 1
        finally:
            ends["ended twice"] += finals > 1

    try:
        client.start()
        tasks = []
        started = time.monotonic()
        for i in range(int(observe)):
            if traffic:
                tasks.append(asyncio.ensure_future(one(i)))
            await asyncio.sleep(max(0.0, started + i + 1 - time.monotonic()))
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=15)
            ends["open"] = len(pending)
            for task in pending:
                task.cancel()
        statuses = list(listener.times)  # before our aclose() adds one
        handshakes = [e.t for e in server.events_of("connect")]
    finally:
        await client.aclose()
        await server.stop()
    return busiest(handshakes), busiest(statuses), ends


async def budget_table(observe: float) -> None:
    cases = [(p, traffic) for p in range(len(PATTERNS)) for traffic in (False, True)]
    results = await asyncio.gather(*(budget_one(p, t, observe) for p, t in cases))
    by = dict(zip(cases, results, strict=True))
    print(
        f"\nconnect budget: most handshakes / status events in any 10 s "
        f"({observe:g} s; traffic: 1 request per second)"
    )
    print(f"{'server':>15} | {'idle':^13} | {'1 req/s':^13} | requests of 1 req/s")
    for p, (name, _) in enumerate(PATTERNS):
        h0, s0, _ = by[(p, False)]
        h1, s1, ends = by[(p, True)]
        print(
            f"{name:>15} | {h0:>5} / {s0:<5} | {h1:>5} / {s1:<5} | "
            f"{ends['done']} done, {ends['failed']} failed, "
            f"{ends['ended twice']} ended twice, {ends['open']} never ended"
        )
    worst_h = max(r[0] for r in results)
    worst_s = max(r[1] for r in results)
    print(f"worst: {worst_h} handshakes and {worst_s} status events in 10 s")


# -------------------------------------------------------------------- 3. concurrent
async def concurrent(count: int) -> tuple[int, int, float]:
    server = await GradiumServer(
        ServerConfig(voice_engine="synthetic", latency=LatencyModel(rtf=0.0))
    ).start()
    client = ext_module("gradium_tts").GradiumTTSClient(server.url, KEY)
    gt = ext_module("gradium_tts")
    try:
        client.start()
        await client.wait_connected(5)
        started = time.monotonic()

        async def one(i: int) -> bool:
            req = client.request(SETUP)
            req.send_text(f"request number {i} says hello")
            req.end()
            last = None
            async for ev in req.events():
                last = ev
            return isinstance(last, gt.Done)

        done = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(count))), 60
        )
        return sum(done), count - sum(done), time.monotonic() - started
    finally:
        await client.aclose()
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", choices=("hung", "close_after", "concurrent", "budget")
    )
    parser.add_argument("--observe", type=float, default=60.0)
    args = parser.parse_args()
    quiet_ten_logs()
    logging.getLogger("gradium_tts").setLevel(logging.CRITICAL)
    if args.only in (None, "concurrent"):
        for count in (40, 100):
            ok, failed, took = asyncio.run(concurrent(count))
            print(
                f"concurrent {count:>3} on one client: {ok} done, {failed} failed "
                f"({took:.2f} s)"
            )
    if args.only in (None, "close_after"):
        asyncio.run(close_after_table(args.observe))
    if args.only in (None, "budget"):
        asyncio.run(budget_table(30.0 if args.only is None else args.observe))
    if args.only in (None, "hung"):
        import tenhost

        with tenhost.AppRunner():
            took = hung_connect()
        print(
            f"\nhung connect after a flush: tts_audio_end {took:.2f} s after the "
            "last text (README bound: 2 x response_timeout_s = 10 s)"
        )


if __name__ == "__main__":
    main()
