"""ten_ai_base models and helpers (contract §2.6, §2.7)."""

from __future__ import annotations

import asyncio
import json

from ten_ai_base.helper import AsyncQueue, PCMWriter
from ten_ai_base.message import (
    ModuleError,
    ModuleErrorCode,
    ModuleType,
    TTSAudioEndReason,
)
from ten_ai_base.struct import TTSFlush, TTSTextInput, TTSTextResult, TTSWord


def test_module_error_code_str_mixin_quirk():
    assert ModuleErrorCode.FATAL_ERROR.value == "-1000"
    assert ModuleErrorCode.NON_FATAL_ERROR.value == "1000"
    assert json.dumps(ModuleErrorCode.FATAL_ERROR) == '"-1000"'
    err = ModuleError(
        module=ModuleType.TTS, code=ModuleErrorCode.FATAL_ERROR, message="m"
    )
    assert err.code == -1000 and type(err.code) is int
    assert ModuleError(code=ModuleErrorCode.FATAL_ERROR.value).code == -1000


def test_enums_and_struct_defaults():
    assert [int(r) for r in TTSAudioEndReason] == [1, 2, 3]
    assert [m.value for m in ModuleType] == [
        "asr",
        "llm",
        "tts",
        "mllm",
        "avatar",
        "turn",
    ]
    assert TTSWord().model_dump() == {"word": "", "start_ms": -1, "duration_ms": -1}
    t = TTSTextInput(request_id="r", text="t")
    assert (t.text_input_end, t.metadata) == (False, {})
    assert TTSFlush(flush_id="f").metadata == {}
    r = TTSTextResult(request_id="r", text="t", start_ms=0, duration_ms=1)
    assert json.loads(r.model_dump_json()) == {
        "request_id": "r",
        "text": "t",
        "start_ms": 0,
        "duration_ms": 1,
        "words": None,
        "text_result_end": False,
        "metadata": {},
    }


async def test_async_queue_put_prepend_get_flush_len():
    q = AsyncQueue()
    await q.put(1)
    await q.put(2)
    await q.put(0, prepend=True)
    assert q.len() == 3
    assert [await q.get(), await q.get()] == [0, 1]
    q.flush()
    assert q.len() == 0
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    await q.put("x")
    assert await asyncio.wait_for(waiter, 1) == "x"


async def test_pcm_writer_appends_and_creates_file_lazily(tmp_path):
    path = tmp_path / "out.pcm"
    writer = PCMWriter(str(path), buffer_size=4)
    await writer.flush()
    assert not path.exists()  # nothing written yet: no file
    await writer.write(b"ab")
    assert not path.exists()  # below the threshold: still buffered
    await writer.write(b"cdef")  # crosses the threshold: executor write
    await writer.write(b"g")
    await writer.flush()
    assert path.read_bytes() == b"abcdefg"
    second = PCMWriter(str(path))
    await second.write(b"hi")
    await second.flush()
    assert path.read_bytes() == b"abcdefghi"  # append mode
