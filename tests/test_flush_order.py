"""A flush in every phase of a request: its tts_audio_end always comes before
tts_flush_end, exactly once, and nothing of it follows (contract §2.4).

The hard phases are the request's own ending: a flush that lands while the request
is already ending (normally, or with an error) must wait for that ending instead
of letting the base class answer tts_flush_end first. A slow dump flush or a slow
send stretches the ending so the flush lands inside it.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from gradium_server import Fault, LatencyModel, ServerConfig, ServerThread
from harness import Rec, errors, ext_module, frames_between, named, run_session, summary

GradiumTTSExtension = ext_module("extension").GradiumTTSExtension
DumpWriter = ext_module("extension").DumpWriter

KEY = "test-key-0123456789"
META = {"session_id": "s1", "turn_id": 1}
FLUSH_META = {"session_id": "s1"}
STALL_S = 0.6
LONG = "This is a long sentence that keeps the synthesizer busy for a good while. " * 3


def props(server, tmp_path, **params):
    return {
        "dump": True,
        "dump_path": str(tmp_path / "dump"),
        "enable_words": True,
        "params": {
            "api_key": KEY,
            "url": server.url,
            "voice_id": "synthetic",
            "sample_rate": 16000,
            **params,
        },
    }


def stall(monkeypatch, where: str) -> threading.Event:
    """Make the ending of a request slow at ``where``; the event is set when it stalls."""
    stalled = threading.Event()
    if where == "dump_flush":
        original = DumpWriter.close

        async def slow_close(self, *args, **kwargs):
            stalled.set()
            await asyncio.sleep(STALL_S)
            await original(self, *args, **kwargs)

        monkeypatch.setattr(DumpWriter, "close", slow_close)
    else:
        original = GradiumTTSExtension.send_usage_metrics

        async def slow_metrics(self, *args, **kwargs):
            stalled.set()
            await asyncio.sleep(STALL_S)
            await original(self, *args, **kwargs)

        monkeypatch.setattr(GradiumTTSExtension, "send_usage_metrics", slow_metrics)
    return stalled


def check_flushed(records: list[Rec], rid: str, reason: int) -> None:
    """One audio end of ``rid`` (with ``reason``), then tts_flush_end, then nothing."""
    where = summary(records)
    ends = named(records, "tts_audio_end")
    assert [(e.request_id, e.props["reason"]) for e in ends] == [(rid, reason)], where
    (flush_end,) = named(records, "tts_flush_end")
    assert flush_end.props == {"flush_id": "f1", "metadata": FLUSH_META}
    end_at, flush_at = records.index(ends[0]), records.index(flush_end)
    assert end_at < flush_at, f"tts_flush_end before tts_audio_end: {where}"
    # the request's own messages (frames, words, its error) all come before the end
    # of the flush; after its audio end nothing but its error and metrics
    assert not [r for r in records[end_at:] if r.kind == "frame"], where
    assert all(
        r.name in ("metrics", "error", "tts_flush_end", "connection_status_changed")
        for r in records[end_at + 1 :]
    ), where
    assert all(records.index(e) < flush_at for e in errors(records)), where
    results = [r for r in named(records, "tts_text_result") if r.request_id == rid]
    assert all(records.index(r) < end_at for r in results), where
    if results:
        assert results[-1].props["text_result_end"] is True
        assert results[-1].props["metadata"]["turn_status"] in (1, 2)


async def quiet(s, seconds: float = 0.5) -> None:
    await asyncio.sleep(seconds)  # late audio of the flushed request would land here


# --------------------------------------------------------- flush while it is ending
@pytest.mark.parametrize("where", ["dump_flush", "usage_send"])
def test_flush_while_ending_normally_comes_after_its_audio_end(
    monkeypatch, tmp_path, where
):
    stalled = stall(monkeypatch, where)
    with ServerThread(ServerConfig.for_tests()) as srv:

        async def script(s):
            await s.text("r1", "A short request that ends.", end=True, metadata=META)
            assert await asyncio.to_thread(stalled.wait, 10)
            await s.flush("f1", FLUSH_META)  # lands while r1 is ending (stalled)
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            await quiet(s)

        sess = run_session(props(srv, tmp_path), script)
    check_flushed(sess.records, "r1", reason=1)  # it had ended: its own reason
    assert frames_between(sess.records, "r1")
    assert not errors(sess.records)


@pytest.mark.parametrize("where", ["dump_flush", "usage_send"])
def test_flush_while_ending_with_an_error_comes_after_its_audio_end_and_error(
    monkeypatch, tmp_path, where
):
    stalled = stall(monkeypatch, where)
    with ServerThread(ServerConfig.for_tests()) as srv:
        srv.inject(Fault("error_1011", arg=2))

        async def script(s):
            await s.text("r1", LONG, end=True, metadata=META)
            assert await asyncio.to_thread(stalled.wait, 10)
            await s.flush("f1", FLUSH_META)  # lands while r1 is failing (stalled)
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            await quiet(s)

        sess = run_session(props(srv, tmp_path), script)
    check_flushed(sess.records, "r1", reason=3)
    (err,) = errors(sess.records)
    assert err.props["id"] == "r1" and err.props["code"] == 1000
    assert len(frames_between(sess.records, "r1")) == 2


# ------------------------------------------------------ flush in the other phases
def _phase_server(phase: str) -> ServerThread:
    if phase == "before_ready":  # the socket is still being opened
        latency = LatencyModel(handshake_s=1.5, rtt_s=0.0, first_audio_s=0.0, rtf=0.0)
    elif phase == "before_audio":  # text went out, no audio yet
        latency = LatencyModel(handshake_s=0.0, rtt_s=0.0, first_audio_s=1.0, rtf=0.0)
    else:  # mid-audio: real-time pacing
        latency = LatencyModel(handshake_s=0.0, rtt_s=0.0, first_audio_s=0.0, rtf=1.0)
    return ServerThread(ServerConfig.for_tests(latency=latency))


@pytest.mark.parametrize("phase", ["before_ready", "before_audio", "mid_audio"])
def test_flush_in_every_phase_of_a_request(monkeypatch, tmp_path, phase):
    stall(monkeypatch, "dump_flush")  # the interrupted ending is slow too
    with _phase_server(phase) as srv:

        async def script(s):
            await s.text("r1", LONG, metadata=META)
            if phase == "before_ready":
                await asyncio.sleep(0.2)
                assert srv.connections_opened == 0
            elif phase == "before_audio":
                await s.until(lambda: srv.received("text"))
            else:
                await s.wait_frames(3)
            await s.flush("f1", FLUSH_META)
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            await quiet(s, 0.8)

        sess = run_session(props(srv, tmp_path), script)
    check_flushed(sess.records, "r1", reason=2)
    frames = frames_between(sess.records, "r1")
    assert bool(frames) == (phase == "mid_audio")
    assert not errors(sess.records)


def test_flush_while_an_empty_request_ends_comes_after_its_audio_end(
    monkeypatch, tmp_path
):
    stalled = stall(monkeypatch, "usage_send")  # the ending runs in request_tts itself
    with ServerThread(ServerConfig.for_tests()) as srv:

        async def script(s):
            await s.text("r1", " ", end=True, metadata=META)
            assert await asyncio.to_thread(stalled.wait, 10)
            await s.flush("f1", FLUSH_META)
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            await quiet(s)

        sess = run_session(props(srv, tmp_path), script)
    check_flushed(sess.records, "r1", reason=1)
    assert not frames_between(sess.records, "r1") and not errors(sess.records)
