"""Gradium TTS extension for TEN: the TEN event flow around ``gradium_tts``.

Life of one request (one ``request_id``):
  tts_text_input (first speakable text) -> open a Gradium request on the warm socket
  each further segment                  -> forwarded the moment it arrives
  text_input_end                        -> end_of_stream for this request
  reader task: audio -> tts_audio_start (once), PCM frames, TTFB (once)
               words -> tts_text_result (always before this request's audio end)
               end / error -> _finalize
  tts_flush -> cancel_tts -> _finalize(INTERRUPTED); the client closes the socket
              that carried it (flush_mode close), no late audio reaches TEN

``_finalize`` is the one place that ends a request: it flushes the last word
result, sends tts_audio_end, closes the dump file, emits the usage metrics and
calls finish_request. It runs once per request; a later call waits until that
ending is complete (``_Turn.ended``). So a flush that lands while a request is
ending (normally, with an error, or during a slow dump flush) still sees the
request's tts_audio_end go out before the base class sends tts_flush_end.

Word results carry TEN's subtitle metadata beside the request's own:
``turn_seq_id`` (0, 1, 2... per request) and ``turn_status`` (0 while the request
goes on; on its last result 1 if it ended normally, 2 if it was interrupted or
failed: the words shown are then all that was spoken).
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

from .config import (
    NORMALIZATION_KEY,
    ConfigError,
    GradiumTTSConfig,
    unknown_rewrite_rules,
)
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
from .text_filter import (
    TextShaper,
    is_speakable,  # applied to text as it will be sent
)

VENDOR = "gradium"
_COMPLETED_KEPT = 256
CONNECTION_STATUS_DATA = "connection_status_changed"
_KEEP_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# turn_status of a tts_text_result (TEN's subtitle convention).
TURN_ONGOING, TURN_ENDED, TURN_INTERRUPTED = 0, 1, 2
# Config fields read per request (setup message, dump, words): changing them needs
# no new client. Every other field configures the client, so a change rebuilds it,
# including fields added later.
_PER_REQUEST_FIELDS = frozenset(
    {
        "dump",
        "dump_path",
        "enable_words",
        "model_name",
        "voice_id",
        "voice",
        "sample_rate",
        "json_config",
        "pronunciation_id",
        "retry_for_s",
        "extra_setup",
        "ignored_params",
        "text_filter",
        # voice settings (issue 18): sent in each request's json_config
        "speed",
        "temperature",
        "voice_similarity",
        "text_normalization",
    }
)


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
    shaper: TextShaper = field(default_factory=TextShaper)  # joins, filters segments
    # Words of the next text result, held back so the last one can end the turn;
    # words starting at the same millisecond share one result.
    held_words: list[Word] = field(default_factory=list)
    results_sent: int = 0  # turn_seq_id of the next text result
    writer: PCMWriter | None = None
    dump_failed: bool = False
    finalized: bool = False  # an ending has begun
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # ...and is complete
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class GradiumTTSExtension(AsyncTTS2BaseExtension):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.config: GradiumTTSConfig | None = None
        self.config_error: str | None = None
        self.client: GradiumTTSClient | None = None
        self._client_config: GradiumTTSConfig | None = None  # what built self.client
        self._started = False
        self._stopped = False
        self._properties: dict[str, Any] = {}
        self._turn: _Turn | None = None
        # Recently ended request ids (insertion-ordered, bounded): late chunks of
        # these are dropped instead of starting a second request.
        self._completed: dict[str, None] = {}
        self._retired_clients: list[GradiumTTSClient] = []
        # Background work held until it finishes: endings started from inside
        # request_tts (see _end_soon) and retired clients closing.
        self._closing: set[asyncio.Task[None]] = set()

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
        _warn_overridden(ten_env, self.config, None)

    async def on_start(self, ten_env: AsyncTenEnv) -> None:
        await super().on_start(ten_env)
        self._started = True
        if self.config is not None and self.client is None:
            self._start_client(self.config)

    async def on_stop(self, ten_env: AsyncTenEnv) -> None:
        self._stopped = True  # from now on update_configs builds no client
        try:
            await super().on_stop(ten_env)
        finally:
            try:
                turn = self._turn
                if turn is not None:
                    await self._finalize(turn, TTSAudioEndReason.INTERRUPTED)
                clients = [self.client, *self._retired_clients]
                self.client = None
                self._retired_clients.clear()
                for client in clients:
                    if client is not None:
                        await client.aclose()
                if self._closing:  # retired clients already closing
                    await asyncio.gather(*self._closing, return_exceptions=True)
            except Exception as exc:  # noqa: BLE001 - stopping must not crash the app
                ten_env.log_error(f"error while stopping: {exc!r}")

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
        if turn is not None and turn.finalized:
            await turn.ended.wait()  # an ending under way completes first
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
            turn = _Turn(
                request_id=t.request_id,
                client=self.client,
                shaper=TextShaper(self.config.text_filter if self.config else True),
            )
            self._turn = turn
        elif turn.input_ended:
            self.ten_env.log_warn(
                f"text after text_input_end for {t.request_id}: ignored"
            )
            return

        self.metrics_add_input_characters(len(t.text))
        if self.config is None or self.client is None:
            if t.text_input_end or is_speakable(t.text):
                self._end_soon(
                    turn,
                    TTSAudioEndReason.ERROR,
                    self._error(
                        f"invalid configuration: {self.config_error}",
                        fatal=True,
                        code="config",
                    ),
                )
            return

        # What the voice says: segments joined, markdown and emoji filtered out.
        segment = self._segment(turn, t.text, end=t.text_input_end)
        if turn.stream is None and is_speakable(segment):
            # TTFB counts from the first segment that held speakable text, even
            # if the filter (or an unfinished word) kept it back for a while.
            turn.started_at = turn.shaper.speakable_since or time.monotonic()
            turn.sample_rate = self.config.sample_rate
            turn.client = turn.client or self.client  # the config was fixed meanwhile
            turn.stream = turn.client.request(
                self.config.setup_fields(), words=self.config.enable_words
            )
            turn.reader = asyncio.create_task(self._read(turn))
            self.ten_env.log_info(
                f"request {t.request_id} -> gradium {turn.stream.client_req_id}",
                category="key_point",
            )
        if turn.stream is not None and segment:
            turn.stream.send_text(segment)
            self.metrics_add_output_characters(len(segment))

        if t.text_input_end:
            turn.input_ended = True
            if turn.stream is None:
                # Nothing speakable arrived: the request ends now, without a socket.
                self._end_soon(turn, TTSAudioEndReason.REQUEST_END)
            else:
                turn.stream.end()

    def _end_soon(
        self, turn: _Turn, reason: TTSAudioEndReason, error: ModuleError | None = None
    ) -> None:
        """End a request from inside request_tts, right after request_tts returns.

        finish_request re-queues the next request's buffered chunks behind whatever
        is still in the base class's queue. Called while the consumer is inside
        request_tts, that queue may hold a later chunk of the next request (its
        text_input_end, say), which would then be handed over before that
        request's first chunk. Ending from a task lets the consumer first move
        every queued chunk into the pending buffer, where their order is kept.
        """
        task = asyncio.create_task(self._finalize(turn, reason, error))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    def _segment(turn: _Turn, text: str, *, end: bool = False) -> str:
        """The text to send now for this segment (Gradium concatenates messages).

        Joined to the previous segment (a space only where two sentences would
        touch), filtered (markdown, emoji), and, at text_input_end, everything the
        filter still held. "" while nothing speakable has arrived yet.
        """
        out = turn.shaper.feed(text)
        if end:
            out += turn.shaper.finish()
        return out

    async def cancel_tts(self) -> None:
        """End the active request (reason 2); the base sends tts_flush_end after.

        A request that is already ending (normally or with an error) keeps its own
        reason; this waits until its tts_audio_end and finish_request are out.
        """
        turn = self._turn
        try:
            if turn is not None:
                # The client stops Gradium (flush_mode); no late audio reaches TEN.
                await self._finalize(turn, TTSAudioEndReason.INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - the base re-raises: os._exit
            self.ten_env.log_error(f"cancel of {turn.request_id} failed: {exc!r}")
        finally:
            self._completed.clear()  # the flush forgets every request, as the base does

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
        held = turn.held_words
        if held and _ms_of(word.start_s) <= _ms_of(held[0].start_s):
            held.append(word)  # same start: one result (start_ms strictly ascends)
            return
        if held:
            await self._send_words(turn, held, TURN_ONGOING)
        turn.held_words = [word]  # held back so the last one can end the turn

    async def _send_words(self, turn: _Turn, words: list[Word], status: int) -> None:
        """One tts_text_result; ``status`` other than 0 makes it the turn's last."""
        start_ms = _ms_of(words[0].start_s)
        end_ms = max(_ms_of(max(w.stop_s, w.start_s)) for w in words)
        seq = turn.results_sent
        turn.results_sent += 1
        await self.send_tts_text_result(
            TTSTextResult(
                request_id=turn.request_id,
                text=" ".join(w.text for w in words),
                start_ms=start_ms,
                duration_ms=max(0, end_ms - start_ms),
                words=[
                    TTSWord(
                        word=w.text,
                        start_ms=_ms_of(w.start_s),
                        duration_ms=max(0, _ms_of(w.stop_s) - _ms_of(w.start_s)),
                    )
                    for w in words
                ],
                text_result_end=status != TURN_ONGOING,
                metadata=self.update_metadata(
                    turn.request_id, {"turn_seq_id": seq, "turn_status": status}
                ),
            )
        )

    # ------------------------------------------------------------------- finalize
    async def _finalize(
        self,
        turn: _Turn,
        reason: TTSAudioEndReason,
        error: ModuleError | None = None,
    ) -> None:
        """End a request exactly once: words, usage, dump, audio end, finish.

        Every later call (a flush, on_stop, the reader) waits until that one
        ending is complete, so nothing of a request can follow what comes next.
        """
        claimed = False
        if not turn.finalized:
            async with turn.lock:
                claimed = not turn.finalized
                turn.finalized = True
        if not claimed:
            await turn.ended.wait()
            return
        if turn.reader is not None and turn.reader is not asyncio.current_task():
            turn.reader.cancel()
        if turn.stream is not None and reason != TTSAudioEndReason.REQUEST_END:
            turn.stream.cancel()
        request_id = turn.request_id
        try:
            if turn.held_words:
                held, turn.held_words = turn.held_words, []
                status = (
                    TURN_ENDED
                    if reason == TTSAudioEndReason.REQUEST_END
                    else TURN_INTERRUPTED
                )
                await self._send_words(turn, held, status)
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
            try:
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
            finally:
                # Only now: a flush arriving until here finds the turn and waits.
                if self._turn is turn:
                    self._turn = None
                turn.ended.set()

    # ----------------------------------------------------------------- configs
    async def update_configs(self, configs: dict[str, Any]) -> None:
        """Apply every new property to the next request (raise: the command fails).

        Per-request settings (voice, model, rate, dump, words) are read when a
        request starts. Any other change (URL, key, timeouts, future client
        options) builds a new client; a request in flight keeps the old one until
        it ends, then the old one is closed. Before on_start, or after on_stop,
        only the config changes: on_start builds the client from it.
        """
        merged = _deep_merge(self._properties, configs)
        config = GradiumTTSConfig.from_properties(merged)
        changed = _client_settings(config) != _client_settings(self._client_config)
        client = None
        if self._started and not self._stopped and (self.client is None or changed):
            client = self._new_client(config)  # raises: nothing has changed yet
        previous = self.config
        self._properties, self.config, self.config_error = merged, config, None
        self.ten_env.log_info(f"config updated: {config}", category="key_point")
        _warn_overridden(self.ten_env, config, previous)
        if client is not None:
            if self.client is not None:
                self._retired_clients.append(self.client)
                self._close_retired()
            self.client, self._client_config = client, config
            client.start()  # prewarm

    def _close_retired(self) -> None:
        active = self._turn.client if self._turn and not self._turn.finalized else None
        for client in list(self._retired_clients):
            if client is not active:
                self._retired_clients.remove(client)
                task = asyncio.create_task(client.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    # ----------------------------------------------------------------- helpers
    def _start_client(self, config: GradiumTTSConfig) -> None:
        try:
            self.client = self._new_client(config)
            self._client_config = config
            self.client.start()  # prewarm: the first turn pays no handshake
        except Exception as exc:  # noqa: BLE001 - requests will report it
            self.client = None
            self.config_error = f"cannot start the Gradium client: {exc}"
            self.ten_env.log_error(self.config_error, category="key_point")

    def _new_client(self, config: GradiumTTSConfig) -> GradiumTTSClient:
        return GradiumTTSClient(
            config.url,
            config.api_key.get_secret_value(),
            listener=_Listener(self),
            connect_timeout_s=config.connect_timeout_s,
            response_timeout_s=config.response_timeout_s,
            max_socket_age_s=config.max_socket_age_s,
            flush_mode=config.flush_mode,
            max_requests_per_socket=config.max_requests_per_socket,
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


def _warn_overridden(
    ten_env: AsyncTenEnv,
    config: GradiumTTSConfig,
    previous: GradiumTTSConfig | None,
) -> None:
    """Voice-setting warnings, each once: not repeated by an update that keeps it.

    A typed setting and the same json_config key (the typed one is used), and
    rewrite rule names Gradium does not document (sent as they are).
    """
    try:
        seen = set(_voice_warnings(previous)) if previous is not None else set()
        for text in _voice_warnings(config):
            if text not in seen:
                ten_env.log_warn(text)
    except Exception as exc:  # noqa: BLE001 - a warning must never fail a callback
        ten_env.log_error(f"cannot check the voice settings: {exc!r}")


def _voice_warnings(config: GradiumTTSConfig) -> list[str]:
    out = [
        f"{typed} and {raw} are both set: {typed} is used"
        for typed, raw in config.json_config_overridden()
    ]
    rules = config.voice_settings().get(NORMALIZATION_KEY, "")
    unknown = unknown_rewrite_rules(rules)
    if unknown:
        out.append(
            "text normalization: rule names Gradium does not document, sent as "
            "they are: " + ", ".join(unknown)
        )
    return out


def _ms_of(seconds: float) -> int:
    return int(round(seconds * 1000))


def _client_settings(config: GradiumTTSConfig | None) -> dict[str, Any] | None:
    """Everything of a config that the client depends on (see _PER_REQUEST_FIELDS)."""
    if config is None:
        return None
    settings = config.model_dump(exclude=set(_PER_REQUEST_FIELDS))
    settings["api_key"] = config.api_key.get_secret_value()
    return settings


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
