"""Smoke test of the benchmark scripts: each one imports and parses its flags.

The benchmarks print numbers and assert none; running them takes minutes. This
only catches a script broken by a change elsewhere (an import, a moved helper),
plus a tiny run of the two that load a node of their own from bench/addons (the
CPU floor, the idle baseline): TEN loads such a node only from the app folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize(
    "script", ["ttfb.py", "interrupt.py", "idle.py", "resilience.py", "cpu.py"]
)
def test_bench_script_help(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: "), done.stdout


def test_cpu_benchmark_tiny_run(tmp_path: Path) -> None:
    out = tmp_path / "cpu.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "cpu.py"),
            "--requests=3",
            "--runs=1",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "own share (package - floor)" in done.stdout, done.stdout
    result = json.loads(out.read_text())
    runs = {r["kind"]: r for r in result["runs"]}
    assert set(runs) == {"package", "floor"}, result["runs"]
    for r in runs.values():
        assert "error" not in r, r
        assert r["cpu_s"] > 0 and r["frames"] > 0
    # both nodes handled the same audio: the same server frames and bytes
    assert runs["package"]["frames"] == runs["floor"]["frames"]
    assert runs["package"]["audio_bytes"] == runs["floor"]["audio_bytes"]
    assert "share_us_per_frame" in result["summary"]


def test_idle_baseline_node_starts() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "idle.py"),
            "--child",
            "baseline",
            "2",
            "--window-s=0.2",
        ],
        capture_output=True,
        text=True,
        timeout=110,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-2000:]
    result = json.loads(lines[-1])
    assert "error" not in result, result
    assert result["failures"] == [] and result["n"] == 2
