"""TEN's ``tts_guarder`` conformance suite, reproduced against the local Gradium server.

One test per guarder test (contract §3.4), named ``test_guarder_<name>``: the same
config file from ``tests/configs_local`` (``params.url`` pointed at the in-process
server, ``dump_path`` at a pytest tmp dir), the same traffic and the same assertions
(contract §3.3: strict start -> frames -> end, request ids, metadata, durations
within 50 ms, dump-file counts, reasons, errors). Where the guarder only *waits*
(5 s blocking sleeps, 27 x 7 s testers) the waits are scaled down; the traffic and
the checks are not.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from gradium_server import LatencyModel, ServerConfig, ServerThread
from harness import (
    Rec,
    check_subtitle_alignment,
    errors,
    ext_module,
    frames_between,
    named,
    run_session,
    summary,
)

ConfigError = ext_module("config").ConfigError
GradiumTTSConfig = ext_module("config").GradiumTTSConfig

TESTS = Path(__file__).resolve().parent
LOCAL_CONFIGS = TESTS / "configs_local"
CONFIG_DIRS = [TESTS / "configs_local", TESTS / "configs"]
REQUIRED_FILES = [
    "property_basic_audio_setting1.json",
    "property_basic_audio_setting2.json",
    "property_dump.json",
    "property_invalid.json",
    "property_miss_required.json",
]
SUBTITLE_FILE = "property_subtitle_alignment.json"
DURATION_TOLERANCE_MS = 50  # AUDIO_DURATION_TOLERANCE_MS in the guarder
NORMAL_TEXT = "hello world, hello agora, hello shanghai, nice to meet you!"


# --------------------------------------------------------------------- fixtures
@pytest.fixture
def server():
    with ServerThread(ServerConfig.for_tests()) as srv:
        yield srv


def realtime_server() -> ServerThread:
    """rtf 1.0: audio arrives in real time, so a flush on the first frame lands mid-stream."""
    latency = LatencyModel(handshake_s=0.0, rtt_s=0.0, first_audio_s=0.0, rtf=1.0)
    return ServerThread(ServerConfig.for_tests(latency=latency))


def guarder_config(name: str, server, tmp_path: Path, **top: Any) -> dict[str, Any]:
    """A guarder config file, pointed at the local server and a private dump dir."""
    config = json.loads((LOCAL_CONFIGS / name).read_text())
    config["params"]["url"] = server.url
    config["params"]["voice_id"] = "synthetic"
    config["dump_path"] = str(tmp_path / "dump")
    config.update(top)
    return config


def dump_files(config: dict[str, Any]) -> list[str]:
    path = Path(config["dump_path"])
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


# ---------------------------------------------------------------------- checks
def expected_duration_ms(nbytes: int, rate: int) -> int:
    """The guarder's ``_calculate_pcm_audio_duration_ms`` (PCM16 mono, truncated)."""
    if nbytes == 0 or rate == 0:
        return 0
    return int(nbytes / (rate * 2 * 1) * 1000)


def guarder_sequence(
    records: list[Rec],
    expected: list[tuple[str, dict[str, Any]]],
    *,
    reason: int | None = 1,
) -> dict[str, int]:
    """The guarder's strict per-request state machine; returns audio bytes per request.

    Requests must appear in ``expected`` order, each as tts_audio_start (request id,
    exact metadata) -> audio frames -> tts_audio_end (request id, exact metadata,
    reason, duration within 50 ms of the bytes at the *first frame's* sample rate).
    A frame before a start or between an end and the next start fails, as does any
    start/end out of turn.
    """
    index = 0
    inside = False
    nbytes = 0
    first_rate = 0
    out: dict[str, int] = {}
    where = summary(records)
    for r in records:
        if r.name == "tts_audio_start":
            assert not inside, (
                f"tts_audio_start of {r.request_id} inside a request: {where}"
            )
            assert index < len(expected), f"unexpected start {r.request_id}: {where}"
            rid, meta = expected[index]
            assert r.request_id == rid, (
                f"start of {r.request_id}, expected {rid}: {where}"
            )
            assert r.props.get("metadata") == meta, r.props
            inside, nbytes = True, 0
        elif r.kind == "frame":
            assert inside, f"audio frame outside start/end: {where}"
            nbytes += len(r.pcm)
            first_rate = first_rate or r.sample_rate
        elif r.name == "tts_audio_end":
            assert inside, f"tts_audio_end of {r.request_id} without a start: {where}"
            rid, meta = expected[index]
            assert r.request_id == rid, (
                f"end of {r.request_id}, expected {rid}: {where}"
            )
            assert r.props.get("metadata") == meta, r.props
            if reason is not None:
                assert r.props["reason"] == reason, (rid, r.props)
            assert nbytes > 0, f"{rid} ended without audio: {where}"
            got = r.props["request_total_audio_duration_ms"]
            want = expected_duration_ms(nbytes, first_rate)
            assert got > 0 and abs(got - want) <= DURATION_TOLERANCE_MS, (
                rid,
                got,
                want,
            )
            out[rid] = nbytes
            inside = False
            index += 1
    assert not inside, f"{expected[index][0]} never ended: {where}"
    assert index == len(expected), (
        f"only {index} of {len(expected)} requests ended: {where}"
    )
    return out


def no_errors(records: list[Rec]) -> None:
    assert not errors(records), [e.props for e in errors(records)]


def first_frame(records: list[Rec]) -> Rec:
    return next(r for r in records if r.kind == "frame")


async def quiet_for(s, seconds: float, kind: str = "frame") -> None:
    """Return once no record of ``kind`` arrived for ``seconds`` (the session timeout bounds it)."""
    while True:
        before = sum(1 for r in s.records if r.kind == kind)
        await asyncio.sleep(seconds)
        if sum(1 for r in s.records if r.kind == kind) == before:
            return


# ------------------------------------------------------------------ 1. append_input
APPEND_GROUPS = [
    [
        "Hello world, this is the first text input.",
        "This is the second text input for testing.",
        "",
    ],
    ["And this is the third text input message.", ","],
    [
        "Now we start the second group of inputs.",
        "This is the fifth text input message.",
        " ",
    ],
    ["And finally the sixth text input message.", "😊"],
    [
        "This is group 5, first text.",
        "This is group 5, second text.",
        "This is group 5, third text.",
    ],
    [""],
    ["This is group 7, first text.", "This is group 7, second text."],
]


def test_guarder_append_input(server, tmp_path):
    config = guarder_config("property_dump.json", server, tmp_path)
    session = "test_append_input_session_123"
    rids = [f"test_append_input_request_id_{i + 1}" for i in range(len(APPEND_GROUPS))]
    metas = [
        {"session_id": session, "turn_id": i + 1} for i in range(len(APPEND_GROUPS))
    ]
    empty = [all(not t.strip() for t in texts) for texts in APPEND_GROUPS]
    assert empty == [False] * 5 + [True, False]
    seen: dict[str, Any] = {}

    async def script(s):
        for i, texts in enumerate(APPEND_GROUPS):
            if empty[i]:
                continue  # the guarder never sends an empty group
            for k, text in enumerate(texts):
                await s.text(rids[i], text, end=k == len(texts) - 1, metadata=metas[i])
        await s.wait_end(rids[6], timeout=15)
        await asyncio.sleep(0.2)  # the guarder sleeps 1 s before counting
        seen["dumps"] = dump_files(config)

    sess = run_session(config, script)
    expected = [(rids[i], metas[i]) for i in range(len(APPEND_GROUPS)) if not empty[i]]
    guarder_sequence(sess.records, expected)
    assert not [r for r in sess.records if r.request_id == rids[5]]
    assert len(seen["dumps"]) == 6, seen["dumps"]
    no_errors(sess.records)


# ------------------------------------------------------------ 2. append_input_stress
def test_guarder_append_input_stress(server, tmp_path):
    config = guarder_config("property_dump.json", server, tmp_path)
    rids = [uuid.uuid4().hex for _ in range(20)]
    metas = [
        {"session_id": "test_append_input_stress_session", "turn_id": i}
        for i in range(20)
    ]
    seen: dict[str, Any] = {}

    async def script(s):
        for i, rid in enumerate(rids):  # the guarder's 5 s sleeps between sends dropped
            await s.text(rid, f"hello word{i}", end=True, metadata=metas[i])
        await s.wait_end(rids[-1], timeout=20)
        await asyncio.sleep(0.2)
        seen["dumps"] = dump_files(config)

    sess = run_session(config, script)
    guarder_sequence(sess.records, list(zip(rids, metas, strict=True)), reason=1)
    no_errors(sess.records)
    assert len(seen["dumps"]) == 20, seen["dumps"]


# ------------------------------------------------ 3. append_input_without_text_input_end
def test_guarder_append_input_without_text_input_end(server, tmp_path):
    config = guarder_config("property_dump.json", server, tmp_path)
    session = "test_append_input_without_text_input_end_session"
    groups = [
        (
            "without_end_request_id_1",
            [
                "This is the first long sentence of group one, and it never gets an end.",
                "And here is the second long sentence, still streamed without text input end.",
                "",
            ],
        ),
        ("without_end_request_id_2", ["Group two must wait behind group one.", ","]),
    ]
    metas = [{"session_id": session, "turn_id": i + 1} for i in range(2)]
    seen: dict[str, Any] = {}

    async def script(s):
        for (rid, texts), meta in zip(groups, metas, strict=True):
            for text in texts:
                await s.text(rid, text, end=False, metadata=meta)
        await s.wait_frames(
            1, timeout=10
        )  # streaming started before any text_input_end
        await quiet_for(s, 1.0)  # the guarder: 5 s without a new frame -> success
        seen["records"] = list(s.records)

    run_session(config, script)
    records = seen["records"]
    starts = named(records, "tts_audio_start")
    assert len(starts) == 1, summary(records)
    assert starts[0].request_id == groups[0][0]
    assert starts[0].props["metadata"] == metas[0]  # exactly {session_id, turn_id}
    frames = [r for r in records if r.kind == "frame"]
    assert frames and records.index(frames[0]) > records.index(starts[0])
    assert all(f.props["metadata"] == metas[0] for f in frames)
    for end in named(
        records, "tts_audio_end"
    ):  # none expected; if any: group 1, reason 1
        assert end.request_id == groups[0][0] and end.props["reason"] == 1, end.props
        assert end.props["metadata"] == metas[0]
    assert not [r for r in records if r.request_id == groups[1][0]], summary(records)
    # all of group 1's text went out, and none of group 2's
    sent = "".join(m["text"] for m in server.received("text"))
    assert "never gets an end" in sent and "still streamed" in sent
    assert "Group two" not in sent


# ----------------------------------------------------------------- 4. append_interrupt
def test_guarder_append_interrupt(tmp_path):
    session = "test_append_interrupt_session_123"
    long = "This is a long sentence that keeps the synthesizer busy for a good while. "
    groups = {
        1: [
            long + "One.",
            long + "Two.",
            long + "Three.",
            long + "Four.",
            long + "Five.",
        ],
        2: ["Group two first chunk.", "Group two second chunk."],
        3: ["Group three says hello.", "And it finishes normally."],
        4: ["Group four is the last one."],
    }
    rid = {n: f"test_append_interrupt_request_id_{n}" for n in groups}
    meta = {n: {"session_id": session, "turn_id": n} for n in groups}
    flush_id = f"test_append_interrupt_flush_{session}"
    seen: dict[str, Any] = {}

    with realtime_server() as srv:
        config = guarder_config("property_dump.json", srv, tmp_path)

        async def send(s, n):
            for k, text in enumerate(groups[n]):
                await s.text(
                    rid[n], text, end=k == len(groups[n]) - 1, metadata=meta[n]
                )

        async def script(s):
            await send(s, 1)
            await send(s, 2)
            await s.wait_frames(1)  # group 1's first frame
            await s.flush(flush_id, {"session_id": session})
            flush_end = await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            seen["dumps_at_flush_end"] = dump_files(config)
            seen["flush_end"] = flush_end[0]
            # the guarder sleeps 5 s here; make the server instant so groups 3-4 are quick
            # (and the cancelled group 1's remaining audio floods in, to be dropped)
            srv.set_latency(LatencyModel.instant())
            await asyncio.sleep(0.3)
            await send(s, 3)
            await send(s, 4)
            await s.wait_end(rid[4], timeout=15)
            await asyncio.sleep(0.2)
            seen["dumps_final"] = dump_files(config)

        sess = run_session(config, script)

    records = sess.records
    split = records.index(seen["flush_end"])
    before, after = records[:split], records[split + 1 :]
    guarder_sequence(before, [(rid[1], meta[1])], reason=2)
    # nothing between group 1's end and tts_flush_end but metrics
    end1 = named(before, "tts_audio_end")[0]
    between = before[before.index(end1) + 1 :]
    assert all(r.name == "metrics" for r in between), summary(between)
    assert seen["flush_end"].props == {
        "flush_id": flush_id,
        "metadata": {"session_id": session},
    }
    assert not [r for r in records if r.request_id == rid[2]], summary(records)
    assert len(seen["dumps_at_flush_end"]) == 1, seen["dumps_at_flush_end"]
    guarder_sequence(after, [(rid[3], meta[3]), (rid[4], meta[4])], reason=1)
    assert len(seen["dumps_final"]) == 3, seen["dumps_final"]
    no_errors(records)


# ---------------------------------------------------------------- 5. basic_audio_setting
def test_guarder_basic_audio_setting(server, tmp_path):
    rates = []
    for n, name in (
        (1, "property_basic_audio_setting1.json"),
        (2, "property_basic_audio_setting2.json"),
    ):
        config = guarder_config(name, server, tmp_path / str(n))
        meta = {"session_id": "test_basic_audio_setting_session_123", "turn_id": n}

        async def script(s, n=n, meta=meta):
            await s.text(str(n), NORMAL_TEXT, end=True, metadata=meta)
            await s.wait_end(str(n))

        sess = run_session(config, script)
        guarder_sequence(sess.records, [(str(n), meta)])
        no_errors(sess.records)
        rates.append(first_frame(sess.records).sample_rate)
    assert rates == [16000, 24000]  # the guarder requires only that they differ


# ------------------------------------------------------------------ 6. connection_status
def test_guarder_connection_status(server, tmp_path):
    # The guarder skips this unless the extension is allow-listed; we emit the events.
    config = guarder_config("property_basic_audio_setting1.json", server, tmp_path)
    meta = {"session_id": "test_connection_status_session_123", "turn_id": 1}

    async def script(s):
        await s.text(
            "test_connection_status_request_id_1", NORMAL_TEXT, end=True, metadata=meta
        )
        await s.wait_end("test_connection_status_request_id_1")

    sess = run_session(config, script)
    records = sess.records
    end_at = records.index(named(records, "tts_audio_end")[0])
    statuses = [r for r in records[:end_at] if r.name == "connection_status_changed"]
    currents = [st.props["current"] for st in statuses]
    assert "connecting" in currents and "connected" in currents, currents
    assert currents.index("connecting") < currents.index("connected")
    for st in named(records, "connection_status_changed"):
        p = st.props
        assert isinstance(p["id"], str) and p["id"], p
        assert p["module"] == "tts" and isinstance(p["vendor"], str) and p["vendor"], p
        assert p["current"] in ("connecting", "connected", "disconnected"), p
        assert "last" in p and isinstance(p["last"], str), p
    guarder_sequence(records, [("test_connection_status_request_id_1", meta)])
    no_errors(records)


# ------------------------------------------------------------ 7. corner_input, 15. metrics
def _normal_request_with_metrics(server, tmp_path, name: str) -> None:
    config = guarder_config("property_basic_audio_setting1.json", server, tmp_path)
    rid = f"test_{name}_request_id_1"
    meta = {"session_id": f"test_{name}_session_123", "turn_id": 1}

    async def script(s):
        await s.text(rid, NORMAL_TEXT, end=True, metadata=meta)
        await s.wait_end(rid)

    sess = run_session(config, script)
    guarder_sequence(sess.records, [(rid, meta)])
    end_at = sess.records.index(named(sess.records, "tts_audio_end")[0])
    assert named(sess.records[:end_at], "metrics"), summary(sess.records)
    no_errors(sess.records)


def test_guarder_corner_input(server, tmp_path):
    _normal_request_with_metrics(server, tmp_path, "corner_input")


def test_guarder_metrics(server, tmp_path):
    _normal_request_with_metrics(server, tmp_path, "metrics")


# ------------------------------------------------------------------------- 8. dump
def test_guarder_dump(server, tmp_path):
    config = guarder_config("property_dump.json", server, tmp_path)
    rid, meta = (
        "test_dump_request_id_1",
        {"session_id": "test_dump_session_123", "turn_id": 1},
    )

    async def script(s):
        await s.text(rid, NORMAL_TEXT, end=True, metadata=meta)
        await s.wait_end(rid)

    sess = run_session(config, script)
    guarder_sequence(sess.records, [(rid, meta)])
    no_errors(sess.records)


# ------------------------------------------------------------ 9. dump_each_request_id
def test_guarder_dump_each_request_id(server, tmp_path):
    config = guarder_config("property_dump.json", server, tmp_path)
    session = "test_dump_each_request_id_session_123"
    rids = [
        "test_dump_each_request_id_request_id_1",
        "test_dump_each_request_id_request_id_2",
    ]
    metas = [
        {"session_id": session, "turn_id": 1},
        {"session_id": session, "turn_id": 2},
    ]
    seen: dict[str, Any] = {}

    async def script(s):
        await s.text(rids[0], NORMAL_TEXT, end=True, metadata=metas[0])
        await s.wait_end(rids[0])
        await asyncio.sleep(0.2)  # the guarder sleeps 1 s
        await s.text(
            rids[1], "second request id" + NORMAL_TEXT, end=True, metadata=metas[1]
        )
        await s.wait_end(rids[1])
        await asyncio.sleep(0.2)
        seen["dumps"] = dump_files(config)

    sess = run_session(config, script)
    guarder_sequence(sess.records, list(zip(rids, metas, strict=True)))
    assert len(seen["dumps"]) == 2, seen["dumps"]
    no_errors(sess.records)


# ---------------------------------------------------------------- 10. empty_text_request
def test_guarder_empty_text_request(server, tmp_path):
    config = guarder_config("property_basic_audio_setting1.json", server, tmp_path)
    meta = {"session_id": "test_empty_text_request_session_123", "turn_id": 1}
    seen: dict[str, Any] = {}

    async def script(s):
        for text in ("", " ", ""):
            await s.text("999", text, end=True, metadata=meta)
        seen["last_send"] = time.monotonic()
        seen["end"] = await s.wait_end("999", timeout=2)
        await asyncio.sleep(
            0.2
        )  # anything else (an error, a second end) would show here

    sess = run_session(config, script)
    end = seen["end"]
    assert end.t - seen["last_send"] <= 0.5
    assert end.props["metadata"] == meta
    ends = named(sess.records, "tts_audio_end")
    assert [e.request_id for e in ends] == ["999"], summary(sess.records)
    no_errors(sess.records)


# ------------------------------------------------------------------------ 11. flush
def test_guarder_flush(tmp_path):
    rid = "test_flush_request_id_1"
    meta = {"session_id": "test_flush_session_123", "turn_id": 1}
    long = (
        "This is a long text for the flush test. It keeps going for a while so that the "
        "flush arrives while the audio is still streaming, sentence after sentence."
    )
    seen: dict[str, Any] = {}

    with realtime_server() as srv:
        config = guarder_config("property_dump.json", srv, tmp_path, dump=False)

        async def script(s):
            await s.text(rid, long, end=False, metadata=meta)
            await s.wait_frames(1)
            await s.flush(rid, {"session_id": "test_flush_session_123"})
            seen["flush_end"] = (
                await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            )[0]
            await asyncio.sleep(2.0)  # the guarder watches for 5 s
            seen["records"] = list(s.records)

        run_session(config, script)
        cid = srv.received("setup")[0]["client_req_id"]
        produced = sum(m["audio_bytes"] for m in srv.sent("audio", client_req_id=cid))

    records = seen["records"]
    ends = named(records, "tts_audio_end")
    assert ends and all(e.props["reason"] == 2 for e in ends), summary(records)
    assert [e.request_id for e in ends] == [rid]
    flush_end = seen["flush_end"]
    assert records.index(flush_end) > records.index(ends[0])
    assert flush_end.props == {
        "flush_id": rid,
        "metadata": {"session_id": "test_flush_session_123"},
    }
    later = records[records.index(flush_end) + 1 :]
    assert all(r.kind == "data" and r.name == "metrics" for r in later), summary(later)
    # the flush really landed mid-stream (the text is ~10 s of audio), and closing
    # the socket stopped the server: at most 0.25 s beyond what reached TEN
    frames = frames_between(records, rid)
    got = sum(len(f.pcm) for f in frames)
    assert 0 < ends[0].props["request_total_audio_duration_ms"] < 5000
    assert 0 < got <= produced <= got + frames[0].sample_rate * 2 // 4, (produced, got)
    no_errors(records)


# ------------------------------------------------------------ 12. interleaved_requests
INTERLEAVED_ORDER = [
    1,
    1,
    1,
    2,
    2,
    1,
    1,
    3,
    2,
    2,
    1,
    4,
    4,
    5,
    6,
    6,
    7,
    8,
    8,
    4,
    6,
    5,
    8,
]
# positions whose chunk has text_input_end: each request's last chunk (request 3 has one)
INTERLEAVED_ENDS = {7, 9, 10, 16, 19, 20, 21, 22}


def test_guarder_interleaved_requests(server, tmp_path):
    assert len(INTERLEAVED_ORDER) == 23
    config = guarder_config("property_dump.json", server, tmp_path)
    session = "test_interleaved_requests_session_123"
    rid = {n: f"test_interleaved_request_id_{n}" for n in range(1, 9)}
    meta = {n: {"session_id": session, "turn_id": n} for n in range(1, 9)}
    seen: dict[str, Any] = {}
    # every request gets exactly one text_input_end, on its last chunk
    last = {n: max(i for i, m in enumerate(INTERLEAVED_ORDER) if m == n) for n in rid}
    assert set(last.values()) == INTERLEAVED_ENDS

    async def script(s):
        part: dict[int, int] = {}
        for i, n in enumerate(INTERLEAVED_ORDER):
            part[n] = part.get(n, 0) + 1
            await s.text(
                rid[n],
                f"Message {part[n]} of request {n}.",
                end=i == last[n],
                metadata=meta[n],
            )
        await s.wait_end(rid[8], timeout=15)
        await asyncio.sleep(0.2)
        seen["dumps"] = dump_files(config)

    sess = run_session(config, script)
    guarder_sequence(sess.records, [(rid[n], meta[n]) for n in range(1, 9)], reason=1)
    assert len(seen["dumps"]) == 8, seen["dumps"]
    no_errors(sess.records)


# ------------------------------------------------------- 13. invalid_required_params
def test_guarder_invalid_required_params(server, tmp_path):
    config = guarder_config("property_invalid.json", server, tmp_path)

    async def script(s):
        await s.text(
            "1", "Hello, world!", end=True, metadata={"session_id": "s", "turn_id": 1}
        )
        await s.wait_for(lambda recs: errors(recs), timeout=10)

    sess = run_session(config, script)
    first = errors(sess.records)[0]
    assert first.props["code"] == -1000, first.props


# ---------------------------------------------------------- 14. invalid_text_handling
INVALID_TEXT_CASES = [
    ("", "Hello world."),
    (" ", "This is a test."),
    ("   ", "Another test case."),
    ("\n", "Text with newline test."),
    ("\t", "Text with tab test."),
    ("\n\t\n", "Mixed whitespace test."),
    (":-)", "Smile test."),
    ("😊", "Emoji test."),
    ("😀😃😄😁", "Multiple emoji test."),
    ("，", "Chinese punctuation test."),
    ("。", "Chinese punctuation test."),
    ("/", "Chinese punctuation test."),
    ("】", "Chinese punctuation test."),
    ("（", "Chinese punctuation test."),
    (".", "English punctuation test."),
    ("/", "English punctuation test."),
    ("(", "English punctuation test."),
    ("]", "English punctuation test."),
    ("}", "English punctuation test."),
    ("！", "More Chinese punctuation."),
    ("？", "More Chinese punctuation."),
    ("；", "More Chinese punctuation."),
    ("：", "More Chinese punctuation."),
    ("x = (-b ± √(b² - 4ac)) / 2a", "Mathematical formula test."),
    ("2H₂ + O₂ → 2H₂O", "Chemical equation test."),
    ("H₂O", "Chemical formula test."),
    ("   \n\t😊，。/(]}x = (-b ± √(b² - 4ac)) / 2a", "Mixed invalid text test."),
]


@pytest.fixture(scope="module")
def shared_server():
    with ServerThread(ServerConfig.for_tests()) as srv:
        yield srv


@pytest.mark.parametrize("index", range(len(INVALID_TEXT_CASES)))
def test_guarder_invalid_text_handling(shared_server, tmp_path, index):
    assert len(INVALID_TEXT_CASES) == 27
    invalid, valid = INVALID_TEXT_CASES[index]
    config = guarder_config(
        "property_basic_audio_setting1.json", shared_server, tmp_path
    )
    rid = f"test_invalid_request_{index}"
    meta = {"session_id": f"test_invalid_text_session_{index}", "turn_id": index + 1}

    async def script(s):
        await s.text(rid, invalid, end=False, metadata=meta)
        await asyncio.sleep(0.15)  # the guarder sleeps 2 s, then 5 s for the audio
        await s.text(rid, valid, end=True, metadata=meta)
        await s.wait_end(rid, timeout=5)

    sess = run_session(config, script)
    frames = frames_between(sess.records, rid)
    assert frames, summary(sess.records)  # the guarder's pass condition
    (end,) = named(sess.records, "tts_audio_end")
    assert end.props["reason"] == 1 and end.props["metadata"] == meta, end.props


# ---------------------------------------------------------- 16. miss_required_params
def test_guarder_miss_required_params(server, tmp_path):
    config = guarder_config("property_miss_required.json", server, tmp_path)

    async def script(s):  # sends nothing
        await s.wait_for(lambda recs: errors(recs), timeout=5)

    sess = run_session(config, script)
    assert errors(sess.records)[0].props["code"] == -1000


# ----------------------------------------------------------- 17. subtitle_alignment
def test_guarder_subtitle_alignment(server, tmp_path):
    config = guarder_config(SUBTITLE_FILE, server, tmp_path)
    assert config.get("enable_words") is True
    rid = "subtitle_alignment_request_id_1"
    meta = {"session_id": "subtitle_alignment_session", "turn_id": 1}
    text = (
        "The castle's shadow stretched across the moat like a skeletal hand, "
        "its turrets piercing the stormy sky where lightning flickered."
    )

    async def script(s):
        await s.text(rid, text, end=True, metadata=meta)
        await s.wait_end(rid)

    sess = run_session(config, script)
    records = sess.records
    no_errors(records)
    results = [r.props for r in named(records, "tts_text_result")]
    assert len(results) >= 10, summary(records)
    frames = frames_between(records, rid)
    assert frames and len(frames) == sum(1 for r in records if r.kind == "frame")
    ids = {r.request_id for r in records if r.name.startswith("tts_")}
    assert ids == {rid}
    check_subtitle_alignment(results, frames, last_status=1)
    # beside the subtitle keys, the request's own metadata
    assert all(
        {k: p["metadata"][k] for k in ("session_id", "turn_id")} == meta
        for p in results
    )
    assert [p["text_result_end"] for p in results] == [False] * (len(results) - 1) + [
        True
    ]
    end = next(r for r in named(records, "tts_audio_end") if r.request_id == rid)
    assert records.index(end) > max(
        i for i, r in enumerate(records) if r.name == "tts_text_result"
    )


# --------------------------------------------------------------- the config files
_PLACEHOLDER = re.compile(r"\$\{env:([^|}]*)(\|([^}]*))?\}")


def _strings(value: Any):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _resolve_defaults(value: Any) -> Any:
    """Resolve ``${env:VAR|default}`` as TEN would with VAR unset."""
    if isinstance(value, dict):
        return {k: _resolve_defaults(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_defaults(v) for v in value]
    if isinstance(value, str):
        m = _PLACEHOLDER.fullmatch(value)
        return m.group(3) if m else value
    return value


@pytest.mark.parametrize("config_dir", CONFIG_DIRS, ids=lambda p: p.name)
def test_guarder_config_files_are_complete_and_valid(config_dir):
    configs: dict[str, Any] = {}
    models: dict[str, GradiumTTSConfig] = {}
    for name in [*REQUIRED_FILES, SUBTITLE_FILE]:
        path = config_dir / name
        assert path.is_file(), f"{path} is missing"
        configs[name] = json.loads(path.read_text())

    for name, raw in configs.items():
        for s in _strings(raw):
            for m in _PLACEHOLDER.finditer(s):
                # TEN kills the process on a missing variable without a default
                assert m.group(2) is not None, f"{name}: {m.group(0)} has no |default"
                assert m.group(0) == s, (
                    f"{name}: placeholder must be the whole value: {s!r}"
                )
        assert isinstance(raw.get("params"), dict), name
        assert raw["params"].get("url"), (
            f"{name}: params.url must be set (configs are deep-merged)"
        )
        assert "dump_path" in raw, f"{name}: top-level dump_path is required"

        resolved = _resolve_defaults(raw)
        if name == "property_miss_required.json":
            assert not resolved["params"].get("api_key")
            with pytest.raises(ConfigError):
                GradiumTTSConfig.from_properties(resolved)
        if name == "property_invalid.json":
            key = raw["params"]["api_key"]
            assert key and "${" not in key, key  # a literal key the vendor rejects
            if config_dir.name == "configs_local":
                assert key.startswith("invalid"), key  # what the local server rejects
        else:
            resolved["params"]["api_key"] = "substituted-test-key"
        models[name] = GradiumTTSConfig.from_properties(resolved)

    assert models["property_basic_audio_setting1.json"].sample_rate != (
        models["property_basic_audio_setting2.json"].sample_rate
    ), "setting1 and setting2 must use different sample rates"
    dump = configs["property_dump.json"]
    assert dump.get("dump") is True and dump.get("dump_path"), dump
    assert configs[SUBTITLE_FILE].get("enable_words") is True
