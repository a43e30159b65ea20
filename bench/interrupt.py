"""Interruption benchmark (issue 9): what a ``tts_flush`` costs, drop vs close.

    .venv/bin/python bench/interrupt.py [--rounds 20] [--warm 10] [--pause-ms 300]
        [--flush-after-frames 3] [--chart bench/ttfb_distributions.png] [--no-chart]

One run, one local server (latency model: rtt 40 ms, first audio 150 ms, handshake
120 ms, real-time pacing rtf 1.0, synthetic voice). For each ``params.flush_mode``
(``drop``: drop late audio by id and send end_of_stream on the same socket;
``close``: close the socket that carries the cancelled request and go on on a warm
standby) the extension runs under the tester harness through three phases:

1. warm: ``--warm`` short turns, each played to its end (no interruption);
2. interrupted with a pause: ``--rounds + 1`` turns of two sentences; each is
   flushed once ``--flush-after-frames`` frames have reached the tester; the next
   turn is sent ``--pause-ms`` after ``tts_flush_end``;
3. interrupted back to back: the same, the next turn sent right after the flush.

Then a socket-per-request client (TEN's previous node's flow, see bench/ttfb.py)
gives the baseline distribution for the chart.

Measured, per mode:

- audio the server sent after each flush for the flushed request: the server's
  event log (``out`` ``audio`` entries of that ``client_req_id``, with their byte
  counts) after the moment the tester received the request's ``tts_audio_end``,
  an upper bound of when the extension handled the flush (so this count is a
  lower bound); the same counted from the tester's send of ``tts_flush`` (which
  includes audio already in flight) is printed too. The client_req_id of each
  turn is the one whose ``setup`` reached the server between this turn's text and
  the next one's. Before the session ends the benchmark waits until the server
  has finished (end_of_stream) or lost (socket closed) every flushed request, so
  late audio is counted in full.
- first-frame latency of the turn after a flush, p50/p90: the extension's own TTFB
  metric and the tester-seen time (text sent -> first frame), for both phases,
  next to the warm TTFB of the same session.
- sockets the server accepted during the interrupted phases, per 100 flushes.
- error messages the server sent. In drop mode the server goes on generating every
  flushed request at real-time pace, so rapid interruptions pile concurrent
  requests up on one socket; past the local server's cap (16 per socket) a setup
  is refused ("too many concurrent requests") and the client replays it on a
  fresh socket: a slow turn and an extra socket, both counted here.

Numbers are printed, never asserted. The chart (matplotlib, optional: install
``bench/requirements.txt``) shows the TTFB distributions.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    SENTENCES,
    add_latency_args,
    describe,
    extension_props,
    first_frame_of,
    latency_from_args,
    pct,
    quiet_ten_logs,
    socket_per_request,
    tenhost,
    ttfb_by_turn,
    wait_connected,
)
from gradium_server import ServerConfig, ServerThread
from harness import Rec, Session, errors, ext_module, run_session

MODES = ("drop", "close")
WARM_TEXT = "Sure, I can help with that."  # 1.6 s of the synthetic voice
BYTES_PER_S = 24000 * 2  # pcm_24000, 16-bit mono


def flush_mode_supported() -> bool:
    config = ext_module("config")  # the copy the TEN host runs

    return "flush_mode" in config.GradiumTTSConfig.model_fields


@dataclass
class Interruption:
    request_id: str
    sent_t: float  # tester sent the turn's first text
    flush_t: float = 0.0  # tester sent tts_flush
    end_t: float = 0.0  # tester received the turn's tts_audio_end
    client_req_id: str | None = None
    conn: int | None = None
    after_end_bytes: int = 0  # server audio bytes after end_t
    after_flush_bytes: int = 0  # server audio bytes after flush_t


@dataclass
class ModeResult:
    mode: str
    warm_ttfb: list[float] = field(default_factory=list)
    warm_seen: list[float] = field(default_factory=list)
    ttfb: dict[str, list[float]] = field(default_factory=dict)  # phase -> values
    seen: dict[str, list[float]] = field(default_factory=dict)
    cuts: list[Interruption] = field(default_factory=list)
    sockets: int = 0  # accepted by the server during the interrupted phases
    errors: int = 0
    server_errors: list[str] = field(default_factory=list)  # error messages it sent


def run_mode(
    server: ServerThread, mode: str, args: argparse.Namespace, send_mode: bool
) -> ModeResult:
    params = {"flush_mode": mode} if send_mode else {}
    props = extension_props(server.url, **params)
    result = ModeResult(mode)
    turn_ids: dict[str, list[int]] = {"warm": [], "pause": [], "b2b": []}
    turn_rid: dict[int, str] = {}
    sent_at: dict[int, float] = {}
    pause = args.pause_ms / 1000
    counter = itertools.count()

    async def send_turn(s: Session, phase: str, texts: list[str]) -> tuple[str, int]:
        turn = next(counter)
        rid = f"{mode}-{phase}-{turn}"
        turn_rid[turn] = rid
        turn_ids[phase].append(turn)
        meta = {"session_id": f"bench-{mode}", "turn_id": turn}
        sent_at[turn] = time.monotonic()
        for k, text in enumerate(texts):
            await s.text(rid, text, end=k == len(texts) - 1, metadata=meta)
        return rid, turn

    async def interrupted(s: Session, phase: str, wait_s: float | None) -> None:
        for i in range(args.rounds + 1):
            texts = [SENTENCES[i % len(SENTENCES)], SENTENCES[(i + 1) % len(SENTENCES)]]
            rid, turn = await send_turn(s, phase, texts)
            cut = Interruption(rid, sent_at[turn])
            await s.wait_for(
                lambda recs, r=rid: frames_of(recs, r) >= args.flush_after_frames,
                timeout=15,
            )
            cut.flush_t = time.monotonic()
            await s.flush(f"flush-{rid}")
            result.cuts.append(cut)
            if wait_s is not None:
                await wait_flush_end(s, f"flush-{rid}")
                await asyncio.sleep(wait_s)
        await wait_flush_end(s, f"flush-{result.cuts[-1].request_id}")

    async def script(s: Session) -> None:
        await wait_connected(s)
        for _ in range(args.warm):
            rid, _turn = await send_turn(s, "warm", [WARM_TEXT])
            await s.wait_end(rid, timeout=30)
            await asyncio.sleep(0.05)
        opened = server.connections_opened
        await interrupted(s, "pause", pause)
        await interrupted(s, "b2b", None)
        result.sockets = server.connections_opened - opened
        await drain(server, s, result, sent_at, turn_rid)

    logged = len(server.server.events.select("event", "protocol_error"))
    session = run_session(props, script, timeout_s=120 + (args.rounds + args.warm) * 20)
    recs = session.records
    ttfb = ttfb_by_turn(recs)
    for phase, turns in turn_ids.items():
        # The first turn of an interrupted phase follows the previous phase, not a flush.
        measured = turns if phase == "warm" else turns[1:]
        values = [ttfb[t] for t in measured if t in ttfb]
        seen = []
        for t in measured:
            frame = first_frame_of(recs, turn_rid[t])
            if frame is not None:
                seen.append((frame.t - sent_at[t]) * 1000)
        if phase == "warm":
            result.warm_ttfb, result.warm_seen = values, seen
        else:
            result.ttfb[phase], result.seen[phase] = values, seen
    result.errors = len(errors(recs))
    result.server_errors = [
        str(e.data.get("message"))
        for e in server.server.events.select("event", "protocol_error")[logged:]
    ]
    return result


async def wait_flush_end(s: Session, flush_id: str) -> None:
    await s.wait_for(
        lambda recs: any(
            r.name == "tts_flush_end" and r.props.get("flush_id") == flush_id
            for r in reversed(recs)
        ),
        timeout=15,
    )


def frames_of(recs: list[Rec], request_id: str) -> int:
    n, started = 0, False
    for r in reversed(recs):
        if r.kind == "frame":
            n += 1
        elif r.name == "tts_audio_start":
            started = r.request_id == request_id
            break
    return n if started else 0


async def drain(
    server: ServerThread,
    s: Session,
    result: ModeResult,
    sent_at: dict[int, float],
    turn_rid: dict[int, str],
) -> None:
    """Map each flushed turn to its client_req_id, wait until the server is done with
    it (end_of_stream sent, or its socket closed), then count its late audio."""
    setups = sorted(server.server.events.select("in", "setup"), key=lambda e: e.t)
    starts = sorted(sent_at.values())
    for cut in result.cuts:
        later = [t for t in starts if t > cut.sent_t]
        until = later[0] if later else float("inf")
        entry = next((e for e in setups if cut.sent_t <= e.t < until), None)
        if entry is not None:
            cut.client_req_id, cut.conn = entry.client_req_id, entry.conn
        end = next(
            (
                r
                for r in s.records
                if r.name == "tts_audio_end" and r.request_id == cut.request_id
            ),
            None,
        )
        cut.end_t = end.t if end is not None else cut.flush_t

    def settled(cut: Interruption) -> bool:
        if cut.client_req_id is None:
            return True
        if server.server.events.select("out", "end_of_stream", cut.client_req_id):
            return True
        return bool(server.server.events.select("event", "close", conn=cut.conn))

    for _ in range(
        150
    ):  # the server log lives on another thread: poll it, 30 s at most
        if all(settled(c) for c in result.cuts):
            break
        await asyncio.sleep(0.2)
    for cut in result.cuts:
        if cut.client_req_id is None:
            continue
        for e in server.server.events.select("out", "audio", cut.client_req_id):
            nbytes = int(e.data.get("audio_bytes", 0))
            if e.t > cut.end_t:
                cut.after_end_bytes += nbytes
            if e.t > cut.flush_t:
                cut.after_flush_bytes += nbytes


# ------------------------------------------------------------------------- report
def p50_max(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    return f"{format(statistics.median(values), fmt)} / {format(max(values), fmt)}"


def p50_p90(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {pct(values, 0.9):.1f}"


def report(
    results: list[ModeResult], base: list[float], args: argparse.Namespace
) -> None:
    def row(label: str, cells: list[str]) -> None:
        print(f"{label:<48}" + "".join(f"{c:>20}" for c in cells))

    flushes = [len(r.cuts) for r in results]
    print()
    row("flush_mode", [r.mode for r in results])
    row("flushes", [str(n) for n in flushes])
    row(
        "audio sent after flush, s  p50 / max",
        [
            p50_max([c.after_end_bytes / BYTES_PER_S for c in r.cuts], ".2f")
            for r in results
        ],
    )
    row(
        "audio sent after flush, kB p50 / max",
        [p50_max([c.after_end_bytes / 1000 for c in r.cuts], ".0f") for r in results],
    )
    row(
        "  counted from tts_flush send, s p50 / max",
        [
            p50_max([c.after_flush_bytes / BYTES_PER_S for c in r.cuts], ".2f")
            for r in results
        ],
    )
    row(
        "flush -> tts_audio_end (tester), ms p50 / max",
        [
            p50_max([(c.end_t - c.flush_t) * 1000 for c in r.cuts], ".1f")
            for r in results
        ],
    )
    row("warm TTFB, ms p50 / p90", [p50_p90(r.warm_ttfb) for r in results])
    row("  tester-seen", [p50_p90(r.warm_seen) for r in results])
    row(
        f"after flush, +{args.pause_ms:g} ms pause, TTFB p50 / p90",
        [p50_p90(r.ttfb["pause"]) for r in results],
    )
    row("  tester-seen", [p50_p90(r.seen["pause"]) for r in results])
    row(
        "after flush, back to back, TTFB p50 / p90",
        [p50_p90(r.ttfb["b2b"]) for r in results],
    )
    row(
        "  tester-seen (includes the flush itself)",
        [p50_p90(r.seen["b2b"]) for r in results],
    )
    for phase, label in (("pause", "pause"), ("b2b", "back to back")):
        row(
            f"after-flush p50 - warm p50 ({label}), ms",
            [
                f"{statistics.median(r.ttfb[phase]) - statistics.median(r.warm_ttfb):+.1f}"
                if r.ttfb[phase] and r.warm_ttfb
                else "-"
                for r in results
            ],
        )
    row(
        "sockets opened per 100 flushes",
        [f"{100 * r.sockets / max(1, len(r.cuts)):.0f}" for r in results],
    )
    row("error messages from the extension", [str(r.errors) for r in results])
    row(
        "error messages the server sent",
        [str(len(r.server_errors)) for r in results],
    )
    for r in results:
        for message in sorted(set(r.server_errors)):
            print(f"  {r.mode}: {r.server_errors.count(message)} x {message!r}")
    unmapped = sum(1 for r in results for c in r.cuts if c.client_req_id is None)
    if unmapped:
        print(
            f"\n{unmapped} flushed turns had no setup on the server in their window (not counted)"
        )
    print()
    print(describe("socket per request (baseline)", base, width=30))


def write_json(path: Path, results: list[ModeResult], base: list[float]) -> None:
    out: dict[str, object] = {"socket_per_request": base}
    for r in results:
        out[r.mode] = {
            "warm_ttfb": r.warm_ttfb,
            "warm_seen": r.warm_seen,
            "ttfb": r.ttfb,
            "seen": r.seen,
            "after_flush_s": [c.after_end_bytes / BYTES_PER_S for c in r.cuts],
            "after_flush_send_s": [c.after_flush_bytes / BYTES_PER_S for c in r.cuts],
            "flush_to_end_ms": [(c.end_t - c.flush_t) * 1000 for c in r.cuts],
            "flushes": len(r.cuts),
            "sockets": r.sockets,
            "errors": r.errors,
            "server_errors": r.server_errors,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))


def write_chart(
    path: Path,
    results: list[ModeResult],
    base: list[float],
    pause_ms: float,
    floor_ms: float,
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "\nmatplotlib is not installed (pip install -r bench/requirements.txt): no chart"
        )
        return
    import random

    series: list[tuple[str, list[float]]] = []
    for r in results:
        series.append((f"{r.mode}: warm", r.warm_ttfb))
        series.append((f"{r.mode}: after flush, +{pause_ms:g} ms", r.ttfb["pause"]))
        series.append((f"{r.mode}: after flush, back to back", r.ttfb["b2b"]))
    series.append(("socket per request (baseline)", base))
    series = [(name, values) for name, values in series if values]
    rng = random.Random(1)
    fig, (full, zoom) = plt.subplots(
        1,
        2,
        figsize=(10, 0.45 * len(series) + 1.4),
        sharey=True,
        gridspec_kw={"width_ratios": [1, 1.3]},
    )
    colours = {"drop": "tab:orange", "close": "tab:blue"}
    for ax in (full, zoom):
        for y, (name, values) in enumerate(series):
            colour = colours.get(name.split(":")[0], "tab:gray")
            ax.scatter(
                values,
                [y + rng.uniform(-0.25, 0.25) for _ in values],
                s=12,
                alpha=0.5,
                color=colour,
                linewidths=0,
            )
            ax.plot(
                [statistics.median(values)] * 2,
                [y - 0.38, y + 0.38],
                color="black",
                lw=1.2,
            )
        ax.axvline(floor_ms, color="tab:green", lw=1, ls="--")
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel("TTFB, ms (extension metric; bar = median)")
    full.set_yticks(range(len(series)), [name for name, _ in series], fontsize=8)
    full.invert_yaxis()
    full.set_title(f"all (dashed: network floor {floor_ms:g} ms)", fontsize=9)
    client = [values for name, values in series if not name.startswith("socket")]
    if client:
        # Zoom to where the multiplexed client's turns are (up to each series' p90);
        # points beyond are counted at the right edge.
        lo = min(min(v) for v in client) - 2
        hi = max(pct(v, 0.9) for v in client) + 4
        zoom.set_xlim(lo, hi)
        for y, (_name, values) in enumerate(series):
            beyond = sum(1 for v in values if v > hi)
            if beyond:
                zoom.annotate(
                    f"{beyond} > {hi:.0f} ms \u2192",
                    (hi, y),
                    xytext=(-4, 0),
                    textcoords="offset points",
                    ha="right",
                    va="center",
                    fontsize=7,
                )
    zoom.set_title("zoom on the multiplexed client", fontsize=9)
    fig.suptitle(
        "Turn latency: warm, after an interruption (per flush_mode), socket per request",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"\nchart written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=20, help="measured interruptions per phase"
    )
    parser.add_argument("--warm", type=int, default=10, help="uninterrupted turns")
    parser.add_argument(
        "--pause-ms", type=float, default=300, help="gap after tts_flush_end"
    )
    parser.add_argument(
        "--flush-after-frames",
        type=int,
        default=3,
        help="frames heard before the flush",
    )
    parser.add_argument(
        "--baseline", type=int, default=20, help="socket-per-request turns"
    )
    parser.add_argument(
        "--chart", type=Path, default=Path(__file__).with_name("ttfb_distributions.png")
    )
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated flush modes"
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--verbose", action="store_true", help="print the TEN log")
    add_latency_args(parser, rtf=1.0)
    args = parser.parse_args()

    latency = latency_from_args(args)
    supported = flush_mode_supported()
    print(
        f"latency model: handshake {args.handshake_ms:g} ms, rtt {args.rtt_ms:g} ms, first audio "
        f"{args.first_audio_ms:g} ms, rtf {args.rtf:g} -> TTFB floor {args.rtt_ms + args.first_audio_ms:g} ms"
    )
    if not supported:
        print(
            "NOTE: this build has no params.flush_mode: every column runs the same (drop) code"
        )
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    with (
        tenhost.AppRunner(),
        ServerThread(ServerConfig(latency=latency, voice_engine="synthetic")) as server,
    ):
        quiet_ten_logs(args.verbose)
        results = [run_mode(server, mode, args, supported) for mode in modes]
        base = asyncio.run(socket_per_request(server.url, args.baseline, 0.2))
    report(results, base, args)
    if args.json:
        write_json(args.json, results, base)
    if not args.no_chart:
        write_chart(
            args.chart, results, base, args.pause_ms, args.rtt_ms + args.first_audio_ms
        )


if __name__ == "__main__":
    main()
