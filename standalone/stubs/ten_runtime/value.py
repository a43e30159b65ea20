"""Minimal Value / ValueType (only as a ``fields`` argument of the log calls)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ValueType(IntEnum):
    INVALID = 0
    BOOL = 1
    INT = 2
    FLOAT = 3
    STRING = 4
    BYTES = 5
    ARRAY = 6
    OBJECT = 7
    JSON_STRING = 8


class Value:
    def __init__(self, value_type: ValueType, data: Any):
        self._type = value_type
        self._data = data

    @classmethod
    def from_bool(cls, v: bool) -> Value:
        return cls(ValueType.BOOL, v)

    @classmethod
    def from_int(cls, v: int) -> Value:
        return cls(ValueType.INT, v)

    @classmethod
    def from_float(cls, v: float) -> Value:
        return cls(ValueType.FLOAT, v)

    @classmethod
    def from_string(cls, v: str) -> Value:
        return cls(ValueType.STRING, v)

    @classmethod
    def from_array(cls, v: list) -> Value:
        return cls(ValueType.ARRAY, v)

    @classmethod
    def from_object(cls, v: dict) -> Value:
        return cls(ValueType.OBJECT, v)

    def get_type(self) -> ValueType:
        return self._type

    def to_python(self) -> Any:
        def conv(x: Any) -> Any:
            if isinstance(x, Value):
                return x.to_python()
            if isinstance(x, list):
                return [conv(i) for i in x]
            if isinstance(x, dict):
                return {k: conv(v) for k, v in x.items()}
            return x

        return conv(self._data)
