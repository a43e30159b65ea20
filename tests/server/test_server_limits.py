"""Service limits (reference §5): session cap, idle timeout (max_concurrent is in
test_server_multiplex.py)."""

from __future__ import annotations

import asyncio
import time

from gradium_server import LatencyModel, Limits


async def test_session_cap(make_server, h):
    server = await make_server(limits=Limits(session_cap_s=0.6, idle_timeout_s=60))
    t0 = time.monotonic()
    ws = await h.open_ws(server.url)
    await h.send(ws, type="setup", output_format="pcm_16000", close_ws_on_eos=False)
    res = h.Result()
    # keep the socket busy so the idle timeout cannot be what closes it
    for _ in range(6):
        await h.send(ws, type="text", text="tick")
        await h.collect(ws, res, timeout=0.15)
        if res.closed:
            break
    await h.collect(ws, res, timeout=2)
    elapsed = time.monotonic() - t0
    assert res.error == {
        "type": "error",
        "message": "session duration exceeded",
        "code": 1008,
    }
    assert res.close_code == 1008
    assert 0.55 < elapsed < 1.5
    assert res.of("audio")  # it was working until the cap


async def test_idle_timeout_without_messages(make_server, h):
    server = await make_server(limits=Limits(idle_timeout_s=0.4))
    t0 = time.monotonic()
    ws = await h.open_ws(server.url)
    res = await h.collect(ws, timeout=3)
    elapsed = time.monotonic() - t0
    assert res.error["code"] == 1008 and "idle" in res.error["message"]
    assert res.close_code == 1008
    assert 0.35 < elapsed < 1.2


async def test_client_messages_keep_socket_alive(make_server, h):
    server = await make_server(limits=Limits(idle_timeout_s=0.5))
    ws = await h.open_ws(server.url)
    await h.send(ws, type="setup", output_format="pcm_16000", close_ws_on_eos=False)
    res = h.Result()
    for _ in range(5):  # 1.0 s of activity, 0.2 s apart
        await h.send(ws, type="text", text="a")
        await h.collect(ws, res, timeout=0.2)
    assert not res.closed and not res.of("error")
    t0 = time.monotonic()
    await h.collect(ws, res, timeout=3)  # now silent: idle timeout fires
    assert res.error["code"] == 1008 and res.close_code == 1008
    assert 0.2 < time.monotonic() - t0 < 1.2


async def test_active_synthesis_is_not_idle(make_server, h):
    # 3.3 s of audio at rtf 0.5 streams for ~1.6 s, longer than the idle timeout
    server = await make_server(
        latency=LatencyModel(0, 0, 0, rtf=0.5), limits=Limits(idle_timeout_s=0.4)
    )
    res = await h.synth(
        server.url, "alpha bravo charlie delta echo foxtrot golf hotel india"
    )
    assert not res.of("error")
    assert res.of("end_of_stream") and res.close_code == 1000
    assert res.arrival[-1] - res.arrival[0] > 1.2


async def test_limits_can_change_at_runtime(gradium_server, h):
    gradium_server.set_limits(idle_timeout_s=0.3)
    ws = await h.open_ws(gradium_server.url)
    res = await h.collect(ws, timeout=2)
    assert res.close_code == 1008
    await asyncio.sleep(0)
