"""AsyncExtensionTester / AsyncTenEnvTester (contract §1.8)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from ._runtime import LogMixin
from ._tester_base import _ExtensionTester
from .async_ten_env import _result_sink
from .audio_frame import AudioFrame
from .cmd import Cmd
from .cmd_result import CmdResult
from .data import Data
from .error import TenError
from .send_options import SendOptions
from .video_frame import VideoFrame


class AsyncTenEnvTester(LogMixin):
    _log_name = "tester"

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("AsyncTenEnvTester is created by the runtime.")

    @classmethod
    def _create(cls, node: Any) -> AsyncTenEnvTester:
        env = cls.__new__(cls)
        env._node = node
        return env

    async def _send(self, msg: Any, options: SendOptions | None) -> TenError | None:
        wait = bool(options is not None and options.wait_for_result)
        err = self._node.send(msg, wait=wait)
        if wait:
            await asyncio.sleep(0)
        return err

    async def send_data(
        self, data: Data, options: SendOptions | None = None
    ) -> TenError | None:
        return await self._send(data, options)

    async def send_audio_frame(
        self, audio_frame: AudioFrame, options: SendOptions | None = None
    ) -> TenError | None:
        return await self._send(audio_frame, options)

    async def send_video_frame(
        self, video_frame: VideoFrame, options: SendOptions | None = None
    ) -> TenError | None:
        return await self._send(video_frame, options)

    async def send_cmd(
        self, cmd: Cmd, options: SendOptions | None = None
    ) -> tuple[CmdResult | None, TenError | None]:
        queue: asyncio.Queue = asyncio.Queue()
        err = self._node.send(
            cmd, wait=True, sink=_result_sink(asyncio.get_running_loop(), queue)
        )
        if err is not None:
            return None, err
        while True:
            result = await queue.get()
            if result.is_final():
                return result, None

    async def send_cmd_ex(
        self, cmd: Cmd, options: SendOptions | None = None
    ) -> AsyncGenerator[tuple[CmdResult | None, TenError | None], None]:
        queue: asyncio.Queue = asyncio.Queue()
        err = self._node.send(
            cmd, wait=True, sink=_result_sink(asyncio.get_running_loop(), queue)
        )
        if err is not None:
            yield None, err
            return
        while True:
            result = await queue.get()
            yield result, None
            if result.is_completed():
                return

    async def return_result(
        self, result: CmdResult, options: SendOptions | None = None
    ) -> TenError | None:
        return self._node.return_result(result)

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
