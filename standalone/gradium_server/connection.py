"""One WebSocket connection speaking Gradium's TTS protocol (reference §2-§5).

Structure (all on the server's event loop):

* ``_reader`` receives frames, stamps their arrival and logs them;
* ``_processor`` handles them ``rtt_s / 2`` after arrival, in order (§2);
* one :class:`Request` task per ``setup`` synthesizes and paces that request's
  audio (several run concurrently when multiplexed, §4);
* ``_sender`` writes every server message ``rtt_s / 2`` after it was produced, in
  order, and performs closes / aborts;
* ``_watchdog`` enforces the session cap and the idle timeout (§5).

Error codes this module sends (each ``error`` frame's ``code`` equals the close code
that follows when the error closes the socket, reference §3.5):

* 1008: bad/missing API key; ``text``/``end_of_stream`` before any ``setup``;
  unknown ``output_format``; reused active ``client_req_id``; ``text`` /
  ``end_of_stream`` for an unknown ``client_req_id``; text after
  ``end_of_stream``; too many concurrent requests; idle timeout; session cap; a
  ``json_config`` model setting out of its documented range or of the wrong type
  (``padding_bonus``, ``temp``, ``cfg_coef``, ``rewrite_rules``): the ``error``
  (with the ``client_req_id``, if any) and then close 1008, even when multiplexed.
* 1003 (unsupported data): a binary frame, a frame that is not a JSON object, a
  message without a known ``type``, ``json_config`` that is not valid JSON, a setup
  field of the wrong type. [undocumented] §5 lists 1002/1003 for "setup validation
  failure"; we use 1003 for all malformed input and close the socket.
* 1011: synthesis failed inside the server (§5 "worker failure"), and the
  ``error_1011`` fault.

An error that concerns one multiplexed request (setup had a ``client_req_id`` and
``close_ws_on_eos: false``, or a ``text``/``end_of_stream`` naming a
``client_req_id``) carries that ``client_req_id``, ends only that request and leaves
the socket open (§3.5, §4). Any other error closes the socket with its code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import socket
import struct
import uuid
from array import array
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from .faults import BAD_FRAMES, CONNECTION_KINDS, KINDS, Fault
from .formats import DEFAULT_FORMAT, OutputFormat, lookup
from .textparse import extract_markers, split_parts
from .voices import (
    Rendering,
    duration_factor,
    number_language,
    silence,
    synthesize,
)

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from .server import GradiumServer

SETUP_KEYS = frozenset(
    {
        "type",
        "model_name",
        "voice_id",
        "voice",
        "output_format",
        "json_config",
        "pronunciation_id",
        "client_req_id",
        "close_ws_on_eos",
        "retry_for_s",
    }
)
# faults that fire "after N audio frames" and, if the audio ends first, at the end
END_FAULTS = frozenset(
    {
        "error_1008",
        "error_1011",
        "drop_after",
        "stall_mid_stream",
        "stall_words",
        "close_1000_no_eos",
        "echo_key",
    }
)
STALL_WORDS_EVERY_S = 0.1
STALL_WORDS_FOR_S = 60.0


class ProtocolError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Connection:
    def __init__(
        self, server: GradiumServer, ws: ServerConnection, conn_id: int
    ) -> None:
        self.server = server
        self.ws = ws
        self.id = conn_id
        self.loop = asyncio.get_running_loop()
        self.opened_at = self.loop.time()
        self.last_activity = self.opened_at
        self.requests: dict[str | None, Request] = {}
        self.ever_setup = False
        self.api_key: str | None = None  # for the echo_key fault only; never logged
        self.close_after_all = False  # unscoped end_of_stream on a reusable socket
        self.closing = False  # a terminal action (close/abort) has been queued
        self.done = asyncio.Event()
        self._out: asyncio.Queue = asyncio.Queue()
        self._in: asyncio.Queue = asyncio.Queue()
        self._last_deadline = 0.0
        self._tasks: set[asyncio.Task] = set()

    # --- helpers -----------------------------------------------------------------

    @property
    def latency(self):
        return self.server.config.latency

    @property
    def limits(self):
        return self.server.config.limits

    def log(self, direction: str, type: str, **kw: Any) -> None:
        self.server.events.add(self.id, direction, type, **kw)

    def touch(self) -> None:
        self.last_activity = self.loop.time()

    def spawn(self, coro) -> asyncio.Task:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- output (reference: every server message is a JSON text frame, §1) -------

    def _enqueue(self, item: tuple, at: float | None) -> None:
        produced = self.loop.time() if at is None else at
        deadline = max(self._last_deadline, produced + self.latency.rtt_s / 2)
        self._last_deadline = deadline
        self._out.put_nowait((deadline, produced) + item)

    def emit(self, msg: dict, at: float | None = None) -> bool:
        """Queue a JSON message; dropped (returns False) once the socket is closing."""
        if self.closing:
            return False
        self._enqueue(("json", msg), at)
        return True

    def emit_raw(self, text: str, note: str, at: float | None = None) -> None:
        if not self.closing:
            self._enqueue(("raw", text, note), at)

    def terminate(
        self,
        how: str = "close",
        code: int = 1000,
        reason: str = "",
        at: float | None = None,
    ) -> None:
        """Queue a close (``how="close"``) or an abrupt TCP reset (``"abort"``)."""
        if self.closing:
            return
        self.closing = True
        self._enqueue((how, code, reason), at)
        for req in self.requests.values():
            req.stop()

    def error(
        self,
        code: int,
        message: str,
        client_req_id: str | None = None,
        close: bool = True,
        at: float | None = None,
    ) -> None:
        msg: dict[str, Any] = {"type": "error", "message": message, "code": code}
        if client_req_id is not None:
            msg["client_req_id"] = client_req_id
        self.log(
            "event",
            "protocol_error",
            client_req_id=client_req_id,
            code=code,
            message=message,
            closes=close,
        )
        self.emit(msg, at)
        if close:
            self.terminate("close", code, message[:120], at)

    async def _sender(self) -> None:
        try:
            while True:
                deadline, produced, kind, *args = await self._out.get()
                delay = deadline - self.loop.time()
                await asyncio.sleep(delay if delay > 0 else 0)
                if kind == "json":
                    await self._send_json(args[0], produced)
                elif kind == "raw":
                    await self.ws.send(args[0])
                    self.log("out", args[1], data_len=len(args[0]), produced_t=produced)
                elif kind == "close":
                    code, reason = args
                    self.log("event", "close", code=code, reason=reason, by="server")
                    await self.ws.close(code, reason)
                    return
                elif kind == "abort":
                    await self._abort()
                    return
        except ConnectionClosed as exc:
            self.log("event", "send_failed", code=exc.rcvd.code if exc.rcvd else None)
        finally:
            self.done.set()

    async def _send_json(self, msg: dict, produced: float) -> None:
        await self.ws.send(json.dumps(msg, separators=(",", ":")))
        kind = msg.get("type", "")
        if kind == "audio":
            summary = {k: v for k, v in msg.items() if k != "audio"}
            pcm = base64.b64decode(msg["audio"])
            extra = {"audio_bytes": len(pcm), "pcm": pcm}
        else:
            summary, extra = msg, {}
        self.log(
            "out",
            kind,
            client_req_id=msg.get("client_req_id"),
            text=msg.get("text") if kind == "text" else msg.get("message"),
            message=summary,
            produced_t=produced,
            **extra,
        )

    async def _abort(self) -> None:
        """Abrupt TCP loss: flush what was written, then reset (no close frame)."""
        transport = self.ws.transport
        for _ in range(400):
            if transport.is_closing() or transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.005)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            except OSError:
                pass
        self.log("event", "abort", by="server")
        transport.abort()

    # --- lifecycle -----------------------------------------------------------------

    async def run(self, key_ok: bool, key_reason: str) -> None:
        self.spawn(self._sender())
        if not key_ok:
            # §1/§5: auth failures are reported in-band after a successful upgrade.
            self.error(1008, key_reason)
        else:
            self.spawn(self._reader())
            self.spawn(self._processor())
            self.spawn(self._watchdog())
        try:
            await self.done.wait()
        finally:
            for req in list(self.requests.values()):
                req.stop()
            current = asyncio.current_task()
            tasks = [t for t in self._tasks if t is not current]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _reader(self) -> None:
        try:
            async for raw in self.ws:
                arrived = self.loop.time()
                parsed = _parse(raw)
                self.log(
                    "in",
                    parsed.get("type", "<invalid>")
                    if parsed is not None
                    else "<invalid>",
                    client_req_id=_str_or_none(parsed, "client_req_id"),
                    text=_str_or_none(parsed, "text"),
                    raw=raw,
                    message=parsed,
                )
                self._in.put_nowait((arrived, raw, parsed))
        except ConnectionClosed:
            pass
        finally:
            self._in.put_nowait(None)

    async def _processor(self) -> None:
        try:
            await self._process_loop()
        finally:
            self.done.set()

    async def _process_loop(self) -> None:
        while True:
            item = await self._in.get()
            if item is None:
                if not self.closing:
                    self.log(
                        "event",
                        "close",
                        by="client",
                        code=self.ws.close_code,
                        reason=self.ws.close_reason or "",
                        active_requests=len(self.requests),
                    )
                self.done.set()
                return
            arrived, raw, parsed = item
            t = arrived + self.latency.rtt_s / 2
            delay = t - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.closing:
                self.log("event", "ignored_after_close", raw=raw)
                continue
            self.touch()
            try:
                self._handle(raw, parsed, t)
            except ProtocolError as exc:
                self.error(exc.code, exc.message, at=t)
            except Exception as exc:  # a bug here: report it like a worker failure
                self.log("event", "internal_error", error=repr(exc))
                self.error(1011, f"internal error: {exc!r}", at=t)

    async def _watchdog(self) -> None:
        while not self.closing:
            now = self.loop.time()
            cap_deadline = self.opened_at + self.limits.session_cap_s
            if now >= cap_deadline:
                self.error(1008, "session duration exceeded")
                return
            busy = any(r.busy for r in self.requests.values())
            idle_deadline = (
                float("inf")
                if busy
                else self.last_activity + self.limits.idle_timeout_s
            )
            if now >= idle_deadline:
                self.error(1008, "idle timeout: no message received")
                return
            await asyncio.sleep(
                max(0.001, min(cap_deadline, idle_deadline, now + 0.25) - now)
            )

    # --- client messages (reference §2) ---------------------------------------------

    def _handle(self, raw: str | bytes, msg: dict | None, t: float) -> None:
        if isinstance(raw, bytes):
            raise ProtocolError(1003, "binary frames are not supported; send JSON text")
        if msg is None:
            raise ProtocolError(1003, "message is not a JSON object")
        kind = msg.get("type")
        if kind == "setup":
            self._on_setup(msg, t)
        elif kind == "text":
            self._on_text(msg, t)
        elif kind == "end_of_stream":
            self._on_end_of_stream(msg, t)
        else:
            # [undocumented] The reference lists only setup/text/end_of_stream (§2.5);
            # we treat anything else as unsupported data (1003) and close.
            raise ProtocolError(1003, f"unknown message type {kind!r}")

    def _on_setup(self, msg: dict, t: float) -> None:
        cid = msg.get("client_req_id")
        if cid is not None and not isinstance(cid, str):
            raise ProtocolError(1003, "client_req_id must be a string")
        close_on_eos = msg.get("close_ws_on_eos", True)
        if not isinstance(close_on_eos, bool):
            raise ProtocolError(1003, "close_ws_on_eos must be a boolean")
        # §4: concurrent multiplexing = client_req_id + close_ws_on_eos false. Only
        # then is a setup error scoped to the request instead of closing the socket.
        scoped = cid is not None and close_on_eos is False

        def fail(code: int, message: str) -> None:
            self.error(code, message, client_req_id=cid, close=not scoped, at=t)

        self.ever_setup = True
        unknown = sorted(k for k in msg if k not in SETUP_KEYS)
        if unknown:
            self.log("event", "ignored_setup_keys", client_req_id=cid, keys=unknown)
        if cid in self.requests:
            if cid is None:
                raise ProtocolError(1008, "a request is already active on this socket")
            # §4: reusing an active client_req_id is a protocol error; it is terminal
            # for the new setup only.
            self.error(
                1008, f"client_req_id {cid!r} is already active", cid, close=False, at=t
            )
            return
        fmt_name = msg.get("output_format", DEFAULT_FORMAT)
        fmt = lookup(fmt_name) if isinstance(fmt_name, str) else None
        if fmt is None:
            fail(1008, f"unsupported output_format {fmt_name!r}")
            return
        json_config = msg.get("json_config")
        if isinstance(json_config, str):
            try:
                json_config = json.loads(json_config)
            except ValueError:
                fail(1003, "json_config is not valid JSON")
                return
        if json_config is not None and not isinstance(json_config, dict):
            fail(1003, "json_config must be a JSON object or a JSON-encoded object")
            return
        settings, problem = _voice_settings(json_config or {})
        if problem is not None:
            # An out-of-range model setting: Gradium's error shape, an ``error``
            # 1008 (scoped when multiplexed), then the socket closes with 1008.
            self.error(1008, problem, client_req_id=cid, close=True, at=t)
            return
        if settings.get("unknown_rules"):
            self.log(
                "event",
                "unknown_rewrite_rules",
                client_req_id=cid,
                rules=settings["unknown_rules"],
            )
        for key in ("voice_id", "voice", "model_name", "pronunciation_id"):
            if msg.get(key) is not None and not isinstance(msg[key], str):
                fail(1003, f"{key} must be a string")
                return
        retry = msg.get("retry_for_s")
        if retry is not None and (
            isinstance(retry, bool) or not isinstance(retry, (int, float))
        ):
            fail(1003, "retry_for_s must be a number")
            return
        if len(self.requests) >= self.limits.max_concurrent:
            fail(1008, "too many concurrent requests")
            return
        # §2.1: voice_id wins over voice when both are sent.
        voice = msg.get("voice_id") or msg.get("voice") or "default"
        engine = (
            "synthetic" if voice == "synthetic" else self.server.config.voice_engine
        )
        model_name = msg.get("model_name") or "default"
        req = Request(self, cid, fmt, engine, close_on_eos)
        req.padding_bonus = float(settings.get("padding_bonus", 0.0))
        req.numbers = number_language(settings.get("rewrite_rules"))
        self.requests[cid] = req
        ready: dict[str, Any] = {
            "type": "ready",
            "request_id": req.request_id,
            "model_name": model_name,
            "model_ext": self.server.config.model_ext,
            "sample_rate": fmt.sample_rate,
            "frame_size": fmt.frame_size,
            "audio_stream_names": ["audio"],
            "text_stream_names": ["text"],
        }
        if cid is not None:
            ready["client_req_id"] = cid
        self.log(
            "event",
            "request_started",
            client_req_id=cid,
            request_id=req.request_id,
            voice=voice,
            engine=engine,
            output_format=fmt.name,
            json_config=json_config,
            padding_bonus=settings.get("padding_bonus"),
            temp=settings.get("temp"),
            cfg_coef=settings.get("cfg_coef"),
            rewrite_rules=settings.get("rewrite_rules"),
            numbers=req.numbers,
            duration_factor=duration_factor(req.padding_bonus),
            pronunciation_id=msg.get("pronunciation_id"),
            retry_for_s=retry,
            close_ws_on_eos=close_on_eos,
        )
        self.emit(ready, at=t)
        req.task = self.spawn(req.run())

    def _route(self, msg: dict, what: str) -> Request | None:
        if not self.ever_setup:
            # §2.1: "The server will close the connection if any other message is
            # sent first".
            raise ProtocolError(
                1008, f"{what} before setup: setup must be the first message"
            )
        cid = msg.get("client_req_id")
        if cid is not None and not isinstance(cid, str):
            raise ProtocolError(1003, "client_req_id must be a string")
        req = self.requests.get(cid)
        if req is not None:
            return req
        if cid is None:
            # not attributable to a request: close (e.g. text after the previous
            # request of a reusable socket ended, without a new setup)
            what_msg = f"{what} without client_req_id but no such request is active"
            if not self.requests:
                what_msg = f"{what} without setup: no request is active"
            raise ProtocolError(1008, what_msg)
        self.error(1008, f"unknown client_req_id {cid!r}", cid, close=False)
        return None

    def _on_text(self, msg: dict, t: float) -> None:
        text = msg.get("text")
        req = self._route(msg, "text")
        if req is None:
            return
        if not isinstance(text, str):
            req.fail(1003, "text must be a string", t)
            return
        if req.eos_received:
            req.fail(1008, "text after end_of_stream", t)
            return
        req.add_text(text, t)

    def _on_end_of_stream(self, msg: dict, t: float) -> None:
        if msg.get("client_req_id") is None and None not in self.requests:
            if not self.ever_setup:
                raise ProtocolError(
                    1008, "end_of_stream before setup: setup must be the first message"
                )
            # §2.4/§4: unscoped end_of_stream closes a reusable socket once every
            # request has finished.
            self.close_after_all = True
            self.log("event", "close_requested", active_requests=len(self.requests))
            self._maybe_close(t)
            return
        req = self._route(msg, "end_of_stream")
        if req is None:
            return
        if req.eos_received:
            self.log("event", "duplicate_end_of_stream", client_req_id=req.cid)
            return
        req.end(t)

    # --- request bookkeeping -----------------------------------------------------------

    def request_finished(self, req: Request, at: float) -> None:
        self.requests.pop(req.cid, None)
        self.touch()
        if req.close_on_eos:
            self.terminate("close", 1000, "", at)
        else:
            self._maybe_close(at)

    def request_dropped(self, req: Request) -> None:
        if self.requests.get(req.cid) is req:
            del self.requests[req.cid]
        self.touch()
        self._maybe_close(None)

    def _maybe_close(self, at: float | None) -> None:
        if self.close_after_all and not self.requests:
            self.terminate("close", 1000, "", at)


class Request:
    """One logical request (one ``setup``): synthesis, framing, pacing, faults."""

    def __init__(
        self,
        conn: Connection,
        cid: str | None,
        fmt: OutputFormat,
        engine: str,
        close_on_eos: bool,
    ) -> None:
        self.conn = conn
        self.cid = cid
        self.fmt = fmt
        self.engine = engine
        self.close_on_eos = close_on_eos
        self.request_id = str(uuid.uuid4())
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None
        self.eos_received = False
        self.busy = False
        self.stalled = False
        self.babble: asyncio.Task | None = None  # stall_words
        self.stopped = False
        self.padding_bonus = 0.0  # json_config.padding_bonus: speaking rate
        # Language of the rewrite_rules number rules: eSpeak reads digits in it.
        self.numbers: str | None = None
        self.fault: Fault | None = None
        self.fault_fired = False
        self._fault_checked = False
        self.first_text_t: float | None = None
        self.pending = array("h")  # rendered, not yet framed
        self.words: list[tuple[str, int, int]] = []  # absolute samples, not yet sent
        self.rendered = 0  # samples rendered (framed + pending)
        self.samples_out = 0  # samples sent
        self.frames_sent = 0
        self.words_sent = 0
        self.last_word_start = 0.0
        self.odd_tail = False  # odd_audio fired: a stray byte follows the last frame
        self.next_release = 0.0
        self.last_release = 0.0

    # --- input (called by the connection) ---------------------------------------------

    def log(self, type: str, **kw: Any) -> None:
        self.conn.log("event", type, client_req_id=self.cid, **kw)

    def add_text(self, text: str, t: float) -> None:
        clean, markers = extract_markers(text)
        for kind, arg in markers:
            self._arm_marker(kind, arg)
        self._check_injected(clean)
        parts = split_parts(clean)
        if self.first_text_t is None and any(p.kind == "speech" for p in parts):
            self.first_text_t = t
        self.queue.put_nowait(("parts", parts, t))

    def end(self, t: float) -> None:
        self.eos_received = True
        self._check_injected("")
        self.queue.put_nowait(("eos", t))

    def fail(self, code: int, message: str, t: float | None = None) -> None:
        """A scoped error terminal for this request (§3.5, §4)."""
        scoped = self.cid is not None
        self.conn.error(code, message, self.cid, close=not scoped, at=t)
        self.stop()
        self.conn.request_dropped(self)

    def stop(self) -> None:
        self.stopped = True
        if self.babble is not None:
            self.babble.cancel()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    def _arm_marker(self, kind: str, arg: str | None) -> None:
        if kind not in KINDS:
            self.log("fault_marker_unknown", kind=kind, arg=arg)
            return
        fault = Fault.from_marker(kind, arg)
        if kind in CONNECTION_KINDS:
            self.conn.server.faults.add(fault)
            self.log(
                "fault_armed",
                kind=kind,
                arg=arg,
                source="marker",
                scope="next connection",
            )
        elif self.fault is None:
            self._set_fault(fault, "marker")
        else:
            self.log(
                "fault_marker_ignored",
                kind=kind,
                arg=arg,
                reason="request already has a fault",
            )

    def _check_injected(self, first_text: str) -> None:
        if self._fault_checked:
            return
        self._fault_checked = True
        if self.fault is None:
            fault = self.conn.server.faults.take_request_fault(self.cid, first_text)
            if fault is not None:
                self._set_fault(fault, "inject")

    def _set_fault(self, fault: Fault, source: str) -> None:
        self.fault = fault
        self.log("fault_armed", kind=fault.kind, arg=fault.value, source=source)
        if fault.kind == "stall_after_ready":
            self.fault_fired = True
            self.stalled = True
            self.log("fault_fired", kind=fault.kind)

    # --- synthesis loop ---------------------------------------------------------------------

    async def run(self) -> None:
        conn = self.conn
        try:
            while not self.stopped:
                timeout = None
                if len(self.pending) and not self.eos_received:
                    timeout = conn.server.config.tail_flush_s
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:  # not TimeoutError on 3.10
                    # Text has stopped arriving: release the held partial frame so a
                    # client that never sends end_of_stream still gets all its audio.
                    self.busy = True
                    await self._emit_frames(final=True)
                    self.busy = False
                    continue
                if self.stalled:
                    self.log("stalled_input_ignored", item=item[0])
                    continue
                self.busy = True
                if item[0] == "parts":
                    for part in item[1]:
                        if part.kind == "speech":
                            rendering = await asyncio.to_thread(
                                synthesize,
                                self.engine,
                                part.text,
                                self.fmt.sample_rate,
                                self.padding_bonus,
                                self.numbers,
                            )
                            if rendering.phonemes:  # what eSpeak said
                                self.log(
                                    "spoken",
                                    text=part.text,
                                    phonemes=rendering.phonemes,
                                )
                            self._append(rendering)
                        elif part.kind == "break":
                            self._append(silence(part.seconds, self.fmt.sample_rate))
                        await self._emit_frames(final=part.kind == "flush")
                        if self.stopped or self.stalled:
                            break
                else:  # eos
                    await self._emit_frames(final=True)
                    if not (self.stopped or self.stalled):
                        self._finish()
                    return
                self.busy = False
                conn.touch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # synthesis failure: §5 "worker failure" -> 1011
            self.log("synthesis_failed", error=repr(exc))
            self.fail(1011, f"synthesis failed: {exc}")
        finally:
            self.busy = False

    def _append(self, rendering: Rendering) -> None:
        offset = self.rendered
        self.pending.extend(rendering.samples)
        self.rendered += len(rendering.samples)
        self.words.extend((w, a + offset, b + offset) for w, a, b in rendering.words)

    async def _emit_frames(self, final: bool) -> None:
        size = self.fmt.frame_size
        while len(self.pending) >= size or (final and len(self.pending)):
            if self.stopped or self.stalled:
                return
            chunk = self.pending[:size]
            del self.pending[:size]
            await self._release_frame(chunk)

    async def _release_frame(self, chunk: array) -> None:
        conn, lat = self.conn, self.conn.latency
        loop = conn.loop
        now = loop.time()
        k = self.frames_sent
        if k == 0:
            # §task-3: first audio is produced first_audio_s after the first text
            # was processed.
            base = self.first_text_t if self.first_text_t is not None else now
            release = max(now, base + lat.first_audio_s)
        elif self.fault is not None and self.fault.kind == "slow_drip":
            release = max(now, self.last_release + self.fault.float_value(0.5))
        else:
            release = max(now, self.next_release)
        delay = release - loop.time()
        await asyncio.sleep(delay if delay > 0 else 0)  # always yield: interleaving
        if self.stopped or self.stalled or conn.closing:
            return
        if self._frame_fault(k, release):
            return
        rate = self.fmt.sample_rate
        start, stop = self.samples_out, self.samples_out + len(chunk)
        if k == 0 and self.fmt.encoding == "wav":
            self._emit_audio(self.fmt.header(), 0.0, 0.0, release)
        self._emit_words(stop, release)
        payload = self.fmt.encode(chunk)
        f = self.fault
        if (
            f is not None
            and f.kind == "odd_audio"
            and k == f.int_value(0)
            and len(payload) > 1
        ):
            self.fault_fired = self.odd_tail = True
            self.log("fault_fired", kind=f.kind, frame=k)
            cut = len(payload) - 1 if len(payload) % 2 == 0 else len(payload) - 2
            self._emit_audio(payload[:cut], start / rate, stop / rate, release)
            payload = payload[cut:]
        self._emit_audio(payload, start / rate, stop / rate, release)
        self.samples_out = stop
        self.frames_sent += 1
        self.last_release = release
        self.next_release = release + len(chunk) / rate * lat.rtf
        conn.touch()

    def _emit_audio(
        self, payload: bytes, start_s: float, stop_s: float, at: float
    ) -> None:
        msg: dict[str, Any] = {
            "type": "audio",
            "audio": base64.b64encode(payload).decode("ascii"),
            "start_s": round(start_s, 6),
            "stop_s": round(stop_s, 6),
            "stream_id": 0,
        }
        if self.cid is not None:
            msg["client_req_id"] = self.cid
        self.conn.emit(msg, at)

    def _emit_words(self, before_sample: int | None, at: float | None) -> None:
        """Send word timestamps whose start lies before ``before_sample`` (all when
        None), so each word arrives no later than the frame containing its start."""
        rate = self.fmt.sample_rate
        while self.words and (
            before_sample is None or self.words[0][1] < before_sample
        ):
            word, a, b = self.words.pop(0)
            start_s, stop_s = round(a / rate, 6), round(b / rate, 6)
            f, n = self.fault, self.words_sent
            self.words_sent += 1
            if f is not None and f.kind == "word_nan" and n == f.int_value(0):
                self.fault_fired = True
                self.log("fault_fired", kind=f.kind, word=n)
                start_s = stop_s = math.nan
            elif f is not None and f.kind == "word_absurd" and n == f.int_value(1):
                self.fault_fired = True
                self.log("fault_fired", kind=f.kind, word=n)
                start_s = stop_s = 1e300
            elif f is not None and f.kind == "word_surrogate" and n == f.int_value(0):
                self.fault_fired = True
                self.log("fault_fired", kind=f.kind, word=n)
                word = "\ud800"  # json.dumps escapes it: a lone surrogate escape
            elif f is not None and f.kind == "word_backwards" and n == f.int_value(1):
                self.fault_fired = True
                self.log("fault_fired", kind=f.kind, word=n)
                back = self.last_word_start - 1.0
                start_s, stop_s = back, back + (stop_s - start_s)
            if math.isfinite(start_s):
                self.last_word_start = start_s
            msg: dict[str, Any] = {
                "type": "text",
                "text": word,
                "start_s": start_s,
                "stop_s": stop_s,
                "stream_id": 0,
            }
            if self.cid is not None:
                msg["client_req_id"] = self.cid
            self.conn.emit(msg, at)

    def _frame_fault(self, k: int, at: float) -> bool:
        """Apply this request's fault before frame ``k``; True = stop producing."""
        f = self.fault
        if f is None or (self.fault_fired and f.kind in END_FAULTS):
            return False
        kind = f.kind
        if kind in END_FAULTS:
            n = (
                f.int_value(1)
                if kind != "close_1000_no_eos" or f.value is not None
                else -1
            )
            if k == n:
                self._fire_end_fault(at)
                return True
            return False
        if kind == "non_json" and k == f.int_value(0) and not self.fault_fired:
            self.fault_fired = True
            self.log("fault_fired", kind=kind)
            self.conn.emit_raw(
                "local-server fault injection: this frame is not JSON", "non_json", at
            )
        elif kind == "unknown_type" and k == 0 and not self.fault_fired:
            self.fault_fired = True
            self.log("fault_fired", kind=kind)
            types = (
                [str(f.arg)]
                if f.arg is not None
                else ["need_more_text", "x_local_unknown"]
            )
            for type_name in types:
                msg: dict[str, Any] = {"type": type_name}
                if self.cid is not None:
                    msg["client_req_id"] = self.cid
                self.conn.emit(msg, at)
        elif kind == "bad_frame" and k == 0 and not self.fault_fired:
            self.fault_fired = True
            variant = str(f.value)
            self.log("fault_fired", kind=kind, variant=variant)
            template = BAD_FRAMES.get(variant, BAD_FRAMES["unhashable_id"])
            frame = template % {"cid": json.dumps(self.cid)}
            self.conn.emit_raw(frame, "bad_frame", at)
        elif kind == "oversized" and k == 0 and not self.fault_fired:
            self.fault_fired = True
            limit = f.int_value(2 * 1024 * 1024)
            self.log("fault_fired", kind=kind, limit=limit)
            head = {"type": "x_padding", "client_req_id": self.cid, "padding": ""}
            frame = json.dumps(head)[:-2] + "x" * (limit + 1) + '"}'
            self.conn.emit_raw(frame, "x_padding", at)
        return False

    def _fire_end_fault(self, at: float | None) -> None:
        f = self.fault
        assert f is not None
        self.fault_fired = True
        self.log("fault_fired", kind=f.kind, after_frames=self.frames_sent)
        conn = self.conn
        if f.kind == "echo_key":
            key = self.conn.api_key or "<no key>"
            text = (
                f"worker failed (injected) for key {key}; headers x-api-key: {key}, "
                f"authorization: Bearer {key}; query api_key={key}"
            )
            conn.error(1011, text, self.cid, close=True, at=at)
        elif f.kind in ("error_1008", "error_1011"):
            code = 1008 if f.kind == "error_1008" else 1011
            text = (
                "injected fault"
                if code == 1008
                else "internal error: worker failed (injected)"
            )
            conn.error(code, text, self.cid, close=True, at=at)
        elif f.kind == "drop_after":
            conn.terminate("abort", at=at)
        elif f.kind == "close_1000_no_eos":
            conn.terminate("close", 1000, "", at)
        elif f.kind == "stall_mid_stream":
            self.stalled = True
        elif f.kind == "stall_words":
            self.stalled = True
            self.babble = conn.loop.create_task(self._babble())

    async def _babble(self) -> None:
        """stall_words: a word every STALL_WORDS_EVERY_S, no audio, until the
        request stops, the socket closes or STALL_WORDS_FOR_S passed."""
        rate = self.fmt.sample_rate
        t = self.samples_out / rate
        for _ in range(int(STALL_WORDS_FOR_S / STALL_WORDS_EVERY_S)):
            await asyncio.sleep(STALL_WORDS_EVERY_S)
            if self.stopped or self.conn.closing:
                return
            msg: dict[str, Any] = {
                "type": "text",
                "text": "babble",
                "start_s": round(t, 3),
                "stop_s": round(t + 0.05, 3),
            }
            if self.cid is not None:
                msg["client_req_id"] = self.cid
            self.conn.emit(msg)
            t += STALL_WORDS_EVERY_S

    def _finish(self) -> None:
        now = self.conn.loop.time()
        if (
            self.fault is not None
            and not self.fault_fired
            and self.fault.kind in END_FAULTS
        ):
            # the audio ended before frame N: fire the fault instead of end_of_stream
            self._fire_end_fault(now)
            return
        self._emit_words(None, now)
        if self.odd_tail:  # odd_audio: the request's audio ends one byte past a sample
            rate = self.fmt.sample_rate
            at_s = self.samples_out / rate
            self._emit_audio(b"\x00", at_s, at_s, now)
        msg: dict[str, Any] = {"type": "end_of_stream"}
        if self.cid is not None:
            msg["client_req_id"] = self.cid
        self.log(
            "request_finished",
            frames=self.frames_sent,
            audio_s=self.samples_out / self.fmt.sample_rate,
        )
        self.conn.emit(msg, now)
        self.conn.request_finished(self, now)


# json_config model settings with Gradium's documented ranges (reference §2.1).
SETTING_RANGES = {
    "padding_bonus": (-4.0, 4.0),
    "temp": (0.0, 1.4),
    "cfg_coef": (1.0, 4.0),
}
REWRITE_ALIASES = frozenset({"en", "fr", "de", "es", "pt"})
REWRITE_RULES = frozenset(
    {"Date", "AlNum", "TimeEn", "TimeFr", "TimeDe"}
    | {
        kind + lang
        for kind in ("Number", "Email", "Url", "Phone")
        for lang in ("En", "Fr", "De", "Es", "Pt")
    }
)


def _voice_settings(json_config: dict) -> tuple[dict[str, Any], str | None]:
    """The model settings of a setup's json_config, checked: ``(settings, None)``,
    or ``({}, message)`` for a value of the wrong type or outside its range.
    Rule names this server does not know are reported in ``unknown_rules``."""
    out: dict[str, Any] = {}
    for key, (low, high) in SETTING_RANGES.items():
        value = json_config.get(key)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            shown = repr(value)[:40]
            return {}, (
                f"json_config.{key} must be between {low} and {high}, got {shown}"
            )
        out[key] = value
    rules = json_config.get("rewrite_rules")
    if rules is not None:
        if not isinstance(rules, str):
            return {}, "json_config.rewrite_rules must be a string"
        names = [r.strip() for r in rules.split(",") if r.strip()]
        out["rewrite_rules"] = ",".join(names)
        unknown = [n for n in names if n not in REWRITE_ALIASES | REWRITE_RULES]
        if unknown:
            out["unknown_rules"] = unknown
    return out, None


def _parse(raw: str | bytes) -> dict | None:
    if isinstance(raw, bytes):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _str_or_none(msg: dict | None, key: str) -> str | None:
    if msg is None:
        return None
    value = msg.get(key)
    return value if isinstance(value, str) else None
