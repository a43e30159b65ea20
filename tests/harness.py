"""A scripted TEN tester for the extension: send inputs, record every output.

``run_session(props, script)`` starts the extension under TEN's tester API (real
runtime or stand-ins), runs ``script(session)`` on the tester's loop, and returns
the session with ``records``: every data message and audio frame the extension
sent, in arrival order, with arrival times.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import pairwise
from types import ModuleType
from typing import Any

import tenhost
from ten_runtime import (
    AsyncExtensionTester,
    AsyncTenEnvTester,
    AudioFrame,
    Cmd,
    CmdResult,
    Data,
    TenError,
    TenErrorCode,
)

ADDON = "gradium_tts_python"


def ext_module(sub: str = "extension") -> ModuleType:
    """The module ``sub`` (``extension``, ``gradium_tts``, ``config``, ``text_filter``)
    of the copy of this package that the TEN host actually instantiates.

    Every monkeypatch of the package goes through this. The python addon loader
    (real or stand-in) imports the installed copy as
    ``ten_packages.extension.gradium_tts_python`` (``tenhost.addon_package()``); the
    checkout is not importable as ``gradium_tts_python`` at all.
    """
    return importlib.import_module(f"{tenhost.addon_package(ADDON)}.{sub}")


@dataclass
class Rec:
    t: float
    kind: str  # "data" or "frame"
    name: str
    props: dict[str, Any] = field(default_factory=dict)
    pcm: bytes = b""
    sample_rate: int = 0
    timestamp: int = 0

    @property
    def request_id(self) -> str | None:
        return self.props.get("request_id")


class Session(AsyncExtensionTester):
    def __init__(
        self,
        props: dict[str, Any],
        script: Callable[[Session], Awaitable[None]],
        timeout_s: float,
    ) -> None:
        super().__init__()
        self.set_test_mode_single(ADDON, json.dumps(props))
        self.set_timeout(int(timeout_s * 1_000_000))
        self.script = script
        self.records: list[Rec] = []
        self.cmd_results: list[tuple[int, dict[str, Any]]] = []
        self.failure: str | None = None
        self.started_at = 0.0
        self.sent_at: dict[str, float] = {}  # request_id -> first send time
        self._changed: asyncio.Event | None = None
        self._env: AsyncTenEnvTester | None = None
        self._task: asyncio.Task[None] | None = None

    # -------------------------------------------------------------- TEN callbacks
    async def on_start(self, ten_env: AsyncTenEnvTester) -> None:
        self._env = ten_env
        self._changed = asyncio.Event()
        self.started_at = time.monotonic()
        self._task = asyncio.create_task(self._run_script())

    async def _run_script(self) -> None:
        assert self._env is not None
        try:
            await self.script(self)
        except BaseException:  # noqa: BLE001 - reported by run_session
            self.failure = traceback.format_exc()
        finally:
            self._env.stop_test()

    async def on_data(self, ten_env: AsyncTenEnvTester, data: Data) -> None:
        raw, _ = data.get_property_to_json(None)
        try:
            props = json.loads(raw) if raw else {}
        except ValueError:
            props = {"_raw": raw}
        self.records.append(Rec(time.monotonic(), "data", data.get_name(), props))
        self._poke()

    async def on_audio_frame(
        self, ten_env: AsyncTenEnvTester, frame: AudioFrame
    ) -> None:
        raw, _ = frame.get_property_to_json(None)
        props = json.loads(raw) if raw else {}
        self.records.append(
            Rec(
                time.monotonic(),
                "frame",
                frame.get_name(),
                props,
                bytes(frame.get_buf()),
                frame.get_sample_rate(),
                frame.get_timestamp(),
            )
        )
        self._poke()

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # --------------------------------------------------------------- script API
    async def text(
        self,
        request_id: str,
        text: str,
        end: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        assert self._env is not None
        self.sent_at.setdefault(request_id, time.monotonic())
        data = Data.create("tts_text_input")
        payload = {
            "request_id": request_id,
            "text": text,
            "text_input_end": end,
            "metadata": metadata if metadata is not None else {},
        }
        data.set_property_from_json(None, json.dumps(payload))
        await self._env.send_data(data)

    async def flush(
        self, flush_id: str, metadata: dict[str, Any] | None = None
    ) -> None:
        assert self._env is not None
        data = Data.create("tts_flush")
        data.set_property_from_json(
            None, json.dumps({"flush_id": flush_id, "metadata": metadata or {}})
        )
        await self._env.send_data(data)

    async def cmd(self, name: str, props: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert self._env is not None
        cmd = Cmd.create(name)
        cmd.set_property_from_json(None, json.dumps(props))
        result, err = await self._env.send_cmd(cmd)
        assert err is None, err.error_message()
        assert isinstance(result, CmdResult)
        raw, _ = result.get_property_to_json(None)
        out = (int(result.get_status_code()), json.loads(raw) if raw else {})
        self.cmd_results.append(out)
        return out

    async def wait_for(
        self, predicate: Callable[[list[Rec]], Any], timeout: float = 10.0
    ) -> Any:
        """Wait until ``predicate(records)`` is truthy; return its value."""
        assert self._changed is not None
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self.records)
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting; got: {summary(self.records)}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll ``predicate()`` (state outside the records, e.g. the server's)."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s polling")
            await asyncio.sleep(0.02)
        return value

    async def wait_end(self, request_id: str, timeout: float = 10.0) -> Rec:
        return await self.wait_for(
            lambda recs: next(
                (
                    r
                    for r in recs
                    if r.name == "tts_audio_end" and r.request_id == request_id
                ),
                None,
            ),
            timeout,
        )

    async def wait_error(self, request_id: str, timeout: float = 10.0) -> Rec:
        """Wait for the ``error`` of ``request_id``. The extension sends it right
        after the request's ``tts_audio_end``: a script that stops at the end alone
        can lose it (on the real runtime it may reach a tester already stopped)."""
        return await self.wait_for(
            lambda recs: next(
                (
                    r
                    for r in recs
                    if r.name == "error" and r.props.get("id") == request_id
                ),
                None,
            ),
            timeout,
        )

    async def wait_frames(self, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait_for(
            lambda recs: sum(1 for r in recs if r.kind == "frame") >= count, timeout
        )


KEY = "test-key-0123456789"
_TOP_LEVEL = ("dump", "dump_path", "enable_words")


def props(server: Any, **params: Any) -> dict[str, Any]:
    """Extension properties for the local server (synthetic voice, 16 kHz):
    ``params`` keys go into ``params``, except the top-level ones."""
    top = {k: params.pop(k) for k in _TOP_LEVEL if k in params}
    base = {"api_key": KEY, "url": server.url, "voice_id": "synthetic"}
    return {**top, "params": {**base, "sample_rate": 16000, **params}}


def run_session(
    props: dict[str, Any],
    script: Callable[[Session], Awaitable[None]],
    timeout_s: float = 30.0,
) -> Session:
    session = Session(props, script, timeout_s)
    err = session.run()
    if session.failure:
        raise AssertionError("test script failed:\n" + session.failure)
    if err is not None:
        raise AssertionError(f"tester error {err.error_code()}: {err.error_message()}")
    return session


def fail(env: AsyncTenEnvTester, message: str) -> None:
    env.stop_test(TenError.create(TenErrorCode.ErrorCodeGeneric, message))


def package_dir() -> str:
    """The folder of the installed copy the host runs (with a trailing slash)."""
    return os.path.dirname(os.path.realpath(ext_module().__file__)) + os.sep


def is_package_task(task: asyncio.Task[Any]) -> bool:
    """True when ``task`` runs one of the package's own coroutines.

    The real ``AsyncExtension`` keeps a task of its own pending on the extension's
    loop for the extension's whole life (``_configure_routine()``, a coroutine of
    the extension object, contract §1.4): a leftover-task check counts only tasks
    whose coroutine is defined in the package's files.
    """
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and os.path.realpath(code.co_filename).startswith(
        package_dir()
    )


# ------------------------------------------------------------ ten_env log calls
_LOG_METHODS = {
    "log_debug": "debug",
    "log_info": "info",
    "log_warn": "warn",
    "log_error": "error",
}
_LEVEL_NAMES = {1: "debug", 2: "info", 3: "warn", 4: "error"}


@dataclass
class LogLine:
    """One call the extension under test made to its ``ten_env``'s log methods."""

    level: str  # "debug", "info", "warn" or "error"
    msg: str
    category: str | None
    fields: Any


@dataclass
class TenLog:
    """What the extension under test passed to ``ten_env.log_*`` / ``ten_env.log``.

    On TEN's real runtime those lines go to TEN's native log, never to Python's
    ``logging`` (contract §1.5), so ``caplog`` cannot see them; this records the
    calls themselves, the same on both hosts. Only calls made from the package's own
    files count (not ten_ai_base's, not a probe addon's). ``ten_log`` (conftest)
    gives one per test.
    """

    lines: list[LogLine] = field(default_factory=list)

    def messages(self, *levels: str) -> list[str]:
        return [x.msg for x in self.lines if not levels or x.level in levels]

    def text(self) -> str:
        """Every line with its category and fields, as one string (for leak checks)."""
        return "\n".join(
            f"{x.level} [{x.category}] {x.msg} {x.fields!r}" for x in self.lines
        )


def record_ten_log(monkeypatch: Any) -> TenLog:
    """Wrap the log methods of ``AsyncTenEnv`` (the extension's env on both hosts)
    for this test; every call still reaches the host, with its ``LogOption`` skipping
    one frame more so that the host still names the extension's line."""
    import sys

    from ten_runtime import AsyncTenEnv, DefaultLogOption, LogOption

    log = TenLog()
    ours = package_dir()
    lock = threading.Lock()
    is_ours: dict[str, bool] = {}  # caller file -> inside the package

    def keep(level: str, msg: Any, category: Any, fields: Any) -> None:
        caller = sys._getframe(2).f_code.co_filename
        if caller not in is_ours:
            is_ours[caller] = os.path.realpath(caller).startswith(ours)
        if is_ours[caller]:
            if hasattr(fields, "to_python"):
                fields = fields.to_python()
            with lock:
                log.lines.append(LogLine(level, str(msg), category, fields))

    def later(option: Any) -> Any:
        option = option or DefaultLogOption
        return LogOption(skip=option.skip + 1, sync=option.sync)

    for name, level in _LOG_METHODS.items():

        def method(
            self,
            msg,
            category=None,
            fields=None,
            option=None,
            _original=getattr(AsyncTenEnv, name),
            _level=level,
        ):
            keep(_level, msg, category, fields)
            return _original(self, msg, category, fields, later(option))

        monkeypatch.setattr(AsyncTenEnv, name, method)

    def log_(
        self,
        level,
        msg,
        category=None,
        fields=None,
        option=None,
        _original=AsyncTenEnv.log,
    ):
        keep(_LEVEL_NAMES.get(int(level), str(level)), msg, category, fields)
        return _original(self, level, msg, category, fields, later(option))

    monkeypatch.setattr(AsyncTenEnv, "log", log_)
    return log


# --------------------------------------------------------------------- queries
def summary(records: list[Rec]) -> str:
    out = []
    for r in records:
        if r.kind == "frame":
            if out and out[-1].startswith("frame"):
                n = int(out[-1].split("x")[1]) + 1
                out[-1] = f"framex{n}"
            else:
                out.append("framex1")
        else:
            out.append(f"{r.name}({r.request_id or r.props.get('flush_id') or ''})")
    return " ".join(out)


def named(records: list[Rec], name: str) -> list[Rec]:
    return [r for r in records if r.name == name]


def errors(records: list[Rec]) -> list[Rec]:
    return named(records, "error")


def metrics(records: list[Rec], key: str) -> list[Rec]:
    return [r for r in named(records, "metrics") if key in r.props.get("metrics", {})]


def frames_between(records: list[Rec], request_id: str) -> list[Rec]:
    """Frames between this request's audio start and its audio end."""
    out: list[Rec] = []
    inside = False
    for r in records:
        if r.name == "tts_audio_start" and r.request_id == request_id:
            inside = True
        elif r.name == "tts_audio_end" and r.request_id == request_id:
            break
        elif inside and r.kind == "frame":
            out.append(r)
    return out


def check_request_sequences(
    records: list[Rec],
    expected: list[str],
    *,
    metadata: dict[str, dict[str, Any]] | None = None,
    reasons: dict[str, int] | None = None,
) -> None:
    """The ordering contract, for sequential/interleaved/back-to-back traffic.

    Requests end in ``expected`` order; each one is start -> frames (and text
    results) -> end, with nothing of the next request before this one's end, no
    frame outside a start/end pair, text results never after their own end, frame
    metadata equal to the request's, and the reported duration within 10 ms of
    the bytes sent.
    """
    order: list[str] = []
    current: str | None = None
    nbytes = 0
    rate = 0
    ended: set[str] = set()
    for r in records:
        if r.name == "tts_audio_start":
            assert current is None, f"start of {r.request_id} inside {current}"
            current, nbytes, rate = r.request_id, 0, 0
            if metadata and current in metadata:
                assert r.props.get("metadata") == metadata[current], r.props
        elif r.kind == "frame":
            assert current is not None, "audio frame outside any request"
            nbytes += len(r.pcm)
            rate = rate or r.sample_rate
            if metadata and current in metadata:
                assert r.props.get("metadata") == metadata[current], r.props
        elif r.name == "tts_text_result":
            assert r.request_id not in ended, f"text result after end of {r.request_id}"
            assert r.request_id == current, (
                f"text result of {r.request_id} in {current}"
            )
        elif r.name == "tts_audio_end":
            assert r.request_id == current, f"end of {r.request_id} while in {current}"
            if reasons and current in reasons:
                assert r.props["reason"] == reasons[current], r.props
            if rate:
                expect_ms = nbytes * 1000 / (rate * 2)
                got = r.props["request_total_audio_duration_ms"]
                assert abs(got - expect_ms) <= 10, (current, got, expect_ms)
            if metadata and current in metadata:
                assert r.props.get("metadata") == metadata[current], r.props
            order.append(current)
            ended.add(current)
            current = None
    assert current is None, f"request {current} never ended"
    assert order == expected, f"end order {order} != {expected}"


def check_subtitle_alignment(
    results: list[dict[str, Any]], frames: list[Rec], *, last_status: int
) -> None:
    """The guarder's six subtitle rules (contract §3.4, test 17), for one request."""
    # 1. the first subtitle is not before the first audio
    assert results[0]["start_ms"] >= frames[0].timestamp
    # 2. start_ms strictly ascending
    starts = [p["start_ms"] for p in results]
    assert all(b > a for a, b in pairwise(starts)), starts
    # 3. frame timestamps: each one = previous + previous duration (+-10 ms)
    rate = frames[0].sample_rate
    durations = [len(f.pcm) * 1000 / (rate * 2) for f in frames]
    for (prev, cur), dur in zip(pairwise(frames), durations, strict=False):
        assert abs(cur.timestamp - (prev.timestamp + dur)) <= 10, (
            prev.timestamp,
            cur.timestamp,
        )
    # 4. the text span and the audio span differ by at most 1000 ms
    text_span = (
        results[-1]["start_ms"] + results[-1]["duration_ms"] - results[0]["start_ms"]
    )
    audio_span = frames[-1].timestamp + durations[-1] - frames[0].timestamp
    assert abs(text_span - audio_span) <= 1000, (text_span, audio_span)
    # 5. one request id, turn_seq_id on every result, never decreasing (here 0, 1, ...)
    assert len({p["request_id"] for p in results}) == 1
    seqs = [p["metadata"]["turn_seq_id"] for p in results]
    assert seqs == list(range(len(results))), seqs
    # 6. turn_status 0 until the last result, which is 1 (ended) or 2 (interrupted)
    statuses = [p["metadata"]["turn_status"] for p in results]
    assert statuses == [0] * (len(results) - 1) + [last_status], statuses
