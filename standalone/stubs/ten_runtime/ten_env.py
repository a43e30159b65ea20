"""TenEnv: the synchronous env of App, Addon and the sync Extension (contract §1.5)."""

from __future__ import annotations

from typing import Any

from ._runtime import LogMixin
from .error import TenError


class SendMixin:
    """The handler-style sends shared by TenEnv and TenEnvTester; ``_call(handler,
    *args)`` runs a handler on the owner's thread."""

    _node: Any

    def _call(self, handler, *args) -> None:
        raise NotImplementedError

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


class TenEnv(LogMixin, SendMixin):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("TenEnv is created by the runtime.")

    @classmethod
    def _create(cls, node: Any, name: str | None) -> TenEnv:
        env = cls.__new__(cls)
        env._node = node
        env._log_name = name
        return env

    # -- lifecycle acknowledgements -------------------------------------------
    def on_configure_done(self) -> None:
        self._node.stage_done("configure")

    def on_init_done(self) -> None:
        self._node.stage_done("init")

    def on_start_done(self) -> None:
        self._node.stage_done("start")

    def on_stop_done(self) -> None:
        self._node.stage_done("stop")

    def on_deinit_done(self) -> None:
        self._node.stage_done("deinit")

    def on_create_instance_done(self, instance: Any, context: Any) -> None:
        self._node.created = instance

    # -- properties --------------------------------------------------------------
    def get_property_to_json(
        self, path: str | None = None
    ) -> tuple[str, TenError | None]:
        return self._node.prop_get(path, "json")

    def get_property_string(self, path: str) -> tuple[str, TenError | None]:
        return self._node.prop_get(path, "string")

    def get_property_int(self, path: str) -> tuple[int, TenError | None]:
        return self._node.prop_get(path, "int")

    def get_property_bool(self, path: str) -> tuple[bool, TenError | None]:
        return self._node.prop_get(path, "bool")

    def get_property_float(self, path: str) -> tuple[float, TenError | None]:
        return self._node.prop_get(path, "float")

    def is_property_exist(self, path: str) -> tuple[bool, TenError | None]:
        return self._node.prop_exists(path)

    def set_property_from_json(
        self, path: str | None, json_str: str
    ) -> TenError | None:
        return self._node.prop_set_json(
            path, json_str, "ten_env.set_property_from_json"
        )

    def set_property_string(self, path: str, value: str) -> TenError | None:
        return self._node.prop_set(path, str(value))

    def set_property_int(self, path: str, value: int) -> TenError | None:
        return self._node.prop_set(path, int(value))

    def set_property_bool(self, path: str, value: bool) -> TenError | None:
        return self._node.prop_set(path, bool(value))

    def set_property_float(self, path: str, value: float) -> TenError | None:
        return self._node.prop_set(path, float(value))

    def init_property_from_json(self, json_str: str) -> TenError | None:
        return self._node.prop_init_json(json_str)

    # -- sending (sync Extension only) ------------------------------------------
    def _call(self, handler, *args) -> None:
        if handler is not None:
            from ._runtime import call_soon

            call_soon(self._node.loop, self._guarded, handler, self, *args)

    def _guarded(self, handler, *args) -> None:
        from ._runtime import guard_sync

        guard_sync(self._node.graph, self._log_name, handler, *args)
