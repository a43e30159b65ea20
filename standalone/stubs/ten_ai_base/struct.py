"""Input and output structs of the TTS interface (contract §2.6)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class TTSWord(BaseModel):
    word: str = ""
    start_ms: int = -1
    duration_ms: int = -1


class TTSTextInput(BaseModel):
    request_id: str
    text: str
    text_input_end: bool = False
    metadata: dict[str, Any] = {}


class TTSTextResult(BaseModel):
    request_id: str
    text: str
    start_ms: int
    duration_ms: int
    words: list[TTSWord] | None = None
    text_result_end: bool = False
    metadata: dict[str, Any] = {}


class TTSFlush(BaseModel):
    flush_id: str
    metadata: dict[str, Any] = {}
