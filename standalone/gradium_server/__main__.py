"""``python -m gradium_server``: run the local Gradium TTS server as a process.

Prints exactly one line ``listening on ws://HOST:PORT/api/speech/tts`` (flushed) once
the socket is bound, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .config import LatencyModel, Limits, ServerConfig, default_voice_engine
from .server import GradiumServer


def build_parser() -> argparse.ArgumentParser:
    d_lat, d_lim = LatencyModel(), Limits()
    p = argparse.ArgumentParser(prog="gradium_server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 = any free port")
    p.add_argument("--rtt-ms", type=float, default=d_lat.rtt_s * 1000)
    p.add_argument("--first-audio-ms", type=float, default=d_lat.first_audio_s * 1000)
    p.add_argument("--handshake-ms", type=float, default=d_lat.handshake_s * 1000)
    p.add_argument("--rtf", type=float, default=d_lat.rtf)
    p.add_argument("--instant", action="store_true", help="all latencies zero")
    p.add_argument("--session-cap-s", type=float, default=d_lim.session_cap_s)
    p.add_argument("--idle-timeout-s", type=float, default=d_lim.idle_timeout_s)
    p.add_argument("--max-concurrent", type=int, default=d_lim.max_concurrent)
    p.add_argument(
        "--voice", choices=("espeak", "synthetic"), default=default_voice_engine()
    )
    p.add_argument(
        "--api-key",
        action="append",
        default=None,
        help="accepted key (repeatable); default: any key not starting with 'invalid'",
    )
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    latency = (
        LatencyModel.instant()
        if args.instant
        else LatencyModel(
            handshake_s=args.handshake_ms / 1000,
            rtt_s=args.rtt_ms / 1000,
            first_audio_s=args.first_audio_ms / 1000,
            rtf=args.rtf,
        )
    )
    limits = Limits(
        session_cap_s=args.session_cap_s,
        idle_timeout_s=args.idle_timeout_s,
        max_concurrent=args.max_concurrent,
    )
    return ServerConfig(
        api_keys=set(args.api_key) if args.api_key else None,
        voice_engine=args.voice,
        latency=latency,
        limits=limits,
    )


async def serve_until_signalled(config: ServerConfig, host: str, port: int) -> None:
    server = GradiumServer(config)
    await server.start(host, port)
    print(f"listening on {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    asyncio.run(serve_until_signalled(config_from_args(args), args.host, args.port))
    print("stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
