"""The server object: ``GradiumServer`` (asyncio) and ``ServerThread`` (own loop).

Handshake (reference §1, §5): only ``/api/speech/tts`` is served (any other path:
HTTP 404). The API key comes from the ``x-api-key`` header or the ``?token=`` query
parameter; a missing or rejected key still gets the upgrade, then an ``error`` frame
code 1008 and close 1008 (no HTTP 401/403, as the real service does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from .config import LatencyModel, Limits, ServerConfig
from .connection import Connection
from .eventlog import EventLog, LogEntry
from .faults import Fault, FaultRegistry
from .voices import EspeakEngine

TTS_PATH = "/api/speech/tts"


class GradiumServer:
    """Local stand-in for ``wss://api.gradium.ai/api/speech/tts``.

    Use ``await server.start(host, port)`` / ``await server.stop()`` or
    ``async with GradiumServer(cfg) as server:``. All methods run on the server's
    loop except ``inject``, ``clear_faults``, ``log_snapshot``, ``received``,
    ``sent``, ``events_of`` and the counters, which are thread-safe.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config if config is not None else ServerConfig()
        self.faults = FaultRegistry()
        self.events = EventLog()
        self.host = "127.0.0.1"
        self.port = 0
        self._server: Server | None = None
        self._lock = threading.Lock()
        self._attempts = 0
        self._opened = 0
        self._live: set[Connection] = set()
        self._outage = False
        self._hang = False  # set_hang_handshake
        self._hung: set[ServerConnection] = set()  # handshakes held unanswered
        # set_close_after: (seconds, error code or None, message)
        self._close_after: tuple[float, int | None, str] | None = None

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> GradiumServer:
        if self.config.voice_engine == "espeak":
            # Load libespeak-ng now (in a worker thread) so the first request does not
            # pay for it; if it cannot load, fall back to the synthetic voice (logged).
            try:
                await asyncio.to_thread(EspeakEngine.get)
            except Exception as exc:  # noqa: BLE001 - reported in the log
                self.events.add(0, "event", "espeak_unavailable", error=repr(exc))
                self.config.voice_engine = "synthetic"
        self._server = await serve(
            self._handler,
            host,
            port,
            process_request=self._process_request,
            max_size=self.config.limits.max_message_bytes,
            compression=None,
            close_timeout=2,
            # a handshake held by hang_handshake stays unanswered until the client
            # gives up (websockets would otherwise drop it after 10 s)
            open_timeout=None,
            ping_interval=self.config.ping_interval_s,
            server_header="gradium-local-standin",
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = host, sockname[1]
        self.events.add(0, "event", "server_started", url=self.url)
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        for ws in list(self._hung):
            ws.transport.abort()
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except asyncio.TimeoutError:  # not TimeoutError on 3.10
            for conn in list(self._live):
                conn.ws.transport.abort()
        self.events.add(0, "event", "server_stopped")

    async def __aenter__(self) -> GradiumServer:
        if self._server is None:
            await self.start(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{TTS_PATH}"

    # --- knobs ---------------------------------------------------------------------------

    def set_latency(
        self, latency: LatencyModel | None = None, **changes: float
    ) -> LatencyModel:
        """Replace the latency model (or change some of its fields). Call on the loop
        thread, or use ``ServerThread.set_latency``."""
        base = latency if latency is not None else self.config.latency
        self.config.latency = dataclasses.replace(base, **changes)
        self.events.add(
            0, "event", "latency_changed", **dataclasses.asdict(self.config.latency)
        )
        return self.config.latency

    def set_limits(self, limits: Limits | None = None, **changes: Any) -> Limits:
        base = limits if limits is not None else self.config.limits
        self.config.limits = dataclasses.replace(base, **changes)
        self.events.add(
            0, "event", "limits_changed", **dataclasses.asdict(self.config.limits)
        )
        return self.config.limits

    def inject(self, *faults: Fault) -> None:
        """Arm faults (thread-safe). Each applies to the next matching request (or
        connection, for ``refuse`` / ``reject_handshake``), ``count`` times."""
        self.faults.add(*faults)
        for f in faults:
            self.events.add(
                0,
                "event",
                "fault_injected",
                kind=f.kind,
                arg=f.arg,
                count=f.count,
                client_req_id=f.client_req_id,
                match_text=f.match_text,
            )

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_outage(self, on: bool) -> None:
        """Simulate the service being down (call on the loop thread, or use
        ``ServerThread.set_outage``): while on, every open socket is reset (no close
        frame) and every connection attempt is refused like the ``refuse`` fault."""
        if on == self._outage:
            return
        self._outage = on
        self.events.add(0, "event", "outage_start" if on else "outage_end")
        if on:
            for conn in list(self._live):
                conn.log("event", "abort", by="outage")
                conn.ws.transport.abort()

    @property
    def outage(self) -> bool:
        return self._outage

    def set_hang_handshake(self, on: bool) -> None:
        """While on, every connection attempt is accepted (TCP) and its upgrade
        request read, but never answered: the client's handshake hangs until its
        own timeout (a network that swallows connection attempts). Turning it off
        does not release attempts already held. Call on the loop thread, or use
        ``ServerThread.set_hang_handshake``."""
        if on == self._hang:
            return
        self._hang = on
        event = "hang_handshake_start" if on else "hang_handshake_end"
        self.events.add(0, "event", event)

    @property
    def hang_handshake(self) -> bool:
        return self._hang

    def set_close_after(
        self, seconds: float | None, code: int | None = None, message: str = ""
    ) -> None:
        """Close every socket upgraded from now on ``seconds`` after its upgrade,
        whatever it is doing (``None``: stop doing so; sockets already scheduled
        still close). Without ``code``: a plain close 1000, no ``error``. With a
        ``code``: an ``error`` frame with that code and ``message`` (e.g. 1008
        "idle timeout: no message received", the server's own idle expiry), then
        close with that code. Call on the loop thread, or use
        ``ServerThread.set_close_after``."""
        self._close_after = None if seconds is None else (float(seconds), code, message)
        self.events.add(
            0, "event", "close_after_set", seconds=seconds, code=code, message=message
        )

    @property
    def close_after(self) -> tuple[float, int | None, str] | None:
        return self._close_after

    @property
    def open_connections(self) -> int:
        """WebSocket connections currently open (upgraded and not yet finished)."""
        return len(self._live)

    # --- log (thread-safe) ------------------------------------------------------------

    @property
    def log(self) -> list[LogEntry]:
        return self.events.snapshot()

    def log_snapshot(self) -> list[LogEntry]:
        return self.events.snapshot()

    def clear_log(self) -> None:
        self.events.clear()

    def received(
        self,
        type: str | None = None,
        client_req_id: str | None = None,
        conn: int | None = None,
    ) -> list[dict]:
        """Parsed JSON messages clients sent (invalid frames appear as ``{}``)."""
        return [
            e.data.get("message") or {}
            for e in self.events.select("in", type, client_req_id, conn)
        ]

    def sent(
        self,
        type: str | None = None,
        client_req_id: str | None = None,
        conn: int | None = None,
    ) -> list[dict]:
        """Messages the server wrote (audio payloads replaced by ``audio_bytes``)."""
        out = []
        for e in self.events.select("out", type, client_req_id, conn):
            msg = dict(e.data.get("message") or {"type": e.type})
            if "audio_bytes" in e.data:
                msg["audio_bytes"] = e.data["audio_bytes"]
            out.append(msg)
        return out

    def events_of(self, type: str, conn: int | None = None) -> list[LogEntry]:
        """``"event"`` entries of a type (``connect``, ``close``, ``fault_fired``...)."""
        return self.events.select("event", type, None, conn)

    @property
    def connections_opened(self) -> int:
        """WebSocket connections whose upgrade succeeded."""
        with self._lock:
            return self._opened

    @property
    def connection_attempts(self) -> int:
        """HTTP upgrade requests received (including refused / rejected ones)."""
        with self._lock:
            return self._attempts

    # --- websockets callbacks ------------------------------------------------------------

    async def _process_request(
        self, ws: ServerConnection, request: Request
    ) -> Response | None:
        with self._lock:
            self._attempts += 1
            conn_id = self._attempts
        ws.gradium_conn_id = conn_id  # type: ignore[attr-defined]
        split = urlsplit(request.path)
        headers = request.headers
        self.events.add(
            conn_id,
            "event",
            "connect",
            path=split.path,
            query_keys=sorted(parse_qs(split.query)),
            has_api_key_header="x-api-key" in headers,
            api_source=headers.get("x-api-source"),
            user_agent=headers.get("user-agent"),
        )
        if self._outage:
            self.events.add(conn_id, "event", "fault_fired", kind="outage", arg=None)
            ws.transport.abort()
            await ws.connection_lost_waiter
            return ws.respond(503, "refused\n")  # never sent: the socket is gone
        fault = self.faults.take_connection_fault()
        if fault is None and self._hang:
            fault = Fault("hang_handshake")
        if fault is not None and fault.kind != "close_after":  # logged when it fires
            self.events.add(
                conn_id, "event", "fault_fired", kind=fault.kind, arg=fault.value
            )
        if fault is not None:
            if fault.kind == "hang_handshake":
                # Never answer; hold the TCP connection until the client drops it.
                self._hung.add(ws)
                try:
                    await ws.connection_lost_waiter
                finally:
                    self._hung.discard(ws)
                self.events.add(conn_id, "event", "hang_released")
                return ws.respond(503, "hung\n")  # never sent: the socket is gone
            if fault.kind == "close_after":
                ws.gradium_close_after = (  # type: ignore[attr-defined]
                    fault.float_value(2.5),
                    None,
                    "",
                )
            if fault.kind == "refuse":
                ws.transport.abort()
                await ws.connection_lost_waiter
                return ws.respond(503, "refused\n")  # never sent: the socket is gone
            if fault.kind == "accept_then_close":
                ws.gradium_fault = fault  # type: ignore[attr-defined]
                return None  # upgrade; _handler closes it at once
            if fault.kind == "reject_handshake":
                status = fault.int_value(503)
                return ws.respond(
                    status, f"local-server fault injection: HTTP {status}\n"
                )
            # close_after: upgraded as usual below; _handler schedules the close
        if split.path.rstrip("/") != TTS_PATH:
            self.events.add(conn_id, "event", "reject", status=404, path=split.path)
            return ws.respond(404, "Not Found\n")
        delay = self.config.latency.handshake_s
        if delay > 0:
            await asyncio.sleep(delay)
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        conn_id = getattr(ws, "gradium_conn_id", 0)
        with self._lock:
            self._opened += 1
        request = ws.request
        assert request is not None
        key = request.headers.get("x-api-key")
        source = "header" if key else None
        if not key:
            token = parse_qs(urlsplit(request.path).query).get("token")
            if token:
                key, source = token[0], "token"
        ok, reason = self.config.key_ok(key)
        # never log the key itself
        self.events.add(conn_id, "event", "open", key_ok=ok, key_source=source)
        conn = Connection(self, ws, conn_id)
        conn.api_key = key
        if self._outage:  # the outage began during this handshake
            self.events.add(conn_id, "event", "fault_fired", kind="outage", arg=None)
            ws.transport.abort()
            return
        close_after = getattr(ws, "gradium_close_after", None) or self._close_after
        if close_after is not None:
            conn.spawn(self._close_later(conn, *close_after))
        fault = getattr(ws, "gradium_fault", None)
        if fault is not None:  # accept_then_close: an outage behind a live proxy
            how = str(fault.value)
            if how == "reset":
                conn.terminate("abort")
            else:
                code = fault.int_value(1011)
                conn.error(code, "service unavailable (injected outage)")
        self._live.add(conn)
        try:
            await conn.run(ok, reason)
        finally:
            self._live.discard(conn)

    @staticmethod
    async def _close_later(
        conn: Connection, seconds: float, code: int | None, message: str
    ) -> None:
        await asyncio.sleep(seconds)
        conn.log("event", "fault_fired", kind="close_after", arg=seconds)
        if code is None:
            conn.terminate("close", 1000, "")
        else:
            conn.error(code, message or "closed (injected close_after)")


class ServerThread:
    """A ``GradiumServer`` on its own event loop in a daemon thread, for synchronous
    tests (``with ServerThread(cfg) as server: ...``). Exposes the same ``url``,
    ``inject``, ``log_snapshot``, ``received``, counters; ``set_latency`` /
    ``set_limits`` / ``call`` run on the server's loop."""

    def __init__(
        self, config: ServerConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.server = GradiumServer(config)
        self._host, self._port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread = threading.Thread(
            target=self._run, name="gradium-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("gradium server thread did not start")
        if self._error is not None:
            raise RuntimeError("gradium server failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.start(self._host, self._port))
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.server.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn, *args, timeout: float = 10.0, **kwargs):
        """Run ``fn(*args, **kwargs)`` on the server loop and return its result."""
        assert self._loop is not None

        async def runner():
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(runner(), self._loop).result(timeout)

    # --- the GradiumServer surface --------------------------------------------------

    # Read-only or thread-safe members, forwarded as they are: url, port, config,
    # inject, clear_faults, log, log_snapshot, clear_log, received, sent,
    # events_of, events (the EventLog, thread-safe), connections_opened,
    # connection_attempts, open_connections, outage.
    _FORWARDED = frozenset(
        {
            "url",
            "port",
            "config",
            "inject",
            "clear_faults",
            "log",
            "log_snapshot",
            "clear_log",
            "received",
            "sent",
            "events_of",
            "events",
            "connections_opened",
            "connection_attempts",
            "open_connections",
            "outage",
            "hang_handshake",
            "close_after",
        }
    )

    def __getattr__(self, name: str) -> Any:
        if name in ServerThread._FORWARDED:
            return getattr(self.server, name)
        raise AttributeError(name)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def set_latency(
        self, latency: LatencyModel | None = None, **changes: float
    ) -> LatencyModel:
        return self.call(self.server.set_latency, latency, **changes)

    def set_limits(self, limits: Limits | None = None, **changes: Any) -> Limits:
        return self.call(self.server.set_limits, limits, **changes)

    def set_outage(self, on: bool) -> None:
        self.call(self.server.set_outage, on)

    def set_hang_handshake(self, on: bool) -> None:
        self.call(self.server.set_hang_handshake, on)

    def set_close_after(
        self, seconds: float | None, code: int | None = None, message: str = ""
    ) -> None:
        self.call(self.server.set_close_after, seconds, code, message)

    def set_config(self, **changes: Any) -> None:
        """Change other ``ServerConfig`` fields (``api_keys``, ``voice_engine``...)."""

        def apply() -> None:
            for key, value in changes.items():
                if not hasattr(self.server.config, key):
                    raise AttributeError(key)
                setattr(self.server.config, key, value)

        self.call(apply)
