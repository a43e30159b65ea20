"""Fault injection: every kind, via ``server.inject`` and via text markers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import statistics
import time

import pytest
from gradium_server import Fault, LatencyModel, synthesize_synthetic
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

TEXT = "one two three four five six"  # 2.1 s -> ~26 frames at 80 ms


def pcm(text: str, rate: int = 16000) -> bytes:
    return synthesize_synthetic(text, rate).samples.tobytes()


def test_fault_validation():
    with pytest.raises(ValueError):
        Fault("no_such_kind")
    with pytest.raises(ValueError):
        Fault("refuse", count=0)
    assert Fault("slow_drip").value == 0.5
    assert Fault("oversized").value == 2 * 1024 * 1024
    assert Fault("error_1008", arg="3").int_value() == 3


# --- connection-level -----------------------------------------------------------------


async def test_refuse_next_connection_only(gradium_server, h):
    gradium_server.inject(Fault("refuse"))
    with pytest.raises(Exception) as info:  # noqa: B017 - any handshake failure
        await connect(
            gradium_server.url, additional_headers={"x-api-key": "k"}, open_timeout=5
        )
    assert not isinstance(info.value, InvalidStatus)  # no HTTP response at all
    res = await h.synth(gradium_server.url, "ok")
    assert res.of("end_of_stream")
    assert gradium_server.connection_attempts == 2
    assert gradium_server.connections_opened == 1


@pytest.mark.parametrize("arg,status", [(None, 503), (401, 401), (403, 403)])
async def test_reject_handshake_status(gradium_server, h, arg, status):
    gradium_server.inject(Fault("reject_handshake", arg=arg, count=2))
    for _ in range(2):
        with pytest.raises(InvalidStatus) as info:
            await connect(gradium_server.url, additional_headers={"x-api-key": "k"})
        assert info.value.response.status_code == status
    assert (await h.synth(gradium_server.url, "ok")).of("end_of_stream")
    assert gradium_server.connections_opened == 1


@pytest.mark.parametrize("arg", [None, 1008, "reset"])
async def test_accept_then_close(gradium_server, h, arg):
    """The upgrade succeeds, then the socket dies at once: an error frame and a
    close with the code (default 1011), or a TCP reset without close frame."""
    gradium_server.inject(Fault("accept_then_close", arg=arg, count=2))
    for _ in range(2):
        ws = await connect(
            gradium_server.url, additional_headers={"x-api-key": "k"}, open_timeout=5
        )
        frames = []
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frames.append(json.loads(raw))
        if arg == "reset":
            assert frames == []
            assert ws.close_code == 1006  # no close frame: abnormal closure
        else:
            code = 1011 if arg is None else arg
            assert [(f["type"], f["code"]) for f in frames] == [("error", code)]
            assert "client_req_id" not in frames[0]
            assert ws.close_code == code
    # the third connection is healthy again
    assert (await h.synth(gradium_server.url, "ok")).of("end_of_stream")
    assert gradium_server.connection_attempts == 3
    assert gradium_server.connections_opened == 3
    fired = gradium_server.events_of("fault_fired")
    assert [e.data["kind"] for e in fired] == ["accept_then_close"] * 2


async def test_hang_handshake_fault_and_setter(gradium_server, h):
    """TCP accepted, the upgrade never answered, until the client gives up; the
    fault hangs the next attempt, the setter every attempt until it is off."""
    headers = {"x-api-key": "k"}
    gradium_server.inject(Fault("hang_handshake"))
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await connect(gradium_server.url, additional_headers=headers, open_timeout=0.5)
    assert time.monotonic() - started >= 0.45
    assert (await h.synth(gradium_server.url, "ok")).of("end_of_stream")
    gradium_server.set_hang_handshake(True)
    assert gradium_server.hang_handshake
    for _ in range(2):
        with pytest.raises(asyncio.TimeoutError):
            await connect(
                gradium_server.url, additional_headers=headers, open_timeout=0.3
            )
    gradium_server.set_hang_handshake(False)
    assert (await h.synth(gradium_server.url, "ok")).of("end_of_stream")
    fired = [e.data["kind"] for e in gradium_server.events_of("fault_fired")]
    assert fired == ["hang_handshake"] * 3
    for _ in range(50):  # each held attempt is released once its client left
        if len(gradium_server.events_of("hang_released")) == 3:
            break
        await asyncio.sleep(0.02)
    assert len(gradium_server.events_of("hang_released")) == 3
    assert gradium_server.connections_opened == 2


async def test_hang_handshake_does_not_hold_up_stop(make_server):
    server = await make_server()
    server.set_hang_handshake(True)
    pending = asyncio.ensure_future(
        connect(server.url, additional_headers={"x-api-key": "k"}, open_timeout=10)
    )
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(Exception):  # noqa: B017 - the held attempt is dropped
        await pending


@pytest.mark.parametrize(
    "how", ["fault", "setter", "setter_1008"], ids=["fault", "setter", "idle_1008"]
)
async def test_close_after(gradium_server, how):
    """Upgraded, then closed N s later: a plain close 1000, or (setter with a
    code) an error frame with that code and message, then the close."""
    if how == "fault":
        gradium_server.inject(Fault("close_after", arg=0.4))
    elif how == "setter":
        gradium_server.set_close_after(0.4)
    else:
        gradium_server.set_close_after(0.4, 1008, "idle timeout: no message received")
    ws = await connect(
        gradium_server.url, additional_headers={"x-api-key": "k"}, open_timeout=5
    )
    started = time.monotonic()
    frames = []
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            frames.append(json.loads(raw))
    assert 0.35 <= time.monotonic() - started < 1.5
    if how == "setter_1008":
        assert [(f["type"], f["code"]) for f in frames] == [("error", 1008)]
        assert "idle" in frames[0]["message"]
        assert ws.close_code == 1008
    else:
        assert frames == [] and ws.close_code == 1000
    fired = [e.data["kind"] for e in gradium_server.events_of("fault_fired")]
    assert fired == ["close_after"]
    gradium_server.set_close_after(None)
    async with connect(
        gradium_server.url, additional_headers={"x-api-key": "k"}, open_timeout=5
    ) as ws2:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws2.recv(), 0.8)  # stays open


async def test_marker_arms_connection_fault_for_next_connection(gradium_server, h):
    res = await h.synth(gradium_server.url, "[[fault:reject_handshake:401]] hello")
    assert res.audio() == pcm("hello")
    with pytest.raises(InvalidStatus) as info:
        await connect(gradium_server.url, additional_headers={"x-api-key": "k"})
    assert info.value.response.status_code == 401


# --- mid-stream errors ------------------------------------------------------------------


@pytest.mark.parametrize("kind,code", [("error_1008", 1008), ("error_1011", 1011)])
async def test_error_after_n_frames(gradium_server, h, kind, code):
    gradium_server.inject(Fault(kind, arg=3))
    res = await h.synth(
        gradium_server.url, TEXT, client_req_id="r", output_format="pcm_16000"
    )
    assert len(res.of("audio")) == 3
    assert res.types()[-1] == "error"
    assert res.error["code"] == code and res.error["client_req_id"] == "r"
    assert res.close_code == code
    assert not res.of("end_of_stream")


async def test_error_default_after_one_frame_via_marker(gradium_server, h):
    res = await h.synth(gradium_server.url, "[[fault:error_1011]]" + TEXT)
    assert len(res.of("audio")) == 1
    assert res.error["code"] == 1011 and res.close_code == 1011


async def test_error_before_any_audio_with_arg_zero(gradium_server, h):
    res = await h.synth(gradium_server.url, "[[fault:error_1008:0]] hi")
    assert res.types() == ["ready", "error"]
    assert res.close_code == 1008


async def test_end_fault_fires_when_audio_is_shorter_than_n(gradium_server, h):
    gradium_server.inject(Fault("error_1011", arg=1000))
    res = await h.synth(gradium_server.url, "hi")
    assert len(res.audio()) == len(pcm("hi"))
    assert res.error["code"] == 1011 and not res.of("end_of_stream")


async def test_drop_after_is_abrupt(gradium_server, h):
    gradium_server.inject(Fault("drop_after", arg=2))
    res = await h.synth(gradium_server.url, TEXT)
    assert len(res.of("audio")) == 2
    assert res.closed and res.close_code is None  # no close frame received
    assert not res.of("end_of_stream") and not res.of("error")
    assert gradium_server.events_of("abort")


# --- stalls -------------------------------------------------------------------------------


async def test_stall_after_ready(gradium_server, h):
    gradium_server.inject(Fault("stall_after_ready"))
    ws = await h.open_ws(gradium_server.url)
    await h.send(ws, type="setup", output_format="pcm_16000")
    await h.send(ws, type="text", text=TEXT)
    await h.send(ws, type="end_of_stream")
    res = await h.collect(ws, timeout=0.6)
    assert res.types() == ["ready"]
    assert not res.closed
    await ws.close()
    assert gradium_server.events_of("stalled_input_ignored")


async def test_stall_mid_stream(gradium_server, h):
    gradium_server.inject(Fault("stall_mid_stream", arg=4))
    ws = await h.open_ws(gradium_server.url)
    await h.send(ws, type="setup", output_format="pcm_16000")
    await h.send(ws, type="text", text=TEXT)
    await h.send(ws, type="end_of_stream")
    res = await h.collect(ws, timeout=0.6)
    assert len(res.of("audio")) == 4
    assert not res.of("end_of_stream") and not res.closed
    await ws.close()


async def test_stall_matched_by_client_req_id_only_hits_that_request(gradium_server, h):
    gradium_server.inject(Fault("stall_mid_stream", arg=1, client_req_id="b"))
    ws = await h.open_ws(gradium_server.url)
    for cid in ("a", "b"):
        await h.send(
            ws,
            type="setup",
            client_req_id=cid,
            close_ws_on_eos=False,
            output_format="pcm_16000",
        )
        await h.send(ws, type="text", text=TEXT, client_req_id=cid)
        await h.send(ws, type="end_of_stream", client_req_id=cid)
    res = await h.collect(ws, timeout=0.8)
    assert res.audio("a") == pcm(TEXT) and res.of("end_of_stream", "a")
    assert len(res.of("audio", "b")) == 1 and not res.of("end_of_stream", "b")
    await ws.close()


# --- odd frames -------------------------------------------------------------------------


async def test_non_json_frame_then_normal(gradium_server, h):
    gradium_server.inject(Fault("non_json"))
    res = await h.synth(gradium_server.url, TEXT)
    assert len(res.non_json) == 1
    assert res.audio() == pcm(TEXT) and res.of("end_of_stream")
    assert res.close_code == 1000


async def test_unknown_types_before_audio(gradium_server, h):
    res = await h.synth(
        gradium_server.url, "[[fault:unknown_type]] " + TEXT, client_req_id="u"
    )
    types = res.types()
    first_audio = types.index("audio")
    assert "need_more_text" in types[:first_audio]
    assert "x_local_unknown" in types[:first_audio]
    assert res.of("need_more_text")[0]["client_req_id"] == "u"
    assert res.audio() == pcm(TEXT) and res.of("end_of_stream")


async def test_unknown_type_with_custom_name(gradium_server, h):
    gradium_server.inject(Fault("unknown_type", arg="flushed"))
    res = await h.synth(gradium_server.url, TEXT)
    assert res.types()[:2] == ["ready", "flushed"]
    assert res.of("end_of_stream")


async def test_oversized_frame(gradium_server, h):
    gradium_server.inject(Fault("oversized", arg=100_000))
    ws = await h.open_ws(gradium_server.url, max_size=None)
    await h.send(ws, type="setup", output_format="pcm_16000")
    await h.send(ws, type="text", text=TEXT)
    await h.send(ws, type="end_of_stream")
    res = await h.collect(ws)
    big = res.of("x_padding")
    assert len(big) == 1 and len(big[0]["padding"]) > 100_000
    assert res.audio() == pcm(TEXT)
    # a client with a smaller max_size fails on it (1009 from the client side)
    gradium_server.inject(Fault("oversized", arg=100_000))
    ws = await h.open_ws(gradium_server.url, max_size=50_000)
    await h.send(ws, type="setup", output_format="pcm_16000")
    await h.send(ws, type="text", text=TEXT)
    res = await h.collect(ws)
    assert res.closed and not res.of("audio")
    assert res.close_sent == 1009  # "message too big"


async def test_slow_drip(gradium_server, h):
    gradium_server.inject(Fault("slow_drip", arg=0.08))
    res = await h.synth(gradium_server.url, "one two three four")  # ~1.5 s: 19 frames
    times = [
        t
        for t, m in zip(res.arrival, res.messages, strict=True)
        if m["type"] == "audio"
    ]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert statistics.median(gaps) == pytest.approx(0.08, abs=0.03)
    assert min(gaps) > 0.05
    assert res.of("end_of_stream")


async def test_close_1000_without_eos(gradium_server, h):
    gradium_server.inject(Fault("close_1000_no_eos"))
    res = await h.synth(gradium_server.url, TEXT)
    assert res.audio() == pcm(TEXT)
    assert not res.of("end_of_stream")
    assert res.close_code == 1000


async def test_close_1000_after_n_frames(gradium_server, h):
    res = await h.synth(gradium_server.url, "[[fault:close_1000_no_eos:2]]" + TEXT)
    assert len(res.of("audio")) == 2 and res.close_code == 1000


# --- matching and counting ----------------------------------------------------------


async def test_match_text_and_count(gradium_server, h):
    gradium_server.inject(Fault("error_1011", arg=0, match_text="boom", count=2))
    assert (await h.synth(gradium_server.url, "calm words")).of("end_of_stream")
    for _ in range(2):
        res = await h.synth(gradium_server.url, "boom goes it")
        assert res.error["code"] == 1011
    assert (await h.synth(gradium_server.url, "boom again")).of("end_of_stream")
    assert gradium_server.faults.pending() == []
    assert len(gradium_server.events_of("fault_fired")) == 2


async def test_marker_is_stripped_and_logged(gradium_server, h):
    res = await h.synth(
        gradium_server.url, "[[fault:non_json]]hello [[fault:bogus]] world"
    )
    assert [w["text"] for w in res.words()] == ["hello", "world"]
    assert res.audio() == pcm("hello world")
    assert len(res.non_json) == 1
    assert gradium_server.events_of("fault_marker_unknown")[0].data["kind"] == "bogus"
    armed = gradium_server.events_of("fault_armed")[0].data
    assert armed["kind"] == "non_json" and armed["source"] == "marker"


async def test_faults_with_realistic_latency(make_server, h):
    server = await make_server(latency=LatencyModel(0, 0.02, 0.05, 0.2))
    server.inject(Fault("error_1011", arg=2))
    res = await h.synth(server.url, TEXT)
    assert len(res.of("audio")) == 2 and res.close_code == 1011


# --- odd servers (issue 15) ---------------------------------------------------------------


async def test_word_nan(gradium_server, h):
    res = await h.synth(gradium_server.url, "[[fault:word_nan:1]]" + TEXT)
    words = res.words()
    assert len(words) == 6 and res.of("end_of_stream")
    nan = [w for w in words if w["start_s"] != w["start_s"]]  # NaN != NaN
    assert [w["text"] for w in nan] == ["two"] and nan[0]["stop_s"] != nan[0]["stop_s"]
    assert res.audio() == pcm(TEXT)  # the audio is untouched


async def test_word_backwards(gradium_server, h):
    gradium_server.inject(Fault("word_backwards", arg=3))
    res = await h.synth(gradium_server.url, TEXT)
    starts = [w["start_s"] for w in res.words()]
    assert starts[3] == pytest.approx(starts[2] - 1.0)
    assert starts[:3] == sorted(starts[:3]) and starts[4:] == sorted(starts[4:])
    assert gradium_server.events_of("fault_fired")[0].data["kind"] == "word_backwards"


@pytest.mark.parametrize("frame", [0, 5])
async def test_odd_audio(gradium_server, h, frame):
    gradium_server.inject(Fault("odd_audio", arg=frame))
    res = await h.synth(gradium_server.url, TEXT, output_format="pcm_16000")
    sizes = [len(base64.b64decode(a["audio"])) for a in res.of("audio")]
    assert sizes[frame] % 2 == 1 and sizes[frame + 1] == 1 and sizes[-1] == 1
    assert sum(sizes) % 2 == 1
    assert res.audio() == pcm(TEXT) + b"\x00"  # a stray byte after the last sample
    assert res.of("end_of_stream")


async def test_echo_key(gradium_server, h):
    gradium_server.inject(Fault("echo_key", arg=2))
    res = await h.synth(gradium_server.url, TEXT)
    assert len(res.of("audio")) == 2
    message = res.error["message"]
    assert res.error["code"] == 1011 and res.close_code == 1011
    for shown in ("key test-key", "x-api-key: test-key", "Bearer test-key"):
        assert shown in message
    # the server's own log never holds the key
    assert not [e for e in gradium_server.events_of("open") if "test-key" in str(e)]


async def _raw_frames(url: str, h, **setup) -> list[str]:
    """Every frame of one request, as sent (not parsed)."""
    ws = await h.open_ws(url)
    raw: list[str] = []
    try:
        await h.send(ws, type="setup", output_format="pcm_16000", **setup)
        await h.send(ws, type="text", text=TEXT, **setup)
        await h.send(ws, type="end_of_stream", **setup)
        with contextlib.suppress(ConnectionClosed, TimeoutError, asyncio.TimeoutError):
            while True:
                raw.append(await asyncio.wait_for(ws.recv(), 10))
    finally:
        await ws.close()
    return raw


def _audio_of(raw: list[str]) -> bytes:
    out = b""
    for frame in raw:
        if frame.startswith('{"type":"audio","audio":'):
            out += base64.b64decode(json.loads(frame)["audio"])
    return out


async def test_word_surrogate(gradium_server, h):
    gradium_server.inject(Fault("word_surrogate", arg=2))
    raw = await _raw_frames(gradium_server.url, h)
    words = [r for r in raw if '"type":"text"' in r]
    assert len(words) == 6
    assert '"text":"\\ud800"' in words[2]
    assert json.loads(words[2])["text"] == "\ud800"
    assert _audio_of(raw) == pcm(TEXT) and '"type":"end_of_stream"' in raw[-1]


async def test_word_absurd(gradium_server, h):
    gradium_server.inject(Fault("word_absurd"))
    res = await h.synth(gradium_server.url, TEXT)
    words = res.words()
    assert words[1]["start_s"] == words[1]["stop_s"] == 1e300
    assert words[2]["start_s"] < 10 and res.audio() == pcm(TEXT)


@pytest.mark.parametrize(
    "variant",
    [
        "unhashable_id",
        "number_id",
        "deep",
        "nan_audio",
        "type_object",
        "rate",
        "code",
        "padding",
    ],
)
async def test_bad_frame_variants(gradium_server, h, variant):
    """The malformed frame goes out as is, before the first audio; then the
    request runs normally."""
    from gradium_server.faults import BAD_FRAMES

    gradium_server.inject(Fault("bad_frame", arg=variant))
    raw = await _raw_frames(gradium_server.url, h, client_req_id="q")
    bad = BAD_FRAMES[variant] % {"cid": '"q"'}
    assert raw.count(bad) == 1
    first_audio = next(
        i for i, r in enumerate(raw) if r.startswith('{"type":"audio","audio":')
    )
    assert raw.index(bad) < first_audio
    assert _audio_of(raw) == pcm(TEXT) and '"type":"end_of_stream"' in raw[-1]
    fired = gradium_server.events_of("fault_fired")
    assert fired[0].data["variant"] == variant
