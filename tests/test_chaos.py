"""Seeded chaos sessions against the local server; every request's invariants.

The CI slice plays a fixed list of seeds (about 20 requests each). Replay one
seed, or several, with ``CHAOS_SEED=<seed>[,<seed>...] .venv/bin/python -m pytest
tests/test_chaos.py``; ``CHAOS_REQUESTS`` changes the requests per session. The
long run is ``bench/chaos.py``. The invariants are ``chaos.check``'s docstring;
the checker's own tests below prove each one can fail.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from chaos import (
    BAD_KEY,
    FLUSH_MOMENTS,
    KEY,
    ODD_FAULTS,
    REQUEST_FAULTS,
    SOCKET_FAULTS,
    ChaosResult,
    Plan,
    check,
    plan_session,
    report,
    run_plan,
)
from gradium_server import ServerConfig, ServerThread
from gradium_server.eventlog import LogEntry
from harness import Rec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

# 111, 144, 15 cover every feature at 20 requests; 6 and 31 the socket faults
# (hang_handshake, close_after); 42 stall_after_ready and odd_audio with word
# results on (the odd-server faults took some earlier seeds' draws)
# 131: a window of reset upgrades (issue 25) and error_1008, which stall_words
# took from the seeds above
CI_SEEDS = (111, 144, 15, 3, 6, 8, 31, 42, 131)
REQUESTS = int(os.environ.get("CHAOS_REQUESTS", "20"))


def _seeds() -> tuple[int, ...]:
    raw = os.environ.get("CHAOS_SEED", "").strip()
    return tuple(int(s) for s in raw.split(",") if s.strip()) if raw else CI_SEEDS


# ----------------------------------------------------------------- the sessions
@pytest.mark.parametrize("seed", _seeds())
def test_chaos_session_holds_every_invariant(seed):
    result = run_plan(plan_session(seed, REQUESTS))
    violations = check(result)
    assert not violations, report(result, violations)
    if result.upstream:  # ten_ai_base's queue order, not the extension (chaos.py)
        print(f"seed {seed}: set apart as ten_ai_base's: {result.upstream}")
    # the session did something: requests ended, and the plan was played out
    assert any(r.name == "tts_audio_end" for r in result.records), report(result, [])


def test_the_traffic_is_a_pure_function_of_the_seed():
    a, b = plan_session(42, 30), plan_session(42, 30)
    assert a.steps == b.steps and a.params == b.params and a.stopped == b.stopped
    assert plan_session(43, 30).steps != a.steps


def test_the_ci_seeds_cover_every_fault_kind_flush_moment_and_ending():
    plans = [plan_session(seed, 20) for seed in CI_SEEDS]
    steps = [s for p in plans for s in p.steps]
    faults = {s["kind"] for s in steps if s["op"] in ("inject", "note_fault")}
    assert set(REQUEST_FAULTS) <= faults, set(REQUEST_FAULTS) - faults
    assert {"refuse", "reject_handshake", *SOCKET_FAULTS} <= faults
    assert set(ODD_FAULTS) <= faults, set(ODD_FAULTS) - faults
    assert "stall_words" in faults
    windows = {s["kind"] for s in steps if s["op"] == "budget_window"}
    assert windows == {"drop", "reject_handshake", "refuse"}, windows
    assert any(s["op"] == "status_check" for s in steps)
    assert any(p.words for p in plans) and not all(p.words for p in plans)
    moments = {s["moment"] for s in steps if s["op"] == "flush"}
    assert set(FLUSH_MOMENTS) <= moments, set(FLUSH_MOMENTS) - moments
    ops = {s["op"] for s in steps}
    assert {"outage", "update", "drain"} <= ops
    assert any(p.stopped for p in plans)
    assert any(s.get("late") for s in steps)
    assert any(s["op"] == "update" and not s["valid"] for s in steps)
    assert any(s["op"] == "update" and s.get("bad_key") for s in steps)
    texts = [s["text"] for s in steps if s["op"] == "text"]
    assert "" in texts and any(t.strip() == "" and t for t in texts)
    assert any(any(ord(ch) > 0x1F000 for ch in t) for t in texts)  # emoji


# ---------------------------------------------------------- the server's outage
async def until(predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)


def test_outage_resets_open_sockets_and_refuses_connections_until_it_ends():
    async def scenario(server: ServerThread) -> None:
        headers = {"x-api-key": "k"}
        ws = await connect(server.url, additional_headers=headers, open_timeout=5)
        await asyncio.to_thread(server.set_outage, True)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        with pytest.raises(Exception):  # noqa: B017 - no HTTP response at all
            await connect(server.url, additional_headers=headers, open_timeout=5)
        await until(lambda: server.open_connections == 0)
        assert server.open_connections == 0
        await asyncio.to_thread(server.set_outage, False)
        async with connect(server.url, additional_headers=headers, open_timeout=5):
            await until(lambda: server.open_connections == 1)  # once its handler runs
            assert server.open_connections == 1

    with ServerThread(ServerConfig.for_tests()) as server:
        asyncio.run(scenario(server))
        kinds = [e.data.get("kind") for e in server.events_of("fault_fired")]
        assert kinds == ["outage"]
        assert [e.type for e in server.log if e.type.startswith("outage_")] == [
            "outage_start",
            "outage_end",
        ]


# ------------------------------------------------- the checker can fail, each way
T = 100.0
META = {"session_id": "s", "turn_id": 0}
PCM = b"\x01\x00" * 1600  # 100 ms at 16 kHz


def _text(
    t: float, rid: str, text: str, end: bool = True, epoch: int = 0, **kw
) -> dict:
    base = {"op": "text", "rid": rid, "text": text, "end": end, "late": False}
    extra = {"bad_key": False, "rate": 16000, "meta": META}
    return {**base, "t": t, "epoch": epoch, **extra, **kw}


def _rec(t: float, name: str, kind: str = "data", **props: Any) -> Rec:
    if name.startswith("tts_audio_"):
        props.setdefault("metadata", META)
    return Rec(t, kind, name, props)


def _frame(t: float, pcm: bytes = PCM, rate: int = 16000) -> Rec:
    return Rec(t, "frame", "pcm_frame", {"metadata": META}, pcm, rate)


def _flush(t: float, fid: str = "f0") -> dict:
    meta = {"flush": fid}
    return {"t": t, "op": "flush", "fid": fid, "moment": "x", "epoch": 0, "meta": meta}


def _flush_end(t: float, fid: str = "f0") -> Rec:
    return _rec(t, "tts_flush_end", flush_id=fid, metadata={"flush": fid})


def _end(t: float, rid: str, reason: int = 1, ms: int = 100) -> Rec:
    return _rec(
        t,
        "tts_audio_end",
        request_id=rid,
        reason=reason,
        request_total_audio_duration_ms=ms,
    )


def _served(cid: str, text: str, nbytes: int, t: float = T + 0.1) -> list[LogEntry]:
    return [
        LogEntry(t, 1, "in", "text", cid, text),
        LogEntry(
            t + 0.01,
            1,
            "out",
            "audio",
            cid,
            data={"audio_bytes": nbytes, "pcm": (PCM * 2)[:nbytes]},
        ),
        LogEntry(t + 0.02, 1, "out", "end_of_stream", cid),
    ]


def _result(
    records: list[Rec],
    sent: list[dict],
    server_log: list[LogEntry] | None = None,
    *,
    stopped: bool = False,
    open_after: int = 0,
    after_stop: list[dict] | None = None,
) -> ChaosResult:
    plan = Plan(0, {"connect_timeout_s": 2, "response_timeout_s": 1}, [], stopped)
    return ChaosResult(
        plan=plan,
        records=records,
        sent=sent,
        server_log=server_log or [],
        script_end_t=T + 50,
        open_after=open_after,
        leftover_tasks=[],
        unclosed_clients=0,
        wall_s=0.0,
        bound_s=10.0,
        after_stop=after_stop,
    )


def _one_request(**changes: Any) -> ChaosResult:
    records = [
        _rec(T + 0.1, "tts_audio_start", request_id="r1"),
        _frame(T + 0.2),
        _end(T + 0.3, "r1"),
    ]
    return _result(
        changes.get("records", records),
        changes.get("sent", [_text(T, "r1", "Kilo1z hello")]),
        changes.get("server_log", _served("c1", "Kilo1z hello", len(PCM))),
        open_after=changes.get("open_after", 0),
    )


def _tags(violations: list[str]) -> set[str]:
    return {v.split("]")[0] + "]" for v in violations}


def test_checker_passes_a_clean_request():
    assert check(_one_request()) == []


@pytest.mark.parametrize(
    ("name", "records", "tag"),
    [
        (
            "frame after the end",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _end(T + 0.3, "r1", ms=0),
                _frame(T + 0.4),
            ],
            "[window]",
        ),
        (
            "two starts",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2),
                _end(T + 0.3, "r1"),
                _rec(T + 0.4, "tts_audio_start", request_id="r1"),
                _end(T + 0.5, "r1", ms=0),
            ],
            "[window]",
        ),
        (
            "never ended",
            [_rec(T + 0.1, "tts_audio_start", request_id="r1"), _frame(T + 0.2)],
            "[window]",
        ),
        (
            "wrong duration",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2),
                _end(T + 0.3, "r1", ms=300),
            ],
            "[duration]",
        ),
        (
            "lost audio",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2, PCM[:1600]),
                _end(T + 0.3, "r1", ms=50),
            ],
            "[reason]",
        ),
        (
            "interrupted without a flush",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2),
                _end(T + 0.3, "r1", reason=2),
            ],
            "[reason]",
        ),
        (
            "an error with no fault",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2),
                _end(T + 0.3, "r1", reason=3),
                _rec(T + 0.31, "error", id="r1", code=1000),
            ],
            "[reason]",
        ),
        (
            "an error without an id",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2),
                _end(T + 0.3, "r1"),
                _rec(T + 0.31, "error", id="", code=1000),
            ],
            "[error]",
        ),
        (
            "too slow",
            [
                _rec(T + 20, "tts_audio_start", request_id="r1"),
                _frame(T + 20.1),
                _end(T + 20.2, "r1"),
            ],
            "[bound]",
        ),
        ("nothing at all", [], "[bound]"),
        (
            "wrong sample rate",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2, PCM + PCM, 32000),
                _end(T + 0.3, "r1"),
            ],
            "[config]",
        ),
    ],
)
def test_checker_catches(name, records, tag):
    assert tag in _tags(check(_one_request(records=records))), name


def _words(t: float, *starts: Any) -> Rec:
    words = [{"word": "w", "start_ms": x, "duration_ms": 10} for x in starts]
    return _rec(
        t,
        "tts_text_result",
        request_id="r1",
        text="w",
        start_ms=starts[0],
        duration_ms=10,
        words=words,
    )


@pytest.mark.parametrize(
    ("name", "records", "tag"),
    [
        (
            "an odd-length frame",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2, PCM[:-1]),
                _end(T + 0.3, "r1"),
            ],
            "[pcm]",
        ),
        (
            "samples shifted by a stray byte",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2, b"\x07" + PCM[:-1]),
                _end(T + 0.3, "r1"),
            ],
            "[pcm]",
        ),
        (
            "a word result going back",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _words(T + 0.15, 50),
                _frame(T + 0.2),
                _words(T + 0.25, 20),
                _end(T + 0.3, "r1"),
            ],
            "[words]",
        ),
        (
            "a word time that is not a whole number",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _words(T + 0.15, None),
                _frame(T + 0.2),
                _end(T + 0.3, "r1"),
            ],
            "[words]",
        ),
        (
            "the key in an error message",
            [
                _rec(T + 0.1, "tts_audio_start", request_id="r1"),
                _frame(T + 0.2),
                _end(T + 0.3, "r1", reason=3),
                _rec(T + 0.31, "error", id="r1", code=1000, message=f"bad {KEY}"),
            ],
            "[secret]",
        ),
    ],
)
def test_checker_catches_odd_server_outcomes(name, records, tag):
    assert tag in _tags(check(_one_request(records=records))), name


def test_checker_catches_the_key_in_a_log_line():
    res = _one_request()
    res.leaked_logs.append(f"gradium_tts: closed: token={BAD_KEY}")
    assert _tags(check(res)) == {"[secret]"}


def _late_end(in_on_stop: bool, rid: str = "r1") -> dict:
    props = {"request_id": rid, "reason": 2, "request_total_audio_duration_ms": 100}
    return {
        "kind": "data",
        "name": "tts_audio_end",
        "props": props,
        "t": T + 0.4,
        "in_on_stop": in_on_stop,
    }


@pytest.mark.parametrize(
    ("after_stop", "stopped", "broken"),
    [
        ([_late_end(True)], True, False),  # ended in on_stop, the tester had stopped
        ([_late_end(False)], True, True),  # ended only after on_stop returned
        ([_late_end(True, "r2")], True, True),  # another request's end
        ([], True, True),  # the stand-in saw nothing: it never ended
        (None, True, False),  # the real runtime does not tell: exempt
        (None, False, True),  # not stopped: its end should have arrived
    ],
)
def test_checker_window_for_a_request_in_flight_when_the_tester_stopped(
    after_stop, stopped, broken
):
    records = [_rec(T + 0.1, "tts_audio_start", request_id="r1"), _frame(T + 0.2)]
    res = _result(
        records,
        [_text(T, "r1", "Kilo1z hello")],
        _served("c1", "Kilo1z hello", len(PCM)),
        stopped=stopped,
        after_stop=after_stop,
    )
    got = [x for x in check(res) if x.startswith("[window]")]
    assert bool(got) == broken, got


def test_checker_catches_a_fatal_code_for_a_transient_fault():
    fault = LogEntry(
        T + 0.15, 1, "event", "fault_fired", "c1", data={"kind": "error_1011"}
    )
    records = [
        _rec(T + 0.1, "tts_audio_start", request_id="r1"),
        _frame(T + 0.2),
        _end(T + 0.3, "r1", reason=3),
        _rec(T + 0.31, "error", id="r1", code=-1000),
    ]
    got = check(_one_request(records=records, server_log=[fault]))
    assert _tags(got) == {"[error]"}, got


def test_checker_catches_flush_end_before_the_flushed_requests_end():
    sent = [
        _text(T, "r1", "Kilo1z hello", end=False),
        _flush(T + 0.15),
    ]
    records = [
        _rec(T + 0.1, "tts_audio_start", request_id="r1"),
        _frame(T + 0.12),
        _flush_end(T + 0.16),
        _end(T + 0.17, "r1", reason=2),
    ]
    got = check(_one_request(records=records, sent=sent))
    assert "[flush]" in _tags(got), got


def test_checker_catches_a_buffered_request_speaking_after_the_flush():
    sent = [
        _text(T, "r1", "Kilo1z hello", end=False),
        _text(T + 0.01, "r2", "Kilo2z buffered"),
        _flush(T + 0.15),
    ]
    records = [
        _rec(T + 0.1, "tts_audio_start", request_id="r1"),
        _frame(T + 0.12),
        _end(T + 0.16, "r1", reason=2),
        _flush_end(T + 0.17),
        _rec(T + 0.2, "tts_audio_start", request_id="r2"),
        _end(T + 0.3, "r2", ms=0),
    ]
    got = check(_one_request(records=records, sent=sent))
    assert "[flush]" in _tags(got), got
    ok = records[:4]
    assert check(_one_request(records=ok, sent=sent)) == []


def test_checker_catches_wrong_metadata_and_a_flush_end_that_does_not_echo():
    records = [
        _rec(T + 0.1, "tts_audio_start", request_id="r1"),
        Rec(T + 0.2, "frame", "pcm_frame", {"metadata": {}}, PCM, 16000),
        _end(T + 0.3, "r1"),
    ]
    assert "[window]" in _tags(check(_one_request(records=records)))
    sent = [_text(T, "r1", "Kilo1z hello"), _flush(T + 0.4)]
    ok = [*_one_request().records, _flush_end(T + 0.5)]
    assert check(_one_request(records=ok, sent=sent)) == []
    bad = [
        *_one_request().records,
        _rec(T + 0.5, "tts_flush_end", flush_id="f0", metadata={}),
    ]
    assert "[flush]" in _tags(check(_one_request(records=bad, sent=sent)))


def test_checker_catches_a_socket_left_open():
    assert "[leak]" in _tags(check(_one_request(open_after=1)))


def test_checker_catches_a_reconnect_storm_during_an_outage():
    outage = [
        {"t": T + 1, "op": "outage", "on": True},
        {"t": T + 2, "op": "outage", "on": False},
    ]
    sent = [_text(T, "r1", "Kilo1z hello"), *outage]

    def attempts(n: int) -> list[LogEntry]:
        return [LogEntry(T + 1 + i / 100, i + 2, "event", "connect") for i in range(n)]

    log = _served("c1", "Kilo1z hello", len(PCM))
    calm = check(_one_request(sent=sent, server_log=log + attempts(5)))
    assert calm == [], calm
    stormy = check(_one_request(sent=sent, server_log=log + attempts(30)))
    assert _tags(stormy) == {"[storm]", "[budget]"}, stormy


def test_checker_catches_a_broken_connect_budget_in_a_window():
    """Issue 25: 7 handshakes in 10 s while the server drops sockets."""
    window = {"kind": "drop", "s": 0.5, "code": None}
    sent = [
        _text(T, "r1", "Kilo1z hello"),
        {"t": T + 1, "op": "budget_window", "on": True, **window},
        {"t": T + 9, "op": "budget_window", "on": False, **window},
    ]

    def attempts(n: int) -> list[LogEntry]:
        return [LogEntry(T + 1 + i, i + 2, "event", "connect") for i in range(n)]

    log = _served("c1", "Kilo1z hello", len(PCM))
    assert check(_one_request(sent=sent, server_log=log + attempts(6))) == []
    broken = check(_one_request(sent=sent, server_log=log + attempts(8)))
    assert _tags(broken) == {"[budget]"}, broken


def test_checker_catches_a_stalled_socket_taking_a_new_request():
    """Issue 25: a socket on which a request stalled took a setup after that
    request's deadline (2 x response_timeout_s after its end_of_stream, + 1 s)."""
    log = _served("c1", "Kilo1z hello", len(PCM))
    stall = [
        LogEntry(T + 0.05, 1, "in", "end_of_stream", "s1"),
        LogEntry(
            T + 0.1, 1, "event", "fault_fired", "s1", data={"kind": "stall_words"}
        ),
    ]
    ok = log + stall + [LogEntry(T + 2.0, 1, "in", "setup", "c9")]
    assert check(_one_request(server_log=ok)) == []
    reused = log + stall + [LogEntry(T + 3.2, 1, "in", "setup", "c9")]
    assert _tags(check(_one_request(server_log=reused))) == {"[reuse]"}


def test_checker_catches_a_disconnected_status_after_an_update():
    sent = [
        _text(T, "r1", "Kilo1z hello"),
        {
            "t": T + 0.5,
            "op": "update",
            "configs": {"params": {}},
            "status": 0,
            "rate": 16000,
            "valid": True,
            "sent_t": T + 0.4,
            "message": "",
        },
        {"t": T + 3, "op": "status_check", "last": "connected"},
    ]
    assert check(_one_request(sent=sent)) == []
    sent[-1] = {"t": T + 3, "op": "status_check", "last": "disconnected"}
    assert _tags(check(_one_request(sent=sent))) == {"[status]"}


def test_checker_catches_text_that_never_reached_gradium():
    sent = [_text(T, "r1", "Kilo1z hello", end=False), _text(T + 0.01, "r1", "world.")]
    served = _served("c1", "Kilo1z hello", len(PCM))
    assert _tags(check(_one_request(sent=sent, server_log=served))) == {"[text]"}
    served.insert(1, LogEntry(T + 0.105, 1, "in", "text", "c1", " world."))
    assert check(_one_request(sent=sent, server_log=served)) == []


def test_checker_finds_a_tag_glued_to_the_segment_before_it():
    # The extension joins segments as they come: "..." + "Kilo1z hello" reaches
    # Gradium as "...Kilo1z hello". Another Gradium request set up meanwhile (the
    # next turn) must not be taken for this one.
    sent = [_text(T, "r1", "...", end=False), _text(T + 0.01, "r1", "Kilo1z hello")]
    served = [LogEntry(T + 0.05, 1, "in", "setup", "c1")]
    served += _served("c1", "...Kilo1z hello", len(PCM))
    served += [LogEntry(T + 0.2, 1, "in", "setup", "c2")]
    served += _served("c2", "Kilo2z other words", 2 * len(PCM), t=T + 0.21)
    assert check(_one_request(sent=sent, server_log=served)) == []
    # and the check still bites when the glued tag's request got another's text
    served[1] = LogEntry(T + 0.1, 1, "in", "text", "c1", "...Kilo1z hello there")
    assert _tags(check(_one_request(sent=sent, server_log=served))) == {"[text]"}


def _base_class_reorder(ten_lines: list[str], sent_extra: list[dict]) -> ChaosResult:
    # Chaos seed 144 on TEN's real runtime: r1's first two segments were held by
    # ten_ai_base while another request ran, then put back behind r1's
    # text_input_end, which was still queued; the extension got the end first.
    sent = [
        _text(T, "r1", "🎉👍", end=False),
        _text(T + 0.001, "r1", "Kilo1z lazy we today?", end=False),
        _text(T + 0.002, "r1", " - "),
        *sent_extra,
    ]
    records = [
        _rec(T + 0.1, "tts_audio_start", request_id="r1"),
        _end(T + 0.1, "r1", ms=0),
    ]
    res = _one_request(records=records, sent=sent, server_log=[])
    res.ten_lines = ten_lines
    return res


def test_checker_sets_apart_text_ten_ai_base_delivered_after_its_end():
    said = ["text after text_input_end for r1: ignored"]
    res = _base_class_reorder(said, [])
    assert check(res) == []
    assert _tags(res.upstream) == {"[reason]"}
    # without the extension's word that it got text after the end, it is ours
    assert _tags(check(_base_class_reorder([], []))) == {"[reason]"}
    # and so it is when the tester itself sent text after the end (a late chunk)
    late = [_text(T + 0.5, "r1", "Kilo1z more", late=True)]
    assert _tags(check(_base_class_reorder(said, late))) == {"[reason]"}
