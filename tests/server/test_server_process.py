"""Process mode (``python -m gradium_server``) and the example raw client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from gradium_server import espeak_available, synthesize_synthetic

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        env = dict(
            os.environ, PYTHONPATH=str(ROOT / "standalone"), PYTHONUNBUFFERED="1"
        )
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gradium_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.line = self.proc.stdout.readline().strip()
        self.url = f"ws://127.0.0.1:{self.port}/api/speech/tts"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.stdout.close()
            self.proc.stderr.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_process_mode_serves_and_stops_cleanly(h, sig):
    srv = ServerProcess(
        "--voice",
        "synthetic",
        "--rtt-ms",
        "0",
        "--first-audio-ms",
        "0",
        "--handshake-ms",
        "0",
        "--rtf",
        "0",
        "--api-key",
        "k1",
        "--api-key",
        "k2",
    )
    try:
        assert srv.line == f"listening on {srv.url}"
        res = await h.synth(srv.url, "process mode", key="k2")
        assert (
            res.audio() == synthesize_synthetic("process mode", 16000).samples.tobytes()
        )
        assert res.close_code == 1000
        bad = await h.synth(srv.url, "nope", key="k3")
        assert bad.error["code"] == 1008
    finally:
        code = srv.stop(sig)
    assert code == 0


async def test_process_mode_latency_flags(h):
    import time

    with ServerProcess(
        "--voice",
        "synthetic",
        "--handshake-ms",
        "150",
        "--rtt-ms",
        "0",
        "--first-audio-ms",
        "0",
        "--rtf",
        "0",
    ) as srv:
        assert srv.line.startswith("listening on ")
        t0 = time.monotonic()
        ws = await h.open_ws(srv.url)
        assert time.monotonic() - t0 >= 0.14
        await ws.close()


@pytest.mark.skipif(not espeak_available(), reason="espeakng_loader not installed")
def test_raw_websockets_client_example_writes_speech_wav(tmp_path):
    text = "Hello from the local Gradium server. This sentence is spoken by eSpeak."
    out = tmp_path / "hello.wav"
    with ServerProcess(
        "--voice",
        "espeak",
        "--rtt-ms",
        "0",
        "--first-audio-ms",
        "0",
        "--handshake-ms",
        "0",
        "--rtf",
        "0",
    ) as srv:
        assert srv.line.startswith("listening on ")
        proc = subprocess.run(
            [
                PYTHON,
                str(ROOT / "examples" / "raw_websockets_client.py"),
                "--url",
                srv.url,
                "--api-key",
                "local-key",
                "--sample-rate",
                "16000",
                "--out",
                str(out),
                text,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    with wave.open(str(out), "rb") as wav:
        assert wav.getframerate() == 16000
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        frames = wav.readframes(wav.getnframes())
    samples = [
        int.from_bytes(frames[i : i + 2], "little", signed=True)
        for i in range(0, len(frames), 2)
    ]
    duration = len(samples) / 16000
    assert summary["sample_rate"] == 16000
    assert summary["duration_s"] == pytest.approx(duration)
    assert 0.04 * len(text) <= duration <= 0.15 * len(text)
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    assert rms > 500  # speech, not silence
    words = summary["words"]
    assert [w["text"] for w in words] == text.split()
    for w in words:
        assert 0 <= w["start_s"] <= w["stop_s"] <= duration + 1e-6
