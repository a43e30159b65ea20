"""Module errors, metrics and enums (contract §2.6)."""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Any

from pydantic import BaseModel


class ModuleType(str, Enum):
    ASR = "asr"
    LLM = "llm"
    TTS = "tts"
    MLLM = "mllm"
    AVATAR = "avatar"
    TURN = "turn"


class ModuleErrorCode(str, Enum):
    """Quirk kept on purpose: with the str mixin, ``.value`` is the STRING "-1000"."""

    OK = 0
    FATAL_ERROR = -1000
    NON_FATAL_ERROR = 1000


class ModuleErrorVendorInfo(BaseModel):
    vendor: str = ""
    code: str = ""
    message: str = ""


class ModuleError(BaseModel):
    """``code`` is an int: pydantic turns ModuleErrorCode.FATAL_ERROR into -1000."""

    id: str = ""
    module: str = ""
    code: int = 0
    message: str = ""
    vendor_info: ModuleErrorVendorInfo | None = None
    metadata: dict[str, Any] = {}


class ModuleVendorException(Exception):
    def __init__(self, error: ModuleErrorVendorInfo):
        super().__init__(error.message)
        self.error = error


class ModuleMetricKey(str, Enum):
    TTS_TTFB = "ttfb"


class ModuleMetrics(BaseModel):
    id: str = ""
    module: str = ""
    vendor: str = ""
    metrics: dict[str, Any] = {}
    metadata: dict[str, Any] = {}


class TTSAudioEndReason(IntEnum):
    REQUEST_END = 1
    INTERRUPTED = 2
    ERROR = 3


class MetadataKey(str, Enum):
    SESSION_ID = "session_id"
    TURN_ID = "turn_id"
