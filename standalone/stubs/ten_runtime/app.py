"""App (contract §1.8): thin; supports the FakeApp pattern of the test conftests.

An ``App`` belongs to the thread that created it. ``run()`` called from any other
thread aborts the process, as the real runtime's thread sanitizer does (verified
on 0.11.71): TEN's conftests create ``FakeApp()`` inside the thread that runs it.
``close()`` may be called from any thread.
"""

from __future__ import annotations

import threading

from ._runtime import (
    PropertyStore,
    abort_process,
    apply_log_config,
    emit,
    raise_late_fatals,
)
from .log_level import LogLevel
from .ten_env import TenEnv


class _AppNode(PropertyStore):
    def __init__(self) -> None:
        self.props: dict = {}
        self.closed = False
        self.events = {s: threading.Event() for s in ("configure", "init", "deinit")}

    def stage_done(self, stage: str) -> None:
        if stage == "configure":
            apply_log_config(self.props)
        if stage in self.events:
            self.events[stage].set()


class App:
    def __init__(self) -> None:
        self._ten_node = _AppNode()
        self._ten_env = TenEnv._create(self._ten_node, None)
        self._ten_closed = threading.Event()
        self._ten_owner = threading.get_ident()

    def on_configure(self, ten_env: TenEnv) -> None:
        ten_env.on_configure_done()

    def on_init(self, ten_env: TenEnv) -> None:
        ten_env.on_init_done()

    def on_deinit(self, ten_env: TenEnv) -> None:
        ten_env.on_deinit_done()

    def run(self, run_in_background: bool) -> None:
        current = threading.get_ident()
        if current != self._ten_owner:
            emit(
                None,
                LogLevel.ERROR,
                f"Access object across threads, current thread {current:#x}, "
                f"but belonging thread {self._ten_owner:#x}.",
            )
            emit(None, LogLevel.ERROR, "ten_py_app_run: Invalid argument.")
            abort_process()
        if run_in_background:
            threading.Thread(target=self._main, name="ten-app", daemon=True).start()
        else:
            self._main()

    def _main(self) -> None:
        node, env = self._ten_node, self._ten_env
        self.on_configure(env)
        node.events["configure"].wait()
        self.on_init(env)
        node.events["init"].wait()
        self._ten_closed.wait()
        self.on_deinit(env)
        node.events["deinit"].wait(10)
        node.closed = True

    def close(self) -> None:
        self._ten_closed.set()
        # A fatal error that happened after its test's run() returned fails here.
        raise_late_fatals()
