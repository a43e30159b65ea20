"""The stand-in's engine: logging, the shared loop, fatal errors, single-mode graphs.

- §1.2: ``TEN_PYTHON_THREAD_MODE``: ``single_thread`` (the default) runs every
  extension on one shared asyncio loop in thread ``PythonGlobalMainThread``;
  ``multi_thread`` gives each extension its own loop in its own thread. Every
  callback is its own task; an exception escaping a callback is fatal (logged,
  then ``run()`` raises StandinFatalError, or ``os._exit(1)`` when
  ``TEN_STANDIN_FATAL=exit``).
- §1.4: lifecycle order, with messages held until ``on_init`` has returned.
- §1.7: property merge, ``${env:...}`` placeholders and schemas.
- §1.8: the tester runs its own loop in its own thread; a stopped tester hears
  nothing. At graph stop the extension's ``on_stop`` starts first; the tester's
  ``on_stop`` begins as soon as the extension's first yields, so what the extension
  sends before that first suspension (the base class's usage metrics) still
  arrives, and what it sends later is dropped (logged at debug level) and kept in
  ``last_after_stop()`` for the tests to check.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
from typing import Any

from . import _props, _schema
from .error import TenError, TenErrorCode, _make
from .log_level import LogLevel
from .log_option import DefaultLogOption, LogOption


class StandinFatalError(RuntimeError):
    """Raised by ``run()`` (or ``App.close()``) where the real process would die."""


# --------------------------------------------------------------------- logging

_LOGGER = logging.getLogger("ten")  # the stand-in's own lines (see the README)
_console_streams: list[str] = []  # "stdout"/"stderr": the app's console emitters
_LOGGER.setLevel(logging.DEBUG)
_PY_LEVEL = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARN: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
}


def emit(
    name: str | None,
    level: LogLevel,
    msg: str,
    category: str | None = None,
    fields: Any = None,
) -> None:
    """Send one TEN log line to the ``ten`` (or ``ten.<name>``) Python logger."""
    if hasattr(fields, "to_python"):
        fields = fields.to_python()
    text = f"[{category}] {msg}" if category else str(msg)
    if fields:
        text += " " + json.dumps(fields, ensure_ascii=False, default=str)
    logger = logging.getLogger(f"ten.{name}") if name else _LOGGER
    logger.log(
        _PY_LEVEL.get(level, logging.INFO),
        text,
        extra={"category": category, "fields": fields},
    )


def native_log(
    name: str | None,
    level: LogLevel,
    msg: str,
    category: str | None = None,
    fields: Any = None,
) -> None:
    """One ``ten_env.log_*`` line: to TEN's own log, never to Python's ``logging``
    (§1.5, observed): written to the console emitters the app's ``ten.log``
    configures (``apply_log_config``), nowhere else."""
    if not _console_streams:
        return
    if hasattr(fields, "to_python"):
        fields = fields.to_python()
    text = f"[{category}] {msg}" if category else str(msg)
    if fields:
        text += " " + json.dumps(fields, ensure_ascii=False, default=str)
    when = time.strftime("%m-%d %H:%M:%S")
    line = f"{when} {level.name[0]} {name or '-'}: {text}\n"
    for stream_name in list(_console_streams):
        try:
            getattr(sys, stream_name).write(line)
        except Exception:  # noqa: BLE001 - a log line must never break the caller
            pass


class LogMixin:
    """``log_*`` on every env; all return None (§1.5). The lines go to TEN's own
    log (``native_log``), not to Python's logging, as on the real runtime."""

    _log_name: str | None = None

    def log(
        self,
        level: LogLevel,
        msg: str,
        category: str | None = None,
        fields: Any = None,
        option: LogOption = DefaultLogOption,
    ) -> None:
        native_log(self._log_name, level, msg, category, fields)

    def log_debug(self, msg, category=None, fields=None, option=DefaultLogOption):
        native_log(self._log_name, LogLevel.DEBUG, msg, category, fields)

    def log_info(self, msg, category=None, fields=None, option=DefaultLogOption):
        native_log(self._log_name, LogLevel.INFO, msg, category, fields)

    def log_warn(self, msg, category=None, fields=None, option=DefaultLogOption):
        native_log(self._log_name, LogLevel.WARN, msg, category, fields)

    def log_error(self, msg, category=None, fields=None, option=DefaultLogOption):
        native_log(self._log_name, LogLevel.ERROR, msg, category, fields)


class _ConsoleHandler(logging.Handler):
    """Console emitter of the app's ``ten.log`` config; finds sys.stdout at emit time."""

    def __init__(self, stream_name: str, level: int):
        super().__init__(level)
        self.stream_name = stream_name
        self.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = getattr(sys, self.stream_name)
            stream.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - a log line must never break the caller
            pass


def apply_log_config(props: dict) -> None:
    """Honour ``ten.log.handlers`` console emitters (as the FakeApp configures)."""
    handlers = (((props.get("ten") or {}).get("log") or {}).get("handlers")) or []
    for h in handlers:
        emitter = h.get("emitter") or {}
        if emitter.get("type") != "console":
            continue
        stream = (emitter.get("config") or {}).get("stream", "stdout")
        stream = "stderr" if stream == "stderr" else "stdout"
        if stream not in _console_streams:
            _console_streams.append(stream)
        if any(isinstance(x, _ConsoleHandler) for x in _LOGGER.handlers):
            continue
        _LOGGER.addHandler(
            _ConsoleHandler("stderr" if stream == "stderr" else "stdout", logging.DEBUG)
        )


# ---------------------------------------------------------------- shared loop

_global_loop: asyncio.AbstractEventLoop | None = None
_global_lock = threading.Lock()


def global_loop() -> asyncio.AbstractEventLoop:
    """The one loop all AsyncExtensions share (single_thread mode, §1.2)."""
    global _global_loop
    with _global_lock:
        if _global_loop is None:
            loop = asyncio.new_event_loop()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.run_forever()

            threading.Thread(
                target=main, name="PythonGlobalMainThread", daemon=True
            ).start()
            _global_loop = loop
        return _global_loop


def thread_mode() -> str:
    """``multi_thread`` if TEN_PYTHON_THREAD_MODE says so, else ``single_thread``."""
    mode = os.environ.get("TEN_PYTHON_THREAD_MODE", "single_thread")
    return "multi_thread" if mode == "multi_thread" else "single_thread"


def own_loop(name: str) -> asyncio.AbstractEventLoop:
    """A loop in a thread of its own (multi_thread mode); ends with ``retire_loop``."""
    loop = asyncio.new_event_loop()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    threading.Thread(
        target=main, name=f"PythonExtensionThread-{name}", daemon=True
    ).start()
    return loop


RETIRE_GRACE_S = 5.0


async def retire_loop(node: Any) -> None:
    """End an extension's own loop (multi_thread) after on_deinit.

    Tasks still running get ``RETIRE_GRACE_S`` to finish (an exception escaping one
    is fatal, as in single_thread mode); what is left then is cancelled.
    """
    me = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not me]
    if rest:
        await asyncio.wait(rest, timeout=RETIRE_GRACE_S)
    node.shutting_down = True
    rest = [t for t in rest if not t.done()]
    for t in rest:
        t.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    asyncio.get_running_loop().stop()


def call_soon(loop: asyncio.AbstractEventLoop | None, fn, *args) -> None:
    """``call_soon_threadsafe`` that tolerates a loop already closed."""
    if loop is None:
        return
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass  # that extension's own loop is gone (multi_thread)


# ---------------------------------------------------------------- fatal errors

_late_fatals: list[str] = []


def exit_mode() -> bool:
    return os.environ.get("TEN_STANDIN_FATAL") == "exit"


def _flush_and(die) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    die()


def abort_process() -> None:
    """SIGABRT, whatever TEN_STANDIN_FATAL says: where the real runtime asserts."""
    _flush_and(os.abort)


def report_fatal(graph: Graph | None, text: str, abort: bool = False) -> None:
    """The real runtime ends the process here; the stand-in fails the run loudly."""
    if exit_mode():
        _flush_and(os.abort if abort else lambda: os._exit(1))
    if graph is None or not graph.add_fatal(text):
        _late_fatals.append(text)


def uncaught(graph: Graph | None, who: str | None, exc: BaseException) -> None:
    head = f"[{who}] Uncaught exception: {exc}" if who else f"Uncaught exception: {exc}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if who:
        emit(who, LogLevel.ERROR, f"{head}\ntraceback: {tb}")
    else:  # the tester's wrapper prints to stdout (observed), not to the TEN log
        print(f"{head}\ntraceback: {tb}", file=sys.stdout, flush=True)
    report_fatal(graph, f"{head}\n{tb}")


def raise_late_fatals() -> None:
    """Fatal errors that happened after their run() returned fail the next caller."""
    if _late_fatals:
        texts = list(_late_fatals)
        _late_fatals.clear()
        raise StandinFatalError(
            "Fatal error after a previous test run had returned "
            "(the real runtime would have exited the process):\n\n" + "\n\n".join(texts)
        )


async def guard(graph: Graph, who: str | None, coro, node: Any = None) -> bool:
    """Await one callback; anything escaping it is fatal (§1.2). True if it returned."""
    try:
        await coro
        return True
    except BaseException as e:  # noqa: BLE001 - the real wrapper catches BaseException
        if isinstance(e, asyncio.CancelledError) and getattr(
            node, "shutting_down", False
        ):
            return False
        uncaught(graph, who, e)
        return False


def guard_sync(graph: Graph, who: str | None, fn, *args) -> bool:
    try:
        fn(*args)
        return True
    except BaseException as e:  # noqa: BLE001
        uncaught(graph, who, e)
        return False


# ----------------------------------------------------------- property helpers

_PLACEHOLDER = re.compile(r"^\$\{env:([^|}]+)(?:\|([^}]*))?\}$")


class MissingEnvVar(Exception):
    def __init__(self, var: str):
        super().__init__(var)
        self.var = var


def deep_merge(base: Any, over: Any) -> Any:
    """Merge ``over`` into a copy of ``base`` key by key at every depth (§1.7)."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return json.loads(json.dumps(over))
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if k in out else json.loads(json.dumps(v))
    return out


def resolve_placeholders(value: Any, who: str | None) -> Any:
    """Replace strings that are ENTIRELY ``${env:VAR}`` / ``${env:VAR|default}``."""
    if isinstance(value, dict):
        return {k: resolve_placeholders(v, who) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_placeholders(v, who) for v in value]
    if isinstance(value, str):
        m = _PLACEHOLDER.match(value)
        if m:
            var, default = m.group(1), m.group(2)
            if var in os.environ:
                return os.environ[var]
            if default is None:
                raise MissingEnvVar(var)
            emit(
                who,
                LogLevel.INFO,
                f"Environment variable {var} is not found, using default value {default}.",
            )
            return default
    return value


class PropertyStore:
    """Property access shared by every env flavour (sync parts; §1.5)."""

    props: dict
    closed: bool = False

    def _closed_error(self) -> TenError:
        return _make(TenErrorCode.ErrorCodeTenIsClosed, "ten_env is closed.")

    def prop_get(self, path: str | None, kind: str) -> tuple[Any, TenError | None]:
        if self.closed:
            empty = {"json": "", "string": "", "int": 0, "float": 0.0, "bool": False}
            return empty[kind], self._closed_error()
        if kind == "json":
            v = _props.lookup(self.props, path)
            if v is _props._MISSING:
                return "", _props.not_found(path)
            return _props.to_json(v), None
        return _props.env_get(self.props, path or "", kind)

    def prop_exists(self, path: str) -> tuple[bool, TenError | None]:
        return _props.lookup(self.props, path) is not _props._MISSING, None

    def prop_set(self, path: str | None, value: Any) -> TenError | None:
        if self.closed:
            return self._closed_error()
        try:
            self.props = _props.assign(self.props, path, value)
        except (TypeError, IndexError, KeyError) as e:
            return _make(TenErrorCode.ErrorCodeInvalidArgument, str(e))
        return None

    def prop_set_json(
        self, path: str | None, json_str: str, where: str
    ) -> TenError | None:
        return self.prop_set(path, _props.parse_json(json_str, where))

    def prop_init_json(self, json_str: str) -> TenError | None:
        value = _props.parse_json(json_str, "ten_env.init_property_from_json")
        if not isinstance(value, dict):
            return _make(
                TenErrorCode.ErrorCodeInvalidJSON, "Property must be an object."
            )
        self.props = deep_merge(self.props, value)
        return None


# --------------------------------------------------------------------- graphs

_KINDS = ("cmd", "data", "audio_frame", "video_frame")
_HANDLERS = {
    "cmd": "on_cmd",
    "data": "on_data",
    "audio_frame": "on_audio_frame",
    "video_frame": "on_video_frame",
}


def kind_of(msg: Any) -> str:
    from .audio_frame import AudioFrame
    from .cmd import Cmd
    from .video_frame import VideoFrame

    if isinstance(msg, Cmd):
        return "cmd"
    if isinstance(msg, AudioFrame):
        return "audio_frame"
    if isinstance(msg, VideoFrame):
        return "video_frame"
    return "data"


_last_after_stop: list[dict[str, Any]] = []


def last_after_stop() -> list[dict[str, Any]]:
    """What the extension of the last graph sent after the tester's ``on_stop`` had
    begun (never delivered): ``kind``, ``name``, ``props``, ``t`` (monotonic) and
    ``in_on_stop`` (sent before the extension's ``on_stop`` returned)."""
    return [dict(m) for m in _last_after_stop]


class Graph:
    """A single-mode test graph: the tester plus one extension (§1.8)."""

    def __init__(
        self,
        tester: Any,
        addon_name: str,
        prop_json: str | None,
        timeout_us: int,
        is_async: bool,
    ):
        self.error: TenError | None = None
        self.fatals: list[str] = []
        self.finished = False
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._results: dict[int, Any] = {}
        self.timeout_s = timeout_us / 1_000_000
        self.after_stop: list[dict[str, Any]] = []
        self.ext_on_stop_returned = False
        self.ext = ExtNode(self, addon_name, prop_json)
        self.tester = TesterNode(self, tester, is_async)

    # -- stopping -----------------------------------------------------------
    def stop_test(self, error: TenError | None) -> None:
        with self._lock:
            if self.stop_event.is_set():
                return  # the first stop_test wins
            self.error = error
            self.stop_event.set()

    def add_fatal(self, text: str) -> bool:
        with self._lock:
            if self.finished:
                return False
            self.fatals.append(text)
            self.stop_event.set()
            return True

    def run(self) -> TenError | None:
        global _last_after_stop
        raise_late_fatals()
        _last_after_stop = self.after_stop
        self.ext.prepare()
        self.tester.start()
        self.ext.start()
        if not self.stop_event.wait(self.timeout_s):
            self.stop_test(_make(TenErrorCode.ErrorCodeTimeout, "Test timeout."))
        self.ext.request_stop()
        ext_ok = self.ext.done.wait(60)
        self.tester.shutdown()
        with self._lock:
            self.finished = True
            fatals = list(self.fatals)
        if not ext_ok:
            fatals.append(
                f"[{self.ext.name}] on_stop/on_deinit did not finish within 60 s"
            )
        if fatals:
            raise StandinFatalError(
                "The real runtime would have exited the process:\n\n"
                + "\n\n".join(fatals)
            )
        return self.error

    # -- commands -----------------------------------------------------------
    def expect_results(self, cmd: Any, sink) -> None:
        with self._lock:
            self._results[cmd._cmd_id] = sink

    def route_result(self, result: Any) -> TenError | None:
        with self._lock:
            sink = self._results.get(result._cmd_id)
            if sink is not None and result.is_final():
                del self._results[result._cmd_id]
        if sink is None:
            return _make(
                TenErrorCode.ErrorCodeGeneric, "The command of this result is unknown."
            )
        sink(result._copy())
        return None


def _source(msg: Any, name: str | None) -> Any:
    from .loc import Loc

    msg._source = Loc(app_uri="localhost", graph_id="", extension_name=name)
    return msg


class ExtNode(PropertyStore):
    """The extension under test, living on the shared loop."""

    def __init__(self, graph: Graph, addon_name: str, prop_json: str | None):
        self.graph = graph
        self.name = addon_name
        self.prop_json = prop_json
        self.loop: asyncio.AbstractEventLoop | None = None  # set by start()
        self.has_own_loop = False
        self.shutting_down = False
        self.props: dict = {}
        self.ready = False
        self.closed = False
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._held: list[tuple[str, Any]] = []
        self._stop_requested = False
        self._stop_evt: asyncio.Event | None = None
        self._done_futs: dict[str, asyncio.Future] = {}
        self.instance: Any = None
        self.env: Any = None
        self.is_async = True
        self.schema: _schema.ApiSchema | None = None
        self.created: Any = None

    def prepare(self) -> None:
        from .addon_manager import _find_addon

        self.addon_cls, self.base_dir = _find_addon(self.name)
        self.schema = _schema.load_api_schema(self.base_dir)
        pkg = os.path.join(self.base_dir or "", "property.json")
        self.pkg_props = {}
        if self.base_dir and os.path.isfile(pkg):
            with open(pkg, encoding="utf-8") as f:
                self.pkg_props = json.load(f)
        self.test_props = json.loads(self.prop_json) if self.prop_json else {}

    def start(self) -> None:
        self.has_own_loop = thread_mode() == "multi_thread"
        self.loop = own_loop(self.name) if self.has_own_loop else global_loop()
        asyncio.run_coroutine_threadsafe(self._lifecycle(), self.loop)

    def request_stop(self) -> None:
        def on_loop() -> None:
            self._stop_requested = True
            if self._stop_evt is not None:
                self._stop_evt.set()

        call_soon(self.loop, on_loop)

    # -- lifecycle (§1.4) ----------------------------------------------------
    async def _lifecycle(self) -> None:
        self._stop_evt = asyncio.Event()
        if self._stop_requested:
            self._stop_evt.set()
        torn_down = asyncio.Event()
        try:
            if not self._create_instance():
                return
            if self.is_async:  # the base class's own task, pending until teardown
                asyncio.get_running_loop().create_task(
                    self.instance._configure_routine(torn_down)
                )
            if not await self._step("configure"):
                return
            if not self._load_properties():
                return
            if not await self._step("init"):
                return
            with self._lock:
                self.ready = True
                held, self._held = self._held, []
                for kind, msg in held:
                    self._spawn(kind, msg)
            await asyncio.sleep(0)  # held messages start before on_start
            if not await self._step("start"):
                return
            await self._stop_evt.wait()
            # the tester's on_stop begins once the extension's on_stop first yields
            asyncio.get_running_loop().call_soon(self.graph.tester.begin_stop)
            await self._step("stop")
            self.graph.ext_on_stop_returned = True
            await self._step("deinit")
        finally:
            torn_down.set()
            with self._lock:
                self.closed = True
            self.done.set()
            self.graph.ext_on_stop_returned = True
            if self.has_own_loop:
                asyncio.get_running_loop().create_task(retire_loop(self))

    def _create_instance(self) -> bool:
        from .async_extension import AsyncExtension
        from .async_ten_env import AsyncTenEnv
        from .ten_env import TenEnv

        addon_env = TenEnv._create(self, self.name)
        if not guard_sync(
            self.graph,
            self.name,
            self.addon_cls().on_create_instance,
            addon_env,
            self.name,
            None,
        ):
            return False
        if self.created is None:
            report_fatal(
                self.graph, f"[{self.name}] on_create_instance_done was not called."
            )
            return False
        self.instance = self.created
        self.is_async = isinstance(self.instance, AsyncExtension)
        self.env = (AsyncTenEnv if self.is_async else TenEnv)._create(self, self.name)
        return True

    async def _step(self, stage: str) -> bool:
        fn = getattr(self.instance, f"on_{stage}")
        if self.is_async:
            return await guard(self.graph, self.name, fn(self.env), self)
        fut = self.loop.create_future()
        self._done_futs[stage] = fut
        if not guard_sync(self.graph, self.name, fn, self.env):
            return False
        await fut
        return True

    def stage_done(self, stage: str) -> None:
        def on_loop() -> None:
            fut = self._done_futs.get(stage)
            if fut is not None and not fut.done():
                fut.set_result(None)

        call_soon(self.loop, on_loop)

    def _load_properties(self) -> bool:
        props = deep_merge(deep_merge(self.props, self.pkg_props), self.test_props)
        try:
            props = resolve_placeholders(props, self.name)
        except MissingEnvVar as e:
            line = f"Environment variable {e.var} is not found, neither default value is provided."
            emit(self.name, LogLevel.ERROR, line)
            report_fatal(self.graph, f"[{self.name}] {line}")
            return False
        if self.schema is not None and self.schema.has_property_schema:
            try:
                props = _schema.adjust_object(props, self.schema.property)
            except _schema.SchemaError as e:
                emit(self.name, LogLevel.ERROR, f"Invalid property. {e}")
                report_fatal(
                    self.graph, f"[{self.name}] Invalid property. {e}", abort=True
                )
                return False
        self.props = props
        return True

    # -- messages -------------------------------------------------------------
    def _check(self, direction: str, kind: str, msg: Any) -> str | None:
        """Validate (and adjust) ``msg`` against the manifest; the reason on failure."""
        if self.schema is None:
            return None
        schema = self.schema.message_schema(f"{kind}_{direction}", msg.get_name())
        if schema is None:
            return None
        try:
            msg._props = _schema.adjust_object(msg._props, schema)
        except _schema.SchemaError as e:
            emit(
                self.name,
                LogLevel.WARN,
                f"See {direction} {kind}::{msg.get_name()} with invalid schema: {e}",
            )
            return str(e)
        return None

    def deliver(self, kind: str, msg: Any) -> TenError | None:
        """A message from the tester (already copied)."""
        reason = self._check("in", kind, msg)
        if reason is not None:
            return _make(TenErrorCode.ErrorCodeGeneric, reason)
        with self._lock:
            if self.closed:
                return None
            if not self.ready:
                self._held.append((kind, msg))
            else:
                call_soon(self.loop, self._spawn, kind, msg)
        return None

    def _spawn(self, kind: str, msg: Any) -> None:
        if self.closed:
            return
        fn = getattr(self.instance, _HANDLERS[kind])
        if self.is_async:
            self.loop.create_task(guard(self.graph, self.name, fn(self.env, msg), self))
        else:
            guard_sync(self.graph, self.name, fn, self.env, msg)

    def send(self, msg: Any, wait: bool = False, sink=None) -> TenError | None:
        """A message from the extension to the tester."""
        if self.closed:
            return self._closed_error()
        kind = kind_of(msg)
        out = _source(msg._copy(), self.name)
        reason = self._check("out", kind, out)
        if reason is not None:
            return _make(TenErrorCode.ErrorCodeGeneric, reason) if wait else None
        if kind == "cmd" and self.graph.tester.stopping:
            # not verified: a command to a stopped tester fails rather than hangs
            self.graph.tester.drop(kind, out)
            return _make(TenErrorCode.ErrorCodeTenIsClosed, "ten_env_tester is closed.")
        if sink is not None:
            self.graph.expect_results(out, sink)
        self.graph.tester.deliver(kind, out)
        return None

    def return_result(self, result: Any) -> TenError | None:
        if self.closed:
            return self._closed_error()
        return self.graph.route_result(result)


class TesterNode:
    """The tester side: its own loop in its own thread (§1.8)."""

    def __init__(self, graph: Graph, tester: Any, is_async: bool):
        self.graph = graph
        self.tester = tester
        self.is_async = is_async
        self.loop = asyncio.new_event_loop()
        self.closed = False
        self.shutting_down = False
        self.stopping = False  # its on_stop has begun: it hears nothing any more
        self._stop_lock = threading.Lock()
        self._stop_fut: Any = None
        self._thread: threading.Thread | None = None
        self._done_futs: dict[str, asyncio.Future] = {}
        from .async_test import AsyncTenEnvTester
        from .test import TenEnvTester

        self.env = (AsyncTenEnvTester if is_async else TenEnvTester)._create(self)

    def start(self) -> None:
        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_forever()

        self._thread = threading.Thread(
            target=main, name="ten-extension-tester", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop)

    async def _step(self, stage: str) -> bool:
        fn = getattr(self.tester, f"on_{stage}")
        if self.is_async:
            return await guard(self.graph, None, fn(self.env), self)
        return guard_sync(self.graph, None, fn, self.env)

    async def _start(self) -> None:
        # Starts at once: it does not wait for the extension (§1.8).
        if await self._step("init"):
            await self._step("start")

    def begin_stop(self) -> None:
        """Start the tester's on_stop (once); from now on it hears nothing (§1.8)."""
        with self._stop_lock:
            if self.stopping:
                return
            self.stopping = True
            self._stop_fut = asyncio.run_coroutine_threadsafe(self._stop(), self.loop)

    def shutdown(self) -> None:
        self.begin_stop()
        fut = self._stop_fut
        try:
            fut.result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            if not self.loop.is_running():
                self.loop.close()

    async def _stop(self) -> None:
        await self._step("stop")
        await self._step("deinit")
        self.closed = True
        self.shutting_down = True
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not me]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def drop(self, kind: str, msg: Any) -> None:
        """A message that arrived after the tester's on_stop began: never delivered."""
        emit(
            None,
            LogLevel.DEBUG,
            f"[tester] dropped {kind}::{msg.get_name()}: it arrived after the "
            "tester's on_stop had begun",
        )
        self.graph.after_stop.append(
            {
                "kind": kind,
                "name": msg.get_name(),
                "props": json.loads(
                    json.dumps(getattr(msg, "_props", {}), default=str)
                ),
                "t": time.monotonic(),
                "in_on_stop": not self.graph.ext_on_stop_returned,
            }
        )

    def deliver(self, kind: str, msg: Any) -> None:
        if self.stopping:
            self.drop(kind, msg)
            return
        if self.closed:
            return
        try:
            self.loop.call_soon_threadsafe(self._spawn, kind, msg)
        except RuntimeError:
            pass  # the tester's loop is gone

    def call_soon(self, fn, *args) -> None:
        """Run a synchronous tester handler on the tester's thread."""
        try:
            self.loop.call_soon_threadsafe(
                lambda: guard_sync(self.graph, None, fn, *args)
            )
        except RuntimeError:
            pass

    def _spawn(self, kind: str, msg: Any) -> None:
        if self.closed:
            return
        fn = getattr(self.tester, _HANDLERS[kind])
        if self.is_async:
            self.loop.create_task(guard(self.graph, None, fn(self.env, msg), self))
        else:
            guard_sync(self.graph, None, fn, self.env, msg)

    def send(self, msg: Any, wait: bool = False, sink=None) -> TenError | None:
        """A message from the tester to the extension."""
        if self.closed:
            return _make(TenErrorCode.ErrorCodeTenIsClosed, "ten_env_tester is closed.")
        kind = kind_of(msg)
        out = _source(msg._copy(), None)
        if sink is not None:
            self.graph.expect_results(out, self._results_while_running(sink))
        err = self.graph.ext.deliver(kind, out)
        return err if wait else None

    def _results_while_running(self, sink):
        """Results of the tester's commands reach it only until its on_stop begins."""

        def guarded(result: Any) -> None:
            if self.stopping:
                self.drop("cmd_result", result)
            else:
                sink(result)

        return guarded

    def return_result(self, result: Any) -> TenError | None:
        return self.graph.route_result(result)
