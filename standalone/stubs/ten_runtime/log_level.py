from __future__ import annotations

from enum import IntEnum


class LogLevel(IntEnum):
    INVALID = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
