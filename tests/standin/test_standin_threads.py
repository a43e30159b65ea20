"""Threads: TEN_PYTHON_THREAD_MODE, the tester's own thread, and the App's thread.

Contract §1.2 (one shared loop in ``PythonGlobalMainThread`` by default; a loop per
extension with ``multi_thread``) and §1.8 (the tester runs its own loop in its own
thread; an ``App`` must run in the thread that created it).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import standin_probe_ext  # noqa: F401  (the probes; conftest installs their addons)
import tenhost
from standin_probe_ext.harness import Recorder, data, run

if not tenhost.is_standin():
    pytest.skip("stand-in threading internals", allow_module_level=True)

BASIC = "standin_probe_basic"
HERE = Path(__file__).resolve().parent
STANDALONE = HERE.parents[1] / "standalone"
BLOCK_MS = 2000


class _WhoAmI(Recorder):
    """Records the tester's own thread, asks the extension for its thread, and keeps
    its graph alive until every graph in ``answers`` has its answer (so that no
    thread has ended, and had its id reused, before the comparison)."""

    def __init__(self, tag: str, answers: list, all_in: threading.Event) -> None:
        super().__init__([data("whoami", {"tag": tag})])
        self.answers = answers
        self.all_in = all_in

    async def on_start(self, ten_env) -> None:
        self.tester_thread = threading.current_thread().name
        self.tester_ident = threading.get_ident()
        self.tester_loop = id(asyncio.get_running_loop())
        await super().on_start(ten_env)
        await asyncio.to_thread(self.all_in.wait, 10)
        ten_env.stop_test()

    async def on_data(self, ten_env, msg) -> None:
        await super().on_data(ten_env, msg)
        if msg.get_name() == "me":
            self.answers.append(msg.get_name())
            if len(self.answers) == 2:
                self.all_in.set()


def _run_side_by_side(testers: list[Recorder]) -> list:
    """Run several graphs at once, each from its own Python thread."""
    results: list = [None] * len(testers)

    def one(i: int) -> None:
        results[i] = run(testers[i], BASIC)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(testers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def _pair() -> list[_WhoAmI]:
    answers: list = []
    all_in = threading.Event()
    return [_WhoAmI("a", answers, all_in), _WhoAmI("b", answers, all_in)]


def test_single_thread_mode_runs_every_extension_on_one_shared_loop(monkeypatch):
    monkeypatch.delenv("TEN_PYTHON_THREAD_MODE", raising=False)  # the default
    testers = _pair()
    assert _run_side_by_side(testers) == [None, None]
    (a,), (b,) = testers[0].named("me"), testers[1].named("me")
    assert a["thread"] == b["thread"] == "PythonGlobalMainThread"
    assert a["ident"] == b["ident"] and a["loop"] == b["loop"]
    for t in testers:  # the tester has a loop and a thread of its own
        assert t.tester_ident != a["ident"] and t.tester_loop != a["loop"]
    assert testers[0].tester_ident != testers[1].tester_ident


def test_multi_thread_mode_gives_each_extension_its_own_loop_thread(monkeypatch):
    monkeypatch.setenv("TEN_PYTHON_THREAD_MODE", "multi_thread")
    testers = _pair()
    assert _run_side_by_side(testers) == [None, None]
    (a,), (b,) = testers[0].named("me"), testers[1].named("me")
    assert a["ident"] != b["ident"] and a["loop"] != b["loop"]
    assert "PythonGlobalMainThread" not in (a["thread"], b["thread"])
    for t in testers:
        assert t.tester_ident not in (a["ident"], b["ident"])


def _blocked_while_other_runs(probe_events) -> tuple[float, float]:
    """Extension A blocks its thread; extension B answers a ping meanwhile.

    Returns (when B's pong reached its tester, when A's block ended).
    """
    a = Recorder([data("block", {"ms": BLOCK_MS})], until=lambda r: r.named("blocked"))
    pong_at: list[float] = []

    class B(Recorder):
        async def on_data(self, ten_env, msg):
            if msg.get_name() == "pong":
                pong_at.append(time.monotonic())
            await super().on_data(ten_env, msg)

    b = B([data("ping")], until=lambda r: r.named("pong"))
    results: dict[str, object] = {}
    ta = threading.Thread(target=lambda: results.setdefault("a", run(a, BASIC)))
    ta.start()
    deadline = time.monotonic() + 10
    while not any(e[0] == "block_start" for e in probe_events):
        assert time.monotonic() < deadline, "extension A never started blocking"
        time.sleep(0.01)
    results["b"] = run(b, BASIC)
    ta.join(30)
    assert results == {"a": None, "b": None}
    (block_end,) = [e[1] for e in probe_events if e[0] == "block_end"]
    return pong_at[0], block_end


def test_a_blocking_call_stalls_every_extension_in_single_thread_mode(
    monkeypatch, probe_events
):
    monkeypatch.setenv("TEN_PYTHON_THREAD_MODE", "single_thread")
    pong_at, block_end = _blocked_while_other_runs(probe_events)
    assert pong_at >= block_end  # B could not even start until A let go


def test_a_blocking_call_stalls_only_its_own_extension_in_multi_thread_mode(
    monkeypatch, probe_events
):
    monkeypatch.setenv("TEN_PYTHON_THREAD_MODE", "multi_thread")
    pong_at, block_end = _blocked_while_other_runs(probe_events)
    assert pong_at < block_end  # B answered while A was still blocked


def test_tester_on_start_does_not_wait_for_the_extension(probe_events):
    class T(Recorder):
        async def on_start(self, ten_env):
            probe_events.append(("tester_start",))
            await super().on_start(ten_env)

    tester = T([data("ping")], until=lambda r: r.named("pong"))
    assert run(tester, BASIC, {"init_delay_ms": 300}) is None
    names = [e[0] for e in probe_events]
    assert names.index("tester_start") < names.index("init_end")
    assert tester.named("pong") == [{}]  # held until on_init, then delivered


def test_tester_handles_messages_while_its_on_start_awaits():
    class T(Recorder):
        async def on_start(self, ten_env):
            await super().on_start(ten_env)
            await asyncio.sleep(0.8)
            self.seen_during_on_start = list(self.named("pong"))
            ten_env.stop_test()

    tester = T([data("ping", {"v": 1})])
    assert run(tester, BASIC) is None
    assert tester.seen_during_on_start == [{"v": 1}]


_APP_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    sys.path.insert(0, {standalone!r})
    sys.path.insert(0, {here!r})
    import tenhost
    tenhost.ensure()
    import standin_probe_ext
    standin_probe_ext.install()
    case = sys.argv[1]
    if case == "wrong_thread":
        from ten_runtime import App
        app = App()  # created here, run from another thread
        t = threading.Thread(target=lambda: app.run(False))
        t.start()
        t.join(5)
        print("APP THREAD RETURNED", flush=True)
    elif case == "app_runner":
        from standin_probe_ext.harness import Recorder, data, run
        with tenhost.AppRunner():
            err = run(Recorder([data("ping")], until=lambda r: r.named("pong")),
                      "standin_probe_basic")
            print("RUN RETURNED", err, flush=True)
    print("END", flush=True)
    """
)


def _run_app_case(case: str) -> subprocess.CompletedProcess:
    script = _APP_SCRIPT.format(standalone=str(STANDALONE), here=str(HERE))
    return subprocess.run(
        [sys.executable, "-c", script, case],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_app_run_from_a_thread_other_than_its_creator_aborts_the_process():
    proc = _run_app_case("wrong_thread")
    assert proc.returncode == -6  # SIGABRT (status 134 in a shell)
    assert "Access object across threads, current thread 0x" in proc.stderr
    assert ", but belonging thread 0x" in proc.stderr
    assert "ten_py_app_run: Invalid argument." in proc.stderr
    assert "APP THREAD RETURNED" not in proc.stdout and "END" not in proc.stdout


def test_app_runner_creates_the_app_in_the_thread_that_runs_it():
    proc = _run_app_case("app_runner")
    assert proc.returncode == 0, proc.stderr
    assert "RUN RETURNED None" in proc.stdout and "END" in proc.stdout
    assert "Access object across threads" not in proc.stderr
