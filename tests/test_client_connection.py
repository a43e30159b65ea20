"""The client's connection manager: idle cost, outages, and connect errors.

- An idle client sleeps: no periodic wake-up, no handshake.
- Clients started together recycle their sockets over a window, not in a burst.
- A server that accepts every upgrade and closes it at once (outage behind a live
  proxy) gets a handful of handshakes, not a storm; the status does not flap; a
  request during the outage ends once, NON_FATAL, at once.
- A connect error names the endpoint (scheme://host:port only) and the cause.

No traffic leaves 127.0.0.0/8 except the DNS lookup of a ``.invalid`` name.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest
import test_client
from gradium_server import Fault, Limits
from harness import ext_module
from test_client import API_KEY, SETUP, Recorder, collect, reference, synth, wait_until

Failed = ext_module("gradium_tts").Failed
GradiumTTSClient = ext_module("gradium_tts").GradiumTTSClient
endpoint = ext_module("gradium_tts").endpoint

make_client = test_client.make_client  # the fixture


# ------------------------------------------------------------------- idle cost (B)
async def test_idle_client_makes_no_periodic_wakeups(make_server, make_client):
    server = await make_server()
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    _, out = await synth(client, ["one turn"])  # a standby opens beside it
    out.assert_done()
    assert await wait_until(lambda: server.connections_opened == 2)
    await asyncio.sleep(0.3)
    wakeups, attempts = client.maintainer_wakeups, server.connection_attempts
    await asyncio.sleep(3.0)
    # nothing happened, so the maintainer did not run: no polling
    assert client.maintainer_wakeups == wakeups
    assert server.connection_attempts == attempts
    assert client.connected


async def test_keepalive_is_the_kernels_not_websocket_pings(make_server, make_client):
    """An idle socket costs no Python CPU: no WebSocket ping timer runs; the
    kernel's TCP keepalive finds a dead peer instead."""
    server = await make_server()
    client = make_client(server.url)
    client.start()
    assert await client.wait_connected(5)
    (conn,) = client._conns
    assert conn.ws.ping_interval is None
    sock = conn.ws.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3


async def test_clients_started_together_recycle_over_a_window(make_server):
    """50 clients, 2 s socket age limit: each socket is recycled at a random
    point in the last fifth of its life, so the reopens span a window."""
    server = await make_server()
    clients = [
        GradiumTTSClient(server.url, API_KEY, max_socket_age_s=2.0) for _ in range(50)
    ]
    try:
        for client in clients:
            client.start()
        assert await wait_until(lambda: server.connections_opened >= 100, 8)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    opens = sorted(e.t for e in server.events_of("open"))
    first, reopens = opens[:50], opens[50:100]
    assert first[-1] - first[0] < 0.5  # they did start together
    span = reopens[-1] - reopens[0]
    assert span >= 0.25, f"recycled in a burst of {span:.3f} s"
    busiest = max(
        sum(1 for t in reopens if start <= t < start + 0.05) for start in reopens
    )
    assert busiest <= 25, busiest  # no burst: not half of them within 50 ms
    # and each socket lived between 80% and 100% of its limit (+ handshake slack)
    lives = []
    for conn in range(1, 51):
        closes = server.events_of("close", conn=conn)
        if closes and closes[0].data["by"] == "client":
            lives.append(closes[0].t - server.events_of("open", conn=conn)[0].t)
    assert len(lives) >= 45
    assert 1.5 <= min(lives) and max(lives) <= 2.6, (min(lives), max(lives))
    assert max(lives) - min(lives) >= 0.2


# ----------------------------------------------------------------- outage (C.1)
async def outage(make_server, make_client, arg) -> None:
    server = await make_server()
    server.inject(Fault("accept_then_close", arg=arg, count=10_000))
    listener = Recorder()
    client = make_client(server.url, listener=listener)
    client.start()
    await asyncio.sleep(10.0)
    attempts = server.connection_attempts
    assert 2 <= attempts <= 6, attempts  # exponential backoff, no storm
    # the outage is reported once, not per doomed attempt
    assert len(listener.statuses) <= 3, listener.statuses
    assert listener.statuses[-1][0] == "disconnected"
    assert listener.errors == []
    # no socket is taken as usable: one the server accepted this very instant
    # counts until its close is read (CI under load caught one), never longer
    assert await wait_until(lambda: not client.connected, 1.0)

    # a request during the outage ends once, NON_FATAL, within its 5 s deadline:
    # it opens no socket of its own (no request + replay double attempt), it
    # rides the next scheduled attempt if that comes within its deadline, and
    # it ends saying that Gradium refuses or drops connections
    started = time.monotonic()
    req, out = await synth(client, ["during the outage"], timeout=7)
    assert time.monotonic() - started < 5.5
    assert [type(e) for e in out.events] == [Failed]
    err = out.error
    assert err.fatal is False
    assert err.vendor_code == ("1011" if arg == 1011 else "1006")
    assert "refusing or dropping connections" in err.message
    assert "next attempt in" in err.message
    assert server.connection_attempts <= attempts + 1  # the scheduled one

    # the service comes back: the scheduled attempt opens a socket, the next
    # request works, and the status says connected once that socket stayed open
    server.clear_faults()
    assert await wait_until(lambda: client.connected, 20)
    _, out = await synth(client, ["back again"])
    out.assert_done()
    assert out.audio == reference("back again")
    proven = ext_module("gradium_tts")._PROVEN_AGE_S
    assert await wait_until(lambda: listener.statuses[-1][0] == "connected", proven + 2)
    assert len(listener.statuses) <= 4


@pytest.mark.slow
async def test_outage_accept_then_close_no_storm_no_flapping(make_server, make_client):
    """Both variants (1011 close, TCP reset), side by side: 10 s idle each."""
    await asyncio.gather(
        outage(make_server, make_client, 1011),
        outage(make_server, make_client, "reset"),
    )


async def test_idle_expiry_reopens_are_spread(make_server):
    """30 idle clients started together, server idle limit 2 s: each expired
    socket is reopened after a random delay (up to 20 % of its life)."""
    server = await make_server(limits=Limits(idle_timeout_s=2.0))
    clients = [GradiumTTSClient(server.url, API_KEY) for _ in range(30)]
    try:
        for client in clients:
            client.start()
        assert await wait_until(lambda: server.connections_opened >= 60, 6)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    opens = sorted(e.t for e in server.events_of("open"))
    first, reopens = opens[:30], opens[30:60]
    assert first[-1] - first[0] < 0.5
    expired = [e for e in server.sent("error") if "idle" in e.get("message", "")]
    assert len(expired) >= 30
    assert reopens[-1] - reopens[0] >= 0.15, reopens[-1] - reopens[0]
    busiest = max(sum(1 for t in reopens if s <= t < s + 0.03) for s in reopens)
    assert busiest <= 20, busiest


async def test_socket_closing_before_serving_counts_as_failure(
    make_server, make_client
):
    """Each accepted-then-closed socket grows the backoff; it is not reset by
    the socket having been open for a moment."""
    server = await make_server()
    server.inject(Fault("accept_then_close", count=10_000))
    client = make_client(server.url)
    client.start()
    assert await wait_until(lambda: server.connection_attempts >= 3, 6)
    opens = [e.t for e in server.events_of("connect")]
    gaps = [b - a for a, b in zip(opens, opens[1:], strict=False)]
    # 0.5-1 s, then 1-2 s: growing, never the 0.25 s poll of the old maintainer
    assert gaps[0] >= 0.4 and gaps[1] >= 0.9, gaps


# --------------------------------------------------------- connect errors (C.6)
async def test_endpoint_keeps_only_scheme_host_port():
    url = "wss://user:pw@api.example.invalid/api/speech/tts?token=SECRET"
    assert endpoint(url) == "wss://api.example.invalid:443"
    assert endpoint("ws://127.0.0.1:8765/x?key=k") == "ws://127.0.0.1:8765"
    assert endpoint("ws://[::1]:9/x") == "ws://[::1]:9"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def connect_error(make_client, url: str, **kw) -> tuple[str, str]:
    client = make_client(url, **kw)
    _, out = await synth(client, ["hello"], timeout=10)
    err = out.error
    assert (err.fatal, err.phase) == (False, "connect")
    for secret in ("SECRET", "user", "pw@", "/api/speech"):
        assert secret not in str(err)
    return err.vendor_code, err.message


async def test_refused_port_names_host_and_cause(make_client):
    port = closed_port()
    url = f"ws://user:pw@127.0.0.1:{port}/api/speech/tts?token=SECRET"
    code, message = await connect_error(make_client, url)
    assert code == "refused"
    assert f"ws://127.0.0.1:{port}" in message and "refused" in message


async def test_dns_failure_names_host_and_cause(make_client):
    code, message = await connect_error(
        make_client, "ws://nonexistent.invalid/api/speech/tts"
    )
    assert code == "dns"
    assert "ws://nonexistent.invalid:80" in message and "resolve" in message


@pytest.fixture
async def tcp_server():
    """A plain TCP server on 127.0.0.1 whose behaviour the test chooses."""
    servers = []

    async def start(handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()


async def test_wss_to_a_resetting_server_says_reset_during_tls(make_client, tcp_server):
    async def reset(reader, writer):
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    port = await tcp_server(reset)
    code, message = await connect_error(
        make_client, f"wss://127.0.0.1:{port}/api/speech/tts"
    )
    assert code == "reset"
    assert f"wss://127.0.0.1:{port}" in message
    assert "reset" in message and "TLS" in message


async def test_wss_to_a_plain_http_server_says_tls(make_client, tcp_server):
    async def plain_http(reader, writer):
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    port = await tcp_server(plain_http)
    code, message = await connect_error(make_client, f"wss://127.0.0.1:{port}/tts")
    assert code == "tls"
    assert f"wss://127.0.0.1:{port}" in message and "TLS handshake failed" in message


async def test_handshake_timeout_names_host_and_cause(make_client, tcp_server):
    async def silent(reader, writer):
        await reader.read()  # never answers the upgrade

    port = await tcp_server(silent)
    started = time.monotonic()
    code, message = await connect_error(
        make_client, f"ws://127.0.0.1:{port}/api/speech/tts", connect_timeout_s=0.5
    )
    assert code == "timeout"
    assert f"ws://127.0.0.1:{port}" in message and "0.5 s" in message
    assert time.monotonic() - started < 3.0  # two attempts of 0.5 s


async def test_request_during_outage_is_one_failed_event(make_server, make_client):
    """Fresh client (no prewarm), server refusing everything: one Failed."""
    server = await make_server()
    server.inject(Fault("refuse", count=100))
    client = make_client(server.url)
    req = client.request(SETUP)
    req.send_text("x")
    req.end()
    out = await collect(req, 5)
    assert [type(e) for e in out.events] == [Failed]
    assert out.error.vendor_code == "reset"
    assert server.connection_attempts == 2  # the attempt and its replay
