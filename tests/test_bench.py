"""Smoke test of the benchmark scripts: each one imports and parses its flags.

The benchmarks print numbers and assert none; running them takes minutes. This
only catches a script broken by a change elsewhere (an import, a moved helper).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize(
    "script", ["ttfb.py", "interrupt.py", "idle.py", "resilience.py"]
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
