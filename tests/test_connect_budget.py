"""The connect budget and liveness (issue 25, part B), against servers that drop
sockets, refuse upgrades and stall audio while other messages keep coming.

- The budget: whatever the server does (closing every socket N s after its
  upgrade, a 1008 cap message, refusing every upgrade with an HTTP status or a
  reset), at most 6 handshakes and 3 ``connection_status`` events in any 10 s,
  idle and under traffic; every request ends exactly once, within its bound.
  While the client backs off no request opens a socket of its own.
- Time is scaled, honestly: the client's backoff, proof age, linger and jitter
  constants, its timeouts, the server's close delays, the request arrivals and
  the 10 s window are all multiplied by ``K`` (0.1), so 30 s of traffic take 3 s.
  Only the loopback handshake (a few ms) is not scaled, which can only make the
  client slower, never faster. The same table at real time: bench/resilience.py
  ``--only budget``.
- A generated suite (Hypothesis, derandomized, bounded) draws the server's
  pattern (close delay and code, refusal status), the request arrivals and the
  run length, and checks the same invariants.
- Liveness is audio: once audio has flowed, a request whose audio stops for
  ``response_timeout_s`` ends, however many words or other messages follow.
- Sockets the client closes itself (a flush) are not failures: a user who
  interrupts every turn still finds a warm socket for the next one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from gradium_server import Fault, GradiumServer, ServerConfig
from harness import ext_module
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import serve

API_KEY = "gsk_SECRET-budget-key-7a1f"
SETUP = {"model_name": "default", "voice_id": "synthetic", "output_format": "pcm_16000"}
K = 0.1  # time scale of the budget tests (see the module doc)
WINDOW_S = 10.0 * K
MAX_HANDSHAKES = 6
MAX_STATUSES = 3
RESPONSE_TIMEOUT_S = 5.0 * K
SLACK_S = 0.3  # a loaded CI machine's event-loop lag, on top of each bound
CAP_MESSAGE = "concurrency cap reached for this API key"


def gt() -> Any:
    return ext_module("gradium_tts")


@pytest.fixture
def scaled(monkeypatch):
    """The client's own clocks, times K (raising=False: main's code has fewer)."""
    for name, value in (
        ("_BACKOFF_FIRST_S", 1.0 * K),
        ("_BACKOFF_MAX_S", 30.0 * K),
        ("_PROVEN_AGE_S", 5.0 * K),
        ("_EXPIRY_MIN_S", 20.0 * K),
        ("_SETTLE_S", 2.0 * K),
        ("_JITTER_MAX_S", 10.0 * K),
        ("STANDBY_LINGER_S", 30.0 * K),
    ):
        monkeypatch.setattr(gt(), name, value, raising=False)


def busiest(times: list[float], window: float = WINDOW_S) -> int:
    return max((sum(1 for t in times if a <= t < a + window) for a in times), default=0)


class Statuses:
    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []

    async def on_connection_status(self, current: str, last: str) -> None:
        self.seen.append((time.monotonic(), current))

    async def on_connected(self, connect_ms: int) -> None:
        pass

    async def on_connection_error(self, error: Any) -> None:
        pass


@dataclass
class Outcome:
    """One request as its consumer saw it."""

    ended_at: float  # when the caller ended its text
    audio_at: list[float] = field(default_factory=list)
    finals: list[tuple[float, Any]] = field(default_factory=list)  # Done / Failed

    def bound(self) -> float:
        """The latest a request may end: 2 x T after its text ended (before
        audio, replay and waits included), or T after its last audio."""
        last = self.audio_at[-1] + RESPONSE_TIMEOUT_S if self.audio_at else 0.0
        return max(self.ended_at + 2 * RESPONSE_TIMEOUT_S, last) + SLACK_S


@dataclass
class Run:
    handshakes: list[float]
    statuses: list[tuple[float, str]]
    outcomes: list[Outcome]

    def problems(self) -> list[str]:
        out = []
        h = busiest(self.handshakes)
        s = busiest([t for t, _ in self.statuses])
        if h > MAX_HANDSHAKES:
            out.append(f"{h} handshakes in {WINDOW_S:g} s")
        if s > MAX_STATUSES:
            out.append(f"{s} status events in {WINDOW_S:g} s: {self.statuses}")
        for i, o in enumerate(self.outcomes):
            if len(o.finals) != 1:
                out.append(f"request {i} ended {len(o.finals)} times")
            elif o.finals[0][0] > o.bound():
                late = o.finals[0][0] - o.bound() + SLACK_S
                out.append(f"request {i} ended {late:.2f} s after its bound")
        return out


def apply_pattern(server: GradiumServer, pattern: tuple[str, Any, Any]) -> None:
    kind, a, b = pattern
    if kind == "close":  # close N s after the upgrade: code None (1000) or 1008/1011
        server.set_close_after(a, b, CAP_MESSAGE if b else "")
    elif kind == "reject":  # every upgrade refused with HTTP status a
        server.inject(Fault("reject_handshake", arg=a, count=10**6))
    elif kind == "refuse":  # every connection reset before the upgrade
        server.inject(Fault("refuse", count=10**6))
    else:
        raise AssertionError(kind)


async def play(
    pattern: tuple[str, Any, Any],
    arrivals: list[float],
    observe: float,
    onset: float = 0.0,
) -> Run:
    """A fresh server and client; requests at ``arrivals`` (s after start); the
    server misbehaves from ``onset`` on (before that it works)."""
    server = await GradiumServer(ServerConfig.for_tests()).start()
    if onset <= 0:
        apply_pattern(server, pattern)
    listener = Statuses()
    client = gt().GradiumTTSClient(
        server.url,
        API_KEY,
        listener=listener,
        response_timeout_s=RESPONSE_TIMEOUT_S,
        connect_timeout_s=10.0 * K,
    )
    outcomes: list[Outcome] = []

    async def one(i: int) -> None:
        req = client.request(SETUP)
        req.send_text(f"request {i} says hello.")
        req.end()
        out = Outcome(time.monotonic())
        outcomes.append(out)
        async for ev in req.events():
            now = time.monotonic()
            if isinstance(ev, gt().Audio):
                out.audio_at.append(now)
            elif isinstance(ev, gt().Done | gt().Failed):
                out.finals.append((now, ev))
        # events() returned: anything after the first final would be a bug above

    tasks: list[asyncio.Task[None]] = []
    try:
        client.start()
        started = time.monotonic()
        if onset > 0:
            loop = asyncio.get_running_loop()
            loop.call_later(onset, apply_pattern, server, pattern)
        for i, at in enumerate(sorted(arrivals)):
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(max(0.0, started + observe - time.monotonic()))
        if tasks:
            await asyncio.wait(tasks, timeout=4 * RESPONSE_TIMEOUT_S + 1)
        statuses = list(listener.seen)  # aclose() adds its own
        handshakes = [e.t for e in server.events_of("connect")]
    finally:
        for task in tasks:
            task.cancel()
        await client.aclose()
        await server.stop()
    return Run(handshakes, statuses, outcomes)


# The patterns, scaled: closes 0.5 / 1.5 / 2.5 s after the upgrade, a
# 1008 cap message after 1.5 s, HTTP 503 on every upgrade.
PATTERNS = {
    "close 0.5 s": ("close", 0.5 * K, None),
    "close 1.5 s": ("close", 1.5 * K, None),
    "close 2.5 s": ("close", 2.5 * K, None),
    "1008 cap 1.5 s": ("close", 1.5 * K, 1008),
    "HTTP 503": ("reject", 503, None),
}
EVERY_SECOND = [i * 1.0 * K for i in range(30)]


async def test_connect_budget_holds_idle_and_at_one_request_per_second(scaled):
    """Each pattern idle and at one request per second for 30 s (scaled), side by
    side. main's code: 21-25 handshakes and up to 25 status events in 10 s
    under traffic (bench/resilience.py --only budget)."""
    cases = [(name, traffic) for name in PATTERNS for traffic in (False, True)]
    runs = await asyncio.gather(
        *(
            play(PATTERNS[name], EVERY_SECOND if traffic else [], 30.0 * K)
            for name, traffic in cases
        )
    )
    report = {
        f"{name} {'1 req/s' if traffic else 'idle'}": (
            busiest(run.handshakes),
            busiest([t for t, _ in run.statuses]),
        )
        for (name, traffic), run in zip(cases, runs, strict=True)
    }
    for case, run in zip(cases, runs, strict=True):
        assert run.problems() == [], (case, report)
        if case[1]:
            assert len(run.outcomes) == 30, case


async def test_an_old_socket_living_on_does_not_reset_the_backoff(scaled):
    """The server works, then refuses every upgrade; the user interrupts a turn
    (its socket closes, the standby takes over, a new standby is wanted). That
    old standby living on says nothing about new handshakes: the refused
    attempts back off (a chaos seed found them retried at once, 9 in 15 ms,
    because an old socket counted as proof that the outage was over)."""
    server = await GradiumServer(ServerConfig.for_tests()).start()
    listener = Statuses()
    client = gt().GradiumTTSClient(
        server.url, API_KEY, listener=listener, response_timeout_s=RESPONSE_TIMEOUT_S
    )
    try:
        client.start()
        assert await client.wait_connected(5)
        first = client.request(SETUP)
        first.send_text("the standby opens beside this one.")
        first.end()
        async for _ in first.events():
            pass
        await asyncio.sleep(8.0 * K)  # both sockets now older than _PROVEN_AGE_S
        server.inject(Fault("reject_handshake", arg=503, count=10**6))
        onset = time.monotonic()
        cut = client.request(SETUP)
        cut.send_text("a long answer the user interrupts " * 4)
        cut.end()
        async for ev in cut.events():
            if isinstance(ev, gt().Audio):
                break
        cut.cancel()  # closes its socket: the standby takes over
        await asyncio.sleep(20.0 * K)
        handshakes = [e.t for e in server.events_of("connect") if e.t >= onset]
        statuses = [t for t, _ in listener.seen if t >= onset]
    finally:
        await client.aclose()
        await server.stop()
    assert busiest(handshakes) <= MAX_HANDSHAKES, len(handshakes)
    assert busiest(statuses) <= MAX_STATUSES, statuses
    assert client.connections_opened == 2  # the refused ones never opened


async def test_a_request_opens_no_socket_while_the_client_backs_off(scaled):
    """HTTP 503 on every upgrade; ten requests arrive together mid-backoff. They
    ride the scheduled attempts only (no request + replay double attempts) and
    each ends once, NON_FATAL, saying Gradium refuses or drops connections and
    when the next attempt is."""
    server = await GradiumServer(ServerConfig.for_tests()).start()
    server.inject(Fault("reject_handshake", arg=503, count=10**6))
    client = gt().GradiumTTSClient(
        server.url, API_KEY, response_timeout_s=RESPONSE_TIMEOUT_S
    )
    try:
        client.start()
        await asyncio.sleep(6.0 * K)  # three or four failures: backoff 0.2-0.8 s
        before = server.connection_attempts
        reqs = [client.request(SETUP) for _ in range(10)]
        for req in reqs:
            req.send_text("hello")
            req.end()

        async def last(req: Any) -> Any:
            final = None
            async for ev in req.events():
                final = ev
            return final

        finals = await asyncio.wait_for(
            asyncio.gather(*(last(r) for r in reqs)), 4 * RESPONSE_TIMEOUT_S
        )
        during = server.connection_attempts - before
    finally:
        await client.aclose()
        await server.stop()
    # two scheduled attempts at most fit in the requests' 2 x 0.5 s (main: 20)
    assert during <= 2, during
    for final in finals:
        assert isinstance(final, gt().Failed), final
        assert final.error.fatal is False
        assert "refusing or dropping connections" in final.error.message
        assert "next attempt in" in final.error.message


# ------------------------------------------------------------- generated servers
PATTERN = st.one_of(
    st.tuples(
        st.just("close"),
        st.floats(0.02, 4.0 * K).map(lambda x: round(x, 3)),
        st.sampled_from([None, 1008, 1011]),
    ),
    st.tuples(st.just("reject"), st.sampled_from([429, 500, 502, 503]), st.none()),
    st.tuples(st.just("refuse"), st.none(), st.none()),
)
ARRIVALS = st.one_of(
    st.just([]),  # idle
    st.lists(st.floats(0.0, 30.0 * K).map(lambda x: round(x, 3)), max_size=30),
)


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: bounded in CI
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pattern=PATTERN,
    arrivals=ARRIVALS,
    onset=st.sampled_from(
        [0.0, 2.0 * K, 8.0 * K]
    ),  # misbehaving from the start, or later
)
def test_generated_servers_keep_the_budget_and_end_every_request_once(
    scaled, pattern, arrivals, onset
):
    run = asyncio.run(play(pattern, arrivals, 30.0 * K, onset))
    assert run.problems() == [], (pattern, arrivals)
    assert len(run.outcomes) == len(arrivals)


# ------------------------------------------------------------------- liveness
async def _words_after_one_frame(words: bool) -> tuple[float, list[Any], int]:
    """A server that answers ready, one audio frame, then a word every 50 ms for
    ever. Returns (time from the audio frame to the request's end, events,
    words the server sent)."""
    sent = {"words": 0}

    async def handler(ws: Any) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") != "setup":
                continue
            cid = msg["client_req_id"]
            await ws.send(
                json.dumps(
                    {
                        "type": "ready",
                        "request_id": "g-1",
                        "sample_rate": 16000,
                        "client_req_id": cid,
                    }
                )
            )
            pcm = base64.b64encode(b"\0\0" * 160).decode()
            await ws.send(
                json.dumps({"type": "audio", "audio": pcm, "client_req_id": cid})
            )
            t = 0.0
            while True:
                await asyncio.sleep(0.05)
                t += 0.05
                sent["words"] += 1
                await ws.send(
                    json.dumps(
                        {
                            "type": "text",
                            "text": "word",
                            "start_s": t,
                            "stop_s": t + 0.01,
                            "client_req_id": cid,
                        }
                    )
                )

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = gt().GradiumTTSClient(
            f"ws://127.0.0.1:{port}", API_KEY, response_timeout_s=0.5
        )
        events: list[Any] = []
        audio_at = ended_at = 0.0
        try:
            req = client.request(SETUP, words=words)
            req.send_text("hello")
            req.end()

            async def consume() -> None:
                nonlocal audio_at, ended_at
                async for ev in req.events():
                    events.append(ev)
                    if isinstance(ev, gt().Audio):
                        audio_at = time.monotonic()
                ended_at = time.monotonic()

            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(consume(), 3.0)
        finally:
            await client.aclose()
    took = ended_at - audio_at if ended_at else float("inf")
    return took, events, sent["words"]


@pytest.mark.parametrize("words", [True, False], ids=["words_on", "words_off"])
async def test_words_do_not_keep_a_stalled_request_alive(words):
    """After one audio frame, only words: the request ends (NON_FATAL timeout)
    0.5 s after that frame (main's code: never, while the words keep coming)."""
    took, events, sent = await _words_after_one_frame(words)
    assert isinstance(events[-1], gt().Failed), events[-3:]
    err = events[-1].error
    assert (err.vendor_code, err.fatal) == ("timeout", False)
    assert "no audio" in err.message
    assert 0.45 <= took <= 0.5 + SLACK_S + 0.2, took
    assert sent >= 5  # the words did keep coming meanwhile


# ------------------------------------------------------------ on-purpose closes
async def test_flushing_every_turn_is_no_failure_and_each_turn_finds_a_warm_socket(
    make_server,
):
    """The user interrupts every turn (flush_mode close closes the socket): no
    failure is counted, and every next turn rides a socket already open."""
    server = await make_server()
    client = gt().GradiumTTSClient(server.url, API_KEY)
    try:
        client.start()
        assert await client.wait_connected(5)
        for turn in range(8):
            await asyncio.sleep(0.05)  # the standby's handshake (~1 ms here)
            started = time.monotonic()
            req = client.request(SETUP)
            req.send_text(f"turn {turn} is a long answer the user cuts short " * 3)
            req.end()
            async for ev in req.events():
                if isinstance(ev, gt().Audio):
                    break
            req.cancel()
            setup = server.received("setup")[-1]
            conn = next(
                e.conn
                for e in server.events_of("open")
                if any(
                    m.get("client_req_id") == setup["client_req_id"]
                    for m in server.received("setup", conn=e.conn)
                )
            )
            opened = server.events_of("open", conn=conn)[0].t
            assert opened < started, f"turn {turn} waited for a handshake"
            assert client._failures == 0
    finally:
        await client.aclose()


async def test_the_local_servers_stall_words_fault_ends_by_the_audio_deadline(
    make_server,
):
    """The same on the local server's ``stall_words`` fault (used by the chaos
    suite): two frames, then only words; the request ends 0.5 s after its last
    frame, and the socket that stalled takes no new request."""
    server = await make_server()
    client = gt().GradiumTTSClient(server.url, API_KEY, response_timeout_s=0.5)
    try:
        client.start()
        assert await client.wait_connected(5)
        server.inject(Fault("stall_words", arg=2))
        req = client.request(SETUP)
        req.send_text("two frames then words for ever")
        req.end()
        last_audio, events = 0.0, []
        async for ev in req.events():
            events.append(ev)
            if isinstance(ev, gt().Audio):
                last_audio = time.monotonic()
        took = time.monotonic() - last_audio
        assert events[-1].error.vendor_code == "timeout", events[-1]
        assert 0.45 <= took <= 0.5 + SLACK_S + 0.2, took
        assert any(m.get("text") == "babble" for m in server.sent("text"))
        nxt = client.request(SETUP)
        nxt.send_text("fine")
        nxt.end()
        finals = [ev async for ev in nxt.events()]
        assert isinstance(finals[-1], gt().Done)
        setups = [e.conn for e in server.events_of("open")]
        first_conn = setups[0]
        assert server.received("setup", conn=first_conn)[-1]["client_req_id"] == (
            req.client_req_id
        )
    finally:
        await client.aclose()


async def test_wait_connected_keeps_the_budget(scaled):
    """A caller waiting for a warm start while every upgrade is refused: the
    attempts follow the backoff (it used to retry at once, in a loop)."""
    server = await GradiumServer(ServerConfig.for_tests()).start()
    server.inject(Fault("refuse", count=10**6))
    client = gt().GradiumTTSClient(server.url, API_KEY)
    try:
        assert await client.wait_connected(20.0 * K) is False
        handshakes = [e.t for e in server.events_of("connect")]
    finally:
        await client.aclose()
        await server.stop()
    assert busiest(handshakes) <= MAX_HANDSHAKES, len(handshakes)


def test_the_backoff_of_a_long_outage_stays_a_number():
    """About 1,025 failures in a row (8.5 hours of outage at one attempt per
    30 s) used to overflow the backoff's float and crash the failed attempt."""
    for failures in (1, 2, 6, 1025, 10**6):
        delay = gt()._backoff_delay(failures)
        assert 0.5 <= delay <= 30.0, (failures, delay)
