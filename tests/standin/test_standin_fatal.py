"""Where the real runtime ends the process (contract §1.2, §1.7).

In-process, run() raises StandinFatalError; with TEN_STANDIN_FATAL=exit the
stand-in exits like the real runtime (checked in subprocesses).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import standin_probe_ext  # noqa: F401  (registers the probe addons)
import tenhost
from standin_probe_ext.harness import Recorder, data, run

if not tenhost.is_standin():
    pytest.skip("the real runtime exits the process instead", allow_module_level=True)

from ten_runtime import AsyncExtensionTester, StandinFatalError  # noqa: E402

BASIC = "standin_probe_basic"
HERE = Path(__file__).resolve().parent
STANDALONE = HERE.parents[1] / "standalone"


def test_exception_in_extension_callback_fails_the_run(probe_events, caplog):
    tester = Recorder([data("raise", {"message": "probe boom"})])
    with pytest.raises(StandinFatalError) as info:
        run(tester, BASIC)
    text = str(info.value)
    assert "[standin_probe_basic] Uncaught exception: probe boom" in text
    assert "RuntimeError: probe boom" in text  # the original traceback
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(
        m.startswith(
            "[standin_probe_basic] Uncaught exception: probe boom\ntraceback: "
        )
        for m in errors
    )
    # the graph was stopped: on_stop and on_deinit ran
    assert [e[0] for e in probe_events][-2:] == ["stop", "deinit"]


def test_cancelled_error_escaping_a_callback_is_fatal():
    with pytest.raises(StandinFatalError, match="Uncaught exception"):
        run(Recorder([data("raise_cancelled")]), BASIC)


def test_exception_in_tester_callback_fails_the_run():
    class T(Recorder):
        async def on_data(self, ten_env, msg):
            raise ValueError("tester boom")

    with pytest.raises(StandinFatalError, match="Uncaught exception: tester boom"):
        run(T([data("ping")]), BASIC)


def test_exception_in_tester_on_start_fails_the_run():
    class T(AsyncExtensionTester):
        async def on_start(self, ten_env):
            raise KeyError("start boom")

    with pytest.raises(StandinFatalError, match="Uncaught exception: 'start boom'"):
        run(T(), BASIC)


def test_missing_env_var_without_default_fails(probe_events, caplog, monkeypatch):
    monkeypatch.delenv("STANDIN_MISSING_VAR", raising=False)
    line = "Environment variable STANDIN_MISSING_VAR is not found, neither default value is provided."
    with pytest.raises(StandinFatalError, match=line):
        run(Recorder([data("ping")]), BASIC, {"key": "${env:STANDIN_MISSING_VAR}"})
    assert line in [
        r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    ]
    assert [e[0] for e in probe_events] == ["configure"]  # on_init never ran


def test_property_type_mismatch_against_manifest_fails(probe_events):
    with pytest.raises(
        StandinFatalError,
        match=r"Invalid property\. \.num: unsupported conversion from `string` to `int64`",
    ):
        run(Recorder([data("ping")]), BASIC, {"num": "notint"})
    with pytest.raises(StandinFatalError, match="Invalid property"):
        run(Recorder([data("ping")]), BASIC, {"num": 3.7})
    assert "init_begin" not in [e[0] for e in probe_events]


def test_exception_after_run_returned_fails_the_next_run():
    class StopAtOnce(Recorder):
        async def on_start(self, ten_env):
            await super().on_start(ten_env)
            await asyncio.sleep(0.05)
            ten_env.stop_test()

    tester = StopAtOnce([data("late_raise", {"ms": 200})])
    assert run(tester, BASIC) is None
    time.sleep(0.4)
    with pytest.raises(
        StandinFatalError, match="(?s)after a previous test run.*probe late boom"
    ):
        run(Recorder([data("ping")], until=lambda r: True), BASIC)


def test_unknown_addon_fails():
    with pytest.raises(StandinFatalError, match="no_such_addon_xyz"):
        run(Recorder(), "no_such_addon_xyz")


_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {standalone!r})
    sys.path.insert(0, {here!r})
    import tenhost
    tenhost.ensure()
    from standin_probe_ext.harness import Recorder, data, run
    case = sys.argv[1]
    if case == "raise":
        run(Recorder([data("raise", {{"message": "probe boom"}})]), "standin_probe_basic")
    elif case == "env":
        run(Recorder([data("ping")]), "standin_probe_basic", {{"key": "${{env:STANDIN_MISSING_VAR}}"}})
    elif case == "schema":
        run(Recorder([data("ping")]), "standin_probe_basic", {{"num": "notint"}})
    print("RUN RETURNED")
    """
)


def _run_case(case: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "STANDIN_MISSING_VAR"}
    env["TEN_STANDIN_FATAL"] = "exit"
    script = _SCRIPT.format(standalone=str(STANDALONE), here=str(HERE))
    return subprocess.run(
        [sys.executable, "-c", script, case],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_exit_mode_uncaught_exception_exits_with_status_1():
    proc = _run_case("raise")
    assert proc.returncode == 1
    assert "[standin_probe_basic] Uncaught exception: probe boom" in proc.stderr
    assert "RUN RETURNED" not in proc.stdout


def test_exit_mode_missing_env_var_exits_with_status_1():
    proc = _run_case("env")
    assert proc.returncode == 1
    assert (
        "Environment variable STANDIN_MISSING_VAR is not found, neither default value is provided."
        in proc.stderr
    )
    assert "RUN RETURNED" not in proc.stdout


def test_exit_mode_invalid_property_aborts():
    proc = _run_case("schema")
    assert proc.returncode == -6  # SIGABRT, like TEN_ASSERT (status 134 in a shell)
    assert "Invalid property." in proc.stderr
    assert "RUN RETURNED" not in proc.stdout
