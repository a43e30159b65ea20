"""The latency model: handshake, rtt/2 each way, first audio, real-time factor.

Timing on a shared machine is noisy: medians of several runs, generous bounds, but
lower bounds tight enough that a missing delay fails.
"""

from __future__ import annotations

import statistics
import time

import pytest
from gradium_server import LatencyModel


async def ttfa_once(h, url: str) -> tuple[float, float]:
    """(connect time, time from sending the first text to the first audio)."""
    t0 = time.monotonic()
    ws = await h.open_ws(url)
    connected = time.monotonic()
    await h.send(ws, type="setup", output_format="pcm_16000")
    sent = time.monotonic()
    await h.send(ws, type="text", text="Hello there")
    await h.send(ws, type="end_of_stream")
    res = await h.collect(ws, until=lambda m: m["type"] == "audio")
    first = time.monotonic()
    await ws.close()
    assert res.of("audio")
    return connected - t0, first - sent


async def test_ttfa_rtt40_first_audio150(make_server, h):
    server = await make_server(
        latency=LatencyModel(handshake_s=0.0, rtt_s=0.04, first_audio_s=0.15, rtf=0.3)
    )
    samples = [(await ttfa_once(h, server.url))[1] for _ in range(5)]
    median = statistics.median(samples)
    assert 0.185 <= median <= 0.26, samples  # 0.02 + 0.15 + 0.02
    assert min(samples) >= 0.18


async def test_handshake_delay(make_server, h):
    server = await make_server(
        latency=LatencyModel(handshake_s=0.2, rtt_s=0, first_audio_s=0, rtf=0)
    )
    times = [(await ttfa_once(h, server.url))[0] for _ in range(3)]
    assert 0.195 <= statistics.median(times) <= 0.35, times


async def test_rtt_delays_each_direction(make_server, h):
    server = await make_server(
        latency=LatencyModel(0, rtt_s=0.2, first_audio_s=0, rtf=0)
    )
    ws = await h.open_ws(server.url)
    t0 = time.monotonic()
    await h.send(ws, type="setup", output_format="pcm_16000")
    await h.collect(ws, until=lambda m: m["type"] == "ready")
    ready_rtt = time.monotonic() - t0
    assert 0.195 <= ready_rtt <= 0.35
    # the server processed the setup ~rtt/2 after it arrived, ready was written
    # ~rtt/2 after that
    log = server.log_snapshot()
    arrived = next(e.t for e in log if e.direction == "in" and e.type == "setup")
    started = next(e.t for e in log if e.type == "request_started")
    written = next(e.t for e in log if e.direction == "out" and e.type == "ready")
    assert started - arrived == pytest.approx(0.1, abs=0.04)
    assert written - started == pytest.approx(0.1, abs=0.04)
    await ws.close()


async def test_rtf_paces_frames(make_server, h):
    server = await make_server(latency=LatencyModel(0, 0, 0, rtf=0.25))
    text = "alpha bravo charlie delta echo foxtrot golf"  # ~2.7 s of audio
    res = await h.synth(server.url, text)
    times = [
        t
        for t, m in zip(res.arrival, res.messages, strict=True)
        if m["type"] == "audio"
    ]
    audio_s = res.of("audio")[-1]["stop_s"]
    streamed = times[-1] - times[0]
    expected = (audio_s - 0.08) * 0.25
    assert expected * 0.9 <= streamed <= expected * 1.5 + 0.1, (streamed, expected)


async def test_rtf_zero_is_immediate(gradium_server, h):
    res = await h.synth(
        gradium_server.url, "alpha bravo charlie delta echo foxtrot golf"
    )
    assert res.arrival[-1] - res.arrival[0] < 0.3


async def test_set_latency_applies_to_next_request(gradium_server, h):
    _, fast = await ttfa_once(h, gradium_server.url)
    gradium_server.set_latency(first_audio_s=0.3)
    _, slow = await ttfa_once(h, gradium_server.url)
    assert fast < 0.1
    assert slow >= 0.29
    assert gradium_server.config.latency.first_audio_s == 0.3
