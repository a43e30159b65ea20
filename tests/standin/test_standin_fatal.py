"""Where the real runtime ends the process (contract §1.2, §1.7).

In-process, run() raises StandinFatalError; with TEN_STANDIN_FATAL=exit the
stand-in exits like the real runtime (checked in subprocesses).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import standin_probe_ext  # noqa: F401  (the probes; conftest installs their addons)
import tenhost
from harness import ext_module
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
    for props in (
        {"num": 3.7},
        {"num": "16000"},
        {"num": True},
        {"flag": "true"},
        {"flag": 1},
        {"ratio": "0.5"},
        {"ratio": False},
        {"label": 5},
    ):
        with pytest.raises(StandinFatalError, match="Invalid property"):
            run(Recorder([data("ping")]), BASIC, props)
    assert "init_begin" not in [e[0] for e in probe_events]


def test_an_integer_for_a_float64_property_is_adjusted_to_a_float(probe_events):
    # Reading of "adjusted and validated" (contract §1.7): the int becomes a float.
    tester = Recorder([data("ping")], until=lambda r: r.named("pong"))
    assert run(tester, BASIC, {"ratio": 2, "flag": False, "label": "x"}) is None
    seen = next(e[1] for e in probe_events if e[0] == "init_end")
    assert seen["ratio"] == 2.0 and type(seen["ratio"]) is float
    assert seen["flag"] is False and seen["label"] == "x"


@pytest.mark.parametrize(
    "params", [{"sample_rate": "16000"}, {"sample_rate": 3.7}, {"dump": "true"}]
)
def test_this_package_with_a_wrong_typed_property_never_starts(params, monkeypatch):
    """The issue's case: "sample_rate": "16000" aborts before our code runs."""
    extension = ext_module("extension")

    initialised = []

    class Spy(extension.GradiumTTSExtension):
        async def on_init(self, ten_env):
            initialised.append(self)
            await super().on_init(ten_env)

    class StopSoon(Recorder):
        async def on_start(self, ten_env):
            await asyncio.sleep(0.3)
            ten_env.stop_test()

    monkeypatch.setattr(extension, "GradiumTTSExtension", Spy)
    base = {"api_key": "k", "url": "ws://127.0.0.1:9/api/speech/tts"}
    with pytest.raises(StandinFatalError, match=r"Invalid property\. \.params\."):
        run(StopSoon(), "gradium_tts_python", {"params": {**base, **params}})
    assert initialised == []
    # control: the same run with right types does reach on_init
    assert run(StopSoon(), "gradium_tts_python", {"params": base}) is None
    assert len(initialised) == 1


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
    import standin_probe_ext
    standin_probe_ext.install()
    from standin_probe_ext.harness import Recorder, data, run
    case = sys.argv[1]
    if case == "raise":
        run(Recorder([data("raise", {{"message": "probe boom"}})]), "standin_probe_basic")
    elif case == "env":
        run(Recorder([data("ping")]), "standin_probe_basic", {{"key": "${{env:STANDIN_MISSING_VAR}}"}})
    elif case == "schema":
        run(Recorder([data("ping")]), "standin_probe_basic", json.loads(sys.argv[2]))
    elif case == "msg_json":
        data("x").set_property_from_json(None, "not json")
    elif case == "tester_raise":
        class T(Recorder):
            async def on_data(self, ten_env, msg):
                raise ValueError("tester boom")
        run(T([data("ping")]), "standin_probe_basic")
    print("RUN RETURNED")
    """
)


def _run_case(case: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "STANDIN_MISSING_VAR"}
    env["TEN_STANDIN_FATAL"] = "exit"
    script = _SCRIPT.format(standalone=str(STANDALONE), here=str(HERE))
    return subprocess.run(
        [sys.executable, "-c", script, case, *args],
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


@pytest.mark.parametrize(
    "props",
    [{"num": "notint"}, {"num": 3.7}, {"num": "16000"}, {"flag": "true"}],
    ids=["string-for-int64", "float-for-int64", "numeric-string", "string-for-bool"],
)
def test_exit_mode_invalid_property_aborts(props):
    proc = _run_case("schema", json.dumps(props))
    assert proc.returncode == -6  # SIGABRT, like TEN_ASSERT (status 134 in a shell)
    assert "Invalid property." in proc.stderr
    assert "RUN RETURNED" not in proc.stdout


def test_exit_mode_tester_exception_is_printed_to_stdout_and_exits_1():
    proc = _run_case("tester_raise")
    assert proc.returncode == 1
    assert "Uncaught exception: tester boom" in proc.stdout
    assert "ValueError: tester boom" in proc.stdout  # the traceback
    assert "RUN RETURNED" not in proc.stdout


def test_exit_mode_invalid_json_on_a_message_aborts():
    proc = _run_case("msg_json")
    assert proc.returncode == -6
    assert "Failed to parse not json" in proc.stderr
    assert "RUN RETURNED" not in proc.stdout
