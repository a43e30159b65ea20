"""ServerThread (synchronous use), the pytest fixtures, and the server's log."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from gradium_server import (
    Fault,
    GradiumServer,
    LatencyModel,
    LogEntry,
    ServerConfig,
    ServerThread,
    synthesize_synthetic,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sync_connect


def sync_synth(url: str, text: str, key: str = "k", **setup) -> list[dict]:
    """A blocking raw client, as a synchronous (TEN-style) test would have."""
    setup.setdefault("output_format", "pcm_16000")
    msgs = []
    with sync_connect(url, additional_headers={"x-api-key": key}) as ws:
        try:
            ws.send(json.dumps({"type": "setup", **setup}))
            ws.send(json.dumps({"type": "text", "text": text}))
            ws.send(json.dumps({"type": "end_of_stream"}))
        except ConnectionClosed:  # rejected key: the server closed already
            pass
        try:
            for frame in ws:  # ends quietly on close 1000
                msgs.append(json.loads(frame))
        except ConnectionClosed:  # error closes (1008, 1011...)
            pass
    return msgs


def audio_of(msgs: list[dict]) -> bytes:
    return b"".join(base64.b64decode(m["audio"]) for m in msgs if m["type"] == "audio")


def test_server_thread_sync_usage():
    with ServerThread(ServerConfig.for_tests()) as server:
        assert server.url.startswith("ws://127.0.0.1:") and server.url.endswith(
            "/api/speech/tts"
        )
        msgs = sync_synth(server.url, "thread mode")
        assert (
            audio_of(msgs)
            == synthesize_synthetic("thread mode", 16000).samples.tobytes()
        )
        assert msgs[-1]["type"] == "end_of_stream"
        assert server.connections_opened == 1
        assert [m["type"] for m in server.received()] == [
            "setup",
            "text",
            "end_of_stream",
        ]
        assert server.received(type="text")[0]["text"] == "thread mode"
        # faults from the test thread
        server.inject(Fault("error_1011", arg=0))
        msgs = sync_synth(server.url, "boom")
        assert msgs[-1]["type"] == "error" and msgs[-1]["code"] == 1011
        # latency from the test thread
        lat = server.set_latency(first_audio_s=0.25)
        assert lat == LatencyModel(0, 0, 0.25, 0) and server.config.latency == lat
        t0 = time.monotonic()
        sync_synth(server.url, "slow")
        assert time.monotonic() - t0 >= 0.24
        server.set_config(api_keys={"only"})
        msgs = sync_synth(server.url, "x", key="other")
        assert msgs == [
            {"type": "error", "message": "API key is revoked or expired", "code": 1008}
        ]
        port = server.port
    # stopped: the port is closed
    with pytest.raises(OSError):
        sync_connect(f"ws://127.0.0.1:{port}/api/speech/tts", open_timeout=2)


def test_server_thread_concurrent_clients():
    with ServerThread(
        ServerConfig.for_tests(latency=LatencyModel(0, 0.02, 0.05, 0.2))
    ) as server:
        results: dict[int, bytes] = {}

        def worker(i: int) -> None:
            results[i] = audio_of(sync_synth(server.url, f"client number {i}"))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert server.connections_opened == 4
        for i in range(4):
            assert (
                results[i]
                == synthesize_synthetic(f"client number {i}", 16000).samples.tobytes()
            )
        conns = {e.conn for e in server.log_snapshot() if e.direction == "in"}
        assert conns == {1, 2, 3, 4}


def test_thread_fixture(gradium_server_thread):
    assert isinstance(gradium_server_thread, ServerThread)
    assert gradium_server_thread.config.voice_engine == "synthetic"
    assert gradium_server_thread.config.latency == LatencyModel.instant()
    assert (
        sync_synth(gradium_server_thread.url, "fixture")[-1]["type"] == "end_of_stream"
    )


async def test_async_fixture(gradium_server, h):
    assert isinstance(gradium_server, GradiumServer)
    assert gradium_server.config.latency == LatencyModel.instant()
    res = await h.synth(gradium_server.url, "fixture")
    assert res.of("end_of_stream")


async def test_async_context_manager(h):
    async with GradiumServer(ServerConfig.for_tests()) as server:
        url = server.url
        assert (await h.synth(url, "ctx")).of("end_of_stream")
    with pytest.raises(OSError):
        await h.open_ws(url)


async def test_log_contents(gradium_server, h):
    res = await h.synth(
        gradium_server.url, "log me", client_req_id="c1", key="secret-key-123"
    )
    assert res.of("end_of_stream")
    log = gradium_server.log_snapshot()
    assert all(isinstance(e, LogEntry) for e in log)
    assert all(e.t <= time.monotonic() for e in log)
    ins = [e for e in log if e.direction == "in"]
    assert [e.type for e in ins] == ["setup", "text", "end_of_stream"]
    assert all(e.conn == 1 and e.client_req_id == "c1" for e in ins)
    assert ins[1].text == "log me"
    assert json.loads(ins[0].raw)["client_req_id"] == "c1"
    outs = [e for e in log if e.direction == "out"]
    assert outs[0].type == "ready" and outs[-1].type == "end_of_stream"
    audio = [e for e in outs if e.type == "audio"]
    assert sum(e.data["audio_bytes"] for e in audio) == len(res.audio())
    assert [e.text for e in outs if e.type == "text"] == ["log", "me"]
    events = [e.type for e in log if e.direction == "event"]
    for name in ("connect", "open", "request_started", "request_finished", "close"):
        assert name in events
    assert gradium_server.events_of("open")[0].data["key_ok"] is True
    assert "secret-key-123" not in repr(log)
    assert gradium_server.received(type="text", client_req_id="c1") == [
        {"type": "text", "text": "log me", "client_req_id": "c1"}
    ]
    assert gradium_server.received(client_req_id="nope") == []
    sent = gradium_server.sent(type="audio")
    assert sent and "audio" not in sent[0] and sent[0]["audio_bytes"] > 0
    gradium_server.clear_log()
    assert gradium_server.log_snapshot() == []


async def test_log_records_client_close_and_errors(gradium_server, h):
    ws = await h.open_ws(gradium_server.url)
    await h.send(ws, type="setup", output_format="pcm_16000", close_ws_on_eos=False)
    await ws.close(1000)
    for _ in range(50):
        if gradium_server.events_of("close"):
            break
        await __import__("asyncio").sleep(0.01)
    close = gradium_server.events_of("close")[0].data
    assert (
        close["by"] == "client"
        and close["code"] == 1000
        and close["active_requests"] == 1
    )
    res = await h.synth(gradium_server.url, "x", output_format="nope")
    assert res.close_code == 1008
    err = gradium_server.events_of("protocol_error")[0].data
    assert err["code"] == 1008 and err["closes"] is True
    assert gradium_server.events_of("close", conn=2)[0].data["by"] == "server"
