"""TTFB benchmark: the extension against the local server's latency model.

    .venv/bin/python bench/ttfb.py [--requests 20] [--rtt-ms 40] [--first-audio-ms 150]

Three scenarios in one run, on one server, so their ratios are comparable on a
shared machine:

- warm: the extension as a TEN graph runs it; the first request is sent once the
  extension reports "connected" (its prewarm), every later turn follows the last.
  Target: TTFB p50 within 10 ms of first_audio + one round trip.
- cold: the first request is sent the moment the extension starts (the greeting
  case): its TTFB includes the handshake the prewarm had not finished.
- post-flush: a long answer is interrupted (tts_flush) mid-stream and the next
  turn follows at once: it rides the same socket, so it should match "warm".
- baseline: what a socket-per-request client that waits for ``ready`` pays
  (connect, setup, ready, text, first audio), measured with a raw websockets
  client against the same server.

TTFB is the extension's own metric (first speakable text in -> first frame out);
"seen" is the same span measured by the tester (send -> frame arrival). Prints
numbers; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from common import (
    SENTENCES,
    describe,
    extension_props,
    socket_per_request,
    tenhost,
    wait_connected,
)
from gradium_server import LatencyModel, ServerConfig, ServerThread
from harness import metrics, run_session


def extension_run(url: str, requests: int, wait_for_prewarm: bool, pause_s: float):
    props = extension_props(url)
    seen: list[float] = []

    async def script(s):
        if wait_for_prewarm:
            await wait_connected(s)
        for i in range(requests):
            rid = f"bench-{i}"
            meta = {"session_id": "bench", "turn_id": i}
            first, second = (
                SENTENCES[i % len(SENTENCES)],
                SENTENCES[(i + 1) % len(SENTENCES)],
            )
            before = len(s.records)
            sent = time.monotonic()
            await s.text(rid, first, metadata=meta)
            await s.text(rid, second, end=True, metadata=meta)
            frame = await s.wait_for(
                lambda recs, b=before: next(
                    (r for r in recs[b:] if r.kind == "frame"), None
                ),
                timeout=10,
            )
            seen.append((frame.t - sent) * 1000)
            await s.wait_end(rid, timeout=30)
            await asyncio.sleep(pause_s)

    session = run_session(props, script, timeout_s=60 + requests * 5)
    ttfb = [float(m.props["metrics"]["ttfb"]) for m in metrics(session.records, "ttfb")]
    return ttfb, seen


def after_flush_run(url: str, rounds: int, pause_s: float) -> list[float]:
    """Barge-in: a long answer is flushed mid-stream; TTFB of the next turn."""
    props = extension_props(url)
    long_text = " ".join(SENTENCES * 3)

    async def script(s):
        await wait_connected(s)
        for i in range(rounds):
            before = len(s.records)
            await s.text(
                f"long-{i}", long_text, metadata={"session_id": "b", "turn_id": 2 * i}
            )
            await s.wait_for(
                lambda recs, b=before: (
                    sum(1 for r in recs[b:] if r.kind == "frame") >= 2
                ),
                timeout=10,
            )
            await s.flush(f"flush-{i}")
            await s.wait_for(
                lambda recs, b=before: any(r.name == "tts_flush_end" for r in recs[b:]),
                timeout=10,
            )
            await s.text(
                f"next-{i}",
                SENTENCES[0],
                end=True,
                metadata={"session_id": "b", "turn_id": 2 * i + 1},
            )
            await s.wait_end(f"next-{i}", timeout=30)
            await asyncio.sleep(pause_s)

    session = run_session(props, script, timeout_s=60 + rounds * 10)
    return [
        float(m.props["metrics"]["ttfb"])
        for m in metrics(session.records, "ttfb")
        if str(m.props.get("metadata", {}).get("turn_id", 0) % 2) == "1"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="TTFB benchmark")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--rtt-ms", type=float, default=40)
    parser.add_argument("--first-audio-ms", type=float, default=150)
    parser.add_argument("--handshake-ms", type=float, default=120)
    parser.add_argument("--pause-ms", type=float, default=200, help="gap between turns")
    parser.add_argument("--json", help="also write the raw numbers to this file")
    args = parser.parse_args()

    latency = LatencyModel(
        handshake_s=args.handshake_ms / 1000,
        rtt_s=args.rtt_ms / 1000,
        first_audio_s=args.first_audio_ms / 1000,
        rtf=0.3,
    )
    target = args.first_audio_ms + args.rtt_ms
    pause = args.pause_ms / 1000
    print(
        f"latency model: handshake {args.handshake_ms:g} ms, rtt {args.rtt_ms:g} ms, "
        f"first audio {args.first_audio_ms:g} ms -> target TTFB {target:g} ms"
    )
    with (
        tenhost.AppRunner(),
        ServerThread(ServerConfig(latency=latency, voice_engine="synthetic")) as server,
    ):
        warm_ttfb, warm_seen = extension_run(server.url, args.requests, True, pause)
        cold_ttfb, cold_seen = extension_run(server.url, 1, False, pause)
        opened = server.connections_opened
        rounds = max(5, args.requests // 2)
        flushed = after_flush_run(server.url, rounds, pause)
        flush_sockets = server.connections_opened - opened
        base = asyncio.run(socket_per_request(server.url, args.requests, pause))

    print(
        "\nper request TTFB (extension metric, ms), warm run, first request included:"
    )
    print("  " + " ".join(f"{v:.0f}" for v in warm_ttfb))
    print()
    print(describe("warm", warm_ttfb, target))
    print(describe("warm seen", warm_seen, target))
    print(describe("cold 1st", cold_ttfb))
    print(describe("post-flush", flushed, target))
    print(f"           sockets opened for {rounds} interrupted turns: {flush_sockets}")
    print(describe("baseline", base))
    ratio = statistics.median(base) / statistics.median(warm_ttfb)
    print(f"\nbaseline p50 / warm p50 = {ratio:.2f}x")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "target_ms": target,
                    "warm_ttfb": warm_ttfb,
                    "warm_seen": warm_seen,
                    "cold_first": cold_ttfb,
                    "after_flush": flushed,
                    "baseline": base,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
