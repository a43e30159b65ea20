"""The extension's own behaviours, through TEN's tester API against the local server."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from gradium_server import Fault, LatencyModel, ServerConfig, ServerThread
from harness import (
    KEY,
    check_request_sequences,
    check_subtitle_alignment,
    errors,
    ext_module,
    frames_between,
    metrics,
    named,
    props,
    run_session,
    summary,
)

META = {"session_id": "s1", "turn_id": 1}


@pytest.fixture
def server():
    with ServerThread(ServerConfig.for_tests()) as srv:
        yield srv


def texts_received(server, cid=None):
    return [m["text"] for m in server.received("text", client_req_id=cid)]


# ------------------------------------------------------------------ streaming
def test_each_segment_is_forwarded_before_the_next_arrives(server):
    async def script(s):
        await s.text("r1", "Hello there.", metadata=META)
        await s.wait_for(lambda _: texts_received(server) == ["Hello there."])
        await s.wait_frames(1)  # audio flows before text_input_end
        await s.text("r1", "How are you?", metadata=META)
        await s.wait_for(lambda _: len(texts_received(server)) == 2)
        await s.text("r1", "", end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    assert texts_received(server) == ["Hello there.", " How are you?"]
    assert [m["type"] for m in server.received()][-1] == "end_of_stream"
    check_request_sequences(
        sess.records, ["r1"], reasons={"r1": 1}, metadata={"r1": META}
    )
    assert not errors(sess.records)


def test_setup_carries_config_and_multiplexing_fields(server):
    async def script(s):
        await s.text("r1", "Hi.", end=True)
        await s.wait_end("r1")

    run_session(
        props(server, model_name="m-test", json_config='{"temp": 0.2}', custom=1),
        script,
    )
    (raw,) = server.received("setup")
    assert raw["model_name"] == "m-test" and raw["voice_id"] == "synthetic"
    assert raw["output_format"] == "pcm_16000" and raw["json_config"] == {
        "temp": 0.2,
        "rewrite_rules": "en",  # the default text normalization
    }
    assert raw["close_ws_on_eos"] is False and raw["client_req_id"]
    assert raw["custom"] == 1


@pytest.mark.parametrize(
    "chunks",
    [[""], [" "], ["", " ", ""], [",", "..."], ["\n\t"], ["😊"]],
    ids=["empty", "space", "empties", "punct", "ws", "emoji"],
)
def test_requests_without_speakable_text_end_at_once(server, chunks):
    async def script(s):
        await s.wait_for(lambda recs: named(recs, "connection_status_changed"))
        for i, chunk in enumerate(chunks):
            await s.text("e1", chunk, end=i == len(chunks) - 1, metadata=META)
        s.last_sent = time.monotonic()
        await s.wait_end("e1")

    sess = run_session(props(server), script)
    (end,) = named(sess.records, "tts_audio_end")
    assert end.props["reason"] == 1
    assert end.props["request_total_audio_duration_ms"] == 0
    assert end.props["metadata"] == META
    assert end.t - sess.last_sent < 0.05  # within 50 ms of the request's end
    assert not errors(sess.records)
    assert not server.received("setup")  # nothing was sent to Gradium


def test_odd_segments_inside_a_request_do_not_break_it(server):
    async def script(s):
        for chunk in ["", "Hello", ",", " ", "😊", "world", "!"]:
            await s.text("r1", chunk)
        await s.text("r1", "", end=True)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    check_request_sequences(sess.records, ["r1"], reasons={"r1": 1})
    assert frames_between(sess.records, "r1")
    assert "".join(texts_received(server)) == "Hello, world!"  # the emoji unsaid
    assert not errors(sess.records)


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
def test_frames_carry_the_server_sample_rate(server, rate):
    async def script(s):
        await s.text("r1", "Sample rate check.", end=True)
        await s.wait_end("r1")

    sess = run_session(props(server, sample_rate=rate), script)
    frames = frames_between(sess.records, "r1")
    assert frames and {f.sample_rate for f in frames} == {rate}
    check_request_sequences(sess.records, ["r1"])


def test_frame_timestamps_are_contiguous_request_time(server):
    async def script(s):
        await s.text(
            "r1", "A sentence that is long enough for several frames.", end=True
        )
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    frames = frames_between(sess.records, "r1")
    assert len(frames) > 3
    position = 0
    for frame in frames:
        assert abs(frame.timestamp - position) <= 1
        position += len(frame.pcm) * 1000 / (16000 * 2)


# -------------------------------------------------------------------- metrics
def test_one_ttfb_per_request_and_it_includes_the_connection():
    # A slow handshake, and the first request sent before the prewarm finishes.
    latency = LatencyModel(handshake_s=0.3, rtt_s=0.0, first_audio_s=0.05, rtf=0.0)
    with ServerThread(ServerConfig.for_tests(latency=latency)) as srv:

        async def script(s):
            for i in (1, 2, 3):
                meta = {"session_id": "s", "turn_id": i}
                await s.text(f"r{i}", f"Turn number {i}.", end=True, metadata=meta)
                await s.wait_end(f"r{i}")

        sess = run_session(props(srv), script)
    ttfb = metrics(sess.records, "ttfb")
    assert [m.props["metadata"]["turn_id"] for m in ttfb] == [1, 2, 3]
    first, second, third = (m.props["metrics"]["ttfb"] for m in ttfb)
    assert first >= 250  # the handshake the first turn waited for is counted
    assert second < 200 and third < 200  # later turns ride the warm socket
    ends = named(sess.records, "tts_audio_end")
    for m in ttfb:  # each TTFB comes before its own request's end
        rid = f"r{m.props['metadata']['turn_id']}"
        assert m.t <= next(e.t for e in ends if e.request_id == rid)


def test_connect_delay_and_usage_metrics(server):
    async def script(s):
        await s.text("r1", "Usage counts.", end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    (delay,) = metrics(sess.records, "connect_delay")
    assert isinstance(delay.props["metrics"]["connect_delay"], int)
    usage = [
        m
        for m in metrics(sess.records, "input_characters")
        if m.props.get("metadata") == META
    ]
    assert usage, summary(sess.records)
    assert usage[0].props["metrics"]["input_characters"] == len("Usage counts.")
    assert usage[0].props["metrics"]["recv_audio_duration"] > 0
    end = named(sess.records, "tts_audio_end")[0]
    assert usage[0].t <= end.t


def test_connection_status_changes(server):
    async def script(s):
        await s.text("r1", "Status.", end=True)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    statuses = [r.props for r in named(sess.records, "connection_status_changed")]
    assert (
        statuses[0]["current"] == "connecting" and statuses[1]["current"] == "connected"
    )
    assert all(st["module"] == "tts" and st["vendor"] == "gradium" for st in statuses)
    connected_at = named(sess.records, "connection_status_changed")[1].t
    assert connected_at < named(sess.records, "tts_audio_end")[0].t


# ---------------------------------------------------------------------- flush
def slow_server():
    # rtf 1.0: audio arrives in real time, so a flush lands mid-stream.
    latency = LatencyModel(handshake_s=0.0, rtt_s=0.0, first_audio_s=0.0, rtf=1.0)
    return ServerThread(ServerConfig.for_tests(latency=latency))


LONG = "This is a long sentence that keeps the synthesizer busy for a good while. " * 3


def test_flush_mid_stream_closes_the_socket_next_turn_rides_the_standby():
    with slow_server() as srv:

        async def script(s):
            await s.text("r1", LONG, metadata=META)
            await s.wait_frames(2)
            await s.flush("f1", {"session_id": "s1"})
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            flushed_at = len(s.records)
            await s.text("r2", "After the flush.", end=True, metadata=META)
            await s.wait_end("r2")
            s.after_flush = s.records[flushed_at:]

        sess = run_session(props(srv), script)
        # the flush closed r1's socket (Gradium stops); r2 rode the standby, open
        # before the flush: the interruption cost the next turn no handshake
        cid1 = srv.received("setup")[0]["client_req_id"]
        assert srv.events_of("close", conn=1)[0].data["by"] == "client"
        assert srv.received("end_of_stream", client_req_id=cid1) == []
        setup2 = srv.events.select("in", "setup")[1]
        assert setup2.conn == 2
        assert srv.events_of("open", conn=2)[0].t < srv.events_of("close", conn=1)[0].t
    names = [r.name for r in sess.records if r.kind == "data" and r.name != "metrics"]
    end1 = names.index("tts_audio_end")
    assert names[end1 + 1] == "tts_flush_end"
    assert named(sess.records, "tts_audio_end")[0].props["reason"] == 2
    (flush_end,) = named(sess.records, "tts_flush_end")
    assert flush_end.props == {"flush_id": "f1", "metadata": {"session_id": "s1"}}
    # Nothing of r1 after its end: the next records belong to r2 only.
    check_request_sequences(sess.records, ["r1", "r2"], reasons={"r1": 2, "r2": 1})
    assert not errors(sess.records)


def test_flush_while_connecting_sends_nothing_to_gradium():
    latency = LatencyModel(handshake_s=0.5, rtt_s=0.0, first_audio_s=0.0, rtf=0.0)
    with ServerThread(ServerConfig.for_tests(latency=latency)) as srv:

        async def script(s):
            await s.text("r1", "Interrupted before it began.", metadata=META)
            await asyncio.sleep(
                0.1
            )  # r1 reaches request_tts, then waits for the socket
            await s.flush("f1")
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            await s.text("r2", "Second.", end=True, metadata=META)
            await s.wait_end("r2", timeout=5)

        sess = run_session(props(srv), script)
        setups = srv.received("setup")
    assert len(setups) == 1  # only r2 reached Gradium
    ends = named(sess.records, "tts_audio_end")
    assert [(e.request_id, e.props["reason"]) for e in ends] == [("r1", 2), ("r2", 1)]
    assert frames_between(sess.records, "r2")
    assert not errors(sess.records)


def test_double_flush_and_flush_after_finish_end_nothing_twice():
    with slow_server() as srv:

        async def script(s):
            await s.text("r1", LONG, metadata=META)
            await s.wait_frames(1)
            await s.flush("f1")
            await s.flush("f2")
            await s.wait_for(lambda recs: len(named(recs, "tts_flush_end")) == 2)
            await s.text("r2", "Short.", end=True, metadata=META)
            await s.wait_end("r2")
            await s.flush("f3")
            await s.wait_for(lambda recs: len(named(recs, "tts_flush_end")) == 3)

        sess = run_session(props(srv), script)
    ends = named(sess.records, "tts_audio_end")
    assert [(e.request_id, e.props["reason"]) for e in ends] == [("r1", 2), ("r2", 1)]
    assert [r.props["flush_id"] for r in named(sess.records, "tts_flush_end")] == [
        "f1",
        "f2",
        "f3",
    ]


# ---------------------------------------------------------------------- words
def test_word_timestamps_become_text_results_before_audio_end(server):
    async def script(s):
        await s.text("r1", "Hello brave new world.", end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server, enable_words=True), script)
    results = named(sess.records, "tts_text_result")
    assert [r.props["text"] for r in results] == ["Hello", "brave", "new", "world."]
    assert [r.props["text_result_end"] for r in results] == [False, False, False, True]
    starts = [r.props["start_ms"] for r in results]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    end = named(sess.records, "tts_audio_end")[0]
    total = end.props["request_total_audio_duration_ms"]
    for r in results:
        (word,) = r.props["words"]
        assert word["word"] == r.props["text"]
        assert (
            0 <= word["start_ms"]
            and word["start_ms"] + word["duration_ms"] <= total + 1
        )
    assert [r.props["metadata"] for r in results] == [
        {**META, "turn_seq_id": i, "turn_status": 1 if i == 3 else 0} for i in range(4)
    ]
    check_request_sequences(sess.records, ["r1"])


def _results(records, rid):
    return [r.props for r in named(records, "tts_text_result") if r.request_id == rid]


def _words_end_inside(records, rid, last_status):
    """Subtitle metadata of a request that did not end normally: its last result
    (text_result_end) says so with turn_status, all before its audio end."""
    results = _results(records, rid)
    assert len(results) >= 2, summary(records)
    assert [p["metadata"]["turn_seq_id"] for p in results] == list(range(len(results)))
    statuses = [p["metadata"]["turn_status"] for p in results]
    assert statuses == [0] * (len(results) - 1) + [last_status]
    assert [p["text_result_end"] for p in results][-1] is True
    assert all(p["metadata"]["session_id"] == META["session_id"] for p in results)
    starts = [p["start_ms"] for p in results]
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False)), starts
    end = next(r for r in named(records, "tts_audio_end") if r.request_id == rid)
    last = max(
        i
        for i, r in enumerate(records)
        if r.name == "tts_text_result" and r.request_id == rid
    )
    assert last < records.index(end)


def test_flushed_request_ends_its_subtitles_as_interrupted():
    with slow_server() as srv:

        async def script(s):
            await s.text("r1", LONG, metadata=META)
            await s.wait_for(lambda recs: len(_results(recs, "r1")) >= 2)
            await s.flush("f1", {"session_id": "s1"})
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            await s.text("r2", "Next.", end=True, metadata=META)
            await s.wait_end("r2")

        sess = run_session(props(srv, enable_words=True), script)
    _words_end_inside(sess.records, "r1", last_status=2)
    flush_end = named(sess.records, "tts_flush_end")[0]
    assert all(
        sess.records.index(r) < sess.records.index(flush_end)
        for r in named(sess.records, "tts_text_result")
        if r.request_id == "r1"
    )
    # the next request numbers its results from 0 again and ends normally
    r2 = _results(sess.records, "r2")
    assert r2[0]["metadata"]["turn_seq_id"] == 0
    assert r2[-1]["metadata"]["turn_status"] == 1


def test_failed_request_ends_its_subtitles_as_interrupted(server):
    server.inject(Fault("error_1011", arg=4))

    async def script(s):
        await s.text("r1", LONG, end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server, enable_words=True), script)
    assert named(sess.records, "tts_audio_end")[0].props["reason"] == 3
    _words_end_inside(sess.records, "r1", last_status=2)


def test_words_with_one_start_share_a_result(server, monkeypatch):
    """Gradium may time two words at the same start: start_ms must still ascend."""
    gradium_tts = ext_module("gradium_tts")

    events = gradium_tts.TTSRequest.events

    async def same_starts(self):
        previous = None
        async for event in events(self):
            if isinstance(event, gradium_tts.Word):
                if previous is not None and len(event.text) % 2 == 0:
                    event = gradium_tts.Word(event.text, previous.start_s, event.stop_s)
                previous = event
            yield event

    monkeypatch.setattr(gradium_tts.TTSRequest, "events", same_starts)
    text = "one two three four five six seven eight nine ten eleven twelve."

    async def script(s):
        await s.text("r1", text, end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server, enable_words=True), script)
    results = _results(sess.records, "r1")
    words = [w["word"] for p in results for w in p["words"]]
    assert words == text.split()  # every word once, in order
    merged = [p for p in results if len(p["words"]) > 1]
    assert merged and all(
        p["text"] == " ".join(w["word"] for w in p["words"]) for p in merged
    )
    frames = frames_between(sess.records, "r1")
    check_subtitle_alignment(results, frames, last_status=1)


def test_usage_metrics_of_a_flushed_request_count_only_what_was_delivered():
    with slow_server() as srv:

        async def script(s):
            await s.text("r1", LONG, metadata=META)
            await s.wait_for(lambda recs: len(frames_between(recs, "r1")) >= 3)
            await s.flush("f1")
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            await asyncio.sleep(0.6)  # r1's late audio reaches the client meanwhile
            await s.text("r2", "After the flush.", end=True, metadata=META)
            await s.wait_end("r2")

        sess = run_session(props(srv), script)
    usage = [r.props["metrics"] for r in metrics(sess.records, "recv_audio_duration")]
    assert len(usage) >= 2
    for request_id, used in zip(("r1", "r2"), usage, strict=False):
        nbytes = sum(len(f.pcm) for f in frames_between(sess.records, request_id))
        assert abs(used["recv_audio_duration"] - nbytes * 1000 / 32000) <= 1, (
            request_id,
            used,
            nbytes,
        )
    assert usage[1]["total_recv_audio_duration"] <= (
        usage[0]["recv_audio_duration"] + usage[1]["recv_audio_duration"] + 1
    )


def test_no_text_results_without_enable_words(server):
    async def script(s):
        await s.text("r1", "Hello world.", end=True)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    assert not named(sess.records, "tts_text_result")


# --------------------------------------------------------------------- errors
def test_missing_key_is_fatal_at_init_without_any_request(server):
    async def script(s):
        await s.wait_for(lambda recs: errors(recs))

    sess = run_session(props(server, api_key=""), script)
    (err,) = errors(sess.records)
    assert err.props["code"] == -1000 and err.props["id"] == ""
    assert err.props["vendor_info"]["vendor"] == "gradium"
    assert "GRADIUM_API_KEY" in err.props["message"]
    assert server.connection_attempts == 0


def test_request_with_missing_key_still_ends_once(server):
    async def script(s):
        await s.text("r1", "Hello.", end=True, metadata=META)
        await s.wait_end("r1")
        await s.wait_error("r1")

    sess = run_session(props(server, api_key=""), script)
    (end,) = named(sess.records, "tts_audio_end")
    assert end.props["reason"] == 3
    codes = [(e.props["id"], e.props["code"]) for e in errors(sess.records)]
    assert codes == [("", -1000), ("r1", -1000)]


def test_rejected_key_is_fatal(server):
    async def script(s):
        await s.text("r1", "Hello, world!", end=True, metadata=META)
        await s.wait_end("r1")
        await s.wait_error("r1")

    sess = run_session(props(server, api_key="invalid_key"), script)
    first = errors(sess.records)[0]
    assert first.props["code"] == -1000
    assert "check the API key" in first.props["message"]  # says what to fix
    assert "revoked or expired" in first.props["message"]  # and what Gradium said
    assert first.props["vendor_info"] == {
        "vendor": "gradium",
        "code": "1008",
        "message": first.props["message"],
    }
    (end,) = named(sess.records, "tts_audio_end")
    assert end.props["reason"] == 3


def test_mid_stream_worker_failure_is_non_fatal_and_ends_once(server):
    server.inject(Fault("error_1011", arg=2))

    async def script(s):
        await s.text("r1", LONG, end=True, metadata=META)
        await s.wait_end("r1")
        await s.text("r2", "Next turn works.", end=True, metadata=META)
        await s.wait_end("r2")

    sess = run_session(props(server), script)
    (err,) = errors(sess.records)
    assert err.props["code"] == 1000 and err.props["id"] == "r1"
    assert err.props["vendor_info"]["code"] == "1011"
    check_request_sequences(sess.records, ["r1", "r2"], reasons={"r1": 3, "r2": 1})
    assert len(frames_between(sess.records, "r1")) == 2  # nothing doubled or replayed


def test_failure_before_audio_is_replayed_invisibly(server):
    server.inject(Fault("error_1011", arg=0))

    async def script(s):
        await s.text("r1", "Replayed sentence.", end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    assert not errors(sess.records)
    check_request_sequences(sess.records, ["r1"], reasons={"r1": 1})
    assert len({e.conn for e in server.events.select("in", "setup")}) == 2
    assert texts_received(server) == ["Replayed sentence.", "Replayed sentence."]


# ----------------------------------------------------------------------- dump
def test_dump_writes_one_file_per_request_with_audio(server, tmp_path):
    dump = tmp_path / "dump"

    async def script(s):
        await s.text("a/../../escape", "First request.", end=True)
        await s.wait_end("a/../../escape")
        await s.text("empty", "", end=True)
        await s.wait_end("empty")
        await s.text("r3", "Third request.", end=True)
        await s.wait_end("r3")

    sess = run_session(props(server, dump=True, dump_path=str(dump)), script)
    files = sorted(p.name for p in dump.iterdir())
    assert len(files) == 2, files
    assert all(p.parent == dump for p in dump.iterdir())
    assert not list(tmp_path.glob("escape*")) and not list(Path("/").glob("escape*"))
    for rid in ("a/../../escape", "r3"):
        pcm = b"".join(f.pcm for f in frames_between(sess.records, rid))
        matches = [p for p in dump.iterdir() if p.read_bytes() == pcm]
        assert len(matches) == 1


# ------------------------------------------------------------- update_configs
def test_update_configs_applies_to_the_next_request(server):
    async def script(s):
        await s.text("r1", "Before.", end=True)
        await s.wait_end("r1")
        status, _ = await s.cmd(
            "update_configs",
            {
                "params": {
                    "voice_id": "synthetic",
                    "model_name": "m2",
                    "sample_rate": 24000,
                }
            },
        )
        assert status == 0
        await s.text("r2", "After.", end=True)
        await s.wait_end("r2")

    sess = run_session(props(server), script)
    setups = server.received("setup")
    assert [s["model_name"] for s in setups] == ["default", "m2"]
    assert [s["output_format"] for s in setups] == ["pcm_16000", "pcm_24000"]
    assert {f.sample_rate for f in frames_between(sess.records, "r2")} == {24000}


def test_update_configs_with_invalid_values_fails_and_keeps_the_old_config(server):
    async def script(s):
        status, result = await s.cmd(
            "update_configs", {"params": {"sample_rate": 12345}}
        )
        assert status == 1 and "sample_rate" in result.get("message", "")
        await s.text("r1", "Still works.", end=True)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    assert {f.sample_rate for f in frames_between(sess.records, "r1")} == {16000}


# -------------------------------------------------------------------- secrets
def test_the_key_never_reaches_a_log_line_or_message(server, caplog, ten_log):
    server.inject(Fault("error_1011", arg=1))
    caplog.set_level(logging.DEBUG)

    async def script(s):
        await s.text("r1", "Secrets stay secret.", end=True)
        await s.wait_end("r1")
        await s.cmd("update_configs", {"params": {"api_key": "invalid_" + KEY}})
        await s.text("r2", "Rejected.", end=True)
        await s.wait_end("r2")

    sess = run_session(props(server), script)
    assert errors(sess.records)
    ours = [
        r
        for r in caplog.records
        if not r.name.startswith(("websockets.server", "gradium_server"))
    ]
    # the client's lines (Python logging) and the extension's (its ten_env)
    assert ours and len(ten_log.lines) > 3
    for record in ours:
        assert KEY not in record.getMessage(), record.name
    assert KEY not in ten_log.text()
    for r in sess.records:
        assert KEY not in repr(r.props)


def test_ends_exactly_once_under_every_fault(server):
    """Every request ends once, whatever the server does mid-stream. (The noise
    comes first: three sockets dropped within a second put the client in backoff,
    and a request then may end at once, "refusing or dropping connections".)"""
    kinds = [
        "non_json",
        "unknown_type",
        "drop_after",
        "close_1000_no_eos",
        "error_1008",
    ]
    for kind in kinds:
        server.inject(Fault(kind, arg=1, match_text=kind))

    async def script(s):
        for i, kind in enumerate(kinds):
            await s.text(f"r{i}", f"{kind} request text here.", end=True)
            await s.wait_end(f"r{i}", timeout=10)

    started = time.monotonic()
    sess = run_session(props(server, response_timeout_s=2), script)
    assert time.monotonic() - started < 20
    ends = named(sess.records, "tts_audio_end")
    assert [e.request_id for e in ends] == [f"r{i}" for i in range(len(kinds))]
    reasons = {e.request_id: e.props["reason"] for e in ends}
    assert reasons["r0"] == 1 and reasons["r1"] == 1  # ignorable server noise
    assert reasons["r2"] == 3 and reasons["r3"] == 3 and reasons["r4"] == 3
    assert all(e.props["code"] == 1000 for e in errors(sess.records))


def test_unwritable_dump_path_does_not_break_the_request(server, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the dump folder should be")

    async def script(s):
        await s.text("r1", "Dump path is broken.", end=True)
        await s.wait_end("r1")

    sess = run_session(props(server, dump=True, dump_path=str(blocker / "sub")), script)
    check_request_sequences(sess.records, ["r1"], reasons={"r1": 1})
    assert frames_between(sess.records, "r1")
    assert not errors(sess.records)
