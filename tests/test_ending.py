"""The ending path cannot fail (issue 15), and what odd servers send cannot break it.

Whatever raises while a request ends (stopping its stream, its last words, its
audio start, its odd last byte, usage metrics, the dump, measuring, bookkeeping,
its error, finish_request), its tts_audio_end goes out exactly once, before any
tts_flush_end of that request, and the next request is unharmed. A full disk
never changes an outcome. Word timestamps that are NaN or go backwards, and audio
chunks of odd length, are made whole instead of raised on or carried over.
"""

from __future__ import annotations

import builtins
import sys
import time
from typing import Any

import pytest
from gradium_server import ServerConfig, ServerThread
from harness import errors, ext_module, frames_between, named, props, run_session

extension = ext_module("extension")
GradiumTTSExtension = extension.GradiumTTSExtension
TTSRequest = ext_module("gradium_tts").TTSRequest

META = {"session_id": "s1", "turn_id": 1}
LONG = "This long sentence keeps the synthesizer busy for quite a while. " * 3

# Where an exception is injected: (owner, attribute). Each raises once, and only
# when called from inside the ending (_finalize).
STEPS: dict[str, tuple[Any, str]] = {
    "stop": (TTSRequest, "cancel"),
    "tail": (GradiumTTSExtension, "_end_tail"),
    "audio_start": (GradiumTTSExtension, "send_tts_audio_start"),
    "words": (GradiumTTSExtension, "send_tts_text_result"),
    "usage": (GradiumTTSExtension, "send_usage_metrics"),
    "dump": (getattr(extension, "DumpWriter", None), "close"),
    "audio_end": (GradiumTTSExtension, "_ms"),  # measuring the audio for it
    "bookkeeping": (GradiumTTSExtension, "_close_retired"),
    "error": (GradiumTTSExtension, "send_tts_error"),
    "finish": (GradiumTTSExtension, "finish_request"),
}
# The ending of each path calls these steps (the others do not apply to it).
APPLIES = {
    # odd_audio: a stray byte after the last frame, dropped at the end
    "end": {"tail", "words", "usage", "dump", "audio_end", "bookkeeping", "finish"},
    "flush": {"stop", "words", "usage", "dump", "audio_end", "bookkeeping"},
    "flush_early": {"stop", "audio_start", "usage", "audio_end", "bookkeeping"},
    "error": {"stop", "words", "usage", "dump", "audio_end", "bookkeeping"}
    | {"error", "finish"},
}
REASON = {"end": 1, "flush": 2, "flush_early": 2, "error": 3}


def _in_ending() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "_finalize":
            return True
        frame = frame.f_back
    return False


def inject(monkeypatch: pytest.MonkeyPatch, step: str) -> list[str]:
    """Make ``step`` raise once inside an ending; returns where it fired."""
    owner, name = STEPS[step]
    assert owner is not None, f"no {step} step to inject into"
    original = getattr(owner, name)
    fired: list[str] = []

    def check() -> None:
        if not fired and _in_ending():
            fired.append(step)
            raise RuntimeError(f"injected failure in {step}")

    if name in ("cancel", "_close_retired", "_ms", "_end_tail"):

        def sync(self, *args, **kwargs):
            check()
            return original(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, sync)
    else:

        async def coro(self, *args, **kwargs):
            check()
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, coro)
    return fired


def ending_props(srv: ServerThread, tmp_path) -> dict[str, Any]:
    return props(srv, dump=True, dump_path=str(tmp_path / "dump"), enable_words=True)


async def play(s, path: str, srv: ServerThread) -> None:
    """r1 ends along ``path``; then r2, a plain request, must be unharmed."""
    if path == "end":
        await s.text("r1", "Words at the end. [[fault:odd_audio:1]]", True, META)
        await s.wait_end("r1")
    elif path == "error":
        await s.text("r1", f"{LONG} [[fault:error_1011:3]]", True, META)
        await s.wait_end("r1")
    elif path == "flush":
        await s.text("r1", LONG, metadata=META)
        await s.wait_for(lambda recs: len(frames_between(recs, "r1")) >= 3)
    else:  # flush_early: Gradium has the request but sends no audio
        await s.text("r1", f"{LONG} [[fault:stall_after_ready]]", metadata=META)
        await s.until(lambda: srv.received("text"))
    if path.startswith("flush"):
        await s.flush("f1", {"flush": 1})
        await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
    await s.text("r2", "The next request.", True, META)
    await s.wait_end("r2")


def check_outcome(
    records, path: str, *, r1_errors: int, start_lost: bool = False
) -> None:
    ends = [e for e in named(records, "tts_audio_end") if e.request_id == "r1"]
    assert [e.props["reason"] for e in ends] == [REASON[path]], ends
    if path.startswith("flush"):
        (flush_end,) = named(records, "tts_flush_end")
        assert records.index(ends[0]) < records.index(flush_end)
    starts = [r for r in named(records, "tts_audio_start") if r.request_id == "r1"]
    if start_lost:  # its send raised: logged, and the end still goes out
        assert not starts
    else:
        assert len(starts) == 1
        assert records.index(starts[0]) < records.index(ends[0])
    assert len([e for e in errors(records) if e.props["id"] == "r1"]) == r1_errors
    # the next request: whole and normal
    (r2_end,) = [e for e in named(records, "tts_audio_end") if e.request_id == "r2"]
    assert r2_end.props["reason"] == 1 and frames_between(records, "r2")
    assert not [e for e in errors(records) if e.props["id"] == "r2"]
    assert all(len(f.pcm) % 2 == 0 for f in records if f.kind == "frame")


CASES = [(path, step) for path in APPLIES for step in STEPS if step in APPLIES[path]]


@pytest.mark.parametrize(("path", "step"), CASES, ids=[f"{p}-{s}" for p, s in CASES])
def test_an_exception_at_any_step_of_the_ending_still_ends_it_once(
    monkeypatch, tmp_path, path, step
):
    fired = inject(monkeypatch, step)
    with ServerThread(ServerConfig.for_tests()) as srv:
        sess = run_session(ending_props(srv, tmp_path), lambda s: play(s, path, srv))
    assert fired == [step], f"{step} was not part of the {path} ending"
    lost_error = path == "error" and step == "error"  # logged instead
    check_outcome(
        sess.records,
        path,
        r1_errors=0 if lost_error or path != "error" else 1,
        start_lost=step == "audio_start",
    )


# ------------------------------------------------------------------ full disk
@pytest.fixture
def full_disk(monkeypatch):
    """Every dump file write fails as on a full disk (ENOSPC, from /dev/full)."""
    real_open = builtins.open

    def open_(file, mode="r", *args, **kwargs):
        if "gradium_dump_" in str(file) and any(m in mode for m in "wa"):
            return real_open("/dev/full", "wb", *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)


@pytest.mark.parametrize("path", ["end", "flush", "error"])
def test_a_full_disk_never_changes_a_requests_outcome(
    full_disk, ten_log, tmp_path, path
):
    with ServerThread(ServerConfig.for_tests()) as srv:
        sess = run_session(ending_props(srv, tmp_path), lambda s: play(s, path, srv))
    check_outcome(sess.records, path, r1_errors=1 if path == "error" else 0)
    for rid in ("r1", "r2"):
        lines = [m for m in ten_log.messages() if f"dump of {rid} stopped" in m]
        assert len(lines) == 1, ten_log.messages()


# ----------------------------------------------------------- odd word timestamps
@pytest.mark.parametrize(
    "fault",
    [
        "word_nan:0",
        "word_nan:2",
        "word_backwards:2",
        "word_absurd:2",
        "word_absurd:0",
        "word_surrogate:2",
    ],
)
def test_bad_word_timestamps_are_dropped_or_clamped_never_raised_on(
    fault, parser_mode, ten_log
):
    """A NaN is not JSON, nor is a lone surrogate: with or without orjson the
    client drops that frame (one behaviour in both modes). A word going backwards
    is clamped; one beyond what the audio can hold (1e300) is dropped, like NaN:
    logged once, and the turn's last text result still goes out."""
    with ServerThread(ServerConfig.for_tests()) as srv:

        async def script(s):
            text = f"One two three four five six seven. [[fault:{fault}]]"
            await s.text("r1", text, True, META)
            await s.wait_end("r1")
            await s.text("r2", "And then eight nine ten.", True, META)
            await s.wait_end("r2")

        sess = run_session(props(srv, enable_words=True), script)
        fired = [e for e in srv.log_snapshot() if e.type == "fault_fired"]
    assert [e.data["kind"] for e in fired] == [fault.split(":")[0]]
    for rid in ("r1", "r2"):
        (end,) = [
            e for e in named(sess.records, "tts_audio_end") if e.request_id == rid
        ]
        assert end.props["reason"] == 1
        results = [
            r for r in named(sess.records, "tts_text_result") if r.request_id == rid
        ]
        assert len(results) >= 3 and results[-1].props["text_result_end"]
        starts = [r.props["start_ms"] for r in results]
        assert all(isinstance(x, int) and x >= 0 for x in starts)
        assert starts == sorted(starts) and len(set(starts)) == len(starts), starts
        for r in results:
            for w in r.props["words"]:
                assert w["start_ms"] >= 0 and w["duration_ms"] >= 0
    assert not errors(sess.records)
    warned = [m for m in ten_log.messages() if "word timestamps of r1" in m]
    assert len(warned) == (1 if "backwards" in fault or "absurd" in fault else 0)


# ----------------------------------------------------------------- PCM alignment
def _server_pcm(srv: ServerThread) -> dict[str, bytes]:
    out: dict[str, bytearray] = {}
    for e in srv.log_snapshot():
        if e.direction == "out" and e.type == "audio":
            out.setdefault(e.client_req_id, bytearray()).extend(e.data["pcm"])
    return {cid: bytes(pcm) for cid, pcm in out.items()}


@pytest.mark.parametrize("frame", [0, 2])
def test_an_odd_audio_chunk_never_shifts_samples_nor_reaches_the_next_request(
    ten_log, frame
):
    with ServerThread(ServerConfig.for_tests()) as srv:

        async def script(s):
            await s.text("r1", f"An odd one. [[fault:odd_audio:{frame}]]", True, META)
            await s.wait_end("r1")
            await s.text("r2", "An even one after it.", True, META)
            await s.wait_end("r2")

        sess = run_session(props(srv), script)
        setups = [e.client_req_id for e in srv.log_snapshot() if e.type == "setup"]
        server = _server_pcm(srv)
    r1, r2 = (server[cid] for cid in setups)
    assert len(r1) % 2 == 1 and len(r2) % 2 == 0  # the fault: one stray byte
    frames = [f for f in sess.records if f.kind == "frame"]
    assert frames and all(len(f.pcm) % 2 == 0 for f in frames)
    got1 = b"".join(f.pcm for f in frames_between(sess.records, "r1"))
    got2 = b"".join(f.pcm for f in frames_between(sess.records, "r2"))
    assert got1 == r1[:-1]  # the split frame joined again; the stray byte dropped
    assert got2 == r2  # nothing carried over
    dropped = [m for m in ten_log.messages() if "short of a whole sample" in m]
    assert len(dropped) == 1 and "r1" in dropped[0]


# ------------------------------------------------------------ Gradium request id
def test_gradium_request_id_is_logged_once_and_named_in_every_error(ten_log):
    with ServerThread(ServerConfig.for_tests()) as srv:

        async def script(s):
            await s.text("r1", f"{LONG} [[fault:error_1011:2]]", True, META)
            await s.wait_end("r1")
            await s.wait_error("r1")

        sess = run_session(props(srv), script)
        ready = [
            e for e in srv.log_snapshot() if e.direction == "out" and e.type == "ready"
        ]
    (gradium_id,) = {e.data["message"]["request_id"] for e in ready}
    cid = ready[0].client_req_id
    lines = [m for m in ten_log.messages() if gradium_id in m]
    wanted = f"request r1 -> gradium {cid}: gradium request_id {gradium_id}"
    assert len([m for m in lines if wanted in m]) == 1, lines
    (err,) = errors(sess.records)
    assert err.props["vendor_info"]["message"].endswith(
        f"(gradium request_id {gradium_id})"
    )


def test_a_slow_disk_holds_an_ending_at_most_the_dump_bound(monkeypatch, tmp_path):
    """The dump writes from its own thread: a disk that takes 6 s per write
    holds the ending about DUMP_CLOSE_TIMEOUT_S (2 s), never the event loop."""
    real_open = builtins.open

    class Slow:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            time.sleep(6.0)
            return self._f.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def open_(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return Slow(f) if "gradium_dump_" in str(file) else f

    monkeypatch.setattr(builtins, "open", open_)
    with ServerThread(ServerConfig.for_tests()) as srv:

        async def script(s):
            await s.text("r1", "Slow disk.", True, META)
            await s.wait_end("r1")

        sess = run_session(ending_props(srv, tmp_path), script)
    frames = frames_between(sess.records, "r1")
    (end,) = named(sess.records, "tts_audio_end")
    assert end.props["reason"] == 1 and frames
    held = end.t - frames[-1].t
    assert 1.5 < held < 4.0, held
    # the loop kept running meanwhile: frames were not held up by the disk
    assert frames[-1].t - frames[0].t < 3.0
