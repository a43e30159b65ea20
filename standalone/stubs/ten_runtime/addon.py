"""Addon (contract §1.3): ``on_create_instance`` must call ``on_create_instance_done``."""

from __future__ import annotations

from typing import Any

from .ten_env import TenEnv


class Addon:
    def on_create_instance(self, ten_env: TenEnv, name: str, context: Any) -> None:
        pass
