"""Long chaos run: many seeded sessions, counts of everything, every violation.

    .venv/bin/python bench/chaos.py --requests 10000 --seed 7

Session i plays ``plan_session(seed * 100_000 + i, per_session)`` (tests/chaos.py):
random segmenting, flushes at every moment, late chunks, reused ids, server
faults of every kind and phase, outages, update_configs, stops mid-request. A
failing session prints its seed; replay it alone with
``CHAOS_SEED=<seed> .venv/bin/python -m pytest tests/test_chaos.py``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "standalone"))
sys.path.insert(0, str(ROOT / "tests"))

import tenhost  # noqa: E402

tenhost.ensure()

import chaos  # noqa: E402


def _quiet_console() -> None:
    """No log line on the console, but every one still reaches the chaos suite's
    key watch ([secret] checks log lines of every level)."""
    for name in ("", "ten"):
        for handler in logging.getLogger(name).handlers:
            handler.setLevel(logging.CRITICAL + 1)
    logging.lastResort = None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10000, help="requests in all")
    ap.add_argument("--seed", type=int, default=1, help="base seed")
    ap.add_argument("--per-session", type=int, default=40, help="requests per session")
    ap.add_argument("--verbose", action="store_true", help="keep the extension's logs")
    ap.add_argument(
        "--shrink",
        metavar="TAG",
        help="shrink session --seed (with --per-session requests) to the fewest steps "
        "that still break invariant TAG, e.g. '[flush]', and print them",
    )
    args = ap.parse_args()
    if args.shrink:
        if not args.verbose:
            logging.disable(logging.WARNING)
        with tenhost.AppRunner():
            plan = chaos.plan_session(args.seed, args.per_session)
            small = chaos.shrink(plan, args.shrink)
            res = chaos.run_plan(small)
            print(f"seed {args.seed}: {len(plan.steps)} -> {len(small.steps)} steps")
            print(f"params: {small.params} dump={small.dump} stopped={small.stopped}")
            print(small.describe())
            print("\n".join(chaos.check(res)) or "(this run passed: a race)")
        return 0

    counts: dict[str, Counter] = {
        k: Counter()
        for k in ("reason", "error_code", "flush", "fault", "fired", "update")
    }
    failures: list[tuple[int, list[str]]] = []
    kinds: Counter[str] = Counter()
    sessions = 0
    requests = 0
    started = time.monotonic()
    with tenhost.AppRunner():
        if not args.verbose:
            _quiet_console()
        try:
            while requests < args.requests:
                seed = args.seed * 100_000 + sessions
                n = min(args.per_session, args.requests - requests)
                plan = chaos.plan_session(seed, n)
                res = chaos.run_plan(plan)
                violations = chaos.check(res)
                chaos.tally(res, counts)
                sessions += 1
                requests += n
                if violations:
                    failures.append((seed, violations))
                    for v in violations:
                        kinds[v.split("]")[0] + "]"] += 1
                    print(f"FAIL seed {seed}: {violations[0]}", flush=True)
                if sessions % 10 == 0:
                    print(
                        f"... {requests} requests, {sessions} sessions, "
                        f"{len(failures)} failing, {time.monotonic() - started:.0f} s",
                        flush=True,
                    )
        except KeyboardInterrupt:
            print("interrupted: counts so far", flush=True)
    wall = time.monotonic() - started

    names = {1: "1 normal", 2: "2 interrupted", 3: "3 error"}
    print(
        f"\nchaos run: base seed {args.seed}, {requests} requests in {sessions} sessions"
    )
    print(f"wall time: {wall:.1f} s")
    print("requests by ending reason (tts_audio_end):")
    for reason, n in sorted(counts["reason"].items(), key=lambda kv: str(kv[0])):
        print(f"  {names.get(reason, reason)}: {n}")
    flush = counts["flush"]
    sent = sum(n for k, n in flush.items() if k != "flush_end")
    print(
        f"flushes: {sent} sent, {flush['flush_end']} tts_flush_end received; by moment:"
    )
    for moment in (*chaos.FLUSH_MOMENTS, "stop"):
        print(f"  {moment}: {flush[moment]}")
    print("faults planned, by kind and phase:")
    for (kind, phase), n in sorted(counts["fault"].items()):
        print(f"  {kind} / {phase}: {n}")
    print("faults fired on the server, by kind:")
    for kind, n in sorted(counts["fired"].items()):
        print(f"  {kind}: {n}")
    print("update_configs:", dict(counts["update"]))
    print("errors by code:", dict(sorted(counts["error_code"].items())))
    print(f"sessions with invariant violations: {len(failures)} of {sessions}")
    for kind, n in sorted(kinds.items()):
        print(f"  {kind}: {n}")
    for seed, violations in failures:
        print(f"  seed {seed}:")
        for v in violations[:5]:
            print(f"    {v}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
