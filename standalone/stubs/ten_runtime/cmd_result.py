from __future__ import annotations

from enum import IntEnum

from .cmd import Cmd
from .msg import Msg


class StatusCode(IntEnum):
    OK = 0
    ERROR = 1


class CmdResult(Msg):
    @classmethod
    def create(cls, status_code: StatusCode, target_cmd: Cmd) -> CmdResult:
        obj = cls._new("")
        obj._status = StatusCode(status_code)
        obj._cmd_id = target_cmd._cmd_id
        obj._final = True
        return obj

    def clone(self) -> CmdResult:
        return self._copy()

    def get_status_code(self) -> StatusCode:
        return self._status

    def set_final(self, is_final: bool) -> None:
        self._final = bool(is_final)

    def is_final(self) -> bool:
        return self._final

    def is_completed(self) -> bool:
        return self._final
