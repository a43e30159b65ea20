"""TenError / TenErrorCode (contract §1.6)."""

from __future__ import annotations

from enum import IntEnum

#: Code of "Failed to find value: <path>" (TEN_ERROR_CODE_VALUE_NOT_FOUND), not a
#: TenErrorCode member (contract §1.5).
VALUE_NOT_FOUND = 100000


class TenErrorCode(IntEnum):
    ErrorCodeGeneric = 1
    ErrorCodeInvalidJSON = 2
    ErrorCodeInvalidArgument = 3
    ErrorCodeInvalidType = 4
    ErrorCodeInvalidGraph = 5
    ErrorCodeTenIsClosed = 6
    ErrorCodeMsgNotConnected = 7
    ErrorCodeTimeout = 8


class TenError:
    """Only ``TenError.create`` works; ``error_code()`` is a plain int."""

    __slots__ = ("_code", "_message")

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("Use TenError.create instead.")

    @classmethod
    def create(cls, error_code: TenErrorCode, error_message: str | None = None):
        # Like the real one, this reads ``error_code.value``: pass a TenErrorCode.
        return _make(error_code.value, error_message)

    def error_code(self) -> int:
        return self._code

    def error_message(self) -> str:
        return self._message

    def __repr__(self) -> str:
        return f"TenError({self._code}, {self._message!r})"


def _make(code: int, message: str | None = None) -> TenError:
    """Build an error with any code (the runtime also hands back codes like 100000)."""
    err = TenError.__new__(TenError)
    err._code = int(code)
    err._message = message or ""
    return err
