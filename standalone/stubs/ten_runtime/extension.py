"""Synchronous Extension: each lifecycle callback must call ``ten_env.on_*_done()``."""

from __future__ import annotations

from .ten_env import TenEnv


class Extension:
    def __init__(self, name: str) -> None:
        self._ten_extension_name = name

    def on_configure(self, ten_env: TenEnv) -> None:
        ten_env.on_configure_done()

    def on_init(self, ten_env: TenEnv) -> None:
        ten_env.on_init_done()

    def on_start(self, ten_env: TenEnv) -> None:
        ten_env.on_start_done()

    def on_stop(self, ten_env: TenEnv) -> None:
        ten_env.on_stop_done()

    def on_deinit(self, ten_env: TenEnv) -> None:
        ten_env.on_deinit_done()

    def on_cmd(self, ten_env: TenEnv, cmd) -> None:
        pass

    def on_data(self, ten_env: TenEnv, data) -> None:
        pass

    def on_audio_frame(self, ten_env: TenEnv, audio_frame) -> None:
        pass

    def on_video_frame(self, ten_env: TenEnv, video_frame) -> None:
        pass
