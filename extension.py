"""Gradium TTS extension for TEN: the TEN event flow around ``gradium_tts``.

Life of one request (one ``request_id``):
  tts_text_input (first speakable text) -> open a Gradium request on the warm socket
  each further segment                  -> forwarded the moment it arrives
  text_input_end                        -> end_of_stream for this request
  reader task: audio -> tts_audio_start (once), PCM frames, TTFB (once)
               words -> tts_text_result (always before this request's audio end)
               end / error -> _finalize
  tts_flush -> cancel_tts -> _finalize(INTERRUPTED); late audio is dropped by id

``_finalize`` is the one place that ends a request: it flushes the last word
result, sends tts_audio_end, closes the dump file, emits the usage metrics and
calls finish_request. It runs once per request; later calls do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ten_ai_base.helper import PCMWriter
from ten_ai_base.message import (
    ModuleError,
    ModuleErrorCode,
    ModuleErrorVendorInfo,
    ModuleType,
    TTSAudioEndReason,
)
from ten_ai_base.struct import TTSTextInput, TTSTextResult, TTSWord
from ten_ai_base.tts2 import AsyncTTS2BaseExtension
from ten_runtime import AsyncTenEnv, Data

from .config import ConfigError, GradiumTTSConfig
from .gradium_tts import (
    Audio,
    Done,
    Failed,
    GradiumError,
    GradiumTTSClient,
    Ready,
    TTSRequest,
    Word,
)

VENDOR = "gradium"
_COMPLETED_KEPT = 256
CONNECTION_STATUS_DATA = "connection_status_changed"
_KEEP_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def is_speakable(text: str) -> bool:
    """Whether a segment can make a sound: it has a letter or a digit (any script)."""
    return any(ch.isalnum() for ch in text)


def dump_file_name(request_id: str) -> str:
    """A file name safe for any request id: no separators, no traversal, bounded."""
    stem = _KEEP_IN_FILE_NAME.sub("_", request_id).strip("._")[:64] or "request"
    digest = hashlib.sha1(request_id.encode("utf-8")).hexdigest()[:8]
    return f"gradium_dump_{stem}_{digest}.pcm"


@dataclass
class _Turn:
    """Everything about one request, in one place."""

    request_id: str
    client: GradiumTTSClient | None
    stream: TTSRequest | None = None
    reader: asyncio.Task[None] | None = None
    started_at: float | None = None  # first speakable text reached request_tts
    first_audio_at: float | None = None
    sample_rate: int | None = None
    audio_bytes: int = 0
    audio_started: bool = False
    ttfb_sent: bool = False
    input_ended: bool = False
    last_char: str = ""  # last character forwarded, to keep segments apart
    held_word: Word | None = None
    writer: PCMWriter | None = None
    dump_failed: bool = False
    finalized: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class GradiumTTSExtension(AsyncTTS2BaseExtension):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.config: GradiumTTSConfig | None = None
        self.config_error: str | None = None
        self.client: GradiumTTSClient | None = None
        self._properties: dict[str, Any] = {}
        self._turn: _Turn | None = None
        # Recently ended request ids (insertion-ordered, bounded): late chunks of
        # these are dropped instead of starting a second request.
        self._completed: dict[str, None] = {}
        self._retired_clients: list[GradiumTTSClient] = []
        self._closing: set[asyncio.Task[None]] = set()  # held until they finish

    # ------------------------------------------------------------------ lifecycle
    def vendor(self) -> str:
        return VENDOR

    async def on_init(self, ten_env: AsyncTenEnv) -> None:
        await super().on_init(ten_env)
        try:
            raw, err = await ten_env.get_property_to_json("")
            if err is not None:
                raise ConfigError(f"cannot read properties: {err.error_message()}")
            self._properties = json.loads(raw or "{}")
            self.config = GradiumTTSConfig.from_properties(self._properties)
        except Exception as exc:  # noqa: BLE001 - ConfigError, bad JSON, anything
            self.config = None
            self.config_error = str(exc)
            ten_env.log_error(f"invalid configuration: {exc}", category="key_point")
            with contextlib.suppress(Exception):
                await self.send_tts_error(
                    "", self._error(str(exc), fatal=True, code="config")
                )
            return
        ten_env.log_info(f"config: {self.config}", category="key_point")
        if self.config.ignored_params:
            ten_env.log_warn(
                "params not sent to Gradium (this extension sets them): "
                + ", ".join(sorted(self.config.ignored_params))
            )

    async def on_start(self, ten_env: AsyncTenEnv) -> None:
        await super().on_start(ten_env)
        if self.config is not None:
            try:
                self.client = self._new_client(self.config)
                self.client.start()  # prewarm: the first turn pays no handshake
            except Exception as exc:  # noqa: BLE001 - requests will report it
                self.client = None
                self.config_error = f"cannot start the Gradium client: {exc}"
                ten_env.log_error(self.config_error, category="key_point")

    async def on_stop(self, ten_env: AsyncTenEnv) -> None:
        try:
            await super().on_stop(ten_env)
        finally:
            try:
                turn = self._turn
                if turn is not None and not turn.finalized:
                    await self._finalize(turn, TTSAudioEndReason.INTERRUPTED)
                for client in [self.client, *self._retired_clients]:
                    if client is not None:
                        await client.aclose()
            except Exception as exc:  # noqa: BLE001 - stopping must not crash the app
                ten_env.log_error(f"error while stopping: {exc!r}")
            self.client = None
            self._retired_clients.clear()

    def synthesize_audio_sample_rate(self) -> int:
        turn = self._turn
        if turn is not None and turn.sample_rate:
            return turn.sample_rate
        return self.config.sample_rate if self.config else 24000

    # ------------------------------------------------------------------- requests
    async def request_tts(self, t: TTSTextInput) -> None:
        try:
            await self._handle_text(t)
        except Exception as exc:  # noqa: BLE001 - never let a request hang
            self.ten_env.log_error(f"request {t.request_id} failed: {exc!r}")
            turn = self._turn
            if turn is not None and turn.request_id == t.request_id:
                with contextlib.suppress(Exception):
                    await self._finalize(
                        turn,
                        TTSAudioEndReason.ERROR,
                        self._error(
                            f"internal error: {exc}", fatal=False, code="internal"
                        ),
                    )

    async def _handle_text(self, t: TTSTextInput) -> None:
        turn = self._turn
        if turn is None or turn.request_id != t.request_id:
            if t.request_id in self._completed:
                # The base class hands us a chunk of a finished request as the one
                # it is processing (otherwise it would be buffered): release its
                # queue again, or every later request would wait for ever.
                self.ten_env.log_warn(
                    f"text for request {t.request_id}, which has already ended: ignored"
                )
                await self.finish_request(t.request_id)
                return
            if turn is not None and not turn.finalized:
                # The base class only moves on after finish_request, so this is a
                # request it no longer tracks (e.g. after a flush): close it quietly.
                await self._finalize(turn, TTSAudioEndReason.INTERRUPTED)
            turn = _Turn(request_id=t.request_id, client=self.client)
            self._turn = turn
        elif turn.input_ended:
            self.ten_env.log_warn(
                f"text after text_input_end for {t.request_id}: ignored"
            )
            return

        self.metrics_add_input_characters(len(t.text))
        if self.config is None or self.client is None:
            if t.text_input_end or is_speakable(t.text):
                await self._finalize(
                    turn,
                    TTSAudioEndReason.ERROR,
                    self._error(
                        f"invalid configuration: {self.config_error}",
                        fatal=True,
                        code="config",
                    ),
                )
            return

        if turn.stream is None and is_speakable(t.text):
            turn.started_at = time.monotonic()
            turn.sample_rate = self.config.sample_rate
            turn.stream = turn.client.request(self.config.setup_fields())
            turn.reader = asyncio.create_task(self._read(turn))
            self.ten_env.log_info(
                f"request {t.request_id} -> gradium {turn.stream.client_req_id}",
                category="key_point",
            )
        if turn.stream is not None and t.text:
            segment = self._segment(turn, t.text)
            turn.stream.send_text(segment)
            self.metrics_add_output_characters(len(segment))

        if t.text_input_end:
            turn.input_ended = True
            if turn.stream is None:
                # Nothing speakable arrived: the request ends now, without a socket.
                await self._finalize(turn, TTSAudioEndReason.REQUEST_END)
            else:
                turn.stream.end()

    @staticmethod
    def _segment(turn: _Turn, text: str) -> str:
        """Keep sentences apart: Gradium concatenates text messages as they are."""
        if turn.last_char and not turn.last_char.isspace() and text[0].isalnum():
            text = " " + text
        turn.last_char = text[-1]
        return text

    async def cancel_tts(self) -> None:
        self._completed.clear()  # the flush forgets every request, as the base does
        turn = self._turn
        if turn is None or turn.finalized:
            return
        try:
            if turn.stream is not None:
                turn.stream.cancel()  # the socket stays; late audio is dropped by id
            await self._finalize(turn, TTSAudioEndReason.INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - the base re-raises: os._exit
            self.ten_env.log_error(f"cancel of {turn.request_id} failed: {exc!r}")

    # --------------------------------------------------------------------- reader
    async def _read(self, turn: _Turn) -> None:
        assert turn.stream is not None
        try:
            async for event in turn.stream.events():
                async with turn.lock:
                    if turn.finalized:
                        return
                    if isinstance(event, Audio):
                        await self._on_audio(turn, event.pcm)
                    elif isinstance(event, Word):
                        await self._on_word(turn, event)
                    elif isinstance(event, Ready):
                        if event.sample_rate:
                            turn.sample_rate = event.sample_rate
                if isinstance(event, Done):
                    await self._finalize(turn, TTSAudioEndReason.REQUEST_END)
                elif isinstance(event, Failed):
                    await self._finalize(
                        turn, TTSAudioEndReason.ERROR, self._vendor_error(event.error)
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            self.ten_env.log_error(f"reader for {turn.request_id} failed: {exc!r}")
            await self._finalize(
                turn,
                TTSAudioEndReason.ERROR,
                self._error(f"internal error: {exc}", fatal=False, code="internal"),
            )

    async def _on_audio(self, turn: _Turn, pcm: bytes) -> None:
        if not turn.audio_started:
            turn.audio_started = True
            await self.send_tts_audio_start(turn.request_id)
        timestamp_ms = self._ms(turn, turn.audio_bytes)
        turn.audio_bytes += len(pcm)
        await self.send_tts_audio_data(pcm, timestamp_ms)  # the frame first: TTFB
        if not turn.ttfb_sent:
            turn.ttfb_sent = True
            turn.first_audio_at = time.monotonic()
            ttfb = int(
                (turn.first_audio_at - (turn.started_at or turn.first_audio_at)) * 1000
            )
            await self.send_tts_ttfb_metrics(turn.request_id, ttfb)
        self.metrics_add_recv_audio_chunks(pcm)
        if self.config is not None and self.config.dump and not turn.dump_failed:
            if turn.writer is None:
                turn.writer = await self._open_dump(turn.request_id)
                turn.dump_failed = turn.writer is None
            if turn.writer is not None:
                await turn.writer.write(pcm)

    async def _on_word(self, turn: _Turn, word: Word) -> None:
        if self.config is None or not self.config.enable_words or not word.text.strip():
            return
        if turn.held_word is not None:
            await self._send_word(turn, turn.held_word, last=False)
        turn.held_word = word  # held back so the last one can carry text_result_end

    async def _send_word(self, turn: _Turn, word: Word, *, last: bool) -> None:
        start_ms = int(round(word.start_s * 1000))
        duration_ms = max(0, int(round((word.stop_s - word.start_s) * 1000)))
        await self.send_tts_text_result(
            TTSTextResult(
                request_id=turn.request_id,
                text=word.text,
                start_ms=start_ms,
                duration_ms=duration_ms,
                words=[
                    TTSWord(word=word.text, start_ms=start_ms, duration_ms=duration_ms)
                ],
                text_result_end=last,
                metadata=self.update_metadata(turn.request_id, None),
            )
        )

    # ------------------------------------------------------------------- finalize
    async def _finalize(
        self,
        turn: _Turn,
        reason: TTSAudioEndReason,
        error: ModuleError | None = None,
    ) -> None:
        """End a request exactly once: words, usage, dump, audio end, finish."""
        if turn.finalized:
            return
        async with turn.lock:
            if turn.finalized:
                return
            turn.finalized = True
        if turn.reader is not None and turn.reader is not asyncio.current_task():
            turn.reader.cancel()
        if turn.stream is not None and reason != TTSAudioEndReason.REQUEST_END:
            turn.stream.cancel()
        request_id = turn.request_id
        try:
            if turn.held_word is not None:
                await self._send_word(turn, turn.held_word, last=True)
                turn.held_word = None
            if not turn.audio_started:
                turn.audio_started = True
                await self.send_tts_audio_start(request_id)
            interval_ms = (
                int((time.monotonic() - turn.first_audio_at) * 1000)
                if turn.first_audio_at is not None
                else 0
            )
            await self.send_usage_metrics(request_id)
            if turn.writer is not None:
                await turn.writer.flush()
            await self.send_tts_audio_end(
                request_id,
                interval_ms,
                self._ms(turn, turn.audio_bytes),
                reason=reason,
            )
        finally:
            if self._turn is turn:
                self._turn = None
            self._completed[request_id] = None
            while len(self._completed) > _COMPLETED_KEPT:
                del self._completed[next(iter(self._completed))]
            self._close_retired()
            if reason != TTSAudioEndReason.INTERRUPTED:
                # cancel_tts must not call finish_request (the base class clears
                # its state after a flush); every other ending releases the queue.
                await self.finish_request(request_id, reason, error)
            elif error is not None:
                await self.send_tts_error(request_id, error)

    # ----------------------------------------------------------------- configs
    async def update_configs(self, configs: dict[str, Any]) -> None:
        """Apply new properties to the next request (raise: the command fails)."""
        merged = _deep_merge(self._properties, configs)
        config = GradiumTTSConfig.from_properties(merged)
        old = self.config
        self._properties, self.config, self.config_error = merged, config, None
        self.ten_env.log_info(f"config updated: {config}", category="key_point")
        if (
            self.client is None
            or old is None
            or old.connection_key() != config.connection_key()
        ):
            if self.client is not None:
                self._retired_clients.append(self.client)
                self._close_retired()
            self.client = self._new_client(config)
            self.client.start()

    def _close_retired(self) -> None:
        active = self._turn.client if self._turn and not self._turn.finalized else None
        for client in list(self._retired_clients):
            if client is not active:
                self._retired_clients.remove(client)
                task = asyncio.create_task(client.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    # ----------------------------------------------------------------- helpers
    def _new_client(self, config: GradiumTTSConfig) -> GradiumTTSClient:
        return GradiumTTSClient(
            config.url,
            config.api_key.get_secret_value(),
            listener=_Listener(self),
            connect_timeout_s=config.connect_timeout_s,
            response_timeout_s=config.response_timeout_s,
            max_socket_age_s=config.max_socket_age_s,
            flush_mode=config.flush_mode,
        )

    def _ms(self, turn: _Turn, nbytes: int) -> int:
        rate = turn.sample_rate or self.synthesize_audio_sample_rate()
        width = self.synthesize_audio_sample_width() * self.synthesize_audio_channels()
        return int(round(nbytes * 1000 / (rate * width)))

    async def _open_dump(self, request_id: str) -> PCMWriter | None:
        assert self.config is not None
        path = os.path.join(self.config.dump_path, dump_file_name(request_id))

        def prepare() -> None:
            os.makedirs(self.config.dump_path, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)  # PCMWriter appends: start each request afresh

        try:
            await asyncio.to_thread(prepare)
        except OSError as exc:
            self.ten_env.log_warn(f"dump disabled for {request_id}: {exc}")
            return None
        return PCMWriter(path)

    def _error(self, message: str, *, fatal: bool, code: str) -> ModuleError:
        return ModuleError(
            module=ModuleType.TTS,
            code=ModuleErrorCode.FATAL_ERROR
            if fatal
            else ModuleErrorCode.NON_FATAL_ERROR,
            message=message,
            vendor_info=ModuleErrorVendorInfo(
                vendor=VENDOR, code=code, message=message
            ),
        )

    def _vendor_error(self, err: GradiumError) -> ModuleError:
        return self._error(
            err.message, fatal=err.fatal, code=err.vendor_code or "error"
        )

    async def _send_connection_status(self, current: str, last: str) -> None:
        data = Data.create(CONNECTION_STATUS_DATA)
        data.set_property_from_json(
            None,
            json.dumps(
                {
                    "id": uuid.uuid4().hex,
                    "module": "tts",
                    "vendor": VENDOR,
                    "current": current,
                    "last": last,
                }
            ),
        )
        await self.ten_env.send_data(data)


class _Listener:
    """Turns client events into TEN messages; never raises."""

    def __init__(self, ext: GradiumTTSExtension) -> None:
        self._ext = ext
        self._reported = False

    async def on_connection_status(self, current: str, last: str) -> None:
        await self._ext._send_connection_status(current, last)

    async def on_connected(self, connect_ms: int) -> None:
        await self._ext.metrics_connect_delay(connect_ms)

    async def on_connection_error(self, error: GradiumError) -> None:
        """A refused upgrade (401/403/404): say so once, before any request fails."""
        self._ext.ten_env.log_error(
            f"gradium connection failed: {error}", category="vendor"
        )
        if not self._reported:
            self._reported = True
            await self._ext.send_tts_error("", self._ext._vendor_error(error))


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
