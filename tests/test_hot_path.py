"""The audio hot path (issue 17): what the client and the extension do per frame.

- Audio that arrived while the consumer was busy is handed over as one event
  (bytes exact and in order, at most ``COALESCE_MAX_BYTES``, never across a word
  or a request); the first audio of a request always comes alone.
- Word timestamps nobody asked for are dropped on arrival.
- Audio wakes no task but the consumer (not the request's worker), and the
  liveness deadline is one timer, not re-armed per frame, and still fires.
- orjson / pybase64 are used when installed; without them the client falls back
  to json / base64 and behaves the same.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import pytest_asyncio
from gradium_server import (
    Fault,
    ServerConfig,
    ServerThread,
    synthesize_synthetic,
)
from gradium_server.formats import pcm16le_bytes
from harness import (
    check_request_sequences,
    errors,
    ext_module,
    frames_between,
    props,
    run_session,
)

# Every test here runs twice: with orjson / pybase64, and with both hidden.
pytestmark = pytest.mark.usefixtures("parser_mode")

gradium_tts = ext_module("gradium_tts")
Audio, Done, Failed = gradium_tts.Audio, gradium_tts.Done, gradium_tts.Failed
Ready, Word = gradium_tts.Ready, gradium_tts.Word

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key-0123456789"
RATE = 16000
FRAME_BYTES = RATE * 2 * 80 // 1000  # the local server's 80 ms frames
SETUP = {"model_name": "default", "voice_id": "synthetic", "output_format": "pcm_16000"}
LONG = (
    "This answer is long enough to span many frames of audio, so that several "
    "of them arrive together while the consumer is still busy elsewhere."
)


def reference(text: str) -> bytes:
    return pcm16le_bytes(synthesize_synthetic(text, RATE).samples)


@pytest_asyncio.fixture
async def client(make_server):
    server = await make_server()
    c = gradium_tts.GradiumTTSClient(server.url, KEY, response_timeout_s=5.0)
    c.start()
    assert await c.wait_connected(5)
    c.server = server
    yield c
    await c.aclose()


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def drain(req) -> list:
    out = []

    async def consume() -> None:
        async for ev in req.events():
            out.append(ev)

    await asyncio.wait_for(consume(), 10)
    return out


# --------------------------------------------------------------------- coalescing
async def test_audio_received_while_busy_comes_as_one_event_bytes_exact(client):
    req = client.request(SETUP)
    req.send_text(LONG)
    req.end()
    await until(lambda: req._finished)  # everything arrived; nobody consumed yet
    events = await drain(req)
    audio = [e for e in events if isinstance(e, Audio)]
    assert isinstance(events[-1], Done)
    assert b"".join(e.pcm for e in audio) == reference(LONG)  # exact, in order
    assert len(audio[0].pcm) == FRAME_BYTES  # the first audio alone
    assert all(len(e.pcm) <= gradium_tts.COALESCE_MAX_BYTES for e in audio)
    assert max(len(e.pcm) for e in audio[1:]) > FRAME_BYTES  # coalesced
    sent = client.server.sent("audio")
    assert len(audio) < len(sent)
    # start/stop of a coalesced event: its first and last message's
    assert audio[0].start_s == 0.0
    assert audio[-1].stop_s == pytest.approx(sent[-1]["stop_s"])


async def test_the_first_audio_is_handed_over_alone_and_at_once(client):
    req = client.request(SETUP, words=False)
    req.send_text(LONG)
    req.end()
    events = req.events()
    first = await asyncio.wait_for(events.__anext__(), 5)
    assert isinstance(first, Ready)
    first_audio = await asyncio.wait_for(events.__anext__(), 5)
    assert isinstance(first_audio, Audio)
    assert len(first_audio.pcm) == FRAME_BYTES
    rest = [first, first_audio, *await drain(req)]
    got = b"".join(e.pcm for e in rest if isinstance(e, Audio))
    assert got == reference(LONG)


async def test_coalescing_never_crosses_a_word_or_a_request(client):
    texts = {"a": LONG, "b": "A second request on the same socket, at the same time."}
    reqs = {k: client.request(SETUP) for k in texts}
    for k, text in texts.items():
        reqs[k].send_text(text)
        reqs[k].end()
    assert reqs["a"]._conn is reqs["b"]._conn  # multiplexed on one socket
    await until(lambda: all(r._finished for r in reqs.values()))
    for k, req in reqs.items():
        events = await drain(req)
        audio = b"".join(e.pcm for e in events if isinstance(e, Audio))
        assert audio == reference(texts[k])
        words = [e for e in events if isinstance(e, Word)]
        assert [w.text for w in words] == texts[k].split()
        # the server sends each word before the frame holding its start: audio
        # coalesced across a word would put that word after its own audio
        before = 0
        for e in events:
            if isinstance(e, Audio):
                before += len(e.pcm) // 2
            elif isinstance(e, Word):
                assert before <= round(e.start_s * RATE), (e, before)


async def test_unwanted_words_are_dropped_on_arrival(client):
    req = client.request(SETUP, words=False)
    req.send_text(LONG)
    req.end()
    events = await drain(req)
    assert not [e for e in events if isinstance(e, Word)]
    assert client.server.sent("text")  # the server did send them
    assert b"".join(e.pcm for e in events if isinstance(e, Audio)) == reference(LONG)
    assert isinstance(events[-1], Done)


class CountingEvent(asyncio.Event):
    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


async def test_audio_does_not_wake_the_requests_worker(client):
    req = client.request(SETUP)
    req._wakeup = CountingEvent()  # the worker waits on it for more text
    req.send_text(LONG)  # no end yet: the worker stays, waiting for text
    events = req.events()
    heard = 0
    while heard < 5:
        ev = await asyncio.wait_for(events.__anext__(), 5)
        heard += isinstance(ev, Audio)
    await until(lambda: len(client.server.sent("audio")) >= 20)
    await asyncio.sleep(0.05)
    assert req._wakeup.sets == 1  # send_text's only
    req.end()
    rest = await drain(req)
    assert isinstance(rest[-1], Done)


async def test_the_deadline_is_one_timer_and_fires_after_the_last_frame(make_server):
    server = await make_server()
    c = gradium_tts.GradiumTTSClient(server.url, KEY, response_timeout_s=0.5)
    try:
        c.start()
        assert await c.wait_connected(5)
        server.inject(Fault("stall_mid_stream", arg=6))
        req = c.request(SETUP)
        req.send_text(LONG)
        req.end()
        timer = req._timer
        assert timer is not None
        events = req.events()
        last_audio = None
        while True:
            ev = await asyncio.wait_for(events.__anext__(), 5)
            if isinstance(ev, Audio):
                last_audio = time.monotonic()
                assert req._timer is timer  # frames only record their time
            if isinstance(ev, Done | Failed):
                break
        assert isinstance(ev, Failed) and ev.error.vendor_code == "timeout"
        assert last_audio is not None
        assert 0.4 <= time.monotonic() - last_audio <= 1.2
    finally:
        await c.aclose()


def test_extension_hands_over_fewer_larger_frames_first_one_alone():
    with ServerThread(ServerConfig.for_tests()) as server:

        async def script(s):
            await s.text("r1", LONG, end=True)
            await s.wait_end("r1")
            await s.text("r2", LONG, end=True)
            await s.wait_end("r2")

        sess = run_session(props(server), script)
        sent = server.sent("audio")
    check_request_sequences(sess.records, ["r1", "r2"], reasons={"r1": 1, "r2": 1})
    assert not errors(sess.records)
    for rid in ("r1", "r2"):
        frames = frames_between(sess.records, rid)
        assert b"".join(f.pcm for f in frames) == reference(LONG)
        assert len(frames[0].pcm) == FRAME_BYTES  # TTFB: the first frame at once
        assert all(len(f.pcm) <= gradium_tts.COALESCE_MAX_BYTES for f in frames)
        position = 0
        for f in frames:  # timestamps still contiguous
            assert abs(f.timestamp - position) <= 1
            position += len(f.pcm) * 1000 / (RATE * 2)
    frames = frames_between(sess.records, "r1") + frames_between(sess.records, "r2")
    assert len(frames) < len(sent)


# ------------------------------------------------------------------- fast paths
def test_fast_paths_are_used_when_installed(parser_mode):
    if parser_mode == "fallback":
        pytest.skip("the fast modules are hidden in this mode")
    orjson = pytest.importorskip("orjson")
    pybase64 = pytest.importorskip("pybase64")
    assert gradium_tts._loads is orjson.loads
    assert gradium_tts.pybase64 is pybase64


@pytest.mark.parametrize(
    "data",
    [
        "",
        "AAEC",
        base64.b64encode(bytes(range(256)) * 15).decode(),
        b"AAECAw==",
        "AAECAw",  # padding missing
        "AAEC\nAw==",  # whitespace
        "AA!C",  # not base64
        "AAECAw===",
    ],
)
def test_b64decode_agrees_with_the_standard_library(data):
    try:
        want: bytes | type = base64.b64decode(data, validate=True)
    except binascii.Error:
        want = binascii.Error
    if want is binascii.Error:
        with pytest.raises(binascii.Error):
            gradium_tts._b64decode(data)
    else:
        assert gradium_tts._b64decode(data) == want


@pytest.mark.parametrize("raw", [b'{"type": "audio"}', '{"a": [1, 2.5, "\\u00e9"]}'])
def test_loads_agrees_with_the_standard_library(raw):
    assert gradium_tts._loads(raw) == json.loads(raw)


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe{}", "{"])
def test_loads_raises_value_error_on_bad_input(raw):
    with pytest.raises(ValueError):
        gradium_tts._loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b'{"a": 1e400}',
        b'{"a": "\\ud800"}',  # a lone surrogate escape
        b'{"a": "x\\udc00y"}',
        b'{"a": "\\ud800", "a": 0}',  # replaced by a duplicate key: orjson refuses it still
        b'["\\ud83d", "\\ude00"]',  # a pair split across two strings
        b"[" * 5000 + b"]" * 5000,
        b"[" * 1025 + b"]" * 1025,  # orjson's limit; CPython 3.13 alone parses it
        b'{"a": ' * 1025 + b"1" + b"}" * 1025,
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_loads_refuses_the_same_frames_in_both_modes(raw):
    with pytest.raises((ValueError, RecursionError)):
        gradium_tts._loads(raw)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (b'{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),  # a pair is fine
        (b'{"a": 123456789012345678901234567890}', {"a": 1.2345678901234568e29}),
        (b'{"a": 18446744073709551615}', {"a": 2**64 - 1}),
        (b'{"a": "\\\\ud800"}', {"a": "\\ud800"}),  # an escaped backslash, then text
        (b"[" + b"[]," * 2000 + b"[]]", [[]] * 2001),  # many brackets, shallow
    ],
)
def test_loads_reads_the_same_values_in_both_modes(raw, want):
    assert gradium_tts._loads(raw) == want


@pytest.mark.parametrize(
    "data", ["AAEC=", "AAECAw=", "AAECAw", "AAECAw===", "AA==AA=="]
)
def test_b64decode_refuses_bad_padding_in_both_modes(data):
    with pytest.raises(binascii.Error):
        gradium_tts._b64decode(data)


FALLBACK = textwrap.dedent(
    """
    import asyncio, base64, json, sys
    sys.modules["orjson"] = None  # import fails: not installed
    sys.modules["pybase64"] = None
    sys.path[:0] = [{standalone!r}, {tests!r}]
    import tenhost
    tenhost.ensure()
    from harness import ext_module
    from gradium_server import ServerConfig, ServerThread, synthesize_synthetic
    from gradium_server.formats import pcm16le_bytes

    g = ext_module("gradium_tts")
    assert g.orjson is None and g.pybase64 is None
    assert g._loads is g._json_loads
    assert g._b64decode("AAECAw==") == b"\\x00\\x01\\x02\\x03"

    text = "Falling back to the standard library works the same."

    async def main(url):
        c = g.GradiumTTSClient(url, "test-key-0123456789")
        try:
            req = c.request({setup!r}, words=False)
            req.send_text(text)
            req.end()
            audio = b""
            async for ev in req.events():
                if isinstance(ev, g.Audio):
                    audio += ev.pcm
                last = ev
            assert isinstance(last, g.Done), last
            return audio
        finally:
            await c.aclose()

    with ServerThread(ServerConfig.for_tests()) as server:
        audio = asyncio.run(main(server.url))
    assert audio == pcm16le_bytes(synthesize_synthetic(text, 16000).samples)
    print("fallback ok")
    """
)


def test_without_orjson_and_pybase64_the_client_falls_back():
    script = FALLBACK.format(
        standalone=str(ROOT / "standalone"), tests=str(ROOT / "tests"), setup=SETUP
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fallback ok" in done.stdout
