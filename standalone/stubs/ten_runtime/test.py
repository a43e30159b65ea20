"""Synchronous ExtensionTester / TenEnvTester (contract §1.8).

Callbacks run on the tester's own thread. ``on_start`` must call
``ten_env_tester.on_start_done()``. Handlers passed to the send calls are called
on the tester's thread: ``error_handler(ten_env_tester, error)`` and
``result_handler(ten_env_tester, result, error)``.
"""

from __future__ import annotations

from typing import Any

from ._runtime import LogMixin
from ._tester_base import _ExtensionTester
from .error import TenError
from .ten_env import SendMixin


class TenEnvTester(LogMixin, SendMixin):
    _log_name = "tester"

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("TenEnvTester is created by the runtime.")

    @classmethod
    def _create(cls, node: Any) -> TenEnvTester:
        env = cls.__new__(cls)
        env._node = node
        return env

    def on_init_done(self) -> None:
        pass

    def on_start_done(self) -> None:
        self._node.start_done = True

    def on_stop_done(self) -> None:
        pass

    def on_deinit_done(self) -> None:
        pass

    def _call(self, handler, *args) -> None:
        if handler is not None:
            self._node.call_soon(handler, self, *args)

    def stop_test(self, error: TenError | None = None) -> None:
        self._node.graph.stop_test(error)
        return None


class ExtensionTester(_ExtensionTester):
    _ten_is_async = False

    def on_init(self, ten_env_tester: TenEnvTester) -> None:
        ten_env_tester.on_init_done()

    def on_start(self, ten_env_tester: TenEnvTester) -> None:
        ten_env_tester.on_start_done()

    def on_stop(self, ten_env_tester: TenEnvTester) -> None:
        ten_env_tester.on_stop_done()

    def on_deinit(self, ten_env_tester: TenEnvTester) -> None:
        ten_env_tester.on_deinit_done()

    def on_cmd(self, ten_env_tester: TenEnvTester, cmd) -> None:
        pass

    def on_data(self, ten_env_tester: TenEnvTester, data) -> None:
        pass

    def on_audio_frame(self, ten_env_tester: TenEnvTester, audio_frame) -> None:
        pass

    def on_video_frame(self, ten_env_tester: TenEnvTester, video_frame) -> None:
        pass
