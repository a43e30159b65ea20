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


class TenEnvTester(LogMixin):
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

    def _send(self, msg: Any, error_handler) -> TenError | None:
        err = self._node.send(msg, wait=error_handler is not None)
        self._call(error_handler, err)
        return None

    def send_data(self, data, error_handler=None) -> TenError | None:
        return self._send(data, error_handler)

    def send_audio_frame(self, audio_frame, error_handler=None) -> TenError | None:
        return self._send(audio_frame, error_handler)

    def send_video_frame(self, video_frame, error_handler=None) -> TenError | None:
        return self._send(video_frame, error_handler)

    def send_cmd(self, cmd, result_handler=None) -> TenError | None:
        def sink(result: Any) -> None:
            self._call(result_handler, result, None)

        err = self._node.send(cmd, wait=True, sink=sink)
        if err is not None:
            self._call(result_handler, None, err)
        return None

    def return_result(self, result, error_handler=None) -> TenError | None:
        err = self._node.return_result(result)
        self._call(error_handler, err)
        return None

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
