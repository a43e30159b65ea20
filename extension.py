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
import inspect
import json
import math
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    mask_secrets,
    printable,
)
from .text_filter import (
    TextShaper,
    is_speakable,  # applied to text as it will be sent
)

VENDOR = "gradium"
_COMPLETED_KEPT = 256
CONNECTION_STATUS_DATA = "connection_status_changed"
DUMP_CLOSE_TIMEOUT_S = 2.0  # a request's ending waits at most this long for its dump
_KEEP_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# turn_status of a tts_text_result (TEN's subtitle convention).
TURN_ONGOING, TURN_ENDED, TURN_INTERRUPTED = 0, 1, 2
# A word may start at most this far beyond the request's audio so far (Gradium
# sends a word before the audio holding it, never seconds ahead); later, or
# outside int64 milliseconds, its timestamp is unusable, like NaN.
WORD_AHEAD_S = 10.0
_INT64_MAX = 2**63 - 1
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
        "language",  # issue 23: picks each request's rewrite_rules
    }
)


def dump_file_name(request_id: str) -> str:
    """A file name safe for any request id: no separators, no traversal, bounded."""
    stem = _KEEP_IN_FILE_NAME.sub("_", request_id).strip("._")[:64] or "request"
    digest = hashlib.sha1(request_id.encode("utf-8")).hexdigest()[:8]
    return f"gradium_dump_{stem}_{digest}.pcm"


class DumpWriter:
    """One request's PCM dump, written by its own thread: the loop never waits on
    the disk. The first failure stops the dump (``error`` says why, and later
    writes are refused); ``close`` waits at most ``timeout_s`` for the thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.error: BaseException | None = None
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._loop = asyncio.get_running_loop()
        self._finished: asyncio.Future[None] = self._loop.create_future()
        threading.Thread(target=self._run, name="gradium-dump", daemon=True).start()

    def write(self, pcm: bytes) -> bool:
        """Queue ``pcm``; False once the dump has failed."""
        if self.error is not None:
            return False
        self._chunks.put(pcm)
        return True

    async def close(self, timeout_s: float = DUMP_CLOSE_TIMEOUT_S) -> None:
        self._chunks.put(None)
        with contextlib.suppress(asyncio.TimeoutError):  # not TimeoutError on 3.10
            await asyncio.wait_for(asyncio.shield(self._finished), timeout_s)
        if not self._finished.done() and self.error is None:
            self.error = TimeoutError(f"dump still writing after {timeout_s:g} s")

    def _run(self) -> None:
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(self.path, "wb") as f:  # each request afresh
                while (chunk := self._chunks.get()) is not None:
                    f.write(chunk)
        except Exception as exc:  # noqa: BLE001 - disk full, no permission, ...
            self.error = exc
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(_set_done, self._finished)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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
    last_word_s: float = 0.0  # start of the last word kept (timestamps never go back)
    words_fixed: bool = False  # a bad word timestamp was dropped or clamped (logged)
    pcm_tail: bytes = b""  # an odd trailing byte, waiting for the rest of its sample
    gradium_id: str = ""  # Gradium's request id (ready.request_id), for support
    writer: DumpWriter | None = None
    dump_failed: bool = False  # the dump stopped (its failure was logged)
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
                ten_env.log_error(f"error while stopping: {self._masked(repr(exc))}")

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
            self.ten_env.log_error(
                f"request {_id(t.request_id)} failed: {self._masked(repr(exc))}"
            )
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
                    f"text for request {_id(t.request_id)}, which has already ended: ignored"
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
            # The base class keeps a partial sample for the next frame, across
            # requests; we hand it whole samples only, and no request inherits one.
            self.leftover_bytes = b""
        elif turn.input_ended:
            self.ten_env.log_warn(
                f"text after text_input_end for {_id(t.request_id)}: ignored"
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
                f"request {_id(t.request_id)} -> gradium {turn.stream.client_req_id}",
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
            self.ten_env.log_error(
                f"cancel of {_id(turn.request_id)} failed: {self._masked(repr(exc))}"
            )
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
                        self._note_gradium_id(turn, event.server_request_id)
                if isinstance(event, Done):
                    await self._finalize(turn, TTSAudioEndReason.REQUEST_END)
                elif isinstance(event, Failed):
                    await self._finalize(
                        turn, TTSAudioEndReason.ERROR, self._vendor_error(event.error)
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            self.ten_env.log_error(
                f"reader for {_id(turn.request_id)} failed: {self._masked(repr(exc))}"
            )
            await self._finalize(
                turn,
                TTSAudioEndReason.ERROR,
                self._error(f"internal error: {exc}", fatal=False, code="internal"),
            )

    def _note_gradium_id(self, turn: _Turn, gradium_id: str) -> None:
        """Log Gradium's request id once (a replay's new one too): for support."""
        if gradium_id and gradium_id != turn.gradium_id:
            turn.gradium_id = gradium_id
            cid = turn.stream.client_req_id if turn.stream is not None else "-"
            self.ten_env.log_info(
                f"request {_id(turn.request_id)} -> gradium {cid}: "
                f"gradium request_id {gradium_id}",
                category="key_point",
            )

    async def _on_audio(self, turn: _Turn, pcm: bytes) -> None:
        # Whole samples only: an odd byte waits for the rest of its sample in
        # this request's next chunk (or is dropped at its end, see _finalize).
        unit = self.synthesize_audio_sample_width() * self.synthesize_audio_channels()
        if turn.pcm_tail:
            pcm = turn.pcm_tail + pcm
        cut = len(pcm) - len(pcm) % unit
        pcm, turn.pcm_tail = pcm[:cut], pcm[cut:]
        if not pcm:
            return
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
            try:
                if turn.writer is None:
                    path = os.path.join(
                        self.config.dump_path, dump_file_name(turn.request_id)
                    )
                    turn.writer = DumpWriter(path)
                if not turn.writer.write(pcm):
                    self._dump_failed(turn)
            except Exception as exc:  # noqa: BLE001 - a dump never fails a request
                self._dump_failed(turn, exc)

    def _dump_failed(self, turn: _Turn, exc: BaseException | None = None) -> None:
        """Log a dump failure once per request; the dump of that request stops."""
        if turn.dump_failed:
            return
        turn.dump_failed = True
        exc = exc or (turn.writer.error if turn.writer is not None else None)
        self.ten_env.log_warn(
            f"dump of {_id(turn.request_id)} stopped: {self._masked(repr(exc))}"
        )

    async def _on_word(self, turn: _Turn, word: Word) -> None:
        if self.config is None or not self.config.enable_words or not word.text.strip():
            return
        word = self._sane_word(turn, word)
        if word is None:
            return
        held = turn.held_words
        if held and _ms_of(word.start_s) <= _ms_of(held[0].start_s):
            held.append(word)  # same start: one result (start_ms strictly ascends)
            return
        if held:
            await self._send_words(turn, held, TURN_ONGOING)
        turn.held_words = [word]  # held back so the last one can end the turn

    def _sane_word(self, turn: _Turn, word: Word) -> Word | None:
        """A word TEN can take. Dropped: text that is not valid Unicode (a lone
        surrogate), a start that is not a finite number or lies beyond what the
        request's audio can hold (its audio so far plus ``WORD_AHEAD_S``). A start
        before the previous word's (or below 0) is clamped to it; a stop before the
        start, not finite or beyond that bound becomes the start. Logged once."""
        start, stop = word.start_s, word.stop_s
        bound = self._ms(turn, turn.audio_bytes) / 1000 + WORD_AHEAD_S
        fixed = None
        try:
            word.text.encode("utf-8")
        except UnicodeEncodeError:
            fixed = "dropped a word whose text is not valid Unicode"
        if fixed is None and not _usable_s(start, bound):
            fixed = f"dropped a word with start_s {start!r} (audio so far + margin: "
            fixed += f"{bound:g} s)"
        drop = fixed is not None
        if not drop:
            if start < turn.last_word_s:
                fixed = f"clamped start_s {start!r} to {turn.last_word_s!r}"
                start = turn.last_word_s
            if not _usable_s(stop, bound):
                stop = start
            stop = max(stop, start)
        if fixed is not None and not turn.words_fixed:
            turn.words_fixed = True
            self.ten_env.log_warn(
                f"word timestamps of {_id(turn.request_id)} from Gradium are not "
                f"usable (not finite, beyond the audio, going backwards or not "
                f"valid text): {fixed}; further ones fixed silently"
            )
        if drop:
            return None
        turn.last_word_s = start
        if (start, stop) == (word.start_s, word.stop_s):
            return word
        return Word(word.text, float(start), float(stop))

    async def _send_words(self, turn: _Turn, words: list[Word], status: int) -> None:
        """One tts_text_result; ``status`` other than 0 makes it the turn's last."""
        if not turn.audio_started:  # a result belongs inside start..end
            turn.audio_started = True
            await self.send_tts_audio_start(turn.request_id)
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
        Each step is guarded: whatever one raises is logged and the next runs,
        so tts_audio_end goes out once and the base class always moves on.
        """
        claimed = False
        if not turn.finalized:
            async with turn.lock:
                claimed = not turn.finalized
                turn.finalized = True
        if not claimed:
            await turn.ended.wait()
            return
        rid = turn.request_id
        step = self._ending_step
        try:
            await step(turn, "stop the stream", self._end_stream, turn, reason)
            await step(turn, "drop the odd byte", self._end_tail, turn)
            await step(turn, "send tts_audio_start", self._end_audio_start, turn)
            await step(turn, "send the last words", self._end_words, turn, reason)
            await step(turn, "send usage metrics", self.send_usage_metrics, rid)
            await step(turn, "close the dump", self._end_dump, turn)
            end = {"interval": 0, "duration": 0}
            await step(turn, "measure the audio", self._end_measure, turn, end)
            await step(
                turn,
                "send tts_audio_end",
                self.send_tts_audio_end,
                rid,
                end["interval"],
                end["duration"],
                reason=reason,
            )
            await step(turn, "update the bookkeeping", self._end_bookkeeping, turn)
            if error is not None:
                error = self._with_gradium_id(turn, error)
                await step(turn, "send the error", self.send_tts_error, rid, error)
            if reason != TTSAudioEndReason.INTERRUPTED:
                # cancel_tts must not call finish_request (the base class clears
                # its state after a flush); every other ending releases the queue.
                # The error went out above: finish_request only moves on. Its
                # steps are idempotent, so a failed one is tried once more.
                if not await step(turn, "finish the request", self.finish_request, rid):
                    await step(turn, "finish the request", self.finish_request, rid)
        finally:
            # Only now: a flush arriving until here finds the turn and waits.
            if self._turn is turn:
                self._turn = None
            turn.ended.set()

    async def _ending_step(
        self, turn: _Turn, what: str, fn: Callable[..., Any], *args: Any, **kw: Any
    ) -> bool:
        """Run one step of an ending; an exception is logged, never raised."""
        try:
            result = fn(*args, **kw)
            if inspect.isawaitable(result):
                await result
            return True
        except Exception as exc:  # noqa: BLE001 - the ending must go on
            with contextlib.suppress(Exception):
                self.ten_env.log_error(
                    f"ending {_id(turn.request_id)}: cannot {what}: "
                    f"{self._masked(repr(exc))}"
                )
            return False

    def _end_stream(self, turn: _Turn, reason: TTSAudioEndReason) -> None:
        if turn.reader is not None and turn.reader is not asyncio.current_task():
            turn.reader.cancel()
        if turn.stream is not None and reason != TTSAudioEndReason.REQUEST_END:
            turn.stream.cancel()  # the client stops Gradium (flush_mode)

    def _end_tail(self, turn: _Turn) -> None:
        tail, turn.pcm_tail = turn.pcm_tail, b""
        if tail:
            self.ten_env.log_warn(
                f"audio of {_id(turn.request_id)} ended with {len(tail)} byte(s) short of "
                "a whole sample: dropped"
            )

    async def _end_audio_start(self, turn: _Turn) -> None:
        if not turn.audio_started:
            turn.audio_started = True
            await self.send_tts_audio_start(turn.request_id)

    async def _end_words(self, turn: _Turn, reason: TTSAudioEndReason) -> None:
        held, turn.held_words = turn.held_words, []
        if held:
            status = (
                TURN_ENDED
                if reason == TTSAudioEndReason.REQUEST_END
                else TURN_INTERRUPTED
            )
            await self._send_words(turn, held, status)

    async def _end_dump(self, turn: _Turn) -> None:
        writer, turn.writer = turn.writer, None
        if writer is not None:
            await writer.close()
            if writer.error is not None:
                self._dump_failed(turn, writer.error)

    def _end_measure(self, turn: _Turn, end: dict[str, int]) -> None:
        if turn.first_audio_at is not None:
            end["interval"] = int((time.monotonic() - turn.first_audio_at) * 1000)
        end["duration"] = self._ms(turn, turn.audio_bytes)

    def _end_bookkeeping(self, turn: _Turn) -> None:
        self._completed[turn.request_id] = None
        while len(self._completed) > _COMPLETED_KEPT:
            del self._completed[next(iter(self._completed))]
        self._close_retired()

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
                self.client.silence()  # the status follows the new client only
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

    def _masked(self, text: str) -> str:
        """``text`` with the configured key and key-looking values masked."""
        secrets = []
        for config in (self.config, self._client_config):
            if config is not None:
                secrets.append(config.api_key.get_secret_value())
        return mask_secrets(text, secrets)

    def _error(self, message: str, *, fatal: bool, code: str) -> ModuleError:
        message = self._masked(message)
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
        error = self._error(
            err.message, fatal=err.fatal, code=err.vendor_code or "error"
        )
        return _add_gradium_id(error, err.server_request_id)

    def _with_gradium_id(self, turn: _Turn, error: ModuleError) -> ModuleError:
        """Every error of a request that had a ``ready`` names Gradium's id."""
        gradium_id = turn.gradium_id or (
            turn.stream.server_request_id if turn.stream is not None else ""
        )
        return _add_gradium_id(error, gradium_id)

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
            f"gradium connection failed: {self._ext._masked(str(error))}",
            category="vendor",
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
    if not math.isfinite(seconds):
        return 0
    return max(-_INT64_MAX, min(_INT64_MAX, int(round(seconds * 1000))))


def _usable_s(value: Any, bound: float) -> bool:
    """A word timestamp that TEN can take and the request's audio can hold."""
    return (
        isinstance(value, float | int)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value <= bound
    )


def _id(request_id: str) -> str:
    """A request id fit for one log line (newlines and controls escaped)."""
    return printable(str(request_id), 200)


def _add_gradium_id(error: ModuleError, gradium_id: str) -> ModuleError:
    """``error`` with "(gradium request_id <id>)" in its vendor_info message."""
    info = error.vendor_info
    if not gradium_id or info is None or gradium_id in (info.message or ""):
        return error
    message = f"{info.message} (gradium request_id {gradium_id})"
    return error.model_copy(
        update={"vendor_info": info.model_copy(update={"message": message})}
    )


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
