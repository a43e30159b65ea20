"""Interruptions (``TTSRequest.cancel``) in the default ``flush_mode="close"``.

Gradium has no cancel message: closing the socket is the only way to stop it
(protocol reference §2.5). The client keeps a standby socket beside the active one
while requests run, closes the socket of a cancelled request and moves on to the
standby, so the next turn pays no handshake. ``"drop"`` mode (end_of_stream + drop
by id, one socket) is covered in test_client.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import test_client
from gradium_server import LatencyModel
from harness import ext_module
from test_client import SETUP, Recorder, collect, reference, synth, wait_until

ConfigError = ext_module("config").ConfigError
GradiumTTSConfig = ext_module("config").GradiumTTSConfig
Audio = ext_module("gradium_tts").Audio
Failed = ext_module("gradium_tts").Failed
GradiumTTSClient = ext_module("gradium_tts").GradiumTTSClient

make_client = test_client.make_client  # the fixture

RATE = 16000
BYTES_PER_S = RATE * 2
LONG = "this answer is long enough to keep the server busy for several seconds " * 2
RTT = 0.04


def realtime():
    # audio released at real-time pace, so a cancel lands mid-stream
    return LatencyModel(handshake_s=0.05, rtt_s=RTT, first_audio_s=0.05, rtf=1.0)


async def start_long_request(client: GradiumTTSClient):
    """A long request streaming on the active socket; returns it after its first
    audio, with the events seen so far and a task collecting the rest."""
    req = client.request(SETUP)
    req.send_text(LONG)
    seen: list[Any] = []
    first_audio = asyncio.Event()

    async def consume() -> None:
        async for ev in req.events():
            seen.append(ev)
            if isinstance(ev, Audio):
                first_audio.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_audio.wait(), 5)
    return req, seen, task


async def test_cancel_closes_the_socket_and_the_server_stops(make_server, make_client):
    server = await make_server(latency=realtime())
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    req, seen, task = await start_long_request(client)
    cid = req.client_req_id
    assert await wait_until(lambda: server.connections_opened == 2)  # the standby

    cancelled_at = time.monotonic()
    req.cancel()
    n_seen = len(seen)
    await asyncio.wait_for(task, 2)
    await asyncio.sleep(0.5)

    # nothing of the cancelled request reached the caller after the cancel
    assert len(seen) == n_seen
    assert not [e for e in seen if isinstance(e, Failed)]
    # the client closed the socket that carried it, within one round trip
    (close,) = server.events_of("close", conn=1)
    assert close.data["by"] == "client"
    assert close.t - cancelled_at < RTT + 0.25
    # no end_of_stream: the close is what stops Gradium
    assert server.received("end_of_stream", client_req_id=cid) == []
    # and the server stopped: at most 0.25 s of audio went out after the cancel
    late = [e for e in server.events.select("out", "audio", cid) if e.t > cancelled_at]
    late_s = sum(e.data["audio_bytes"] for e in late) / BYTES_PER_S
    assert late_s <= 0.25, late_s
    total_s = len(reference(LONG)) / BYTES_PER_S
    sent_s = (
        sum(e.data["audio_bytes"] for e in server.events.select("out", "audio", cid))
        / BYTES_PER_S
    )
    assert sent_s < total_s / 2  # most of the answer was never generated


@pytest.mark.parametrize("pause_s", [0.0, 0.3])
async def test_next_request_rides_the_standby_without_handshake(
    make_server, make_client, pause_s
):
    server = await make_server(latency=realtime())
    listener = Recorder()
    client = make_client(server.url, listener=listener)
    client.start()
    assert await client.wait_connected(5)
    req, _, task = await start_long_request(client)
    assert await wait_until(lambda: server.connections_opened == 2)
    standby_open = server.events_of("open", conn=2)[0].t

    req.cancel()
    await task
    await asyncio.sleep(pause_s)
    sent_at = time.monotonic()
    nxt = client.request(SETUP)
    nxt.send_text("next turn")
    nxt.end()
    out = await collect(nxt)
    out.assert_done()
    assert out.audio == reference("next turn")

    setup = server.events.select("in", "setup", nxt.client_req_id)[0]
    assert setup.conn == 2  # the standby, open before the cancel: no handshake
    assert standby_open < sent_at
    assert setup.t - sent_at < RTT + 0.1
    # a new standby is opened in the background for the next interruption
    assert await wait_until(lambda: server.connections_opened == 3)
    assert client.connected
    # the status never left "connected"
    assert [s[0] for s in listener.statuses] == ["connecting", "connected"]
    assert listener.errors == []


async def test_cancel_with_another_request_streaming_retires_the_socket(
    make_server, make_client
):
    server = await make_server(latency=realtime())
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    req_a, seen_a, task_a = await start_long_request(client)
    other = "another request still streaming"
    req_b = client.request(SETUP)
    req_b.send_text(other)
    req_b.end()
    collect_b = asyncio.create_task(collect(req_b))
    assert await wait_until(
        lambda: server.sent("audio", client_req_id=req_b.client_req_id)
    )

    req_a.cancel()
    n_seen = len(seen_a)
    await task_a
    # the other request is unharmed: all its audio, on the same socket
    out_b = await collect_b
    out_b.assert_done()
    assert out_b.audio == reference(other)
    assert len(seen_a) == n_seen
    # the cancelled id was told to wrap up, and the socket closed once B was done
    cid_a = req_a.client_req_id
    assert len(server.received("end_of_stream", client_req_id=cid_a)) == 1
    assert await wait_until(lambda: server.events_of("close", conn=1) != [], 3)
    close = server.events_of("close", conn=1)[0]
    assert close.data["by"] == "client"
    done_b = server.events.select("out", "end_of_stream", req_b.client_req_id)[0]
    assert close.t >= done_b.t
    # new requests went elsewhere meanwhile
    _, out = await synth(client, ["after"])
    out.assert_done()
    setups = server.events.select("in", "setup")
    assert setups[-1].conn != 1


async def test_cancel_before_the_standby_is_open_still_closes(make_server, make_client):
    # The standby is opened when the first request starts; a cancel before it
    # is open waits for nothing: the socket closes, the next request takes the
    # standby once its handshake is done.
    server = await make_server(
        latency=LatencyModel(handshake_s=0.3, rtt_s=0.0, first_audio_s=0.0, rtf=1.0)
    )
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    req, _, task = await start_long_request(client)
    req.cancel()
    await task
    assert await wait_until(lambda: server.events_of("close", conn=1) != [], 2)
    _, out = await synth(client, ["next"])
    out.assert_done()
    assert server.events.select("in", "setup")[-1].conn == 2


async def test_idle_client_holds_one_socket(make_server, make_client, monkeypatch):
    """The standby lingers after the last request, then closes: an idle client
    holds just one socket."""
    gt = ext_module("gradium_tts")

    monkeypatch.setattr(gt, "STANDBY_LINGER_S", 0.5)
    server = await make_server()
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    _, out = await synth(client, ["one turn"])
    out.assert_done()
    assert await wait_until(lambda: server.connections_opened == 2)
    assert await wait_until(lambda: server.events_of("close", conn=2) != [], 3)
    assert server.events_of("close", conn=2)[0].data["by"] == "client"
    await asyncio.sleep(0.5)
    assert server.connections_opened == 2  # not reopened while idle
    assert server.events_of("close", conn=1) == []  # the active one stays
    assert client.connected


def test_flush_mode_config():
    base = {"params": {"api_key": "k"}}
    assert GradiumTTSConfig.from_properties(base).flush_mode == "close"
    drop = {"params": {"api_key": "k", "flush_mode": "drop"}}
    config = GradiumTTSConfig.from_properties(drop)
    assert config.flush_mode == "drop"
    assert "flush_mode" not in config.setup_fields()  # never sent to Gradium
    with pytest.raises(
        ConfigError, match=r"params\.flush_mode must be one of close, drop"
    ):
        GradiumTTSConfig.from_properties(
            {"params": {"api_key": "k", "flush_mode": "x"}}
        )
    with pytest.raises(ValueError, match="flush_mode"):
        GradiumTTSClient("ws://127.0.0.1:1/", "k", flush_mode="kill")
