"""Message base: name, source/dests and a JSON property tree (contract §1.6).

Properties are synchronous on messages. Crossing between tester and extension,
every message is copied (``_copy``), as in the real runtime.
"""

from __future__ import annotations

import copy
from typing import Any

from . import _props
from .error import TenError, _make
from .loc import Loc


class Msg:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"Use {type(self).__name__}.create instead.")

    @classmethod
    def _new(cls, name: str):
        obj = cls.__new__(cls)
        obj._name = name
        obj._props = {}
        obj._source = Loc()
        obj._dests: list[Loc] = []
        obj._init_fields()
        return obj

    def _init_fields(self) -> None:
        pass

    def _copy(self):
        other = type(self).__new__(type(self))
        other.__dict__.update(copy.deepcopy(self.__dict__))
        return other

    # -- name / routing ----------------------------------------------------
    def get_name(self) -> str:
        return self._name

    def set_name(self, name: str) -> TenError | None:
        self._name = name
        return None

    def get_source(self) -> Loc:
        return self._source

    def set_dests(self, dests: list[Loc]) -> TenError | None:
        self._dests = list(dests)
        return None

    # -- properties --------------------------------------------------------
    def set_property_from_json(
        self, path: str | None, json_str: str
    ) -> TenError | None:
        # Invalid JSON aborts the real process (observed): with TEN_STANDIN_FATAL=exit
        # the stand-in aborts too; otherwise it raises (fatal inside a callback).
        try:
            value = _props.parse_json(
                json_str, f"setting property {path!r} of a message"
            )
        except ValueError:
            from ._runtime import abort_process, emit, exit_mode
            from .log_level import LogLevel

            emit(None, LogLevel.ERROR, f"Failed to parse {json_str}")
            if exit_mode():
                abort_process()
            raise
        return self._set(path, value)

    def get_property_to_json(
        self, path: str | None = None
    ) -> tuple[str, TenError | None]:
        v = _props.lookup(self._props, path)
        if v is _props._MISSING:
            return "", _props.not_found(path)
        return _props.to_json(v), None

    def _set(self, path: str | None, value: Any) -> TenError | None:
        try:
            self._props = _props.assign(self._props, path, value)
        except (TypeError, IndexError, KeyError) as e:
            return _make(3, str(e))
        return None

    def get_property_int(self, path: str) -> tuple[int, TenError | None]:
        return _props.msg_get(self._props, path, "int")

    def get_property_string(self, path: str) -> tuple[str, TenError | None]:
        return _props.msg_get(self._props, path, "string")

    def get_property_bool(self, path: str) -> tuple[bool, TenError | None]:
        return _props.msg_get(self._props, path, "bool")

    def get_property_float(self, path: str) -> tuple[float, TenError | None]:
        return _props.msg_get(self._props, path, "float")

    def set_property_int(self, path: str, value: int) -> TenError | None:
        return self._set(path, int(value))

    def set_property_string(self, path: str, value: str) -> TenError | None:
        return self._set(path, str(value))

    def set_property_bool(self, path: str, value: bool) -> TenError | None:
        return self._set(path, bool(value))

    def set_property_float(self, path: str, value: float) -> TenError | None:
        return self._set(path, float(value))

    def get_property_buf(self, path: str) -> tuple[bytearray, TenError | None]:
        v = _props.lookup(self._props, path)
        if v is _props._MISSING:
            return bytearray(), _props.not_found(path)
        if not isinstance(v, (bytes, bytearray)):
            return bytearray(), _make(
                1, f"The conversion from {_props.type_name(v)} to buf is unfit."
            )
        return bytearray(v), None

    def set_property_buf(self, path: str, value: bytes) -> TenError | None:
        return self._set(path, bytes(value))


class _BufMixin:
    """alloc_buf / lock_buf / unlock_buf / get_buf shared by Data and frames."""

    _buf: bytearray

    def alloc_buf(self, size: int) -> None:
        self._buf = bytearray(size)

    def lock_buf(self) -> memoryview:
        return memoryview(self._buf)

    def unlock_buf(self, buf: memoryview) -> None:
        buf.release()

    def get_buf(self) -> bytearray:
        return bytearray(self._buf)
