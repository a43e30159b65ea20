"""AsyncTTS2BaseExtension (contract §2.1-§2.5), as in ten_ai_base 0.7.41.

Kept faithful on purpose, pitfalls included:
- requests are serialised by one consumer task; chunks of other request ids wait
  in ``_pending_messages`` until ``finish_request`` releases ONE pending id;
- metadata is captured from a request's first chunk only;
- a flush does NOT cancel the in-flight ``request_tts`` (``current_task`` is never
  assigned), it only awaits ``cancel_tts()``.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from abc import ABC, abstractmethod
from enum import Enum
from uuid import uuid4

from ten_runtime.async_extension import AsyncExtension
from ten_runtime.async_ten_env import AsyncTenEnv
from ten_runtime.audio_frame import AudioFrame, AudioFrameDataFmt
from ten_runtime.cmd import Cmd
from ten_runtime.cmd_result import CmdResult, StatusCode
from ten_runtime.data import Data

from .const import (
    CMD_UPDATE_CONFIGS,
    DATA_FLUSH,
    DATA_FLUSH_RESULT,
    DATA_TTS_TEXT_INPUT,
    DATA_TTS_TEXT_RESULT,
    LOG_CATEGORY_KEY_POINT,
)
from .helper import AsyncQueue
from .message import (
    ModuleError,
    ModuleMetrics,
    ModuleType,
    TTSAudioEndReason,
)
from .struct import TTSFlush, TTSTextInput, TTSTextResult

__all__ = [
    "AsyncTTS2BaseExtension",
    "RequestState",
    "DATA_TTS_TEXT_INPUT",
    "DATA_TTS_TEXT_RESULT",
    "DATA_FLUSH",
    "DATA_FLUSH_RESULT",
    "CMD_UPDATE_CONFIGS",
]


class RequestState(Enum):
    QUEUED = "queued"
    PROCESSING = "processing"
    FINALIZING = "finalizing"
    COMPLETED = "completed"


_TRANSITIONS = {
    RequestState.QUEUED: {RequestState.PROCESSING, RequestState.COMPLETED},
    RequestState.PROCESSING: {RequestState.FINALIZING, RequestState.COMPLETED},
    RequestState.FINALIZING: {RequestState.COMPLETED},
    RequestState.COMPLETED: set(),
}


class AsyncTTS2BaseExtension(AsyncExtension, ABC):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ten_env: AsyncTenEnv | None = None
        self.input_queue = AsyncQueue()
        self.current_task: asyncio.Task | None = None  # never assigned (§2.3 pitfall)
        self.loop_task: asyncio.Task | None = None
        self.leftover_bytes = b""
        self.request_states: dict[str, RequestState] = {}
        self.metadatas: dict[str, dict] = {}
        self.current_audio_request_id: str | None = None
        self._processing_request_id: str | None = None
        self._pending_messages: dict[str, list[TTSTextInput]] = {}
        self._put_lock = asyncio.Lock()
        self._flush_complete_event = asyncio.Event()
        self._flush_complete_event.set()
        self.metrics_reset()
        self.total_output_characters = 0
        self.total_input_characters = 0
        self.total_recv_audio_chunks = 0
        self.recv_audio_duration = 0
        self.total_recv_audio_duration = 0

    # -- lifecycle (§2.2) ------------------------------------------------------
    async def on_init(self, ten_env: AsyncTenEnv) -> None:
        await super().on_init(ten_env)
        self.ten_env = ten_env

    async def on_start(self, ten_env: AsyncTenEnv) -> None:
        await super().on_start(ten_env)
        if self.loop_task is None:
            self.loop_task = asyncio.create_task(self._process_input_queue(ten_env))

    async def on_stop(self, ten_env: AsyncTenEnv) -> None:
        await self.send_usage_metrics()
        await super().on_stop(ten_env)
        await self._flush_input_items()
        if self.loop_task:
            self.loop_task.cancel()
        await self.input_queue.put(None)

    async def on_deinit(self, ten_env: AsyncTenEnv) -> None:
        await super().on_deinit(ten_env)

    async def on_cmd(self, ten_env: AsyncTenEnv, cmd: Cmd) -> None:
        if cmd.get_name() == CMD_UPDATE_CONFIGS:
            try:
                payload, err = cmd.get_property_to_json("")
                if err is not None:
                    raise RuntimeError(err.error_message())
                await self.update_configs(json.loads(payload))
                result = CmdResult.create(StatusCode.OK, cmd)
            except Exception as e:
                ten_env.log_error(f"update_configs failed: {e}")
                result = CmdResult.create(StatusCode.ERROR, cmd)
                result.set_property_from_json("", json.dumps({"message": str(e)}))
            await ten_env.return_result(result)
            return
        await ten_env.return_result(CmdResult.create(StatusCode.OK, cmd))

    # -- input (§2.3, §2.4) ----------------------------------------------------
    async def on_data(self, ten_env: AsyncTenEnv, data: Data) -> None:
        name = data.get_name()
        if name == DATA_TTS_TEXT_INPUT:
            payload = _payload(data)
            try:
                t = TTSTextInput.model_validate_json(payload)
            except Exception as e:
                ten_env.log_warn(f"invalid tts_text_input dropped: {e}")
                return
            async with self._put_lock:
                await self._flush_complete_event.wait()
                if t.request_id not in self.request_states:
                    self._cleanup_completed_states()
                    self._update_state(t.request_id, RequestState.QUEUED)
                    if t.metadata:
                        self.metadatas[t.request_id] = t.metadata
                await self.input_queue.put(t)
        elif name == DATA_FLUSH:
            payload = _payload(data)
            try:
                f = TTSFlush.model_validate_json(payload)
            except Exception as e:
                ten_env.log_warn(f"invalid tts_flush dropped: {e}")
                return
            async with self._put_lock:
                self._flush_complete_event.clear()
            try:
                await self._flush_input_items()
                out = Data.create(DATA_FLUSH_RESULT)
                out.set_property_from_json(
                    "", json.dumps({"flush_id": f.flush_id, "metadata": f.metadata})
                )
                await ten_env.send_data(out)
                ten_env.log_info(
                    f"sent {DATA_FLUSH_RESULT} {f.flush_id}",
                    category=LOG_CATEGORY_KEY_POINT,
                )
            finally:
                self._flush_complete_event.set()

    def _cleanup_completed_states(self) -> None:
        done = [
            rid for rid, s in self.request_states.items() if s == RequestState.COMPLETED
        ]
        for rid in done:
            del self.request_states[rid]
            self.metadatas.pop(rid, None)

    def _update_state(self, request_id: str, new_state: RequestState) -> None:
        current = self.request_states.get(request_id)
        if current is not None and new_state not in _TRANSITIONS[current]:
            self._log_warn(
                f"invalid state transition for {request_id}: {current.value} -> {new_state.value}"
            )
            return
        self.request_states[request_id] = new_state

    async def _process_input_queue(self, ten_env: AsyncTenEnv) -> None:
        while True:
            t = await self.input_queue.get()
            if t is None:
                break
            try:
                pid = self._processing_request_id
                if pid is not None and pid != t.request_id:
                    self._pending_messages.setdefault(t.request_id, []).append(t)
                    continue
                if pid != t.request_id:
                    self._processing_request_id = t.request_id
                    self._update_state(t.request_id, RequestState.PROCESSING)
                if t.text_input_end:
                    self._update_state(t.request_id, RequestState.FINALIZING)
                await self.request_tts(t)
            except asyncio.CancelledError:
                ten_env.log_info("request_tts cancelled")
            except Exception as e:
                ten_env.log_error(f"request_tts failed: {e}\n{traceback.format_exc()}")

    async def finish_request(
        self,
        request_id: str,
        reason: TTSAudioEndReason = TTSAudioEndReason.REQUEST_END,
        error: ModuleError | None = None,
    ) -> None:
        if error is not None:
            await self.send_tts_error(request_id, error)
        self._update_state(request_id, RequestState.COMPLETED)
        if self.current_audio_request_id == request_id:
            self.current_audio_request_id = None
        if self._processing_request_id == request_id:
            self._processing_request_id = None
            if self._pending_messages:
                next_id = next(iter(self._pending_messages))
                chunks = self._pending_messages.pop(next_id)
                self._processing_request_id = next_id
                async with self._put_lock:
                    for chunk in chunks:
                        await self.input_queue.put(chunk)

    async def _flush_input_items(self) -> None:
        self.input_queue.flush()
        self._pending_messages.clear()
        pid = self._processing_request_id
        if pid is not None and self.request_states.get(pid) != RequestState.COMPLETED:
            await self._cancel_current_task()
            await self.cancel_tts()
        self.request_states.clear()
        self.metadatas.clear()
        self._processing_request_id = None
        self.current_audio_request_id = None

    async def _cancel_current_task(self) -> None:
        if self.current_task is not None:  # never true: current_task is never set
            self.current_task.cancel()
            self.current_task = None
        self.leftover_bytes = b""

    # -- subclass API (§2.1) ---------------------------------------------------
    @abstractmethod
    def vendor(self) -> str: ...

    @abstractmethod
    async def request_tts(self, t: TTSTextInput) -> None: ...

    @abstractmethod
    def synthesize_audio_sample_rate(self) -> int: ...

    def synthesize_audio_channels(self) -> int:
        return 1

    def synthesize_audio_sample_width(self) -> int:
        return 2

    async def cancel_tts(self) -> None:
        pass

    async def update_configs(self, configs: dict) -> None:
        pass

    # -- output helpers (§2.5) -------------------------------------------------
    def get_uuid(self) -> str:
        return uuid4().hex

    def update_metadata(self, request_id: str | None, metadata: dict | None) -> dict:
        out = dict(self.metadatas.get(request_id, {})) if request_id is not None else {}
        if metadata:
            out.update(metadata)
        return out

    def _log_warn(self, msg: str) -> None:
        if self.ten_env is not None:
            self.ten_env.log_warn(msg)

    async def _send_json(self, name: str, payload: str) -> None:
        data = Data.create(name)
        data.set_property_from_json("", payload)
        await self.ten_env.send_data(data)

    async def send_tts_audio_start(
        self, request_id: str, turn_id: int = -1, extra_metadata: dict | None = None
    ) -> None:
        self.current_audio_request_id = request_id
        payload = {
            "request_id": request_id,
            "metadata": self.update_metadata(request_id, extra_metadata),
        }
        await self._send_json("tts_audio_start", json.dumps(payload))

    async def send_tts_audio_data(self, audio_data: bytes, timestamp: int = 0) -> None:
        try:
            width = self.synthesize_audio_sample_width()
            channels = self.synthesize_audio_channels()
            unit = width * channels
            combined = self.leftover_bytes + bytes(audio_data)
            whole = len(combined) - len(combined) % unit
            self.leftover_bytes = combined[whole:]
            chunk = combined[:whole]
            if not chunk:
                return
            frame = AudioFrame.create("pcm_frame")
            frame.set_sample_rate(self.synthesize_audio_sample_rate())
            frame.set_bytes_per_sample(width)
            frame.set_number_of_channels(channels)
            frame.set_data_fmt(AudioFrameDataFmt.INTERLEAVE)
            frame.set_samples_per_channel(len(chunk) // unit)
            frame.set_timestamp(timestamp)
            frame.alloc_buf(len(chunk))
            buf = frame.lock_buf()
            buf[:] = chunk
            frame.unlock_buf(buf)
            metadata = self.metadatas.get(self.current_audio_request_id, {})
            frame.set_property_from_json("metadata", json.dumps(metadata))
            await self.ten_env.send_audio_frame(frame)
        except Exception as e:
            if self.ten_env is not None:
                self.ten_env.log_error(
                    f"send_tts_audio_data failed: {e}\n{traceback.format_exc()}"
                )

    async def send_tts_audio_end(
        self,
        request_id: str,
        request_event_interval_ms: int,
        request_total_audio_duration_ms: int,
        turn_id: int = -1,
        reason: TTSAudioEndReason = TTSAudioEndReason.REQUEST_END,
        extra_metadata: dict | None = None,
    ) -> None:
        payload = {
            "request_id": request_id,
            "request_event_interval_ms": request_event_interval_ms,
            "request_total_audio_duration_ms": request_total_audio_duration_ms,
            "reason": int(reason),
            "metadata": self.update_metadata(request_id, extra_metadata),
        }
        await self._send_json("tts_audio_end", json.dumps(payload))
        if self.current_audio_request_id == request_id:
            self.current_audio_request_id = None

    async def send_tts_text_result(self, t: TTSTextResult) -> None:
        await self._send_json(DATA_TTS_TEXT_RESULT, t.model_dump_json())

    async def send_tts_error(
        self,
        request_id: str | None,
        error: ModuleError,
        turn_id: int = -1,
        extra_metadata: dict | None = None,
    ) -> None:
        payload = {
            "id": request_id or "",
            "code": int(error.code),
            "module": ModuleType.TTS.value,
            "message": error.message,
            "vendor_info": error.vendor_info.model_dump() if error.vendor_info else {},
            "metadata": self.update_metadata(request_id, extra_metadata),
        }
        await self._send_json("error", json.dumps(payload))

    async def send_metrics(self, metrics: ModuleMetrics, request_id: str = "") -> None:
        await self._send_json("metrics", metrics.model_dump_json())

    def _metrics(
        self, metrics: dict, request_id: str, extra_metadata: dict | None
    ) -> ModuleMetrics:
        return ModuleMetrics(
            id=self.get_uuid(),
            module=ModuleType.TTS,
            vendor=self.vendor(),
            metrics=metrics,
            metadata=self.update_metadata(request_id, extra_metadata),
        )

    async def send_tts_ttfb_metrics(
        self,
        request_id: str,
        ttfb_ms: int,
        turn_id: int = -1,
        extra_metadata: dict | None = None,
    ) -> None:
        await self.send_metrics(
            self._metrics({"ttfb": ttfb_ms}, request_id, extra_metadata), request_id
        )

    async def metrics_connect_delay(
        self,
        connect_delay_ms: int,
        extra_metadata: dict | None = None,
        request_id: str = "",
    ) -> None:
        metrics = self._metrics(
            {"connect_delay": connect_delay_ms}, request_id, extra_metadata
        )
        await self.send_metrics(metrics, request_id)

    async def send_usage_metrics(
        self, request_id: str = "", extra_metadata: dict | None = None
    ) -> None:
        await self.metrics_calculate_duration()
        counters = {
            "output_characters": self.output_characters,
            "input_characters": self.input_characters,
            "recv_audio_duration": self.recv_audio_duration,
            "total_output_characters": self.total_output_characters,
            "total_input_characters": self.total_input_characters,
            "total_recv_audio_duration": self.total_recv_audio_duration,
        }
        await self.send_metrics(
            self._metrics(counters, request_id, extra_metadata), request_id
        )
        self.metrics_reset()

    send_char_audio_metrics = send_usage_metrics

    # -- counters --------------------------------------------------------------
    def metrics_add_output_characters(self, n: int) -> None:
        self.output_characters += n
        self.total_output_characters += n

    def metrics_add_input_characters(self, n: int) -> None:
        self.input_characters += n
        self.total_input_characters += n

    def metrics_add_recv_audio_chunks(self, chunks: bytes) -> None:
        # The real base class takes the audio bytes and counts len(chunks).
        self.recv_audio_chunks += len(chunks)
        self.total_recv_audio_chunks += len(chunks)

    def metrics_reset(self) -> None:
        """Reset the interval counters (totals are kept)."""
        self.output_characters = 0
        self.input_characters = 0
        self.recv_audio_chunks = 0
        self.recv_audio_duration = 0

    def _bytes_to_ms(self, n: int) -> int:
        per_second = (
            self.synthesize_audio_sample_rate()
            * self.synthesize_audio_sample_width()
            * self.synthesize_audio_channels()
        )
        return int(n * 1000 / per_second) if per_second else 0

    async def metrics_calculate_duration(self) -> None:
        self.recv_audio_duration = self._bytes_to_ms(self.recv_audio_chunks)
        self.total_recv_audio_duration = self._bytes_to_ms(self.total_recv_audio_chunks)


def _payload(data: Data) -> str:
    """The message's JSON; a failure raises, which is fatal, as in the real base."""
    payload, err = data.get_property_to_json("")
    if err is not None:
        raise RuntimeError(f"Failed to get data payload: {err.error_message()}")
    return payload
