"""Frames a hostile or broken Gradium server sends (issue 25, part A).

- Every frame is parsed in one place: a wrong type or value in any field of any
  message ends at most the request it names, NON_FATAL, with an error saying what
  was wrong; the socket's reader goes on (the other request on it finishes).
- A socket whose reader ends, for whatever reason, is closed and forgotten: after
  ``aclose()`` the server sees no socket of the client open.
- One behaviour with or without orjson / pybase64 (every test runs in both
  modes): a NaN timestamp, excess base64 padding, a lone surrogate.
- Everything the server sends is masked before it is logged or reported: the key
  planted in every string field of every message type never comes out.
- A request the server ended with a scoped error no longer counts against the
  per-socket cap; a frame over ``max_size`` is reported naming its size.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from harness import ext_module
from websockets.asyncio.server import serve

pytestmark = pytest.mark.usefixtures("parser_mode")

KEY = "gsk_HOSTILE-frames-key-7e1d05"
SETUP = {"model_name": "default", "voice_id": "synthetic", "output_format": "pcm_16000"}
PCM = bytes(range(256)) * 10  # 2560 bytes: one frame's worth
AUDIO_B64 = __import__("base64").b64encode(PCM).decode()


def gt() -> Any:
    return ext_module("gradium_tts")


def base_id(cid: str) -> str:
    return cid.split("-r")[0] if "-r" in cid else cid


Script = Callable[[Any, str, "Scripted"], Awaitable[None]]


class Scripted:
    """A loopback WebSocket server. For each request (``setup``), once its
    ``end_of_stream`` came, ``script(ws, cid, server)`` answers; the default
    answer is ready, one audio frame and end_of_stream. Counts open sockets."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or normal
        self.open = 0
        self.opened = 0
        self.setups: list[str] = []
        self._server: Any = None
        self.url = ""

    async def __aenter__(self) -> Scripted:
        self._server = await serve(self._handler, "127.0.0.1", 0, max_size=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handler(self, ws: Any) -> None:
        self.open += 1
        self.opened += 1
        try:
            async for raw in ws:
                msg = json.loads(raw)
                cid = msg.get("client_req_id")
                if msg.get("type") == "setup":
                    self.setups.append(cid)
                elif msg.get("type") == "end_of_stream" and cid is not None:
                    asyncio.ensure_future(self.script(ws, cid, self))
        except Exception:  # noqa: BLE001 - the client went away
            pass
        finally:
            self.open -= 1

    async def wait_all_closed(self, timeout: float = 3.0) -> int:
        for _ in range(int(timeout / 0.02)):
            if not self.open:
                break
            await asyncio.sleep(0.02)
        return self.open


async def send(ws: Any, frame: Any) -> None:
    await ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))


async def normal(ws: Any, cid: str, server: Scripted) -> None:
    await send(
        ws,
        {
            "type": "ready",
            "request_id": "srv-1",
            "sample_rate": 16000,
            "client_req_id": cid,
        },
    )
    await send(
        ws,
        {
            "type": "audio",
            "audio": AUDIO_B64,
            "client_req_id": cid,
            "start_s": 0.0,
            "stop_s": 0.08,
        },
    )
    await send(ws, {"type": "end_of_stream", "client_req_id": cid})


async def collect(req: Any, timeout: float = 10.0) -> list[Any]:
    out: list[Any] = []

    async def run() -> None:
        async for ev in req.events():
            out.append(ev)

    await asyncio.wait_for(run(), timeout)
    return out


def start(client: Any, text: str = "hello") -> Any:
    req = client.request(SETUP)
    req.send_text(text)
    req.end()
    return req


# ----------------------------------------------------------- one place, one request
# (name, the hostile frame for request A (after its ready and first audio), what
# A's error says, or None when the frame names no request and A finishes)
def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE = [
    (
        "eos_unhashable_id",
        lambda cid: {"type": "end_of_stream", "client_req_id": [cid]},
        None,
    ),
    (
        "error_code_minus_minus_1",
        lambda cid: {
            "type": "error",
            "code": "--1",
            "message": "odd",
            "client_req_id": cid,
        },
        "odd",
    ),
    (
        "ready_rate_superscript",
        lambda cid: {"type": "ready", "sample_rate": "\u00b2", "client_req_id": cid},
        "ready with an invalid sample_rate '\u00b2'",
    ),
    (
        "ready_rate_negative",
        lambda cid: {"type": "ready", "sample_rate": -5, "client_req_id": cid},
        "ready with an invalid sample_rate -5",
    ),
    ("deep_array", lambda cid: _deep(5000), None),
    (
        "deep_object_in_field",
        lambda cid: (
            '{"type":"text","client_req_id":"' + cid + '","text":' + _deep(3000) + "}"
        ),
        None,
    ),
    (
        "audio_not_a_string",
        lambda cid: {"type": "audio", "audio": 12345, "client_req_id": cid},
        "not valid base64",
    ),
    (
        "audio_bad_base64",
        lambda cid: {"type": "audio", "audio": "AA!C", "client_req_id": cid},
        "not valid base64",
    ),
    (
        "type_unhashable",
        lambda cid: {"type": {"a": 1}, "client_req_id": cid},
        "no valid type",
    ),
    ("id_a_number", lambda cid: {"type": "end_of_stream", "client_req_id": 7}, None),
    (
        "error_message_object",
        lambda cid: {
            "type": "error",
            "code": 1011,
            "message": {"x": 1},
            "client_req_id": cid,
        },
        "Gradium reported an error",
    ),
    (
        "word_text_list",
        lambda cid: {
            "type": "text",
            "text": ["a"],
            "start_s": "x",
            "client_req_id": cid,
        },
        None,
    ),
    (
        "huge_number",
        lambda cid: (
            '{"type":"audio","client_req_id":"'
            + cid
            + '","audio":"","start_s":1'
            + "0" * 400
            + "}"
        ),
        None,
    ),
    ("not_json", lambda cid: b"\xff\xfe not json", None),
    ("a_list", lambda cid: [cid], None),
]


@pytest.mark.parametrize(
    ("frame", "says"), [(f, s) for _, f, s in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
async def test_a_malformed_frame_ends_at_most_the_request_it_names(frame, says, caplog):
    """Request A gets ready and audio, then the hostile frame; then B, on the same
    socket, is answered. A ends NON_FATAL saying what was wrong (or, when the
    frame names no request, finishes); B always finishes; nothing is "lost"."""
    caplog.set_level(logging.DEBUG, logger="gradium_tts")
    first: dict[str, str] = {}

    async def script(ws: Any, cid: str, server: Scripted) -> None:
        if not first:
            first["a"] = cid
            await send(
                ws, {"type": "ready", "sample_rate": 16000, "client_req_id": cid}
            )
            await send(ws, {"type": "audio", "audio": AUDIO_B64, "client_req_id": cid})
            await send(ws, frame(cid))
            await normal(ws, cid, server)  # ignored if A ended
            return
        await normal(ws, cid, server)

    async with Scripted(script) as server:
        client = gt().GradiumTTSClient(server.url, KEY, response_timeout_s=3.0)
        try:
            a = start(client)
            a_events = await collect(a)
            b = start(client)
            b_events = await collect(b)
            assert b._conn is None and len(server.setups) == 2  # same socket
            assert server.opened == 1
        finally:
            await client.aclose()
        assert await server.wait_all_closed() == 0
    assert isinstance(b_events[-1], gt().Done), b_events
    last = a_events[-1]
    if says is None:
        assert isinstance(last, gt().Done), a_events
    else:
        assert isinstance(last, gt().Failed), a_events
        assert not last.error.fatal
        assert says in last.error.message, last.error
        assert "lost" not in last.error.message
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]


async def test_a_socket_whose_reader_ends_is_closed_and_forgotten(monkeypatch):
    """Whatever ends the reader (here: a bug after a frame), its socket closes:
    the server sees it go, the client forgets it, its request fails once."""
    async with Scripted() as server:
        client = gt().GradiumTTSClient(server.url, KEY, response_timeout_s=3.0)
        try:

            async def broken(conn: Any) -> None:
                raise RuntimeError("a bug")

            monkeypatch.setattr(client, "_proved", broken)
            events = await collect(start(client))
            assert await server.wait_all_closed() == 0  # before aclose
            assert not client._conns
        finally:
            await client.aclose()
    assert sum(isinstance(e, gt().Done | gt().Failed) for e in events) == 1


async def test_after_aclose_the_server_sees_no_socket_open():
    """Twenty requests, each on a socket that gets hostile frames of every kind:
    after aclose, 0 sockets of the client are open at the server."""

    async def script(ws: Any, cid: str, server: Scripted) -> None:
        for _, frame, _ in HOSTILE:
            await send(ws, frame(cid))
        await normal(ws, cid, server)

    async with Scripted(script) as server:
        client = gt().GradiumTTSClient(server.url, KEY, response_timeout_s=2.0)
        try:
            reqs = [start(client, f"request {i}") for i in range(20)]
            outcomes = await asyncio.gather(*(collect(r, 15) for r in reqs))
        finally:
            await client.aclose()
        assert await server.wait_all_closed() == 0
        assert server.opened >= 1
    for events in outcomes:
        assert sum(isinstance(e, gt().Done | gt().Failed) for e in events) == 1


# ---------------------------------------------------------- the same in both modes
async def test_nan_timestamp_and_lone_surrogate_frames_are_dropped_in_both_modes(
    parser_mode,
):
    async def script(ws: Any, cid: str, server: Scripted) -> None:
        await send(ws, {"type": "ready", "sample_rate": 16000, "client_req_id": cid})
        scope = '{"client_req_id":"' + cid + '",'
        await send(
            ws, scope + '"type":"audio","audio":"' + AUDIO_B64 + '","start_s":NaN}'
        )
        await send(ws, scope + '"type":"text","text":"\\ud800","start_s":0.0}')
        await send(
            ws,
            {
                "type": "text",
                "client_req_id": cid,
                "text": "fine",
                "start_s": 0.0,
                "stop_s": 0.1,
            },
        )
        await send(
            ws,
            {
                "type": "audio",
                "audio": AUDIO_B64,
                "client_req_id": cid,
                "start_s": 0.0,
                "stop_s": 0.08,
            },
        )
        await send(ws, {"type": "end_of_stream", "client_req_id": cid})

    async with Scripted(script) as server:
        client = gt().GradiumTTSClient(server.url, KEY)
        try:
            events = await collect(start(client))
        finally:
            await client.aclose()
    G = gt()
    assert [type(e) for e in events] == [G.Ready, G.Word, G.Audio, G.Done], events
    assert events[1].text == "fine" and events[2].pcm == PCM


@pytest.mark.parametrize("data", ["AAEC=", "AAECAw", "AAECAw===", "AA==AA=="])
async def test_audio_with_bad_padding_ends_the_request_in_both_modes(data):
    async def script(ws: Any, cid: str, server: Scripted) -> None:
        await send(ws, {"type": "ready", "sample_rate": 16000, "client_req_id": cid})
        await send(ws, {"type": "audio", "audio": AUDIO_B64, "client_req_id": cid})
        await send(ws, {"type": "audio", "audio": data, "client_req_id": cid})
        await send(ws, {"type": "end_of_stream", "client_req_id": cid})

    async with Scripted(script) as server:
        client = gt().GradiumTTSClient(server.url, KEY)
        try:
            events = await collect(start(client))
        finally:
            await client.aclose()
    G = gt()
    assert [type(e) for e in events] == [G.Ready, G.Audio, G.Failed], events
    assert events[1].pcm == PCM
    assert "not valid base64" in events[-1].error.message
    assert not events[-1].error.fatal


# ------------------------------------------------------------------------- secrets
def _planted(cid: str) -> list[Any]:
    """The key in every string field of every message type."""
    return [
        {
            "type": "ready",
            "request_id": KEY,
            "sample_rate": 16000,
            "client_req_id": cid,
            "model": KEY,
        },
        {"type": KEY, "client_req_id": cid},
        {"type": "flushed", "client_req_id": cid, "note": KEY},
        {
            "type": "text",
            "text": KEY,
            "start_s": 0.0,
            "stop_s": 0.1,
            "client_req_id": cid,
        },
        {
            "type": "text",
            "text": f"x-api-key: {KEY}",
            "start_s": 0.0,
            "client_req_id": cid,
        },
        {"type": "audio", "audio": AUDIO_B64, "client_req_id": cid, "start_s": KEY},
        {"type": "end_of_stream", "client_req_id": KEY},
        {"type": "error", "code": 1011, "message": KEY, "client_req_id": KEY},
        {KEY: KEY},
        KEY,
        {"type": "audio", "audio": KEY, "client_req_id": cid},  # ends the request
    ]


@pytest.mark.parametrize("ending", ["bad_audio", "error", "ready_rate", "close"])
async def test_a_key_planted_in_every_field_never_comes_out(ending, caplog):
    caplog.set_level(logging.DEBUG)

    async def script(ws: Any, cid: str, server: Scripted) -> None:
        frames = _planted(cid)
        if ending != "bad_audio":
            frames = frames[:-1]
        for frame in frames:
            await send(ws, frame)
        if ending == "error":
            await send(
                ws,
                {
                    "type": "error",
                    "code": 1008,
                    "client_req_id": cid,
                    "message": f"API key is revoked or expired: {KEY}",
                },
            )
        elif ending == "ready_rate":
            await send(ws, {"type": "ready", "sample_rate": KEY, "client_req_id": cid})
        elif ending == "close":
            await ws.close(1008, f"bad {KEY}\nsecond line")

    async with Scripted(script) as server:
        client = gt().GradiumTTSClient(server.url, KEY, response_timeout_s=2.0)
        try:
            req = start(client)
            events = await collect(req)
        finally:
            await client.aclose()
    assert isinstance(events[-1], gt().Failed), events
    shown = [repr(e) for e in events] + [str(events[-1].error), req.server_request_id]
    for text in shown:
        assert KEY not in text, text
    for record in caplog.records:
        if record.name.startswith("websockets.server"):
            continue
        assert KEY not in record.getMessage(), record.getMessage()
        assert "\n" not in record.getMessage(), record.getMessage()
    ready = [e for e in events if isinstance(e, gt().Ready)]
    assert ready and ready[0].server_request_id == gt().MASK


async def test_newlines_in_the_server_request_id_are_escaped():
    async def script(ws: Any, cid: str, server: Scripted) -> None:
        await send(
            ws,
            {
                "type": "ready",
                "request_id": "a\nb\r\x1b[31m",
                "sample_rate": 16000,
                "client_req_id": cid,
            },
        )
        await send(ws, {"type": "end_of_stream", "client_req_id": cid})

    async with Scripted(script) as server:
        client = gt().GradiumTTSClient(server.url, KEY)
        try:
            req = start(client)
            await collect(req)
        finally:
            await client.aclose()
    assert req.server_request_id == "a\\nb\\r\\x1b[31m"


# ------------------------------------------------------------------ cap, max_size
async def test_requests_the_server_ended_do_not_count_against_the_cap():
    """20 requests, each ended by a scoped 1008 after ready and audio (socket
    kept): the socket's load is 0 afterwards, and 16 requests still fit on it."""

    async def ended(ws: Any, cid: str, server: Scripted) -> None:
        await send(ws, {"type": "ready", "sample_rate": 16000, "client_req_id": cid})
        await send(ws, {"type": "audio", "audio": AUDIO_B64, "client_req_id": cid})
        await send(
            ws,
            {
                "type": "error",
                "code": 1008,
                "client_req_id": cid,
                "message": "too many concurrent requests",
            },
        )

    async with Scripted(ended) as server:
        client = gt().GradiumTTSClient(server.url, KEY, flush_mode="drop")
        try:
            for _ in range(20):
                events = await collect(start(client))
                assert (
                    isinstance(events[-1], gt().Failed) and not events[-1].error.fatal
                )
            conn = client._active
            assert conn is not None and not conn.routes
            assert conn.load == 0
            server.script = normal
            batch = [client.request(SETUP) for _ in range(16)]
            for r in batch:
                r.send_text("x")
            await asyncio.sleep(0.2)
            assert {r._conn for r in batch} == {conn}
            for r in batch:
                r.end()
            outcomes = await asyncio.gather(*(collect(r) for r in batch))
        finally:
            await client.aclose()
        assert server.opened == 1
    assert all(isinstance(o[-1], gt().Done) for o in outcomes)


async def test_a_frame_over_max_size_is_reported_naming_its_size():
    async def script(ws: Any, cid: str, server: Scripted) -> None:
        await send(ws, {"type": "ready", "sample_rate": 16000, "client_req_id": cid})
        await send(ws, {"type": "audio", "audio": AUDIO_B64, "client_req_id": cid})
        await send(ws, {"type": "x_padding", "pad": "x" * (2**22 + 10)})

    async with Scripted(script) as server:
        client = gt().GradiumTTSClient(server.url, KEY)
        try:
            events = await collect(start(client))
        finally:
            await client.aclose()
    error = events[-1].error
    assert "too large" in error.message and "bytes" in error.message, error
    assert error.vendor_code == "1009"


# --------------------------------------------------------------- through the node
class ScriptedThread:
    """``Scripted`` on its own loop in a thread, for the extension's tests."""

    def __init__(self, script: Script | None = None) -> None:
        import threading

        self.server = Scripted(script)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.server.__aenter__())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.__aexit__())
        self._loop.close()

    def __enter__(self) -> Scripted:
        self._thread.start()
        assert self._ready.wait(10)
        return self.server

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def test_the_node_shows_no_key_and_one_line_per_id(ten_log):
    """Gradium's request id holding the key and a newline, the key in a word and
    in an error: nothing the node sends over the graph holds the key, and its log
    lines (what it passed to ten_env's log calls, on either host) hold neither the
    key nor a raw newline from our TEN request id ("r\\n1") or Gradium's."""
    from harness import KEY as NODE_KEY
    from harness import named, props, run_session

    async def script(ws: Any, cid: str, server: Scripted) -> None:
        scope = {"client_req_id": cid}
        await send(
            ws,
            {
                "type": "ready",
                "sample_rate": 16000,
                **scope,
                "request_id": f"{NODE_KEY}\nsecond",
            },
        )
        await send(ws, {"type": "text", "text": NODE_KEY, "start_s": 0.0, **scope})
        await send(ws, {"type": NODE_KEY, **scope})
        await send(ws, {"type": "audio", "audio": AUDIO_B64, **scope})
        await send(
            ws, {"type": "error", "code": 1011, "message": f"boom {NODE_KEY}", **scope}
        )

    async def play(s: Any) -> None:
        await s.text("r\n1", "Hello there.", True, {"session_id": "s", "turn_id": 1})
        await s.wait_end("r\n1")
        await s.wait_for(lambda recs: [r for r in recs if r.name == "error"])

    with ScriptedThread(script) as server:
        sess = run_session(props(server, enable_words=True), play)
    for r in sess.records:
        assert NODE_KEY not in json.dumps(r.props), (r.name, r.props)
    (error,) = named(sess.records, "error")
    vendor = error.props["vendor_info"]["message"]
    assert "boom ***" in vendor and "gradium request_id ***\\nsecond" in vendor
    (end,) = named(sess.records, "tts_audio_end")
    assert end.props["reason"] == 3  # an error
    lines = [line.msg for line in ten_log.lines]
    assert NODE_KEY not in ten_log.text()
    assert any("r\\n1" in line for line in lines)
    for line in lines:
        assert NODE_KEY not in line, line
        assert "\n" not in line, line
