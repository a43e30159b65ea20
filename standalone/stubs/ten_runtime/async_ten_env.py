"""AsyncTenEnv (contract §1.5): awaitable property calls and sends, sync logs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from ._runtime import LogMixin
from .audio_frame import AudioFrame
from .cmd import Cmd
from .cmd_result import CmdResult
from .data import Data
from .error import TenError
from .send_options import SendOptions
from .video_frame import VideoFrame


def _result_sink(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue):
    def sink(result: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, result)
        except RuntimeError:
            pass  # the sender's loop is gone

    return sink


class AsyncSendMixin:
    """The awaitable sends shared by AsyncTenEnv and AsyncTenEnvTester (§1.5, §1.8)."""

    _node: Any

    async def _send(self, msg: Any, options: SendOptions | None) -> TenError | None:
        wait = bool(options is not None and options.wait_for_result)
        err = self._node.send(msg, wait=wait)
        if wait:
            await asyncio.sleep(0)
        return err

    async def send_data(
        self, data: Data, options: SendOptions | None = None
    ) -> TenError | None:
        """Fire-and-forget: schema failures are lost unless wait_for_result=True."""
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


class AsyncTenEnv(LogMixin, AsyncSendMixin):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("AsyncTenEnv is created by the runtime.")

    @classmethod
    def _create(cls, node: Any, name: str | None) -> AsyncTenEnv:
        env = cls.__new__(cls)
        env._node = node
        env._log_name = name
        return env

    # Each property call yields once, like the real round trip to the C core.

    async def get_property_to_json(
        self, path: str | None = None
    ) -> tuple[str, TenError | None]:
        await asyncio.sleep(0)
        return self._node.prop_get(path, "json")

    async def get_property_string(self, path: str) -> tuple[str, TenError | None]:
        await asyncio.sleep(0)
        return self._node.prop_get(path, "string")

    async def get_property_int(self, path: str) -> tuple[int, TenError | None]:
        await asyncio.sleep(0)
        return self._node.prop_get(path, "int")

    async def get_property_bool(self, path: str) -> tuple[bool, TenError | None]:
        await asyncio.sleep(0)
        return self._node.prop_get(path, "bool")

    async def get_property_float(self, path: str) -> tuple[float, TenError | None]:
        await asyncio.sleep(0)
        return self._node.prop_get(path, "float")

    async def is_property_exist(self, path: str) -> tuple[bool, TenError | None]:
        await asyncio.sleep(0)
        return self._node.prop_exists(path)

    async def set_property_from_json(
        self, path: str | None, json_str: str
    ) -> TenError | None:
        await asyncio.sleep(0)
        # Text that is not JSON raises (observed), it does not return an error.
        return self._node.prop_set_json(
            path, json_str, "ten_env.set_property_from_json_async"
        )

    async def set_property_string(self, path: str, value: str) -> TenError | None:
        await asyncio.sleep(0)
        return self._node.prop_set(path, str(value))

    async def set_property_int(self, path: str, value: int) -> TenError | None:
        await asyncio.sleep(0)
        return self._node.prop_set(path, int(value))

    async def set_property_bool(self, path: str, value: bool) -> TenError | None:
        await asyncio.sleep(0)
        return self._node.prop_set(path, bool(value))

    async def set_property_float(self, path: str, value: float) -> TenError | None:
        await asyncio.sleep(0)
        return self._node.prop_set(path, float(value))

    async def init_property_from_json(self, json_str: str) -> TenError | None:
        await asyncio.sleep(0)
        return self._node.prop_init_json(json_str)
