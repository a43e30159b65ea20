"""The Gradium WebSocket client (``gradium_tts.py``) against the local Gradium server.

Every test starts its own ``GradiumServer`` (instant latency and the deterministic
synthetic voice unless it needs otherwise) and checks the client's behaviour through
what the consumer sees *and* what the server logged on the wire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from gradium_server import (
    Fault,
    GradiumServer,
    LatencyModel,
    Limits,
    synthesize_synthetic,
)
from gradium_server.formats import pcm16le_bytes
from harness import ext_module

Audio = ext_module("gradium_tts").Audio
Done = ext_module("gradium_tts").Done
Failed = ext_module("gradium_tts").Failed
GradiumError = ext_module("gradium_tts").GradiumError
GradiumTTSClient = ext_module("gradium_tts").GradiumTTSClient
Ready = ext_module("gradium_tts").Ready
TTSRequest = ext_module("gradium_tts").TTSRequest
Word = ext_module("gradium_tts").Word

API_KEY = "gsk_SECRET-test-key-7f3a91"
RATE = 16000
SETUP = {
    "model_name": "default",
    "voice_id": "synthetic",
    "output_format": f"pcm_{RATE}",
}


# --------------------------------------------------------------------------- helpers
def reference(*texts: str) -> bytes:
    """The synthetic voice's audio for ``texts`` (tokens render independently, so
    texts split at whitespace concatenate to the audio of the whole)."""
    return b"".join(pcm16le_bytes(synthesize_synthetic(t, RATE).samples) for t in texts)


@dataclass
class Outcome:
    events: list[Any] = field(default_factory=list)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def audio(self) -> bytes:
        return b"".join(e.pcm for e in self.of(Audio))

    @property
    def last(self) -> Any:
        return self.events[-1] if self.events else None

    @property
    def error(self) -> GradiumError:
        assert isinstance(self.last, Failed), f"expected Failed, got {self.last!r}"
        return self.last.error

    def assert_done(self) -> None:
        assert isinstance(self.last, Done), f"expected Done, got {self.last!r}"
        terminal = [e for e in self.events if isinstance(e, Done | Failed)]
        assert len(terminal) == 1
        assert len(self.of(Ready)) == 1
        assert isinstance(self.events[0], Ready)


async def collect(req: TTSRequest, timeout: float = 10.0) -> Outcome:
    out = Outcome()

    async def consume() -> None:
        async for ev in req.events():
            out.events.append(ev)

    await asyncio.wait_for(consume(), timeout)
    return out


async def synth(
    client: GradiumTTSClient,
    texts: list[str],
    *,
    setup: dict[str, Any] | None = None,
    timeout: float = 10.0,
) -> tuple[TTSRequest, Outcome]:
    req = client.request(setup or SETUP)
    for text in texts:
        req.send_text(text)
    req.end()
    return req, await collect(req, timeout)


async def wait_until(predicate, timeout: float = 5.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


def entries(server: GradiumServer, direction: str, type: str | None = None):
    return server.events.select(direction, type)


class Recorder:
    """A ClientListener that records every call."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str]] = []
        self.connected: list[int] = []
        self.errors: list[GradiumError] = []

    async def on_connection_status(self, current: str, last: str) -> None:
        self.statuses.append((current, last))

    async def on_connected(self, connect_ms: int) -> None:
        self.connected.append(connect_ms)

    async def on_connection_error(self, error: GradiumError) -> None:
        self.errors.append(error)


@pytest_asyncio.fixture
async def make_client(make_server):
    clients: list[GradiumTTSClient] = []

    def factory(url: str, key: str = API_KEY, **kw: Any) -> GradiumTTSClient:
        kw.setdefault("connect_timeout_s", 5.0)
        kw.setdefault("response_timeout_s", 5.0)
        client = GradiumTTSClient(url, key, **kw)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


# ------------------------------------------------------------------ 1. prewarm / reuse
@pytest.mark.parametrize(("flush_mode", "sockets"), [("close", 2), ("drop", 1)])
async def test_prewarm_and_one_socket_for_sequential_requests(
    make_server, make_client, flush_mode, sockets
):
    server = await make_server()
    client = make_client(server.url, flush_mode=flush_mode)
    client.start()
    assert await client.wait_connected(5)
    assert await wait_until(lambda: server.connections_opened == 1)
    assert entries(server, "in") == []  # connected before any request

    texts = ["first one", "second request here", "third"]
    for text in texts:
        _, out = await synth(client, [text])
        out.assert_done()
        assert out.audio == reference(text)

    # every request rode the prewarmed socket; "close" mode keeps a standby beside
    # it once requests run, "drop" mode never opens a second socket
    assert await wait_until(lambda: server.connections_opened == sockets)
    await asyncio.sleep(0.2)
    assert server.connection_attempts == sockets
    assert client.connections_opened == sockets
    setups = entries(server, "in", "setup")
    assert len(setups) == 3
    assert [e.conn for e in setups] == [1, 1, 1]
    assert [e.text for e in entries(server, "in", "text")] == texts


# -------------------------------------------------- 2. setup + text without waiting
async def test_setup_and_first_text_go_out_back_to_back(make_server, make_client):
    server = await make_server(
        latency=LatencyModel(handshake_s=0.0, rtt_s=0.2, first_audio_s=0.0, rtf=0.0)
    )
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)

    _, out = await synth(client, ["hello there"])
    out.assert_done()
    assert out.audio == reference("hello there")
    setup = entries(server, "in", "setup")[0]
    text = entries(server, "in", "text")[0]
    ready = entries(server, "out", "ready")[0]
    assert text.client_req_id == setup.client_req_id
    assert 0 <= text.t - setup.t < 0.05, "text waited for something after setup"
    # the text reached the server before the ready was even written back
    assert text.t < ready.t


# ------------------------------------------------------------------ 3. message shapes
async def test_setup_message_fields_and_scoped_ids(make_server, make_client):
    server = await make_server()
    client = make_client(server.url)
    setup = {
        "model_name": "flagship",
        "voice_id": "synthetic",
        "output_format": "pcm_24000",
    }
    for texts in (["one ", "two"], ["three"]):
        req = client.request(setup)
        for t in texts:
            req.send_text(t)
        req.end()
        out = await collect(req)
        out.assert_done()
        assert out.of(Ready)[0].sample_rate == 24000

    setups = server.received("setup")
    assert len(setups) == 2
    ids = [s["client_req_id"] for s in setups]
    assert all(isinstance(i, str) and i for i in ids)
    assert ids[0] != ids[1]
    for s in setups:
        assert s["close_ws_on_eos"] is False
        assert s["model_name"] == "flagship"
        assert s["voice_id"] == "synthetic"
        assert s["output_format"] == "pcm_24000"
    texts = server.received("text")
    assert [(t["client_req_id"], t["text"]) for t in texts] == [
        (ids[0], "one "),
        (ids[0], "two"),
        (ids[1], "three"),
    ]
    eos = server.received("end_of_stream")
    assert [e.get("client_req_id") for e in eos] == ids
    # every message of the client was scoped: no unscoped message at all
    assert all(m.get("client_req_id") for m in server.received())


# -------------------------------------------------------------------- 4. multiplexing
async def test_two_concurrent_requests_multiplexed_on_one_socket(
    make_server, make_client
):
    server = await make_server(
        latency=LatencyModel(handshake_s=0.0, rtt_s=0.0, first_audio_s=0.02, rtf=0.25)
    )
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    text_a = "alpha beta gamma delta"
    text_b = "one two three four five"

    req_a = client.request(SETUP)
    req_b = client.request(SETUP)
    req_a.send_text(text_a)
    req_b.send_text(text_b)
    req_a.end()
    req_b.end()
    out_a, out_b = await asyncio.gather(collect(req_a), collect(req_b))

    out_a.assert_done()
    out_b.assert_done()
    assert out_a.audio == reference(text_a)
    assert out_b.audio == reference(text_b)
    assert [w.text for w in out_a.of(Word)] == text_a.split()
    assert [w.text for w in out_b.of(Word)] == text_b.split()
    assert {e.conn for e in entries(server, "in", "setup")} == {1}

    id_a = req_a.client_req_id
    id_b = req_b.client_req_id
    wire = [e.client_req_id for e in entries(server, "out", "audio")]
    assert set(wire) == {id_a, id_b}
    first_b, last_b = wire.index(id_b), len(wire) - 1 - wire[::-1].index(id_b)
    first_a, last_a = wire.index(id_a), len(wire) - 1 - wire[::-1].index(id_a)
    # interleaved: each request's audio starts before the other's ends
    assert first_b < last_a and first_a < last_b


# -------------------------------------------------------------------------- 5. cancel
async def test_cancel_in_drop_mode_drops_late_audio_without_reconnecting(
    make_server, make_client
):
    """flush_mode "drop": end_of_stream, late audio dropped by id, one socket.
    (The default "close" mode is covered in test_client_flush.py.)"""
    server = await make_server()
    client = make_client(server.url, flush_mode="drop")
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("slow_drip", arg=0.1, match_text="cancel"))

    req = client.request(SETUP)
    req.send_text("cancel me please, this is long")  # no end(): stream is open
    seen: list[Any] = []
    after_cancel: list[Any] = []

    async def consume() -> None:
        async for ev in req.events():
            if req.cancelled:
                after_cancel.append(ev)
                continue
            seen.append(ev)
            if isinstance(ev, Audio):
                req.cancel()

    await asyncio.wait_for(consume(), 10)
    assert req.cancelled
    assert after_cancel == []
    assert [type(e) for e in seen if not isinstance(e, Word)] == [Ready, Audio]

    cid = req.client_req_id
    # the client told the server it is done with this request (scoped, once)
    assert await wait_until(
        lambda: len(server.received("end_of_stream", client_req_id=cid)) == 1
    )
    # the server kept dripping audio for it after the cancel: the client dropped it
    assert await wait_until(lambda: len(server.sent("audio", client_req_id=cid)) >= 3)

    _, out = await synth(client, ["next request"])
    out.assert_done()
    assert out.audio == reference("next request")
    assert server.connections_opened == 1
    assert client.connections_opened == 1
    assert {e.conn for e in entries(server, "in", "setup")} == {1}
    assert server.events_of("close") == []


# ------------------------------------------------------------ 6. replay before audio
@pytest.mark.parametrize(
    "kind", ["error_1011", "drop_after", "error_1008", "close_1000_no_eos"]
)
async def test_failure_before_audio_is_replayed_once(make_server, make_client, kind):
    server = await make_server()
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault(kind, arg=0, match_text="replay"))
    texts = ["replay this ", "and that"]

    req = client.request(SETUP)
    req.send_text(texts[0])
    await asyncio.sleep(0.05)  # the second text goes out in its own message
    req.send_text(texts[1])
    req.end()
    out = await collect(req)

    out.assert_done()
    assert out.audio == reference(*texts)
    setups = entries(server, "in", "setup")
    assert len(setups) == 2
    base = setups[0].client_req_id
    assert setups[0].conn == 1
    assert setups[1].client_req_id == f"{base}-r1" == req.client_req_id
    assert setups[1].conn == 2
    replayed = entries(server, "in", "text")
    assert [e.text for e in replayed if e.conn == 2] == texts
    assert {e.client_req_id for e in replayed if e.conn == 2} == {f"{base}-r1"}
    assert len(server.received("end_of_stream", client_req_id=f"{base}-r1")) == 1
    # nothing of the failed attempt was audible
    assert server.sent("audio", client_req_id=base) == []


async def test_replay_after_consumer_saw_ready_yields_one_ready(
    make_server, make_client
):
    """The consumer already saw ``Ready`` of the first attempt: still one Ready."""
    server = await make_server(
        latency=LatencyModel(handshake_s=0.0, rtt_s=0.0, first_audio_s=0.2, rtf=0.0)
    )
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("error_1011", arg=0, match_text="replay"))

    req = client.request(SETUP)
    req.send_text("replay after ready")
    req.end()
    first = await asyncio.wait_for(req.events().__anext__(), 5)
    assert isinstance(first, Ready)  # consumed before the failure (first_audio 0.2 s)
    rest = await collect(req)
    out = Outcome([first, *rest.events])
    out.assert_done()
    assert out.audio == reference("replay after ready")
    assert len(server.received("setup")) == 2


# -------------------------------------------------------------- 7. no replay after audio
async def test_loss_after_audio_fails_without_replay(make_server, make_client):
    server = await make_server()
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("drop_after", arg=2, match_text="dropped"))

    _, out = await synth(client, ["dropped after two frames of audio"])
    err = out.error
    assert err.fatal is False
    assert err.vendor_code == "1006"
    assert len(out.of(Audio)) == 2
    assert len(out.of(Ready)) == 1
    assert [type(e) for e in out.events].count(Failed) == 1
    texts = entries(server, "in", "text")
    assert {e.conn for e in texts} == {1}
    assert len(entries(server, "in", "setup")) == 1
    assert not any(
        (s.client_req_id or "").endswith("-r1") for s in entries(server, "in")
    )


# ------------------------------------------------------------ 8. error classification
# (the classify() table: tests/test_client_resilience.py)
async def test_error_1008_after_ready_is_not_fatal(make_server, make_client):
    server = await make_server()
    listener = Recorder()
    client = make_client(server.url, listener=listener)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("error_1008", arg=2, match_text="limit"))

    _, out = await synth(client, ["limit hit in the middle of the stream"])
    err = out.error
    assert (err.fatal, err.vendor_code, err.cause) == (False, "1008", "limit")
    assert err.phase == "stream"
    assert len(out.of(Audio)) == 2
    assert client.last_fatal is None
    assert listener.errors == []
    assert len(entries(server, "in", "setup")) == 1  # audio was heard: no replay


async def test_invalid_key_is_fatal_at_once_without_replay(make_server, make_client):
    server = await make_server()
    listener = Recorder()
    client = make_client(server.url, key="invalid-key-SECRET", listener=listener)

    _, out = await synth(client, ["hello"])
    err = out.error
    assert err.fatal is True
    assert err.vendor_code == "1008"
    assert err.cause == "auth"
    assert "revoked" in err.message
    assert out.of(Audio) == [] and out.of(Ready) == []
    assert server.connection_attempts == 1  # the key said so: no replay
    assert server.connections_opened == 1
    assert client.last_fatal is not None and client.last_fatal.fatal
    assert listener.errors == []  # the request reports it, not the listener
    await asyncio.sleep(0.5)  # nothing keeps knocking after a fatal rejection
    assert server.connection_attempts == 1


async def test_invalid_key_with_prewarm_is_fatal_and_bounded(make_server, make_client):
    server = await make_server()
    listener = Recorder()
    client = make_client(server.url, key="invalid-key-SECRET", listener=listener)
    client.start()
    # the prewarmed socket is rejected with "API key is revoked or expired": that
    # is the key, so the background stops trying; the first request reports it
    assert await wait_until(lambda: client.last_fatal is not None, 3)
    await asyncio.sleep(0.8)
    assert server.connection_attempts == 1
    assert listener.errors == []

    _, out = await synth(client, ["hello"])
    err = out.error
    assert (err.fatal, err.vendor_code, err.cause) == (True, "1008", "auth")
    assert server.connection_attempts == 2  # the request asks once, no replay
    await asyncio.sleep(0.5)
    assert server.connection_attempts == 2


@pytest.mark.parametrize("status", [401, 403])
async def test_handshake_rejected_with_auth_status_is_fatal(
    make_server, make_client, status
):
    server = await make_server()
    listener = Recorder()
    client = make_client(server.url, listener=listener)
    server.inject(Fault("reject_handshake", arg=status, count=5))

    _, out = await synth(client, ["hello"])
    err = out.error
    assert err.fatal is True
    assert err.vendor_code == str(status)
    assert err.phase == "connect"
    assert server.connection_attempts == 1  # fatal: not retried
    assert server.connections_opened == 0
    assert client.last_fatal == err
    assert [e.vendor_code for e in listener.errors] == [str(status)]
    assert await client.wait_connected(0.5) is False


async def test_handshake_404_is_fatal(make_server, make_client):
    server = await make_server()
    client = make_client(server.url.replace("/api/speech/tts", "/api/wrong"))
    _, out = await synth(client, ["hello"])
    err = out.error
    assert (err.fatal, err.vendor_code, err.phase) == (True, "404", "connect")
    assert server.connection_attempts == 1


async def test_handshake_503_is_not_fatal(make_server, make_client):
    server = await make_server()
    listener = Recorder()
    client = make_client(server.url, listener=listener)
    # twice: the request's connect and its single replay
    server.inject(Fault("reject_handshake", arg=503, count=2))
    _, out = await synth(client, ["hello"])
    err = out.error
    assert (err.fatal, err.vendor_code, err.phase) == (False, "503", "connect")
    assert server.connection_attempts == 2
    assert listener.errors == []
    assert client.last_fatal is None

    # once: the replay heals it
    server.inject(Fault("reject_handshake", arg=503, count=1))
    _, out = await synth(client, ["hello again"])
    out.assert_done()
    assert out.audio == reference("hello again")


async def test_refused_connection_is_not_fatal(make_server, make_client):
    server = await make_server()
    client = make_client(server.url)
    server.inject(Fault("refuse", count=2))
    _, out = await synth(client, ["hello"])
    err = out.error
    assert err.fatal is False
    assert err.phase == "connect"
    assert err.vendor_code not in ("", "401", "403", "404")
    assert server.connection_attempts == 2
    assert server.connections_opened == 0
    assert client.last_fatal is None

    _, out = await synth(client, ["works now"])
    out.assert_done()


async def test_close_1000_without_end_of_stream_after_audio(make_server, make_client):
    server = await make_server()
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("close_1000_no_eos", match_text="closing"))

    _, out = await synth(client, ["closing early"])
    err = out.error
    assert (err.fatal, err.vendor_code) == (False, "1000")
    assert out.audio == reference("closing early")  # all audio, then no eos
    assert len(entries(server, "in", "setup")) == 1


# ---------------------------------------------------------------------- 9. robustness
@pytest.mark.parametrize("kind", ["unknown_type", "non_json", "oversized"])
async def test_odd_server_frames_are_ignored(make_server, make_client, kind):
    server = await make_server()
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault(kind, match_text="odd"))
    texts = ["odd frames ", "do not matter"]

    _, out = await synth(client, texts)
    out.assert_done()
    assert out.audio == reference(*texts)
    fired = server.events_of("fault_fired")
    assert [e.data["kind"] for e in fired] == [kind]
    assert len(entries(server, "in", "setup")) == 1
    assert server.events_of("close", conn=1) == []  # the socket survived the noise


# ------------------------------------------------------------------------ 10. timeouts
async def test_stall_after_ready_times_out(make_server, make_client):
    server = await make_server()
    client = make_client(server.url, response_timeout_s=0.5)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("stall_after_ready", match_text="stall", count=2))

    started = time.monotonic()
    _, out = await synth(client, ["stall here"])
    elapsed = time.monotonic() - started
    err = out.error
    assert (err.vendor_code, err.fatal, err.phase) == ("timeout", False, "stream")
    # the first attempt timed out, was replayed (no audio yet), timed out again
    assert 0.8 <= elapsed < 3.0
    setups = entries(server, "in", "setup")
    assert len(setups) == 2
    assert setups[1].client_req_id == setups[0].client_req_id + "-r1"
    assert out.of(Audio) == []


async def test_stall_mid_stream_times_out_once(make_server, make_client):
    server = await make_server()
    client = make_client(server.url, response_timeout_s=0.5)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("stall_mid_stream", arg=1, match_text="stall"))

    started = time.monotonic()
    _, out = await synth(client, ["stall in the middle"])
    elapsed = time.monotonic() - started
    err = out.error
    assert (err.vendor_code, err.fatal) == ("timeout", False)
    assert 0.4 <= elapsed < 3.0
    assert len(out.of(Audio)) == 1
    assert len(entries(server, "in", "setup")) == 1

    # the socket that left a request unanswered takes no new request: it is
    # closed by the client, the next request rides a fresh one
    _, out = await synth(client, ["fine"])
    out.assert_done()
    assert [e.conn for e in entries(server, "in", "setup")] == [1, 2]
    assert await wait_until(lambda: server.events_of("close", conn=1) != [], 3)
    assert server.events_of("close", conn=1)[0].data["by"] == "client"


async def test_slow_drip_outlasts_the_response_timeout(make_server, make_client):
    server = await make_server()
    client = make_client(server.url, response_timeout_s=0.5)
    client.start()
    assert await client.wait_connected(5)
    server.inject(Fault("slow_drip", arg=0.3, match_text="drip"))

    started = time.monotonic()
    _, out = await synth(client, ["drip slow"])
    elapsed = time.monotonic() - started
    out.assert_done()
    assert out.audio == reference("drip slow")
    assert len(out.of(Audio)) >= 6
    assert elapsed > 1.0  # far longer than response_timeout_s: silence is what counts


# ----------------------------------------------------------------------- 11. recycling
async def test_socket_recycled_by_age(make_server, make_client):
    server = await make_server()
    client = make_client(server.url, max_socket_age_s=1.0)
    client.start()
    assert await client.wait_connected(5)
    opened = time.monotonic()

    # a request that streams across the 1 s age boundary (~1.3 s of drip)
    server.inject(Fault("slow_drip", arg=0.15, match_text="long"))
    _, out = await synth(client, ["long request spanning"])
    assert time.monotonic() - opened > 1.0
    out.assert_done()
    assert out.audio == reference("long request spanning")
    first = entries(server, "in", "setup")[0]
    assert first.conn == 1
    assert {
        e.conn for e in entries(server, "in") if e.client_req_id == first.client_req_id
    } == {1}

    # the next request goes to a fresh socket
    _, out = await synth(client, ["after"])
    out.assert_done()
    setups = entries(server, "in", "setup")
    assert setups[1].conn >= 2
    # the old socket is closed once its request finished
    assert await wait_until(lambda: server.events_of("close", conn=1) != [], 3)
    close = server.events_of("close", conn=1)[0]
    assert close.data["by"] == "client"
    assert close.data["active_requests"] == 0
    assert server.sent("error") == []


# --------------------------------------------------------------------- 12. idle expiry
async def test_idle_expiry_reopens_silently(make_server, make_client):
    server = await make_server(limits=Limits(idle_timeout_s=0.3))
    listener = Recorder()
    client = make_client(server.url, listener=listener)
    client.start()
    assert await client.wait_connected(5)
    assert await wait_until(lambda: server.connections_opened >= 2, 2.5)
    assert client.connections_opened >= 2
    idle_errors = [e for e in server.sent("error") if "idle" in e.get("message", "")]
    assert idle_errors, "the server did expire the idle socket"
    assert listener.errors == []
    assert client.last_fatal is None

    _, out = await synth(client, ["still works"])
    out.assert_done()
    assert out.audio == reference("still works")
    assert listener.errors == []


async def test_sockets_expired_at_once_back_off_and_requests_still_work(
    make_server, make_client
):
    # An "idle" expiry 0.3 s after the upgrade proves nothing (a socket must stay
    # open _PROVEN_AGE_S): each one is a failed attempt, so the reopens back off
    # instead of cycling every 0.3 s. A request waits for the next scheduled
    # attempt (within its deadline, 30 s here) and works.
    server = await make_server(limits=Limits(idle_timeout_s=0.3))
    client = make_client(server.url, response_timeout_s=30.0)
    client.start()
    assert await client.wait_connected(5)
    await asyncio.sleep(4.0)
    # 0, then +0.3 s and 0.5-1 s, 1-2 s, 2-4 s: at most 4 (a cycle: 13)
    assert 2 <= server.connections_opened <= 4, server.connections_opened
    assert client.last_fatal is None
    _, out = await synth(client, ["still works"], timeout=35)
    out.assert_done()
    assert out.audio == reference("still works")


async def test_refused_prewarm_socket_stops_after_one(make_server, make_client):
    server = await make_server()
    client = make_client(server.url, key="invalid_key")
    client.start()
    await asyncio.sleep(1.5)
    assert server.connection_attempts == 1  # then it waits for a request to ask
    assert not client.connected


# ------------------------------------------------------------------ 13. concurrency cap
async def test_concurrency_cap_replays_second_request_on_fresh_socket(
    make_server, make_client
):
    server = await make_server(limits=Limits(max_concurrent=1))
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    text_a, text_b = "first request text", "second one"

    req_a = client.request(SETUP)
    req_a.send_text(text_a)
    await wait_until(lambda: server.received("setup") != [])
    req_b = client.request(SETUP)
    req_b.send_text(text_b)
    req_a.end()
    req_b.end()
    out_a, out_b = await asyncio.gather(collect(req_a), collect(req_b))

    out_a.assert_done()
    out_b.assert_done()
    assert out_a.audio == reference(text_a)
    assert out_b.audio == reference(text_b)
    setups = entries(server, "in", "setup")
    base_b = setups[1].client_req_id
    capped = server.sent("error", client_req_id=base_b)
    assert capped and capped[0]["code"] == 1008
    assert "concurrent" in capped[0]["message"]
    replay = [s for s in setups if s.client_req_id == f"{base_b}-r1"]
    # the replay went to the standby, opened beside the active socket before the
    # cap hit: it paid no handshake
    assert len(replay) == 1 and replay[0].conn == 2
    assert replay[0].t > server.events_of("open", conn=2)[0].t
    assert req_b.client_req_id == f"{base_b}-r1"


# -------------------------------------------------------------------------- 14. listener
async def test_listener_status_and_connect_time(make_server, make_client):
    # "drop" mode: one socket, so losing it leaves the client disconnected
    server = await make_server()
    listener = Recorder()
    client = make_client(server.url, listener=listener, flush_mode="drop")
    client.start()
    assert await client.wait_connected(5)
    assert listener.statuses == [
        ("connecting", "disconnected"),
        ("connected", "connecting"),
    ]
    assert len(listener.connected) == 1
    assert isinstance(listener.connected[0], int) and listener.connected[0] >= 0

    # lose the (young) socket: a failure, reported once; reopened after the
    # backoff, and reported connected once the new socket stayed open
    # _PROVEN_AGE_S (no connecting / connected per reopen)
    server.inject(Fault("drop_after", arg=1, match_text="lose"))
    _, out = await synth(client, ["lose the socket now"])
    assert out.error.vendor_code == "1006"
    assert await wait_until(lambda: client.connected and client.connections_opened == 2)
    assert listener.statuses[-1] == ("disconnected", "connected")
    proven = ext_module("gradium_tts")._PROVEN_AGE_S
    assert await wait_until(lambda: listener.statuses[-1][0] == "connected", proven + 2)
    assert listener.statuses[2:] == [
        ("disconnected", "connected"),
        ("connected", "disconnected"),
    ]
    assert len(listener.connected) == client.connections_opened == 2
    assert server.connections_opened == 2
    assert all(isinstance(ms, int) and ms >= 0 for ms in listener.connected)
    assert listener.errors == []


# ----------------------------------------------------------------------- 15. key secrecy
async def test_api_key_never_logged_nor_in_errors(make_server, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    server = await make_server()
    errors: list[GradiumError] = []

    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    for kind in ("drop_after", "error_1011", "error_1008"):
        server.inject(Fault(kind, arg=1, match_text="boom"))
        _, out = await synth(client, ["boom goes the socket"])
        errors.append(out.error)
    await client.aclose()  # its reconnects must not take the handshake faults below
    server.inject(Fault("reject_handshake", arg=401))
    _, out = await synth(make_client(server.url), ["x"])
    errors.append(out.error)
    bad = make_client(server.url, key="invalid-" + API_KEY)
    _, out = await synth(bad, ["x"])
    errors.append(out.error)
    for status in (401, 403):
        server.inject(Fault("reject_handshake", arg=status))
        other = make_client(server.url)
        other.start()
        await wait_until(lambda c=other: c.last_fatal is not None, 3)
        errors.append(other.last_fatal)
    for c in (client, bad):
        await c.aclose()

    assert len(errors) == 7 and all(isinstance(e, GradiumError) for e in errors)
    assert [e.fatal for e in errors] == [False, False, False, True, True, True, True]
    secret = "SECRET-test-key"
    for err in errors:
        assert secret not in str(err)
        assert secret not in repr(err)
        assert secret not in err.message
    # the local server's own websockets logger shows the headers it received: that
    # is the test server talking, not the client
    records = [r for r in caplog.records if not r.name.startswith("websockets.server")]
    assert any(r.name.startswith("gradium_tts") for r in records), "the run did log"
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        assert secret not in text, f"{record.name}: {text}"


# ------------------------------------------------------------ 16. background backoff
async def test_background_reconnect_backs_off_on_a_down_server(
    make_server, make_client
):
    server = await make_server()
    listener = Recorder()
    client = make_client(server.url, listener=listener)
    server.inject(Fault("refuse", count=1000))
    client.start()
    await asyncio.sleep(3.5)
    # attempts at 0, then after 0.5-1 s, 1-2 s, 2-4 s: exponential, not hammered
    assert 2 <= server.connection_attempts <= 4
    assert listener.errors == []
    assert client.connected is False
    assert listener.statuses == [
        ("connecting", "disconnected"),
        ("disconnected", "connecting"),
    ]

    # the server is back: a request opens no socket of its own, it waits for the
    # next scheduled attempt (0.5-4 s away, within its 5 s deadline) and speaks
    server.clear_faults()
    attempts = server.connection_attempts
    started = time.monotonic()
    _, out = await synth(client, ["back up"])
    out.assert_done()
    assert out.audio == reference("back up")
    assert time.monotonic() - started < 4.5
    assert server.connection_attempts == attempts + 1


# ------------------------------------------------------------------------ close
async def test_aclose_closes_the_socket_and_refuses_new_requests(
    make_server, make_client
):
    server = await make_server()
    listener = Recorder()
    client = make_client(server.url, listener=listener)
    client.start()
    assert await client.wait_connected(5)
    await client.aclose()
    assert await wait_until(lambda: server.events_of("close", conn=1) != [], 3)
    assert server.events_of("close", conn=1)[0].data["by"] == "client"
    assert listener.statuses[-1] == ("disconnected", "connected")
    assert client.connected is False
    with pytest.raises(RuntimeError):
        client.request(SETUP)
    await asyncio.sleep(0.5)
    assert server.connection_attempts == 1  # nothing reopens after close
