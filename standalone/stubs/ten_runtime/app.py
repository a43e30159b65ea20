"""App (contract §1.8): thin; supports the FakeApp pattern of the test conftests."""

from __future__ import annotations

import threading

from ._runtime import PropertyStore, apply_log_config, raise_late_fatals
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

    def on_configure(self, ten_env: TenEnv) -> None:
        ten_env.on_configure_done()

    def on_init(self, ten_env: TenEnv) -> None:
        ten_env.on_init_done()

    def on_deinit(self, ten_env: TenEnv) -> None:
        ten_env.on_deinit_done()

    def run(self, run_in_background: bool) -> None:
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
