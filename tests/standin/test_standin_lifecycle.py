"""Extension lifecycle, property merge and placeholders (contract §1.2, §1.4, §1.5, §1.7)."""

from __future__ import annotations

import asyncio
import logging
import time

import standin_probe_ext  # noqa: F401  (the probes; conftest installs their addons)
from standin_probe_ext.harness import Recorder, data, run

BASIC = "standin_probe_basic"


def _init_props(events) -> dict:
    return next(e[1] for e in events if e[0] == "init_end")


def _stop_on(name: str):
    return lambda r: bool(r.named(name))


def test_lifecycle_order_and_stop_deinit_before_run_returns(probe_events):
    tester = Recorder([data("ping", {"v": 1})], until=_stop_on("pong"))
    assert run(tester, BASIC) is None
    assert [e[0] for e in probe_events if e[0] != "data"] == [
        "configure",
        "init_begin",
        "init_end",
        "start",
        "stop",
        "deinit",
    ]
    assert tester.named("pong") == [{"v": 1}]


def test_on_configure_sees_no_properties(probe_events):
    tester = Recorder([data("ping")], until=_stop_on("pong"))
    assert run(tester, BASIC, {"a": "test_a"}) is None
    configure = probe_events[0]
    assert configure[:2] == ("configure", ("{}", None))
    assert configure[2:] == ("", 100000, "Failed to find value: a")


def test_package_properties_are_deep_merged_with_test_json(probe_events):
    props = {"a": "test_a", "params": {"x": "test_x", "inner": {"q": 20}}, "new": [1]}
    tester = Recorder([data("ping")], until=_stop_on("pong"))
    assert run(tester, BASIC, props) is None
    assert _init_props(probe_events) == {
        "a": "test_a",
        "num": 1,
        "params": {"x": "test_x", "y": "pkg_y", "inner": {"p": 1, "q": 20}},
        "pkg_env": "pkg_default",
        "new": [1],
    }


def test_env_placeholders(probe_events, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ten")
    monkeypatch.setenv("STANDIN_SET_VAR", "the_value")
    monkeypatch.delenv("STANDIN_UNSET_VAR", raising=False)
    props = {
        "with_default": "${env:STANDIN_UNSET_VAR|the_default}",
        "empty_default": "${env:STANDIN_UNSET_VAR|}",
        "set": "${env:STANDIN_SET_VAR}",
        "set_with_default": "${env:STANDIN_SET_VAR|ignored}",
        "partial": "x ${env:STANDIN_SET_VAR} y",
        "nested": {"deep": ["${env:STANDIN_SET_VAR}"]},
    }
    tester = Recorder([data("ping")], until=_stop_on("pong"))
    assert run(tester, BASIC, props) is None
    seen = _init_props(probe_events)
    assert seen["with_default"] == "the_default"
    assert seen["empty_default"] == ""
    assert seen["set"] == "the_value"
    assert seen["set_with_default"] == "the_value"
    assert seen["partial"] == "x ${env:STANDIN_SET_VAR} y"
    assert seen["nested"] == {"deep": ["the_value"]}
    assert seen["pkg_env"] == "pkg_default"  # placeholder left in property.json
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert (
        "Environment variable STANDIN_UNSET_VAR is not found, using default value the_default."
        in infos
    )


def test_messages_sent_before_on_init_arrive_after_it_and_before_on_start(probe_events):
    tester = Recorder([data("ping", {"early": True})], until=_stop_on("pong"))
    assert run(tester, BASIC, {"init_delay_ms": 300}) is None
    names = [e[0] for e in probe_events]
    assert names[:5] == ["configure", "init_begin", "init_end", "data", "start"]


def test_on_data_handlers_run_concurrently_in_send_order(probe_events):
    sends = [
        data("sleep", {"idx": i, "ms": ms})
        for i, ms in enumerate([300, 200, 100, 0, 50])
    ]
    """What the runtime guarantees: handlers start in send order and do not wait for
    each other. When each ends depends on the machine (under load the 0 ms one can
    end before the next one starts), so only orders that follow from the start
    order and the sleep lengths are asserted."""
    tester = Recorder(sends, until=lambda r: len(r.named("slept")) == 5)
    assert run(tester, BASIC) is None
    sleeps = [e for e in probe_events if e[0] in ("sleep_start", "sleep_end")]
    assert [i for kind, i in sleeps if kind == "sleep_start"] == list(range(5))
    ends = [i for kind, i in sleeps if kind == "sleep_end"]
    assert sorted(ends) == list(range(5))
    # concurrent: every handler started before the 300 ms one ended
    assert sleeps.index(("sleep_end", 0)) > sleeps.index(("sleep_start", 4))
    # started later and sleeping longer ends later: 3 (0 ms) before 4 (50 ms),
    # and the first one (300 ms) last
    assert ends.index(3) < ends.index(4) and ends[-1] == 0
    slept = [p["idx"] for p in tester.named("slept")]
    assert slept.index(3) < slept.index(4) and slept[-1] == 0


def test_the_base_class_keeps_a_task_of_its_own_until_teardown(
    probe_events, monkeypatch
):
    """§1.4 (observed): ``AsyncExtension._configure_routine()``, a coroutine of the
    extension object, is still pending on the extension's loop after its on_stop
    returned; it ends when the extension is torn down."""
    from standin_probe_ext import extension as probe

    seen = []
    on_stop = probe.ProbeBasicExtension.on_stop

    async def on_stop_(self, ten_env):
        await on_stop(self, ten_env)
        for task in asyncio.all_tasks():
            coro = task.get_coro()
            frame = getattr(coro, "cr_frame", None)
            if (
                not task.done()
                and getattr(coro, "__name__", "") == "_configure_routine"
                and frame is not None
                and frame.f_locals.get("self") is self
            ):
                seen.append(task)

    monkeypatch.setattr(probe.ProbeBasicExtension, "on_stop", on_stop_)
    tester = Recorder([data("ping", {"v": 1})], until=_stop_on("pong"))
    assert run(tester, BASIC) is None
    (task,) = seen
    deadline = time.monotonic() + 5
    while not task.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert task.done() and not task.cancelled()


def test_env_getters_return_tuples_with_observed_quirks():
    reads = [
        ["to_json", ""],
        ["to_json", "a"],
        ["to_json", "num"],
        ["string", "a"],
        ["string", "num"],
        ["int", "num"],
        ["int", "a"],
        ["float", "num"],
        ["string", "params.x"],
        ["string", "nope"],
        ["int", "nope"],
    ]
    tester = Recorder([data("get", {"reads": reads})], until=_stop_on("got"))
    assert run(tester, BASIC) is None
    got = tester.named("got")[0]
    whole, code, _ = got["to_json:"]
    assert code is None and '\n    "a": "pkg_a"' in whole
    assert got["to_json:a"] == ['"pkg_a"', None, None]
    assert got["to_json:num"] == ["1", None, None]
    assert got["string:a"] == ["pkg_a", None, None]
    assert got["string:num"] == [None, None, None]
    assert got["int:num"] == [1, None, None]
    assert got["int:a"] == [0, None, None]
    assert got["float:num"] == [
        0.0,
        1,
        "The conversion from int64 to float32 is unfit.",
    ]
    assert got["string:params.x"] == ["pkg_x", None, None]
    assert got["string:nope"] == ["", 100000, "Failed to find value: nope"]
    assert got["int:nope"] == [0, 100000, "Failed to find value: nope"]


def test_each_run_gets_a_fresh_instance(probe_events):
    ids = []
    for _ in range(2):
        tester = Recorder([data("ping")], until=_stop_on("pong"))
        assert run(tester, BASIC) is None
        ids.append(next(e[1] for e in probe_events if e[0] == "init_begin"))
        probe_events.clear()
    assert ids[0] != ids[1]
