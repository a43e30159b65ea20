from __future__ import annotations

from .msg import Msg, _BufMixin


class Data(_BufMixin, Msg):
    @classmethod
    def create(cls, name: str) -> Data:
        return cls._new(name)

    def _init_fields(self) -> None:
        self._buf = bytearray()

    def clone(self) -> Data:
        return self._copy()
