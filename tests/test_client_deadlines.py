"""One liveness deadline per request, shared by its replay.

Once a request's text has ended, ``response_timeout_s`` (default 5 s) without a
message from Gradium ends it, or replays it once if no audio arrived yet; the
replay shares the budget, so a request without audio ends at most twice the
deadline after its last text. Every fault the local server can inject ends its
request within 10 s of the request's first text at default settings.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import test_client
from gradium_server import Fault, LatencyModel
from gradium_server.faults import CONNECTION_KINDS, KINDS
from harness import ext_module
from test_client import API_KEY, SETUP, Outcome, collect, reference, synth

Done = ext_module("gradium_tts").Done
Failed = ext_module("gradium_tts").Failed
GradiumTTSClient = ext_module("gradium_tts").GradiumTTSClient
Ready = ext_module("gradium_tts").Ready

make_client = test_client.make_client  # the fixture

TEXT = "hello there"  # 0.72 s of audio: 9 frames (slow_drip: 4.5 s)
FAULTS = sorted(KINDS) + [
    "accept_then_close:reset",
    "bad_frame:deep",
    "bad_frame:padding",
    "bad_frame:rate",
]


async def one_fault(make_server, spec: str) -> tuple[str, float, Outcome]:
    kind, _, arg = spec.partition(":")
    server = await make_server()
    client = GradiumTTSClient(server.url, API_KEY)  # default settings
    try:
        if kind not in CONNECTION_KINDS:
            client.start()
            assert await client.wait_connected(5)
        server.inject(Fault(kind, arg=arg or None))
        req = client.request(SETUP)
        started = time.monotonic()
        req.send_text(TEXT)
        req.end()
        out = await collect(req, timeout=30)
        return spec, time.monotonic() - started, out
    finally:
        await client.aclose()


async def test_every_fault_ends_its_request_within_10_s(make_server):
    results = await asyncio.gather(*(one_fault(make_server, f) for f in FAULTS))
    report = {
        spec: (round(took, 2), type(out.last).__name__) for spec, took, out in results
    }
    for spec, took, out in results:
        terminal = [e for e in out.events if isinstance(e, Done | Failed)]
        assert len(terminal) == 1 and out.last is terminal[0], (spec, out.events)
        assert took < 10.5, report  # 2 x response_timeout_s, timer slack
        if isinstance(out.last, Failed):
            assert out.error.fatal is False, (spec, out.error)
    outcome = {spec: type(out.last) for spec, _, out in results}
    # a failure before any audio is replayed and invisible; noise is ignored
    for spec in (
        "refuse",
        "reject_handshake",
        "accept_then_close",
        "accept_then_close:reset",
        "stall_after_ready",
        "non_json",
        "unknown_type",
        "oversized",
        "slow_drip",
        "close_after",  # closes 2.5 s after the upgrade: the request was done
        "bad_frame",  # names no request: dropped
        "bad_frame:deep",
        "bad_frame:padding",  # names the request before audio: replayed
        "bad_frame:rate",
        "word_surrogate",  # the word only
        "word_absurd",
    ):
        assert outcome[spec] is Done, report
    for spec in ("drop_after", "error_1008", "error_1011", "stall_mid_stream"):
        assert outcome[spec] is Failed, report  # audio had been heard: no replay
    by_spec = {spec: (took, out) for spec, took, out in results}
    # an upgrade never answered: the request's one deadline ends it, replay
    # included, 2 x 5 s after its last text (not 2 x connect_timeout_s)
    took, out = by_spec["hang_handshake"]
    assert isinstance(out.last, Failed), report
    assert (out.error.vendor_code, out.error.phase) == ("timeout", "connect")
    assert 9.5 <= took < 10.5, report
    took, out = by_spec["stall_after_ready"]
    assert out.audio == reference(TEXT)
    assert 4.5 <= took < 8.0, report  # noticed after the 5 s deadline, once
    took, out = by_spec["stall_mid_stream"]
    assert out.error.vendor_code == "timeout"
    assert 4.5 <= took < 7.0, report


async def test_two_stalls_end_within_twice_the_deadline(make_server, make_client):
    server = await make_server()
    client = make_client(server.url, response_timeout_s=0.5)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("stall_after_ready", count=2))
    started = time.monotonic()
    _, out = await synth(client, ["stalls twice"])
    took = time.monotonic() - started
    assert out.error.vendor_code == "timeout"
    assert 0.9 <= took <= 1.5, took  # 2 x 0.5 s, not more
    assert len(server.received("setup")) == 2  # replayed once


async def test_replay_shares_the_deadline_when_the_first_attempt_failed_late(
    make_server, make_client
):
    """The first attempt hears its ready late (0.8 s round trip), stalls, and its
    socket is lost just before its own deadline, without audio; the replay then
    stalls too. The request still ends 2 x 1 s after its last text, not 1 s after
    the replay's ready."""
    server = await make_server(
        latency=LatencyModel(handshake_s=0.0, rtt_s=0.8, first_audio_s=0.0, rtf=0.0)
    )
    client = make_client(server.url, response_timeout_s=1.0)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("stall_after_ready", count=2))
    req = client.request(SETUP)
    started = time.monotonic()
    req.send_text("late failure")
    req.end()
    first = await asyncio.wait_for(req.events().__anext__(), 5)
    assert isinstance(first, Ready)  # at ~0.8 s
    await asyncio.sleep(1.6 - (time.monotonic() - started))
    assert req._conn is not None
    req._conn.ws.transport.abort()  # lost, no audio yet: replayed
    rest = await collect(req)
    took = time.monotonic() - started
    assert rest.error.vendor_code == "timeout"
    assert len(server.received("setup")) == 2
    assert 1.8 <= took <= 2.4, took  # a fresh deadline would end it at ~3.4 s


@pytest.mark.parametrize(
    ("retry_for_s", "low", "high"), [(None, 0.9, 1.5), (1.0, 2.4, 3.4)]
)
async def test_retry_for_s_extends_the_wait_for_first_audio(
    make_server, make_client, retry_for_s, low, high
):
    server = await make_server()
    client = make_client(server.url, response_timeout_s=0.5)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("stall_after_ready", count=2))
    setup = dict(SETUP)
    if retry_for_s is not None:
        setup["retry_for_s"] = retry_for_s
    started = time.monotonic()
    _, out = await synth(client, ["waiting for a worker"], setup=setup)
    took = time.monotonic() - started
    assert out.error.vendor_code == "timeout"
    assert low <= took <= high, took
