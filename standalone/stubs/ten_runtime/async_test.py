"""AsyncExtensionTester / AsyncTenEnvTester (contract §1.8)."""

from __future__ import annotations

from typing import Any

from ._runtime import LogMixin
from ._tester_base import _ExtensionTester
from .async_ten_env import AsyncSendMixin
from .audio_frame import AudioFrame
from .cmd import Cmd
from .data import Data
from .error import TenError
from .video_frame import VideoFrame


class AsyncTenEnvTester(LogMixin, AsyncSendMixin):
    _log_name = "tester"

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("AsyncTenEnvTester is created by the runtime.")

    @classmethod
    def _create(cls, node: Any) -> AsyncTenEnvTester:
        env = cls.__new__(cls)
        env._node = node
        return env

    def stop_test(self, error: TenError | None = None) -> None:
        """The first call decides what run() returns; later calls change nothing."""
        self._node.graph.stop_test(error)
        return None


class AsyncExtensionTester(_ExtensionTester):
    _ten_is_async = True

    async def on_init(self, ten_env_tester: AsyncTenEnvTester) -> None:
        pass

    async def on_start(self, ten_env_tester: AsyncTenEnvTester) -> None:
        pass

    async def on_stop(self, ten_env_tester: AsyncTenEnvTester) -> None:
        pass

    async def on_deinit(self, ten_env_tester: AsyncTenEnvTester) -> None:
        pass

    async def on_cmd(self, ten_env_tester: AsyncTenEnvTester, cmd: Cmd) -> None:
        pass

    async def on_data(self, ten_env_tester: AsyncTenEnvTester, data: Data) -> None:
        pass

    async def on_audio_frame(
        self, ten_env_tester: AsyncTenEnvTester, audio_frame: AudioFrame
    ) -> None:
        pass

    async def on_video_frame(
        self, ten_env_tester: AsyncTenEnvTester, video_frame: VideoFrame
    ) -> None:
        pass
