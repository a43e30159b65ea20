"""AsyncExtension (contract §1.4): async callbacks; ``*_done`` is automatic."""

from __future__ import annotations

import asyncio

from .async_ten_env import AsyncTenEnv
from .audio_frame import AudioFrame
from .cmd import Cmd
from .data import Data
from .video_frame import VideoFrame


class AsyncExtension:
    def __init__(self, name: str) -> None:
        self._ten_extension_name = name

    async def _configure_routine(self, torn_down: asyncio.Event) -> None:
        """The base class's own task (§1.4, observed): a coroutine of the extension
        object, started before ``on_configure``, pending until the extension is torn
        down (after ``on_deinit``). The runtime starts it and sets ``torn_down``."""
        await torn_down.wait()

    async def on_configure(self, ten_env: AsyncTenEnv) -> None:
        pass

    async def on_init(self, ten_env: AsyncTenEnv) -> None:
        pass

    async def on_start(self, ten_env: AsyncTenEnv) -> None:
        pass

    async def on_stop(self, ten_env: AsyncTenEnv) -> None:
        pass

    async def on_deinit(self, ten_env: AsyncTenEnv) -> None:
        pass

    async def on_cmd(self, ten_env: AsyncTenEnv, cmd: Cmd) -> None:
        pass

    async def on_data(self, ten_env: AsyncTenEnv, data: Data) -> None:
        pass

    async def on_audio_frame(
        self, ten_env: AsyncTenEnv, audio_frame: AudioFrame
    ) -> None:
        pass

    async def on_video_frame(
        self, ten_env: AsyncTenEnv, video_frame: VideoFrame
    ) -> None:
        pass
