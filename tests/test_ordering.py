"""Output ordering under every traffic pattern, in the spirit of pipecat's
``test_tts_frame_ordering``.

Invariants checked on the records the tester saw:
  * per request: tts_audio_start, frames (and tts_text_result), tts_audio_end;
  * nothing of request N+1 before request N's end, ends in first-appearance order;
  * a request's audio is exactly the audio Gradium produced for it (no mixing);
  * after a flush: audio end (reason 2), then tts_flush_end, then silence from the
    flushed request (no frame, no text result, no second end) for >= 1 s, checked
    against a real-time server that is still producing audio for it;
  * text results never after their request's audio end;
  * every test is bounded (the harness times out), and a stalled request ends.
"""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

import pytest
from gradium_server import Fault, LatencyModel, ServerConfig, ServerThread
from harness import (
    Rec,
    check_request_sequences,
    errors,
    frames_between,
    named,
    props,
    run_session,
    summary,
)

SILENCE_S = 1.2  # how long a flushed request must stay silent
LONG = "This is a long sentence that keeps the synthesizer busy for a good while. " * 3


def meta(n: int) -> dict[str, Any]:
    return {"session_id": "order", "turn_id": n}


@pytest.fixture
def server():
    with ServerThread(ServerConfig.for_tests()) as srv:
        yield srv


@pytest.fixture
def slow_server():
    """rtf 1.0: audio arrives in real time, so a flush lands mid-stream."""
    latency = LatencyModel(handshake_s=0.0, rtt_s=0.0, first_audio_s=0.0, rtf=1.0)
    with ServerThread(ServerConfig.for_tests(latency=latency)) as srv:
        yield srv


# ---------------------------------------------------------------------- checks
def check_order(
    records: list[Rec],
    expected: list[str],
    *,
    reasons: dict[str, int] | None = None,
    metadata: dict[str, dict[str, Any]] | None = None,
) -> None:
    """The harness contract plus: exactly one start and one end per request."""
    check_request_sequences(records, expected, reasons=reasons, metadata=metadata)
    starts = [r.request_id for r in named(records, "tts_audio_start")]
    assert starts == expected, summary(records)
    assert len(named(records, "tts_audio_end")) == len(expected)


def check_audio_is_its_own(server, records: list[Rec], expected: list[str]) -> None:
    """Request i (in order) got exactly the audio of the i-th Gradium request, and the
    text it sent there; nothing of another request leaked in."""
    setups = server.received("setup")
    assert len(setups) == len(expected), (len(setups), expected)
    for rid, setup in zip(expected, setups, strict=True):
        cid = setup["client_req_id"]
        got = sum(len(f.pcm) for f in frames_between(records, rid))
        produced = sum(
            m["audio_bytes"] for m in server.sent("audio", client_req_id=cid)
        )
        assert got == produced > 0, (rid, got, produced)


def texts_of(server, index: int) -> str:
    cid = server.received("setup")[index]["client_req_id"]
    return "".join(m["text"] for m in server.received("text", client_req_id=cid))


def after(records: list[Rec], rec: Rec) -> list[Rec]:
    return records[records.index(rec) + 1 :]


def check_flushed(
    records: list[Rec], rid: str, flush_end: Rec, next_rid: str | None
) -> None:
    """rid ended with reason 2 before flush_end, and nothing of it came after its end:
    between its end and the next request's start only metrics/flush ends appear."""
    ends = [r for r in named(records, "tts_audio_end") if r.request_id == rid]
    assert len(ends) == 1, summary(records)
    end = ends[0]
    assert end.props["reason"] == 2, end.props
    assert records.index(end) < records.index(flush_end)
    tail = after(records, end)
    if next_rid is not None:
        nxt = next(r for r in tail if r.name == "tts_audio_start")
        assert nxt.request_id == next_rid, summary(records)
        tail = tail[: tail.index(nxt)]
    quiet = ("metrics", "tts_flush_end", "connection_status_changed")
    assert all(r.name in quiet for r in tail), summary(tail)
    later = after(records, end)
    assert not [r for r in later if r.request_id == rid], summary(later)
    text_results = [r for r in named(records, "tts_text_result") if r.request_id == rid]
    assert all(records.index(r) < records.index(end) for r in text_results)


async def silence(s, seconds: float = SILENCE_S) -> list[Rec]:
    """Wait, then return what arrived meanwhile."""
    mark = len(s.records)
    await asyncio.sleep(seconds)
    return s.records[mark:]


def only_metrics(recs: list[Rec]) -> bool:
    return all(r.kind == "data" and r.name == "metrics" for r in recs)


# ------------------------------------------------------------- traffic patterns
def test_sequential_requests_each_after_the_previous_end(server):
    async def script(s):
        for n in (1, 2, 3):
            await s.text(f"r{n}", f"Sequential request number {n}.", metadata=meta(n))
            await s.text(f"r{n}", "It has two chunks.", end=True, metadata=meta(n))
            await s.wait_end(f"r{n}")

    sess = run_session(props(server), script)
    expected = ["r1", "r2", "r3"]
    check_order(
        sess.records,
        expected,
        reasons=dict.fromkeys(expected, 1),
        metadata={f"r{n}": meta(n) for n in (1, 2, 3)},
    )
    check_audio_is_its_own(server, sess.records, expected)
    assert {e.conn for e in server.events.select("in", "setup")} == {1}  # one socket
    assert not errors(sess.records)


def test_interleaved_chunks_complete_in_first_appearance_order(server):
    chunks = [
        ("a", "Alpha one.", False),
        ("b", "Bravo one.", False),
        ("a", "Alpha two.", False),
        ("c", "Charlie one.", False),
        ("b", "Bravo two.", True),
        ("c", "Charlie two.", True),
        ("a", "Alpha three.", True),
    ]
    turn = {"a": 1, "b": 2, "c": 3}

    async def script(s):
        for rid, text, end in chunks:
            await s.text(rid, text, end=end, metadata=meta(turn[rid]))
        await s.wait_for(lambda recs: len(named(recs, "tts_audio_end")) == 3)

    sess = run_session(props(server), script)
    check_order(
        sess.records,
        ["a", "b", "c"],
        reasons={"a": 1, "b": 1, "c": 1},
        metadata={rid: meta(n) for rid, n in turn.items()},
    )
    check_audio_is_its_own(server, sess.records, ["a", "b", "c"])
    assert texts_of(server, 0) == "Alpha one. Alpha two. Alpha three."
    assert texts_of(server, 1) == "Bravo one. Bravo two."
    assert texts_of(server, 2) == "Charlie one. Charlie two."
    assert not errors(sess.records)


def test_back_to_back_requests_sent_without_waiting(server):
    rids = [f"b{n}" for n in range(1, 6)]

    async def script(s):
        for n, rid in enumerate(rids, 1):
            await s.text(rid, f"Back to back request {n}.", metadata=meta(n))
            await s.text(rid, "Second chunk.", end=True, metadata=meta(n))
        await s.wait_end(rids[-1])

    sess = run_session(props(server), script)
    check_order(
        sess.records,
        rids,
        reasons=dict.fromkeys(rids, 1),
        metadata={rid: meta(n) for n, rid in enumerate(rids, 1)},
    )
    check_audio_is_its_own(server, sess.records, rids)
    for i, n in enumerate(range(1, 6)):
        assert texts_of(server, i) == f"Back to back request {n}. Second chunk."
    assert not errors(sess.records)


# ---------------------------------------------------------------------- flushes
def test_flush_mid_stream_then_a_new_request(slow_server):
    srv = slow_server
    seen: dict[str, Any] = {}

    async def script(s):
        await s.text("r1", LONG, end=True, metadata=meta(1))
        await s.wait_frames(2)
        await s.flush("f1", {"session_id": "order"})
        await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
        seen["quiet"] = await silence(s)
        seen["r1_cid"] = srv.received("setup")[0]["client_req_id"]
        await s.text("r2", "After the flush.", end=True, metadata=meta(2))
        await s.wait_end("r2")

    sess = run_session(props(srv, enable_words=True), script)
    records = sess.records
    assert only_metrics(seen["quiet"]), summary(seen["quiet"])
    (flush_end,) = named(records, "tts_flush_end")
    assert flush_end.props == {"flush_id": "f1", "metadata": {"session_id": "order"}}
    check_flushed(records, "r1", flush_end, "r2")
    check_order(records, ["r1", "r2"], reasons={"r1": 2, "r2": 1})
    # the flush closed r1's socket, so Gradium stopped: at most 0.25 s of audio
    # beyond what reached TEN before r1's end (and none of it leaked after)
    got = sum(len(f.pcm) for f in frames_between(records, "r1"))
    produced = sum(
        m["audio_bytes"] for m in srv.sent("audio", client_req_id=seen["r1_cid"])
    )
    assert 0 < got <= produced <= got + 0.25 * 16000 * 2, (produced, got)
    assert named(
        records, "tts_text_result"
    )  # words were on, and none leaked past the end
    assert not errors(records)


def test_flush_before_any_audio_during_a_slow_handshake():
    latency = LatencyModel(handshake_s=0.5, rtt_s=0.0, first_audio_s=0.0, rtf=0.0)
    with ServerThread(ServerConfig.for_tests(latency=latency)) as srv:
        seen: dict[str, Any] = {}

        async def script(s):
            await s.text(
                "r1", "Interrupted before it began.", end=True, metadata=meta(1)
            )
            await asyncio.sleep(
                0.1
            )  # r1 reaches request_tts (a queued one is just dropped)
            await s.flush("f1")
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            seen["quiet"] = await silence(s)  # spans the end of the 0.5 s handshake
            await s.text("r2", "Second.", end=True, metadata=meta(2))
            await s.wait_end("r2", timeout=5)

        sess = run_session(props(srv), script)
        setups = srv.received("setup")
    records = sess.records
    # the socket finishing its handshake may report its status; nothing else
    assert all(
        r.name in ("metrics", "connection_status_changed") for r in seen["quiet"]
    ), summary(seen["quiet"])
    (flush_end,) = named(records, "tts_flush_end")
    check_flushed(records, "r1", flush_end, "r2")
    assert not frames_between(records, "r1")
    check_order(records, ["r1", "r2"], reasons={"r1": 2, "r2": 1})
    assert len(setups) == 1 and "Second." in "".join(
        m["text"] for m in srv.received("text")
    )
    assert frames_between(records, "r2")
    assert not errors(records)


def test_flush_drops_the_request_buffered_behind_the_active_one(slow_server):
    srv = slow_server

    async def script(s):
        await s.text("r1", LONG, end=True, metadata=meta(1))
        await s.text(
            "r2", "Buffered request that must never play.", end=True, metadata=meta(2)
        )
        await s.wait_frames(1)
        await s.flush("f1")
        await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
        s.quiet = await silence(s)
        await s.text("r3", "Third request plays.", end=True, metadata=meta(3))
        await s.wait_end("r3")

    sess = run_session(props(srv, enable_words=True), script)
    records = sess.records
    assert only_metrics(sess.quiet), summary(sess.quiet)
    (flush_end,) = named(records, "tts_flush_end")
    check_flushed(records, "r1", flush_end, "r3")
    assert not [r for r in records if r.request_id == "r2"], summary(records)
    check_order(records, ["r1", "r3"], reasons={"r1": 2, "r3": 1})
    sent = "".join(m["text"] for m in srv.received("text"))
    assert "Buffered" not in sent and "Third request plays." in sent
    assert len(srv.received("setup")) == 2
    assert not errors(records)


def test_double_flush_ends_the_request_once(slow_server):
    srv = slow_server

    async def script(s):
        await s.text("r1", LONG, end=True, metadata=meta(1))
        await s.wait_frames(1)
        await s.flush("f1")
        await s.flush("f2")
        await s.wait_for(lambda recs: len(named(recs, "tts_flush_end")) == 2)
        s.quiet = await silence(s)
        await s.text("r2", "After two flushes.", end=True, metadata=meta(2))
        await s.wait_end("r2")

    sess = run_session(props(srv, enable_words=True), script)
    records = sess.records
    assert only_metrics(sess.quiet), summary(sess.quiet)
    flush_ends = named(records, "tts_flush_end")
    assert [f.props["flush_id"] for f in flush_ends] == ["f1", "f2"]
    check_flushed(records, "r1", flush_ends[0], "r2")
    check_order(records, ["r1", "r2"], reasons={"r1": 2, "r2": 1})
    # the second flush found nothing to interrupt: no end between the two flush ends
    between = records[records.index(flush_ends[0]) + 1 : records.index(flush_ends[1])]
    assert all(r.name == "metrics" for r in between), summary(between)
    assert not errors(records)


def test_flush_after_the_request_finished_adds_nothing(server):
    async def script(s):
        await s.text("r1", "Finished before the flush.", end=True, metadata=meta(1))
        await s.wait_end("r1")
        mark = len(s.records)
        await s.flush("f1", {"session_id": "order"})
        await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
        await asyncio.sleep(0.5)
        s.after_finish = s.records[mark:]
        await s.text("r2", "And the next one plays.", end=True, metadata=meta(2))
        await s.wait_end("r2")

    sess = run_session(props(server), script)
    names = [r.name for r in sess.after_finish if r.name != "metrics"]
    assert names == ["tts_flush_end"], summary(sess.after_finish)
    check_order(sess.records, ["r1", "r2"], reasons={"r1": 1, "r2": 1})
    check_audio_is_its_own(server, sess.records, ["r1", "r2"])
    assert not errors(sess.records)


# ------------------------------------------------------------------ word timing
def test_word_results_stay_inside_their_request_under_interleaving(server):
    chunks = [
        ("w1", "Hello brave", False),
        ("w2", "Second request", False),
        ("w1", " new world.", True),  # tokens carry their spaces
        ("w3", "Third one", False),
        ("w2", " speaks too.", True),
        ("w3", " ends here.", True),
    ]
    words = {
        "w1": ["Hello", "brave", "new", "world."],
        "w2": ["Second", "request", "speaks", "too."],
        "w3": ["Third", "one", "ends", "here."],
    }
    turn = {"w1": 1, "w2": 2, "w3": 3}

    async def script(s):
        for rid, text, end in chunks:
            await s.text(rid, text, end=end, metadata=meta(turn[rid]))
        await s.wait_end("w3")

    sess = run_session(props(server, enable_words=True), script)
    records = sess.records
    check_order(
        records,
        ["w1", "w2", "w3"],
        reasons={"w1": 1, "w2": 1, "w3": 1},
        metadata={rid: meta(n) for rid, n in turn.items()},
    )
    for rid, expected_words in words.items():
        results = [r for r in named(records, "tts_text_result") if r.request_id == rid]
        assert [r.props["text"] for r in results] == expected_words, rid
        assert [r.props["text_result_end"] for r in results] == [False] * 3 + [True]
        starts = [r.props["start_ms"] for r in results]
        assert all(b > a for a, b in pairwise(starts)), starts
        assert [r.props["metadata"] for r in results] == [
            {**meta(turn[rid]), "turn_seq_id": i, "turn_status": int(i == 3)}
            for i in range(4)
        ]
        start = next(
            r for r in named(records, "tts_audio_start") if r.request_id == rid
        )
        end = next(r for r in named(records, "tts_audio_end") if r.request_id == rid)
        # strictly between this request's start and end (text_result_end before the end)
        assert all(
            records.index(start) < records.index(r) < records.index(end)
            for r in results
        )
        total = end.props["request_total_audio_duration_ms"]
        assert (
            results[-1].props["start_ms"] + results[-1].props["duration_ms"]
            <= total + 1
        )
    assert not errors(records)


# ------------------------------------------------------------------- no deadlock
@pytest.mark.parametrize(
    ("fault", "timeouts"),
    [
        # no audio yet: the client replays once (invisibly), so both attempts must stall
        (Fault("stall_after_ready", count=2, match_text="stalls"), 2),
        (Fault("stall_mid_stream", arg=2, match_text="stalls"), 1),
    ],
    ids=["after_ready", "mid_stream"],
)
def test_a_stalled_request_times_out_and_the_next_one_proceeds(server, fault, timeouts):
    server.inject(fault)

    async def script(s):
        await s.text(
            "r1", "This request stalls and never finishes.", end=True, metadata=meta(1)
        )
        await s.text(
            "r2", "This one is buffered behind it.", end=True, metadata=meta(2)
        )
        await s.wait_end("r1", timeout=6)
        await s.wait_end("r2", timeout=5)

    sess = run_session(props(server, response_timeout_s=1), script)
    records = sess.records
    check_order(records, ["r1", "r2"], reasons={"r1": 3, "r2": 1})
    r1_frames = frames_between(records, "r1")
    assert len(r1_frames) == (0 if fault.kind == "stall_after_ready" else 2)
    assert frames_between(records, "r2")
    r1_end = next(r for r in named(records, "tts_audio_end") if r.request_id == "r1")
    took = r1_end.t - sess.sent_at["r1"]
    assert 0.8 * timeouts <= took <= timeouts + 2.5, took  # 1 s response timeout(s)
    errs = errors(records)
    assert errs and all(e.props["id"] == "r1" for e in errs), [e.props for e in errs]
    assert all(e.props["code"] == 1000 for e in errs), [e.props for e in errs]


def test_a_late_chunk_for_a_finished_request_does_not_block_the_next(server):
    """A chunk that reuses a finished request id is re-queued by the base class, which
    then treats that id as processing again; unless the extension finishes it, every
    later request stays buffered for ever (contract §2.3)."""

    async def script(s):
        await s.text("r1", "First request.", end=True, metadata=meta(1))
        await s.wait_end("r1")
        await s.text("r1", "A straggler after the end.", end=True, metadata=meta(1))
        await s.text("r2", "The next request still plays.", end=True, metadata=meta(2))
        await s.wait_end("r2", timeout=3)

    sess = run_session(props(server), script)
    check_order(sess.records, ["r1", "r2"], reasons={"r1": 1, "r2": 1})
    assert "straggler" not in "".join(m["text"] for m in server.received("text"))


def test_empty_requests_repeated_with_one_id_do_not_block_the_next(server):
    """The guarder's empty_text_request traffic ("", " ", "" all with end=true and id
    999), followed by a normal request."""

    async def script(s):
        for text in ("", " ", ""):
            await s.text("999", text, end=True, metadata=meta(1))
        await s.wait_end("999", timeout=2)
        await s.text("1000", "A normal request afterwards.", end=True, metadata=meta(2))
        await s.wait_end("1000", timeout=3)

    sess = run_session(props(server), script)
    ends = named(sess.records, "tts_audio_end")
    assert [(e.request_id, e.props["reason"]) for e in ends] == [
        ("999", 1),
        ("1000", 1),
    ]
    assert frames_between(sess.records, "1000")
    assert not errors(sess.records)


def test_chunks_after_a_failed_request_do_not_block_the_next(server):
    """The realistic form of the above: Gradium fails r1 mid-stream (reason 3) while
    the LLM is still streaming r1's text; its remaining chunks, then r2, arrive."""
    server.inject(Fault("error_1011", arg=1, match_text="fails"))

    async def script(s):
        await s.text(
            "r1", "This request fails after its first frame.", metadata=meta(1)
        )
        await s.wait_end("r1", timeout=5)
        await s.text("r1", "The LLM keeps streaming this turn.", metadata=meta(1))
        await s.text("r1", "", end=True, metadata=meta(1))
        await s.text("r2", "The next turn must still play.", end=True, metadata=meta(2))
        await s.wait_end("r2", timeout=3)

    sess = run_session(props(server), script)
    check_order(sess.records, ["r1", "r2"], reasons={"r1": 3, "r2": 1})
    assert frames_between(sess.records, "r2")
    assert [e.props["id"] for e in errors(sess.records)] == ["r1"]


def test_a_request_buffered_behind_an_empty_one_keeps_its_chunk_order(server):
    """Found by the chaos suite (seed 100000012). r7 has nothing speakable and ends
    inside request_tts while r8's end chunk still waits in the base class's queue;
    finish_request then queues r8's buffered first chunk behind it. Ending r7 from
    inside request_tts handed r8 its text_input_end before its text: r8 ended with
    no audio and its text was dropped as a late chunk."""

    async def script(s):
        await s.text("r7", "*", metadata=meta(7))
        await s.text("r8", "Kilo we one two general!", metadata=meta(8))
        await s.text("r7", "*", metadata=meta(7))
        await s.text("r7", "?!", end=True, metadata=meta(7))
        await s.text("r8", "", end=True, metadata=meta(8))
        await s.wait_end("r8", timeout=5)

    sess = run_session(props(server), script)
    check_order(sess.records, ["r7", "r8"], reasons={"r7": 1, "r8": 1})
    assert frames_between(sess.records, "r8"), summary(sess.records)
    assert "Kilo we one two general!" in [m["text"] for m in server.received("text")]
