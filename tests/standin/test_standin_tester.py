"""The tester API (contract §1.8) and message copying."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import standin_probe_ext  # noqa: F401  (the probes; conftest installs their addons)
import tenhost
from standin_probe_ext.harness import Recorder, data, run
from ten_runtime import (
    AsyncExtensionTester,
    Cmd,
    ExtensionTester,
    LogLevel,
    StatusCode,
    TenError,
    TenErrorCode,
)

BASIC = "standin_probe_basic"


class _Stopper(AsyncExtensionTester):
    def __init__(self, errors):
        super().__init__()
        self.errors = errors
        self.returns = []

    async def on_start(self, ten_env):
        for err in self.errors:
            self.returns.append(ten_env.stop_test(err))


def test_stop_test_error_is_returned_by_run_and_the_first_wins():
    first = TenError.create(TenErrorCode.ErrorCodeGeneric, "my failure")
    second = TenError.create(TenErrorCode.ErrorCodeTimeout, "other")
    tester = _Stopper([first, second, None])
    err = run(tester, BASIC)
    assert err is not None
    assert (err.error_code(), err.error_message()) == (1, "my failure")
    assert tester.returns == [None, None, None]


def test_stop_test_without_error_makes_run_return_none():
    assert run(_Stopper([None]), BASIC) is None


def test_timeout_returns_error_code_8():
    tester = AsyncExtensionTester()
    tester.set_test_mode_single(BASIC)
    tester.set_timeout(500_000)
    start = time.monotonic()
    err = tester.run()
    elapsed = time.monotonic() - start
    assert err is not None
    assert (err.error_code(), err.error_message()) == (8, "Test timeout.")
    assert 0.45 <= elapsed < 5


def test_cmd_round_trip(probe_events):
    class T(AsyncExtensionTester):
        async def on_start(self, ten_env):
            cmd = Cmd.create("hello")
            self.result = await ten_env.send_cmd(cmd)
            results = []
            async for result, err in ten_env.send_cmd_ex(Cmd.create("hello_ex")):
                results.append((result.get_status_code(), err, result.is_completed()))
            self.results_ex = results
            ten_env.stop_test()

    tester = T()
    assert run(tester, BASIC) is None
    result, err = tester.result
    assert err is None
    assert result.get_status_code() == StatusCode.OK
    assert result.get_property_string("detail") == ("hello from hello", None)
    assert tester.results_ex == [(StatusCode.OK, None, True)]
    assert ("cmd", "hello") in probe_events and ("cmd", "hello_ex") in probe_events


def test_messages_are_copied_between_tester_and_extension(probe_events):
    class T(Recorder):
        async def on_start(self, ten_env):
            msg = data("ping", {"v": "original"})
            await ten_env.send_data(msg)
            msg.set_property_string("v", "changed after send")

    tester = T(until=lambda r: bool(r.named("pong")))
    assert run(tester, BASIC) is None
    assert tester.named("pong") == [{"v": "original"}]
    assert ("data", "ping", {"v": "original"}) in probe_events


def test_sync_extension_tester_sends_and_receives():
    class T(ExtensionTester):
        def __init__(self):
            super().__init__()
            self.received = []
            self.send_errors = []

        def on_start(self, ten_env_tester):
            msg = data("ping", {"sync": True})
            ten_env_tester.send_data(msg, lambda env, err: self.send_errors.append(err))
            ten_env_tester.on_start_done()

        def on_data(self, ten_env_tester, msg):
            self.received.append(
                (msg.get_name(), json.loads(msg.get_property_to_json(None)[0]))
            )
            ten_env_tester.stop_test()

    tester = T()
    tester.set_test_mode_single(BASIC)
    tester.set_timeout(10_000_000)
    assert tester.run() is None
    assert tester.received == [("pong", {"sync": True})]
    assert tester.send_errors == [None]


def test_sync_tester_send_cmd_result_handler():
    class T(ExtensionTester):
        def on_start(self, ten_env_tester):
            def on_result(env, result, err):
                self.got = (
                    result.get_status_code(),
                    result.get_property_string("detail"),
                    err,
                )
                env.stop_test()

            ten_env_tester.send_cmd(Cmd.create("sync_cmd"), on_result)
            ten_env_tester.on_start_done()

    tester = T()
    tester.set_test_mode_single(BASIC)
    tester.set_timeout(10_000_000)
    assert tester.run() is None
    assert tester.got == (StatusCode.OK, ("hello from sync_cmd", None), None)


def test_log_calls_return_none_and_never_reach_python_logging(caplog, capsys):
    """§1.5: the log calls return None; their lines go to TEN's own log (the app's
    console emitter, stdout here: tenhost.AppRunner configures it), never to
    Python's logging, as on the real runtime."""

    class T(AsyncExtensionTester):
        async def on_start(self, ten_env):
            self.returns = [
                ten_env.log_info("tester info line", category="key_point"),
                ten_env.log_warn("tester warn line", "vendor"),
                ten_env.log_debug(
                    "tester debug line", category="usage", fields={"a": 1}
                ),
                ten_env.log_error("tester error line"),
                ten_env.log(LogLevel.WARN, "tester generic line", category="x"),
            ]
            ten_env.stop_test()

    caplog.set_level(logging.DEBUG)
    tester = T()
    assert run(tester, BASIC) is None
    assert tester.returns == [None] * 5
    assert not [r for r in caplog.records if "tester" in r.getMessage()]
    out = capsys.readouterr().out
    for line in (
        "[key_point] tester info line",
        "[vendor] tester warn line",
        '[usage] tester debug line {"a": 1}',
        "tester error line",
        "[x] tester generic line",
    ):
        assert line in out, out


def test_a_stopped_tester_hears_nothing(probe_events, caplog):
    """§1.8: what the extension sends after the tester's on_stop began is dropped
    (a debug line); what it sends before its on_stop first yields still arrives."""
    caplog.set_level(logging.DEBUG, logger="ten")
    tester = Recorder([data("ping")], until=lambda r: bool(r.named("pong")))
    assert run(tester, BASIC, {"send_at_stop": True}) is None
    assert ("stop_sent",) in probe_events  # the extension did send both
    names = [e[1] for e in tester.events]
    assert "stop_before_yield" in names
    assert "stop_after_yield" not in names
    after = tenhost.after_stop()
    assert [(m["kind"], m["name"], m["in_on_stop"]) for m in after] == [
        ("data", "stop_after_yield", True)
    ]
    assert any(
        r.levelno == logging.DEBUG
        and "dropped data::stop_after_yield" in r.getMessage()
        and "on_stop had begun" in r.getMessage()
        for r in caplog.records
    )


def test_a_command_result_after_the_tester_stopped_is_dropped(probe_events):
    """The extension answers 20 ms late, while its on_stop (50 ms) runs."""
    results = []

    class T(AsyncExtensionTester):
        async def on_start(self, ten_env):
            async def ask():
                results.append(await ten_env.send_cmd(Cmd.create("slow_cmd")))

            self.task = asyncio.get_running_loop().create_task(ask())
            await asyncio.sleep(0)  # the command is on its way
            ten_env.stop_test()

    assert run(T(), BASIC, {"send_at_stop": True}) is None
    assert ("cmd", "slow_cmd") in probe_events
    assert results == []
    assert [m["kind"] for m in tenhost.after_stop()] == ["cmd_result", "data"]
