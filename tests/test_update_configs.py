"""``update_configs``: every setting reaches the next request, and no path leaves
a client, a task or a socket behind after on_stop (contract §1.4, §2.2).

Clients are counted through a recording subclass of ``GradiumTTSClient``; leftover
tasks (the package's own coroutines) are looked up in the extension's loop right
after its on_stop; open sockets are counted on the local server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from gradium_server import Fault, LatencyModel, ServerConfig, ServerThread
from harness import (
    errors,
    ext_module,
    frames_between,
    is_package_task,
    named,
    run_session,
    summary,
)

extension = ext_module("extension")  # the module the TEN host runs
GradiumTTSExtension = extension.GradiumTTSExtension

KEY = "test-key-0123456789"
META = {"session_id": "s1", "turn_id": 1}
MEDIUM = "A sentence of a moderate length, streamed while the config changes."


class Probe:
    """Records clients, their closing, the callback order and leftovers at on_stop."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clients: list[Any] = []
        self.closed: list[Any] = []
        self.calls: list[str] = []
        self.leftover_tasks: list[str] = []
        probe = self
        base = extension.GradiumTTSClient

        class RecordingClient(base):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                probe.clients.append(self)

            async def aclose(self) -> None:
                await super().aclose()
                probe.closed.append(self)

        monkeypatch.setattr(extension, "GradiumTTSClient", RecordingClient)
        on_start = GradiumTTSExtension.on_start
        on_stop = GradiumTTSExtension.on_stop
        update = GradiumTTSExtension.update_configs

        async def on_start_(self, ten_env):
            probe.calls.append("on_start")
            await on_start(self, ten_env)

        async def update_(self, configs):
            probe.calls.append("update_configs")
            await update(self, configs)

        async def on_stop_(self, ten_env):
            await on_stop(self, ten_env)
            for _ in range(10):  # let cancelled tasks unwind
                await asyncio.sleep(0)
            owners = [self, *probe.clients]
            for task in asyncio.all_tasks():
                # the package's own tasks only: the real AsyncExtension keeps one
                # of the extension object pending until teardown (contract §1.4)
                if task.done() or not is_package_task(task):
                    continue
                frame = getattr(task.get_coro(), "cr_frame", None)
                owner = frame.f_locals.get("self") if frame is not None else None
                if any(
                    owner is o or getattr(owner, "_client", None) is o for o in owners
                ):
                    probe.leftover_tasks.append(repr(task))

        monkeypatch.setattr(GradiumTTSExtension, "on_start", on_start_)
        monkeypatch.setattr(GradiumTTSExtension, "update_configs", update_)
        monkeypatch.setattr(GradiumTTSExtension, "on_stop", on_stop_)

    def check_nothing_left(self, srv: ServerThread) -> None:
        assert self.clients, "no client was built"
        assert all(any(c is d for d in self.closed) for c in self.clients), (
            f"{len(self.clients)} clients built, {len(self.closed)} closed"
        )
        assert self.leftover_tasks == []
        assert wait_until(lambda: open_sockets(srv) == 0), open_sockets(srv)


def open_sockets(srv: ServerThread) -> int:
    return srv.call(lambda: len(srv.server._live))


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def props(server, **params):
    return {
        "params": {
            "api_key": KEY,
            "url": server.url,
            "voice_id": "synthetic",
            "sample_rate": 16000,
            **params,
        }
    }


@pytest.fixture
def server():
    with ServerThread(ServerConfig.for_tests()) as srv:
        yield srv


# ------------------------------------------------------------------ every setting
def test_new_timeouts_reach_the_next_request(monkeypatch, server):
    probe = Probe(monkeypatch)
    server.inject(Fault("stall_mid_stream", arg=1, match_text="stalls"))
    new = {
        "connect_timeout_s": 3.0,
        "response_timeout_s": 1.0,
        "max_socket_age_s": 100.0,
    }

    async def script(s):
        await s.text("r1", "Before the update.", end=True, metadata=META)
        await s.wait_end("r1")
        status, result = await s.cmd("update_configs", {"params": new})
        assert status == 0, result
        started = time.monotonic()
        await s.text("r2", "This one stalls mid stream.", end=True, metadata=META)
        await s.wait_end("r2", timeout=8)  # the old 30 s timeout would miss this
        s.r2_took = time.monotonic() - started

    sess = run_session(props(server, response_timeout_s=30.0), script)
    assert sess.r2_took < 6
    ends = named(sess.records, "tts_audio_end")
    assert [(e.request_id, e.props["reason"]) for e in ends] == [("r1", 1), ("r2", 3)]
    current = probe.clients[-1]
    assert (
        current.connect_timeout_s,
        current.response_timeout_s,
        current.max_socket_age_s,
    ) == (3.0, 1.0, 100.0)
    probe.check_nothing_left(server)


@pytest.mark.parametrize(
    ("change", "rebuilt"),
    [
        ({"connect_timeout_s": 4.0}, True),
        ({"response_timeout_s": 4.0}, True),
        ({"max_socket_age_s": 60.0}, True),
        ({"api_key": "another-key-0123"}, True),
        ({"url": "URL2"}, True),
        ({"flush_mode": "drop"}, True),
        ({"voice_id": "synthetic", "model_name": "m2", "sample_rate": 24000}, False),
        ({"json_config": {"temp": 0.3}, "custom": 1}, False),
        ({"text_filter": False}, False),
    ],
    ids=[
        "connect",
        "response",
        "age",
        "key",
        "url",
        "flush",
        "voice",
        "setup",
        "filter",
    ],
)
def test_a_client_setting_rebuilds_the_client_and_a_request_setting_does_not(
    monkeypatch, server, change, rebuilt
):
    probe = Probe(monkeypatch)
    if change.get("url") == "URL2":
        change = {"url": server.url + "/"}  # same server, another URL

    async def script(s):
        await s.wait_for(lambda recs: named(recs, "connection_status_changed"))
        status, result = await s.cmd("update_configs", {"params": change})
        assert status == 0, result
        await s.text("r1", "After the update.", end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    assert len(probe.clients) == (2 if rebuilt else 1)
    assert named(sess.records, "tts_audio_end")[0].props["reason"] == 1
    assert not errors(sess.records)
    probe.check_nothing_left(server)


# ------------------------------------------------------------- request in flight
def test_a_request_in_flight_keeps_its_client_which_closes_after_it(monkeypatch):
    probe = Probe(monkeypatch)
    latency = LatencyModel(handshake_s=0.0, rtt_s=0.0, first_audio_s=0.0, rtf=0.5)
    with ServerThread(ServerConfig.for_tests(latency=latency)) as srv:

        async def script(s):
            await s.text("r1", MEDIUM, end=True, metadata=META)
            await s.wait_frames(2)
            status, _ = await s.cmd(
                "update_configs", {"params": {"response_timeout_s": 7}}
            )
            assert status == 0
            await s.wait_end("r1")
            # r1's client closes once r1 is over: only the new socket stays
            try:
                await s.until(lambda: open_sockets(srv) == 1, timeout=5)
            except AssertionError:
                raise AssertionError(
                    f"open={open_sockets(srv)} opened={srv.connections_opened} closed={len(probe.closed)}"
                ) from None
            s.old_closed_after_r1 = any(c is probe.clients[0] for c in probe.closed)
            await s.text("r2", "On the new client.", end=True, metadata=META)
            await s.wait_end("r2")

        sess = run_session(props(srv), script)
        # each client: its active socket, and the standby a request opens beside it
        assert srv.connections_opened == 4
        probe.check_nothing_left(srv)
    assert sess.old_closed_after_r1
    ends = named(sess.records, "tts_audio_end")
    assert [(e.request_id, e.props["reason"]) for e in ends] == [("r1", 1), ("r2", 1)]
    assert not errors(sess.records), summary(sess.records)
    # r1 streamed to its end on the old client: its whole audio arrived
    total = ends[0].props["request_total_audio_duration_ms"]
    got = sum(len(f.pcm) for f in frames_between(sess.records, "r1")) * 1000 / 32000
    assert total > 1000 and abs(total - got) <= 10


def test_the_status_follows_the_new_client_only(monkeypatch):
    """update_configs during a request: the old client finishes the request, then
    closes silently. The graph's last connection status is the new client's
    (main's code: the old client's aclose() said "disconnected" last, while the
    new client's socket was open and speaking)."""
    probe = Probe(monkeypatch)
    latency = LatencyModel(handshake_s=0.0, rtt_s=0.0, first_audio_s=0.0, rtf=0.5)
    with ServerThread(ServerConfig.for_tests(latency=latency)) as srv:

        async def script(s):
            await s.text("r1", MEDIUM, end=True, metadata=META)
            await s.wait_frames(2)
            status, _ = await s.cmd(
                "update_configs", {"params": {"response_timeout_s": 7}}
            )
            assert status == 0
            await s.wait_end("r1")
            await s.until(lambda: probe.clients[0] in probe.closed, timeout=5)
            await s.text("r2", "On the new client.", end=True, metadata=META)
            await s.wait_end("r2")
            s.statuses = [
                r.props["current"]
                for r in named(s.records, "connection_status_changed")
            ]

        sess = run_session(props(srv), script)
    assert sess.statuses[-1] == "connected", sess.statuses
    assert "disconnected" not in sess.statuses, sess.statuses


# ------------------------------------------------------------ before on_start
def test_update_before_on_start_leaves_no_client_behind(monkeypatch, server):
    probe = Probe(monkeypatch)
    on_init = GradiumTTSExtension.on_init

    async def slow_on_init(self, ten_env):
        await on_init(self, ten_env)
        await asyncio.sleep(0.3)  # the command surely arrives during on_init

    monkeypatch.setattr(GradiumTTSExtension, "on_init", slow_on_init)

    async def script(s):
        status, result = await s.cmd(
            "update_configs", {"params": {"model_name": "m2", "connect_timeout_s": 4.0}}
        )
        assert status == 0, result
        await s.text("r1", "Updated before start.", end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    # the case under test: TEN delivered the command before on_start
    assert probe.calls == ["update_configs", "on_start"], probe.calls
    assert named(sess.records, "tts_audio_end")[0].props["reason"] == 1
    assert [m["model_name"] for m in server.received("setup")] == ["m2"]
    assert len(probe.clients) == 1 and probe.clients[0].connect_timeout_s == 4.0
    probe.check_nothing_left(server)


def test_update_after_a_failed_init_starts_working(monkeypatch, server):
    probe = Probe(monkeypatch)

    async def script(s):
        await s.wait_for(lambda recs: errors(recs))  # FATAL: no key
        status, result = await s.cmd("update_configs", {"params": {"api_key": KEY}})
        assert status == 0, result
        await s.text("r1", "Now with a key.", end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server, api_key=""), script)
    assert named(sess.records, "tts_audio_end")[0].props["reason"] == 1
    assert len(errors(sess.records)) == 1
    probe.check_nothing_left(server)


def test_an_invalid_update_is_refused_and_changes_nothing(monkeypatch, server):
    probe = Probe(monkeypatch)

    async def script(s):
        status, result = await s.cmd(
            "update_configs", {"params": {"response_timeout_s": -1}}
        )
        assert status == 1 and "response_timeout_s" in result["message"]
        await s.text("r1", "Still the old config.", end=True, metadata=META)
        await s.wait_end("r1")

    run_session(props(server), script)
    assert len(probe.clients) == 1 and probe.clients[0].response_timeout_s == 5.0
    probe.check_nothing_left(server)
