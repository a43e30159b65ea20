"""Seeded chaos sessions: random traffic, faults and flushes; invariants per request.

``plan_session(seed, requests)`` is a pure function of the seed: the whole traffic
of one session (texts and their segmenting, flushes and the moment each one waits
for, late chunks, reused ids, server faults, outages, ``update_configs``, the
ending). ``run_plan(plan)`` plays it against the extension (TEN tester harness)
and a fresh local server (``ServerThread``, fast latency model) and returns a
``ChaosResult``; ``check(result)`` returns the broken invariants, one message
each. Only timing varies between two runs of one seed: every wait is on an event
(a frame, a server message), with a timeout, never on luck.

Replay one seed: ``CHAOS_SEED=<seed> .venv/bin/python -m pytest tests/test_chaos.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import tenhost
from gradium_server import Fault, LatencyModel, ServerConfig, ServerThread
from harness import Rec, Session, ext_module, record_ten_log, run_session, summary

TextShaper = ext_module("text_filter").TextShaper
is_speakable = ext_module("text_filter").is_speakable

KEY = "chaos-key-0123456789"
BAD_KEY = "invalid-chaos-key"
# Fast, but not instant: audio is produced at 10x real time, so a flush can land
# mid-stream and requests overlap with the network.
LATENCY = LatencyModel(handshake_s=0.005, rtt_s=0.002, first_audio_s=0.01, rtf=0.1)
RATES = (8000, 16000, 22050, 24000, 44100, 48000)
CONNECT_TIMEOUT_S = 2.0
RESPONSE_TIMEOUT_S = 2.0  # generous: a loaded machine must not time out a request
DURATION_TOLERANCE_MS = 50  # the guarder's tolerance
WORDS = (
    "hello there general kenobi the quick brown fox jumps over lazy dog we are "
    "testing chaos seven eleven forty two numbers 123 and 4567 today tomorrow "
    "weather sunny rain café naïve über straße 東京 Привет мир مرحبا ok yes no"
).split()
# A request's tag, wherever it sits in the text Gradium got.
TAG = re.compile(r"Kilo\d+z")
ODD_SEGMENTS = ("", " ", "  ", "\n\t", ",", "...", "?!", " - ", "😊", "🎉👍", "…", "*")
REQUEST_FAULTS = (
    "error_1008",
    "error_1011",
    "drop_after",
    "stall_after_ready",
    "stall_mid_stream",
    "non_json",
    "unknown_type",
    "oversized",
    "slow_drip",
    "close_1000_no_eos",
)
# Faults that end the request they fire on (unless it is replayed).
TERMINAL_FAULTS = frozenset(
    {
        "error_1008",
        "error_1011",
        "drop_after",
        "stall_after_ready",
        "stall_mid_stream",
        "close_1000_no_eos",
        "echo_key",
        "stall_words",
    }
)
# Connection faults: refuse / reject_handshake, or one of these (their own draw).
SOCKET_FAULTS = ("hang_handshake", "close_after")
# Odd servers (issue 15), on their own draw too: a NaN or backwards word
# timestamp, an odd-length audio chunk, an error message echoing the key.
ODD_FAULTS = ("word_nan", "word_backwards", "odd_audio", "echo_key")
# The connect budget and liveness (issue 25), on their own draw too: audio that
# stalls while words keep coming (a request fault), and windows of traffic while
# the server closes every new socket N s after its upgrade (plain, or a 1008 cap
# message first) or refuses upgrades; an update_configs mid-request followed by
# a look at the graph's last connection status.
STALL_FAULTS = ("stall_after_ready", "stall_mid_stream", "stall_words")
CAP_MESSAGE = "concurrency cap reached for this API key"
BUDGET_HANDSHAKES = 6  # at most, in any BUDGET_WINDOW_S, while the server refuses/drops
BUDGET_WINDOW_S = 10.0
BACKOFF_MEMORY_S = 35.0  # the client's longest backoff (30 s) and a margin
SECRETS = (KEY, BAD_KEY)
REUSE_WAIT_S = 1.5  # how long to wait for an id reused after a flush
FLUSH_MOMENTS = ("immediate", "server_text", "mid_audio", "ending", "idle", "buffered")


# ===================================================================== the plan
@dataclass
class Plan:
    seed: int
    params: dict[str, Any]
    steps: list[dict[str, Any]]
    stopped: bool  # ends with on_stop mid-request instead of a drain
    dump: bool = False  # PCM dumps on (their writes make the ending yield)
    words: bool = False  # enable_words on (word results; word timestamp faults)

    def describe(self) -> str:
        return "\n".join(json.dumps(s, ensure_ascii=False) for s in self.steps)


def plan_session(seed: int, requests: int = 20) -> Plan:
    """The traffic of one session: a pure function of (seed, requests)."""
    rng = random.Random(seed)
    odd_rng = random.Random(f"{seed}-odd")
    g = _Gen(rng, random.Random(f"{seed}-sockets"), odd_rng)
    g.budget_rng = random.Random(f"{seed}-budget")
    rate = rng.choice(RATES)
    params = {
        "api_key": KEY,
        "voice_id": "synthetic",
        "sample_rate": rate,
        "connect_timeout_s": CONNECT_TIMEOUT_S,
        "response_timeout_s": RESPONSE_TIMEOUT_S,
    }
    words = odd_rng.random() < 0.6  # word results on: the word faults bite
    while g.requests < requests:
        roll = rng.random()
        if roll < 0.30:
            g.simple()
        elif roll < 0.42:
            g.interleaved()
        elif roll < 0.68:
            g.flushed()
        elif roll < 0.74:
            g.late_chunk()
        elif roll < 0.82:
            g.update_mid_stream()
        elif roll < 0.87:
            g.connection_fault()
        elif roll < 0.92:
            g.outage()
        elif roll < 0.95:
            g.bad_key_window()
        else:
            g.reuse_after_flush()
        roll = g.budget_rng.random()
        if roll < 0.04:
            g.budget_window()
        elif roll < 0.06:
            g.update_then_status()
    stopped = rng.random() < 0.4
    if stopped:
        g.stop_mid_request()
    else:
        g.steps.append({"op": "drain"})
    return Plan(seed, params, g.steps, stopped, dump=rng.random() < 0.5, words=words)


class _Gen:
    def __init__(
        self, rng: random.Random, socket_rng: random.Random, odd_rng: random.Random
    ) -> None:
        self.rng = rng
        self.odd_rng = odd_rng  # the ODD_FAULTS draws (traffic stays as it was)
        # Draws for the socket faults added later (hang_handshake, close_after), on
        # their own stream so the rest of every seed's traffic stays as it was.
        self.socket_rng = socket_rng
        self.budget_rng = random.Random(0)  # set by plan_session
        self.steps: list[dict[str, Any]] = []
        self.requests = 0
        self.used: list[str] = []  # request ids used so far (for reuse)
        self.tags = 0
        self.flushes = 0

    # ------------------------------------------------------------ texts
    def _words(self, lo: int, hi: int) -> str:
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(lo, hi))]
        text = " ".join(words)
        return text + self.rng.choice(("", ".", "!", "?", ",", " "))

    def _segments(self, tag: str, fault: str | None) -> list[str]:
        """Random segmenting: odd segments around; the first speakable one carries
        the request's tag (and its fault marker), so the server log can be matched."""
        segs = [self.rng.choice(ODD_SEGMENTS) for _ in range(self.rng.randint(0, 2))]
        first = f"{tag} {self._words(0, 4)}"
        if fault:
            first = (
                f"{first} {fault}" if self.rng.random() < 0.5 else f"{fault} {first}"
            )
        segs.append(first)
        for _ in range(self.rng.randint(0, 3)):
            if self.rng.random() < 0.3:
                segs.append(self.rng.choice(ODD_SEGMENTS))
            else:
                segs.append(self._words(1, 5))
        return segs

    def _new_rid(self) -> str:
        rid = f"r{self.requests}-{self.rng.randrange(1000)}"
        self.requests += 1
        self.used.append(rid)
        return rid

    def _tag(self) -> str:
        self.tags += 1
        return f"Kilo{self.tags}z"

    def _request(
        self, rid: str | None = None, *, faults: bool = True
    ) -> dict[str, Any]:
        """A request: id, tag, segments (maybe empty of speech), maybe a fault."""
        rid = rid or self._new_rid()
        tag = self._tag()
        if self.rng.random() < 0.08:  # nothing speakable at all
            segs = [
                self.rng.choice(ODD_SEGMENTS) for _ in range(self.rng.randint(1, 3))
            ]
            return {"rid": rid, "tag": None, "segs": segs}
        marker = None
        if faults and self.rng.random() < 0.35:
            kind = self.rng.choice(REQUEST_FAULTS)
            arg, phase = self._fault_arg(kind)
            if self.odd_rng.random() < 0.4:
                kind = self.odd_rng.choice(ODD_FAULTS)
                arg, phase = self._odd_fault_arg(kind)
            if self.budget_rng.random() < 0.12:
                kind = "stall_words"  # audio stalls, words keep coming
                arg = self.budget_rng.randint(0, 4)
                phase = "before_audio" if arg == 0 else "mid_audio"
            fault = {"kind": kind, "arg": arg, "phase": phase}
            if self.rng.random() < 0.5:
                # a marker: every attempt (the replay too) meets the fault
                marker = f"[[fault:{kind}:{'' if arg is None else arg}]]"
                self.steps.append({"op": "note_fault", "via": "marker", **fault})
            else:
                # injected for the first attempt only (matched by the tag)
                self.steps.append({"op": "inject", "match_text": tag, **fault})
        return {"rid": rid, "tag": tag, "segs": self._segments(tag, marker)}

    def _fault_arg(self, kind: str) -> tuple[Any, str]:
        r = self.rng
        if kind in ("error_1008", "error_1011", "drop_after", "stall_mid_stream"):
            n = r.randint(0, 8)
            return n, "before_audio" if n == 0 else "mid_audio"
        if kind == "close_1000_no_eos":
            if r.random() < 0.4:
                return None, "after_audio"
            n = r.randint(0, 8)
            return n, "before_audio" if n == 0 else "mid_audio"
        if kind == "non_json":
            n = r.randint(0, 4)
            return n, "before_audio" if n == 0 else "mid_audio"
        if kind == "oversized":
            return r.randint(70_000, 2 * 1024 * 1024), "before_audio"
        if kind == "slow_drip":
            return round(r.uniform(0.01, 0.05), 3), "whole_stream"
        return None, "before_audio"  # stall_after_ready, unknown_type

    def _odd_fault_arg(self, kind: str) -> tuple[Any, str]:
        r = self.odd_rng
        if kind == "echo_key":
            n = r.randint(0, 6)
            return n, "before_audio" if n == 0 else "mid_audio"
        if kind == "odd_audio":
            return r.randint(0, 4), "whole_stream"
        return r.randint(0, 4), "words"  # word_nan, word_backwards

    def _send(self, req: dict[str, Any], *, end: bool = True) -> None:
        segs = req["segs"]
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            self.steps.append(
                {"op": "text", "rid": req["rid"], "text": seg, "end": end and last}
            )
            if not last and self.rng.random() < 0.25:
                self.steps.append(
                    {"op": "sleep", "s": round(self.rng.uniform(0, 0.1), 3)}
                )

    def _maybe_wait(self, rids: list[str], p: float = 0.6) -> None:
        if self.rng.random() < p:
            self.steps.append({"op": "wait_end", "rids": rids})

    # ------------------------------------------------------------ patterns
    def simple(self) -> None:
        req = self._request()
        self._send(req)
        self._maybe_wait([req["rid"]])

    def interleaved(self) -> None:
        reqs = [self._request() for _ in range(self.rng.randint(2, 3))]
        queues = [[(r["rid"], s) for s in r["segs"]] for r in reqs]
        while any(queues):
            q = self.rng.choice([q for q in queues if q])
            rid, seg = q.pop(0)
            self.steps.append({"op": "text", "rid": rid, "text": seg, "end": not q})
        self._maybe_wait([r["rid"] for r in reqs], 0.7)

    def flushed(self) -> None:
        moment = self.rng.choice(FLUSH_MOMENTS)
        req = self._request()
        rid, tag, segs = req["rid"], req["tag"], req["segs"]
        fid = f"f{self.flushes}"
        self.flushes += 1
        if moment == "idle":  # nothing is processing when the flush arrives
            self._send(req)
            self.steps.append({"op": "wait_end", "rids": [rid]})
        elif moment == "buffered":  # one active, one buffered behind it
            self._send(req, end=self.rng.random() < 0.5)
            other = self._request()
            self._send(other)
            self.steps.append({"op": "wait_frames", "rid": rid, "n": 1})
        elif moment == "ending":  # while the request ends normally (or by error)
            self._send(req)
            delay = round(self.rng.uniform(0, 0.006), 4)
            self.steps.append(
                {"op": "wait_server_eos", "tag": tag, "rid": rid, "then_s": delay}
            )
        else:
            cut = self.rng.randint(1, len(segs))
            self._send({**req, "segs": segs[:cut]}, end=cut == len(segs))
            if moment == "server_text":
                self.steps.append({"op": "wait_server_text", "tag": tag})
            elif moment == "mid_audio":
                n = self.rng.randint(1, 6)
                self.steps.append({"op": "wait_frames", "rid": rid, "n": n})
        self.steps.append({"op": "flush", "fid": fid, "moment": moment})
        if self.rng.random() < 0.3:
            # more text of the flushed id after the flush: a new request (the flush
            # forgot the old one)
            again = self._request(rid, faults=False)
            self._send(again)
            self._maybe_wait([rid])

    def late_chunk(self) -> None:
        req = self._request(faults=False)
        self._send(req)
        self.steps.append({"op": "wait_end", "rids": [req["rid"]]})
        self.steps.append(
            {
                "op": "text",
                "rid": req["rid"],
                "text": self._words(1, 4),
                "end": self.rng.random() < 0.5,
                "late": True,
            }
        )

    def reuse_after_flush(self) -> None:
        """An id that already ended, used again after a flush: a new request."""
        if not self.used:
            return self.simple()
        rid = self.rng.choice(self.used)
        self.steps.append({"op": "wait_idle"})
        self.steps.append({"op": "flush", "fid": f"f{self.flushes}", "moment": "idle"})
        self.flushes += 1
        self.requests += 1
        req = self._request(rid, faults=False)
        self._send(req)
        self._maybe_wait([rid])
        return None

    def update_mid_stream(self) -> None:
        req = self._request(faults=False)
        segs = req["segs"]
        cut = self.rng.randint(1, len(segs))
        self._send({**req, "segs": segs[:cut]}, end=False)
        r = self.rng.random()
        if r < 0.4:
            configs = {"params": {"sample_rate": self.rng.choice(RATES)}}
            valid = True
        elif r < 0.55:
            configs = {
                "params": {
                    "voice_id": self.rng.choice(["synthetic", "YTpq7expH9539ERJ"])
                }
            }
            valid = True
        elif r < 0.75:
            configs = {
                "params": {
                    "response_timeout_s": self.rng.choice([1.5, 2.0, 3.0]),
                    "connect_timeout_s": self.rng.choice([2.0, 3.0]),
                }
            }
            valid = True
        else:
            # a valid change next to an invalid one: nothing may apply
            configs = {
                "params": {
                    "sample_rate": self.rng.choice(RATES),
                    self.rng.choice(
                        ["connect_timeout_s", "response_timeout_s"]
                    ): "soon",
                }
            }
            if self.rng.random() < 0.5:
                configs = {"params": {"sample_rate": 12345}}
            valid = False
        self.steps.append({"op": "update", "configs": configs, "valid": valid})
        self._send({**req, "segs": segs[cut:] or [""]})
        self._maybe_wait([req["rid"]])

    def connection_fault(self) -> None:
        kind = self.rng.choice(["refuse", "reject_handshake"])
        arg = (
            self.rng.choice([429, 500, 502, 503])
            if kind == "reject_handshake"
            else None
        )
        if self.socket_rng.random() < 0.5:
            # the next attempts hang (the client's connect timeout ends each), or
            # the next sockets close N s after their upgrade, whatever they carry
            kind = self.socket_rng.choice(SOCKET_FAULTS)
            arg = (
                round(self.socket_rng.uniform(0.05, 1.5), 3)
                if kind == "close_after"
                else None
            )
        self.steps.append(
            {
                "op": "inject",
                "kind": kind,
                "arg": arg,
                "count": self.rng.randint(1, 3),
                "phase": "connect",
            }
        )
        # a socket-killing fault makes the client reconnect into it
        req = self._request(faults=False)
        drop = self.rng.randint(0, 3)
        marker = f"[[fault:drop_after:{drop}]]"
        req["segs"] = [
            s if req["tag"] is None or req["tag"] not in s else f"{s} {marker}"
            for s in req["segs"]
        ]
        if req["tag"] is not None:
            self.steps.append(
                {
                    "op": "note_fault",
                    "via": "marker",
                    "kind": "drop_after",
                    "arg": drop,
                    "phase": "before_audio" if drop == 0 else "mid_audio",
                }
            )
        self._send(req)
        self._maybe_wait([req["rid"]])

    def budget_window(self) -> None:
        """A few requests about one a second while the server closes every new
        socket N s after its upgrade, or refuses upgrades (issue 25)."""
        r = self.budget_rng
        if r.random() < 0.6:
            seconds = round(r.uniform(0.3, 2.5), 3)
            code = r.choice([None, 1008])
            window = {"kind": "drop", "s": seconds, "code": code}
        else:
            kind = r.choice(["reject_handshake", "refuse"])
            arg = r.choice([429, 502, 503]) if kind == "reject_handshake" else None
            window = {"kind": kind, "arg": arg, "count": r.randint(3, 8)}
        self.steps.append({"op": "budget_window", "on": True, **window})
        rids = []
        for _ in range(r.randint(2, 5)):
            req = self._request(faults=False)
            self._send(req)
            rids.append(req["rid"])
            self.steps.append({"op": "sleep", "s": round(r.uniform(0.3, 1.0), 3)})
        self.steps.append({"op": "wait_end", "rids": rids})
        self.steps.append({"op": "budget_window", "on": False, **window})

    def update_then_status(self) -> None:
        """update_configs (a client setting) mid-request; once the request and
        the next one ended, the graph's last status is the new client's."""
        r = self.budget_rng
        req = self._request(faults=False)
        segs = req["segs"]
        cut = r.randint(1, len(segs))
        self._send({**req, "segs": segs[:cut]}, end=False)
        # a value no other pattern uses: the update always builds a new client
        timeout = round(r.uniform(2.01, 2.99), 2)
        self.steps.append(
            {
                "op": "update",
                "configs": {"params": {"response_timeout_s": timeout}},
                "valid": True,
            }
        )
        self._send({**req, "segs": segs[cut:] or [""]})
        self.steps.append({"op": "wait_end", "rids": [req["rid"]]})
        after = self._request(faults=False)
        self._send(after)
        self.steps.append({"op": "wait_end", "rids": [after["rid"]]})
        self.steps.append({"op": "status_check"})

    def outage(self) -> None:
        self.steps.append({"op": "outage", "on": True})
        for _ in range(self.rng.randint(0, 2)):
            req = self._request(faults=False)
            self._send(req)
        self.steps.append({"op": "sleep", "s": round(self.rng.uniform(0.1, 1.0), 3)})
        self.steps.append({"op": "outage", "on": False})
        after = self._request(faults=False)
        self._send(after)
        self._maybe_wait([after["rid"]])

    def bad_key_window(self) -> None:
        self.steps.append({"op": "wait_idle"})
        self.steps.append(
            {
                "op": "update",
                "configs": {"params": {"api_key": BAD_KEY}},
                "valid": True,
                "bad_key": True,
            }
        )
        for _ in range(self.rng.randint(1, 2)):
            req = self._request(faults=False)
            self._send(req)
            self.steps.append({"op": "wait_end", "rids": [req["rid"]]})
        self.steps.append(
            {
                "op": "update",
                "configs": {"params": {"api_key": KEY}},
                "valid": True,
                "bad_key": False,
            }
        )

    def stop_mid_request(self) -> None:
        req = self._request()
        segs = req["segs"]
        cut = self.rng.randint(1, len(segs))
        self._send({**req, "segs": segs[:cut]}, end=self.rng.random() < 0.5)
        if self.rng.random() < 0.6:
            self.steps.append(
                {"op": "wait_frames", "rid": req["rid"], "n": self.rng.randint(1, 4)}
            )
        if self.rng.random() < 0.3:  # stop while a flush is being handled
            self.steps.append(
                {"op": "flush", "fid": f"f{self.flushes}", "moment": "stop"}
            )
            self.flushes += 1
        self.steps.append({"op": "stop"})


# =================================================================== the runner
@dataclass
class ChaosResult:
    plan: Plan
    records: list[Rec]
    sent: list[dict[str, Any]]  # what the script did, with times
    server_log: list[Any]
    script_end_t: float
    open_after: int  # sockets still open on the server after the session
    leftover_tasks: list[str]
    unclosed_clients: int
    wall_s: float
    bound_s: float
    error: str | None = None  # the harness failed (timeout, script crash)
    # What the extension sent after the tester's on_stop began (never delivered,
    # tenhost.after_stop()); None on the real runtime, which does not tell.
    after_stop: list[dict[str, Any]] | None = None
    # Log lines (any logger, and the extension's ten_env log calls) that held a
    # key, while the session ran.
    leaked_logs: list[str] = field(default_factory=list)
    # What the extension passed to its ten_env log calls (both hosts).
    ten_lines: list[str] = field(default_factory=list)
    # Violations that ten_ai_base's input queue caused, not the extension (see
    # reordered_by_base_class); check() moves them here, report() shows them.
    upstream: list[str] = field(default_factory=list)


class _SecretWatch(logging.Handler):
    """Keeps every log record whose text holds one of SECRETS."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.leaked: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format is not a leak
            return
        if any(k in text for k in SECRETS):
            self.leaked.append(f"{record.name}: {text[:200]}")


def bound_for(plan: Plan) -> float:
    """How long a request may take once released, before its audio: a connect and
    a response deadline for the first attempt and for the replay, plus slack."""
    connect = [plan.params["connect_timeout_s"]]
    response = [plan.params["response_timeout_s"]]
    for step in plan.steps:
        if step["op"] == "update" and step["valid"]:
            p = step["configs"]["params"]
            connect.append(p.get("connect_timeout_s", connect[0]))
            response.append(p.get("response_timeout_s", response[0]))
    return 2 * (max(connect) + max(response)) + 4.0


def props_for(plan: Plan, server: ServerThread, dump_dir: str) -> dict[str, Any]:
    props: dict[str, Any] = {"params": {**plan.params, "url": server.url}}
    if plan.dump:
        props.update(dump=True, dump_path=dump_dir)
    if plan.words:
        props["enable_words"] = True
    return props


def run_plan(plan: Plan) -> ChaosResult:
    """Play a plan against a fresh local server; collect everything to check."""
    started = time.monotonic()
    bound = bound_for(plan)
    sent: list[dict[str, Any]] = []
    tasks_before = _client_tasks()
    clients_before = {id(c) for c in _clients()}
    watch = _SecretWatch()
    logging.getLogger().addHandler(watch)
    client_log = logging.getLogger("gradium_tts")
    level = client_log.level
    client_log.setLevel(logging.DEBUG)  # every line the client logs is checked
    # and every line the extension passed to its ten_env (TEN's own log on the
    # real runtime, never Python's logging)
    with pytest.MonkeyPatch.context() as mp:
        ten_log = record_ten_log(mp)
        try:
            result = _run_plan(
                plan, started, bound, sent, tasks_before, clients_before, watch
            )
        finally:
            client_log.setLevel(level)
            logging.getLogger().removeHandler(watch)
    result.ten_lines = [line.msg for line in ten_log.lines]
    for line in ten_log.lines:
        text = f"{line.msg} {line.fields!r}"
        if any(k in text for k in SECRETS):
            result.leaked_logs.append(f"ten_env {line.level}: {text[:200]}")
    return result


def _run_plan(
    plan: Plan,
    started: float,
    bound: float,
    sent: list[dict[str, Any]],
    tasks_before: set[asyncio.Task[Any]],
    clients_before: set[int],
    watch: _SecretWatch,
) -> ChaosResult:
    with (
        ServerThread(ServerConfig.for_tests(latency=LATENCY)) as server,
        tempfile.TemporaryDirectory(prefix="chaos-dump-") as dump_dir,
    ):
        player = _Player(plan, server, sent, bound)
        error = None
        session: Session | None = None
        props = props_for(plan, server, dump_dir)
        try:
            session = run_session(props, player.play, timeout_s=600)
        except AssertionError as exc:
            error = str(exc)
        records = session.records if session is not None else player.records
        after_stop = tenhost.after_stop()
        deadline = time.monotonic() + 5.0
        while server.open_connections and time.monotonic() < deadline:
            time.sleep(0.02)
        open_after = server.open_connections
        leftover = _wait_tasks_gone(tasks_before, clients_before, 3.0)
        unclosed = [
            c for c in _clients() if id(c) not in clients_before and not c._closed
        ]
        server_log = server.log_snapshot()
    return ChaosResult(
        plan=plan,
        records=list(records),
        sent=sent,
        server_log=server_log,
        script_end_t=player.end_t or time.monotonic(),
        open_after=open_after,
        leftover_tasks=leftover,
        unclosed_clients=len(unclosed),
        wall_s=time.monotonic() - started,
        bound_s=bound,
        error=error,
        after_stop=after_stop,
        leaked_logs=list(watch.leaked),
    )


class _Player:
    """Plays the steps of a plan on the tester's loop."""

    def __init__(
        self, plan: Plan, server: ServerThread, sent: list[dict[str, Any]], bound: float
    ) -> None:
        self.plan = plan
        self.server = server
        self.sent = sent
        self.bound = bound
        self.s: Session | None = None
        self.records: list[Rec] = []
        self.rate = plan.params["sample_rate"]
        self.bad_key = False
        self.epoch = 0
        self.marks: dict[tuple[str, int], int] = {}  # (rid, epoch) -> records index
        self.open: dict[tuple[str, int], bool] = {}  # instances whose end was sent
        self.end_t: float | None = None
        self.earlier: set[str] = set()  # ids also sent before an earlier flush
        self.session = f"chaos-{plan.seed}"
        self.metas: dict[tuple[str, int], dict[str, Any]] = {}

    def log(self, op: str, **fields: Any) -> None:
        self.sent.append({"t": time.monotonic(), "op": op, **fields})

    async def play(self, s: Session) -> None:
        self.s = s
        self.records = s.records
        for step in self.plan.steps:
            op = step["op"]
            if op == "stop":
                break
            began = time.monotonic()
            await getattr(self, "_" + op)(step)
            took = time.monotonic() - began
            if took > 1.0:
                self.log("slow_step", step=step, took=round(took, 3))
        self.end_t = time.monotonic()
        self.log("stop" if self.plan.stopped else "end")

    # ---------------------------------------------------------------- steps
    async def _text(self, step: dict[str, Any]) -> None:
        assert self.s is not None
        key = (step["rid"], self.epoch)
        self.marks.setdefault(key, len(self.s.records))
        if any(k[0] == key[0] and k[1] < self.epoch for k in self.marks):
            self.earlier.add(key[0])
        if step["end"]:
            self.open.setdefault(key, True)
        if key not in self.metas:
            self.metas[key] = {"session_id": self.session, "turn_id": len(self.metas)}
        meta = self.metas[key]
        self.log(
            "text",
            meta=meta,
            rid=step["rid"],
            text=step["text"],
            end=step["end"],
            late=step.get("late", False),
            epoch=self.epoch,
            bad_key=self.bad_key,
            rate=self.rate,
        )
        await self.s.text(step["rid"], step["text"], end=step["end"], metadata=meta)

    async def _sleep(self, step: dict[str, Any]) -> None:
        await asyncio.sleep(step["s"])

    async def _note_fault(self, step: dict[str, Any]) -> None:
        self.log("fault", **{k: step[k] for k in ("via", "kind", "arg", "phase")})

    async def _inject(self, step: dict[str, Any]) -> None:
        fault = Fault(
            step["kind"],
            arg=step["arg"],
            count=step.get("count", 1),
            match_text=step.get("match_text"),
        )
        self.server.inject(fault)
        self.log(
            "fault",
            via="inject",
            kind=step["kind"],
            arg=step["arg"],
            phase=step["phase"],
        )

    async def _flush(self, step: dict[str, Any]) -> None:
        assert self.s is not None
        meta = {"session_id": self.session, "flush": step["fid"]}
        self.log(
            "flush", fid=step["fid"], moment=step["moment"], epoch=self.epoch, meta=meta
        )
        self.epoch += 1
        await self.s.flush(step["fid"], metadata=meta)

    async def _budget_window(self, step: dict[str, Any]) -> None:
        kind, on = step["kind"], step["on"]
        if kind == "drop":
            if on:
                code = step["code"]
                message = CAP_MESSAGE if code else ""
                await asyncio.to_thread(
                    self.server.set_close_after, step["s"], code, message
                )
            else:
                await asyncio.to_thread(self.server.set_close_after, None)
        elif on:
            fault = Fault(kind, arg=step["arg"], count=step["count"])
            self.server.inject(fault)
        self.log("budget_window", **{k: v for k, v in step.items() if k != "op"})

    async def _status_check(self, step: dict[str, Any]) -> None:
        """The graph's last connection status, once it says connected (or 2 s)."""
        assert self.s is not None

        def last() -> str | None:
            statuses = [
                r for r in self.records if r.name == "connection_status_changed"
            ]
            return statuses[-1].props.get("current") if statuses else None

        await self._until(lambda: last() == "connected", 2.0)
        await asyncio.sleep(0.2)  # a late "disconnected" would land here
        self.log("status_check", last=last())

    async def _outage(self, step: dict[str, Any]) -> None:
        await asyncio.to_thread(self.server.set_outage, step["on"])
        self.log("outage", on=step["on"])

    async def _update(self, step: dict[str, Any]) -> None:
        assert self.s is not None
        t0 = time.monotonic()
        status, result = await self.s.cmd("update_configs", step["configs"])
        applied = status == 0
        if applied:
            rate = step["configs"]["params"].get("sample_rate")
            if rate is not None:
                self.rate = rate
            if "bad_key" in step:
                self.bad_key = step["bad_key"]
        self.log(
            "update",
            sent_t=t0,
            configs=step["configs"],
            valid=step["valid"],
            status=status,
            message=result.get("message", ""),
            rate=self.rate,
        )

    async def _wait_end(self, step: dict[str, Any]) -> None:
        keys = [(rid, self.epoch) for rid in step["rids"]]
        # an id used before an earlier flush may rightly be ignored (a late chunk)
        reused = any(rid in self.earlier for rid in step["rids"])
        timeout = REUSE_WAIT_S if reused else self.bound * len(keys)
        await self._until(lambda: all(self._ended(k) for k in keys), timeout)

    async def _wait_frames(self, step: dict[str, Any]) -> None:
        key = (step["rid"], self.epoch)

        def enough() -> bool:
            if key not in self.marks:
                return True
            n = 0
            inside = False
            for r in self.records[self.marks[key] :]:
                if r.request_id == key[0] and r.name == "tts_audio_start":
                    inside = True
                elif r.request_id == key[0] and r.name == "tts_audio_end":
                    return True
                elif inside and r.kind == "frame":
                    n += 1
            return n >= step["n"]

        await self._until(enough, 3.0)

    async def _wait_server_text(self, step: dict[str, Any]) -> None:
        tag = step["tag"]
        if tag is None:
            return
        await self._until(lambda: bool(self._cids(tag)), 2.0)

    async def _wait_server_eos(self, step: dict[str, Any]) -> None:
        """Until the server ended the request (end_of_stream or error), then the
        planned delay: the flush lands while the extension ends it."""
        tag = step["tag"]
        if tag is None:
            return
        key = (step["rid"], self.epoch)

        def done() -> bool:
            cids = self._cids(tag)
            return self._ended(key) or any(
                e.direction == "out"
                and e.type in ("end_of_stream", "error")
                and e.client_req_id in cids
                for e in self.server.log_snapshot()
            )

        if await self._until(done, self.bound, poll=0.001):
            await asyncio.sleep(step["then_s"])

    async def _drain(self, step: dict[str, Any]) -> None:
        """Until every request of this epoch ended, every flush was answered and
        no request is open."""
        pending = [
            k for k in self.open if k[1] == self.epoch and k[0] not in self.earlier
        ]

        def quiet() -> bool:
            if not all(self._ended(k) for k in pending):
                return False
            starts = ends = flush_ends = 0
            for r in self.records:
                if r.name == "tts_audio_start":
                    starts += 1
                elif r.name == "tts_audio_end":
                    ends += 1
                elif r.name == "tts_flush_end":
                    flush_ends += 1
            return starts == ends and flush_ends >= self.epoch

        await self._until(quiet, min(60.0, self.bound * (len(pending) + 1)))
        # ids reused after a flush may rightly be ignored: give them a moment
        reused = [k for k in self.open if k[1] == self.epoch and k[0] in self.earlier]
        await self._until(lambda: all(self._ended(k) for k in reused), REUSE_WAIT_S)
        await self._until(quiet, self.bound)

    _wait_idle = _drain

    # ---------------------------------------------------------------- helpers
    def _ended(self, key: tuple[str, int]) -> bool:
        mark = self.marks.get(key)
        if mark is None:
            return True
        return any(
            r.name == "tts_audio_end" and r.request_id == key[0]
            for r in self.records[mark:]
        )

    def _cids(self, tag: str) -> set[str]:
        return {
            e.client_req_id
            for e in self.server.log_snapshot()
            if e.direction == "in" and e.type == "text" and e.text and tag in e.text
        }

    async def _until(self, predicate, timeout: float, poll: float = 0.005) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll)
        return True


# ------------------------------------------------------- leftovers (stand-ins)
def _global_loop() -> asyncio.AbstractEventLoop | None:
    try:
        from ten_runtime import _runtime  # the stand-ins only
    except ImportError:
        return None
    return getattr(_runtime, "_global_loop", None)


def _client_tasks() -> set[asyncio.Task[Any]]:
    """Unfinished tasks of the extension or its client on the extension's loop."""
    loop = _global_loop()
    if loop is None or loop.is_closed():
        return set()

    async def collect() -> set[asyncio.Task[Any]]:
        out = set()
        for task in asyncio.all_tasks():
            code = getattr(task.get_coro(), "cr_code", None)
            name = code.co_filename if code is not None else ""
            if name.endswith(("gradium_tts.py", "/extension.py")) and not task.done():
                out.add(task)
        return out

    return asyncio.run_coroutine_threadsafe(collect(), loop).result(10)


def _owner(task: asyncio.Task[Any]) -> Any:
    """The client a task works for (``self`` of its coroutine, or its client)."""
    frame = getattr(task.get_coro(), "cr_frame", None)
    owner = frame.f_locals.get("self") if frame is not None else None
    return getattr(owner, "_client", owner)


def _wait_tasks_gone(
    before: set[asyncio.Task[Any]], clients_before: set[int], timeout: float
) -> list[str]:
    """Tasks of this session's extension or clients still running after it (a
    client leaked by an earlier session may still spawn tasks: not counted)."""
    deadline = time.monotonic() + timeout
    while True:
        left = {
            t for t in _client_tasks() - before if id(_owner(t)) not in clients_before
        }
        if not left or time.monotonic() >= deadline:
            return sorted(t.get_coro().__qualname__ for t in left)
        time.sleep(0.05)


def _clients() -> list[Any]:
    return [o for o in gc.get_objects() if type(o).__name__ == "GradiumTTSClient"]


# ================================================================ the invariants
@dataclass
class _Life:
    """One request as the records show it: tts_audio_start .. tts_audio_end."""

    rid: str
    epoch: int  # tts_flush_end records before its start
    start: int  # index in records
    start_t: float
    nbytes: int = 0
    pcm: bytearray = field(default_factory=bytearray)
    rates: set[int] = field(default_factory=set)
    metas: list[Any] = field(default_factory=list)  # of start, frames, end
    end: Rec | None = None
    end_index: int = -1
    errors: list[Rec] = field(default_factory=list)
    last_word_ms: int = 0  # start of its last text result

    @property
    def reason(self) -> int | None:
        return None if self.end is None else self.end.props.get("reason")


@dataclass
class _Inst:
    """One request as the script sent it: a request id within one flush epoch."""

    rid: str
    epoch: int
    first_t: float
    bad_key: bool
    rate: int
    meta: dict[str, Any] = field(default_factory=dict)
    end_t: float | None = None
    tags: set[str] = field(default_factory=set)
    speakable: bool = False
    # What should reach Gradium: the segments as the extension shapes them (joined,
    # markdown and emoji filtered, text_filter on); the shaping itself is tested in
    # tests/test_text_filter.py, this checks that none of it is lost, reordered or
    # doubled on the way (replays, faults, flushes).
    text: str = ""
    shaper: TextShaper = field(default_factory=TextShaper)
    reused: bool = False  # the id was sent before an earlier flush too


def check(res: ChaosResult) -> list[str]:
    """Every broken invariant of one session, one message each (empty: all hold).

    Per request (a request id within one flush epoch):
      [window]   frames only inside a start..end window; two requests never
                 interleave; at most one start and exactly one end per request
                 that produced any output; text results inside their window. A
                 request still in flight when the tester stopped (which then hears
                 nothing) must have sent its end before the extension's on_stop
                 returned (tenhost.after_stop(); not visible on the real runtime).
      [flush]    every tts_flush_end after the flushed request's tts_audio_end;
                 after it, nothing of a flushed or buffered request but metrics;
                 requests buffered behind a flush produce nothing.
      [duration] frame bytes == request_total_audio_duration_ms (within 50 ms)
                 at the frames' sample rate, one sample rate per request.
      [text]     a request that ended normally sent Gradium exactly its text, in
                 order, from its first speakable segment (whitespace aside).
      [reason]   2 only after a flush or at stop; 3 only when a fault, an outage
                 or a bad key touched the request; 1 means the server finished
                 it, and the request got exactly that audio (nothing lost or
                 doubled by a replay).
      [error]    one error per reason-3 ending, with the request's id, after its
                 audio end; code -1000 only for a bad key, 1000 otherwise.
      [bound]    every request whose text ended ends within the bound after its
                 release (its text end or the previous request's end).
      [config]   update_configs: status 0 for valid, 1 for invalid; frames at the
                 sample rate in effect when the request started.
      [storm]    during an outage, connection attempts stay few: backoff, and
                 at most two per request that asks (the attempt and its replay).
      [budget]   during an outage or a window of dropped sockets or refused
                 upgrades: at most 6 handshakes in any 10 s, whatever the traffic.
      [reuse]    a socket on which a request stalled (stall_* faults) takes no
                 new request once that request's deadline has passed.
      [status]   after update_configs mid-request, the graph's last connection
                 status is the new client's (connected), unless a fault hit.
      [leak]     no socket open on the server, no client task left, no client
                 left open after the session ended.
      [pcm]      every frame holds whole 16-bit samples; a request that ended
                 normally got exactly the server's audio for it, byte for byte (an
                 odd last byte dropped): no sample shifted by a stray byte.
      [words]    text results: whole, non-negative times; starts never go back
                 within a request (a NaN or backwards timestamp from the server is
                 dropped or clamped).
      [secret]   no key (the good one or the bad one) in any message the extension
                 sent, any command result or any log line.
    """
    v: list[str] = []
    recs = res.records
    t0 = res.sent[0]["t"] if res.sent else 0.0

    def at(t: float) -> str:
        return f"+{t - t0:.3f}s"

    if res.error:
        v.append(f"[harness] {res.error.splitlines()[0][:300]}")

    # ----------------------------------------------------------- what was sent
    insts: dict[tuple[str, int], _Inst] = {}
    flushes: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    outages: list[tuple[float, float]] = []
    outage_on: float | None = None
    for e in res.sent:
        if e["op"] == "text":
            key = (e["rid"], e["epoch"])
            inst = insts.get(key)
            if inst is None:
                inst = insts[key] = _Inst(
                    e["rid"], e["epoch"], e["t"], e["bad_key"], e["rate"], e["meta"]
                )
                inst.reused = any(k[0] == e["rid"] for k in insts if k != key)
            if inst.end_t is not None or e["late"]:
                continue  # after text_input_end, or after the request ended: ignored
            if e["end"]:
                inst.end_t = e["t"]
            shaped = inst.shaper.feed(e["text"])
            if e["end"]:
                shaped += inst.shaper.finish()
            inst.text += shaped
            inst.speakable = inst.speakable or is_speakable(shaped)
            inst.tags.update(TAG.findall(e["text"]))
        elif e["op"] == "flush":
            flushes.append(e)
        elif e["op"] == "update":
            updates.append(e)
        elif e["op"] == "outage":
            if e["on"]:
                outage_on = e["t"]
            elif outage_on is not None:
                outages.append((outage_on - 0.05, e["t"] + 0.05))
                outage_on = None
    final_epoch = len(flushes)

    # ------------------------------------------------------ structure of records
    lives: list[_Life] = []
    current: _Life | None = None
    epoch = 0
    last_ended: str | None = None
    flush_end_at: list[int] = []
    for i, r in enumerate(recs):
        rid = r.request_id
        if r.name == "tts_audio_start":
            if current is not None:
                v.append(
                    f"[window] tts_audio_start of {rid} at {at(r.t)} while {current.rid} "
                    "has no tts_audio_end yet: two requests interleave"
                )
            if any(x.rid == rid and x.epoch == epoch for x in lives):
                v.append(
                    f"[window] second tts_audio_start for {rid} at {at(r.t)} with no "
                    "flush in between: a request starts at most once"
                )
            current = _Life(rid, epoch, i, r.t)
            current.metas.append(r.props.get("metadata"))
            lives.append(current)
        elif r.kind == "frame":
            if current is None:
                v.append(
                    f"[window] audio frame at {at(r.t)} outside any start..end window "
                    f"(last ended: {last_ended})"
                )
            else:
                current.nbytes += len(r.pcm)
                current.pcm += r.pcm
                current.rates.add(r.sample_rate)
                current.metas.append(r.props.get("metadata"))
            if len(r.pcm) % 2:
                v.append(
                    f"[pcm] audio frame of {len(r.pcm)} bytes at {at(r.t)}: not whole "
                    "16-bit samples"
                )
        elif r.name == "tts_text_result":
            if current is None or current.rid != rid:
                v.append(
                    f"[window] tts_text_result of {rid} at {at(r.t)} outside its window"
                )
            else:
                v.extend(_word_problems(current, r, at(r.t)))
        elif r.name == "tts_audio_end":
            if current is None or current.rid != rid:
                v.append(
                    f"[window] tts_audio_end of {rid} at {at(r.t)} without its "
                    f"tts_audio_start (open: {current.rid if current else None})"
                )
                continue
            current.end, current.end_index = r, i
            current.metas.append(r.props.get("metadata"))
            last_ended, current = rid, None
        elif r.name == "tts_flush_end":
            n = len(flush_end_at)
            want = flushes[n] if n < len(flushes) else None
            if want is None or r.props.get("flush_id") != want["fid"]:
                v.append(f"[flush] unexpected tts_flush_end {r.props} (#{n})")
            elif r.props.get("metadata") != want["meta"]:
                v.append(
                    f"[flush] tts_flush_end {want['fid']} metadata {r.props.get('metadata')}"
                    f" != the flush's {want['meta']}"
                )
            if current is not None:
                v.append(
                    f"[flush] tts_flush_end {r.props.get('flush_id')} at {at(r.t)} before "
                    f"{current.rid}'s tts_audio_end (flush order)"
                )
            flush_end_at.append(i)
            epoch += 1
        elif r.name == "error":
            eid = r.props.get("id") or ""
            code = r.props.get("code")
            if not eid:
                v.append(
                    f"[error] error without a request id at {at(r.t)}: code {code} {r.props.get('message')!r}"
                )
                continue
            mine = [x for x in lives if x.rid == eid]
            if not mine or mine[-1].end is None:
                v.append(
                    f"[error] error for {eid} at {at(r.t)} before its tts_audio_end (or it never started)"
                )
                continue
            life = mine[-1]
            life.errors.append(r)
            if life.epoch != epoch:
                v.append(
                    f"[flush] error for {eid} at {at(r.t)} after a tts_flush_end that "
                    "followed its audio end: only metrics may follow a flushed request"
                )
    if current is not None:
        # Still in flight when the tester stopped: a stopped tester hears nothing
        # (contract §1.8), so its end is checked from the extension's side.
        late_end = next(
            (
                m
                for m in res.after_stop or []
                if m["name"] == "tts_audio_end"
                and m["props"].get("request_id") == current.rid
            ),
            None,
        )
        if late_end is not None and not late_end["in_on_stop"]:
            v.append(
                f"[window] {current.rid} started at {at(current.start_t)} and ended "
                "only after the extension's on_stop had returned"
            )
        elif late_end is None and not (res.after_stop is None and res.plan.stopped):
            v.append(
                f"[window] {current.rid} started at {at(current.start_t)} and never ended"
            )
    if len(flush_end_at) != len(flushes) and not res.plan.stopped:
        v.append(
            f"[flush] {len(flushes)} tts_flush sent, {len(flush_end_at)} tts_flush_end received"
        )

    # ---------------------------------------------------------------- per life
    server = res.server_log
    fault_times = sorted(
        e.t
        for e in server
        if e.direction == "event" and e.type in ("fault_fired", "abort")
    )
    # A hung handshake touches whoever waits for it, from the attempt until the
    # client gives up on it (or the session ends).
    hung_from = {
        e.conn: e.t
        for e in server
        if e.direction == "event"
        and e.type == "fault_fired"
        and e.data.get("kind") == "hang_handshake"
    }
    released = {
        e.conn: e.t
        for e in server
        if e.direction == "event" and e.type == "hang_released"
    }
    hangs = [(t, released.get(c, float("inf"))) for c, t in hung_from.items()]
    eos_cids = {
        e.client_req_id
        for e in server
        if e.direction == "out" and e.type == "end_of_stream"
    }
    audio_by_cid: Counter[str] = Counter()
    pcm_by_cid: dict[str, bytearray] = {}
    text_cids: dict[str, set[str]] = {}
    text_by_cid: dict[str, str] = {}
    setup_at: dict[str, float] = {}
    for e in server:
        if e.direction == "out" and e.type == "audio":
            audio_by_cid[e.client_req_id] += e.data.get("audio_bytes", 0)
            pcm_by_cid.setdefault(e.client_req_id, bytearray()).extend(
                e.data.get("pcm", b"")
            )
        elif e.direction == "in" and e.type == "setup" and e.client_req_id:
            setup_at.setdefault(e.client_req_id, e.t)
        elif e.direction == "in" and e.type == "text" and e.text:
            text_by_cid[e.client_req_id] = text_by_cid.get(e.client_req_id, "") + e.text
    # Segments are joined as they come, so a tag can be glued to an odd segment
    # before it ("...Kilo19z"): find it in each Gradium request's whole text.
    for cid, text in text_by_cid.items():
        for tag in TAG.findall(text):
            text_cids.setdefault(tag, set()).add(cid)

    def exposed(t_from: float, t_to: float) -> bool:
        if any(t_from - 0.05 <= t <= t_to for t in fault_times):
            return True
        if any(a <= t_to and t_from <= b for a, b in hangs):
            return True
        return any(a <= t_to and t_from <= b for a, b in outages) or (
            outage_on is not None and outage_on <= t_to
        )

    prev_end_t = 0.0
    for life in lives:
        rid, end = life.rid, life.end
        inst = insts.get((rid, life.epoch))
        if inst is None:
            v.append(
                f"[flush] output for {rid} at {at(life.start_t)} after tts_flush_end #{life.epoch}, "
                "but it was not sent after that flush: a flushed or buffered request spoke"
            )
            continue
        if end is None:
            continue
        wrong = [m for m in life.metas if m != inst.meta]
        if wrong:
            v.append(
                f"[window] {rid}: {len(wrong)} of its start/frames/end carry metadata "
                f"{wrong[0]}, not the request's {inst.meta}"
            )
        reason = life.reason
        # duration at the frames' rate
        if len(life.rates) > 1:
            v.append(
                f"[duration] {rid}: frames at several sample rates {sorted(life.rates)}"
            )
        if life.rates:
            rate = next(iter(life.rates))
            expect_ms = life.nbytes * 1000 / (rate * 2)
            got = end.props.get("request_total_audio_duration_ms", -1)
            if abs(got - expect_ms) > DURATION_TOLERANCE_MS:
                v.append(
                    f"[duration] {rid}: reported {got} ms, frames hold {expect_ms:.0f} ms "
                    f"({life.nbytes} bytes at {rate} Hz)"
                )
            allowed = {inst.rate} | {
                u["rate"]
                for u in updates
                if u["status"] == 0 and inst.first_t < u["t"] < end.t
            }
            if rate not in allowed:
                v.append(
                    f"[config] {rid}: frames at {rate} Hz, the config said {sorted(allowed)}"
                )
        elif (
            end.props.get("request_total_audio_duration_ms", 0) > DURATION_TOLERANCE_MS
        ):
            v.append(
                f"[duration] {rid}: no frames but {end.props['request_total_audio_duration_ms']} ms reported"
            )
        # reasons
        if reason not in (1, 2, 3):
            v.append(f"[reason] {rid}: reason {reason!r}")
        if reason == 2:
            nxt = next(
                (
                    r
                    for r in recs[life.end_index + 1 :]
                    if r.name in ("tts_audio_start", "tts_flush_end")
                ),
                None,
            )
            by_flush = nxt is not None and nxt.name == "tts_flush_end"
            by_stop = end.t >= res.script_end_t - 0.01  # the session was stopping
            if not (by_flush or by_stop):
                v.append(
                    f"[reason] {rid}: reason 2 (interrupted) at {at(end.t)} without a flush or stop"
                )
        if reason == 3:
            # The backoff outlives the faults that caused it: a request may end
            # "refusing or dropping connections" up to the longest backoff later.
            backoff = any(
                "refusing or dropping connections" in str(e.props.get("message"))
                for e in life.errors
            )
            since = inst.first_t - (BACKOFF_MEMORY_S if backoff else 0.0)
            if not inst.bad_key and not exposed(since, end.t):
                v.append(
                    f"[reason] {rid}: ended with an error (reason 3) at {at(end.t)} though no fault, "
                    "outage or bad key touched it"
                )
            if len(life.errors) != 1:
                v.append(
                    f"[error] {rid}: reason 3 with {len(life.errors)} error messages (expected 1)"
                )
        elif life.errors:
            v.append(
                f"[error] {rid}: {len(life.errors)} error message(s) but reason {reason}"
            )
        for err in life.errors:
            code = err.props.get("code")
            want = -1000 if inst.bad_key else 1000
            if inst.bad_key and code == 1000 and exposed(inst.first_t, end.t):
                continue  # a transient fault came first; the key was never judged
            if code != want:
                v.append(
                    f"[error] {rid}: error code {code} ({err.props.get('message')!r}), expected {want}"
                    + (" (bad key)" if inst.bad_key else " (transient fault)")
                )
        if inst.bad_key and inst.speakable and reason == 1:
            v.append(f"[error] {rid}: sent with a rejected key but ended normally")
        if reason == 1 and inst.speakable:
            # its Gradium requests: by tag, or set up while it was the one running
            cids = set().union(*(text_cids.get(tag, set()) for tag in inst.tags))
            if not cids:  # its tag never reached Gradium: the one set up meanwhile
                since = max(inst.first_t, prev_end_t) - 0.01
                cids = {c for c, t in setup_at.items() if since <= t <= end.t}
            done = sorted(c for c in cids if c in eos_cids)
            if not done:
                v.append(
                    f"[reason] {rid}: ended normally but the server never finished it "
                    f"(cids {sorted(cids)})"
                )
            else:
                cid = max(done, key=lambda c: setup_at.get(c, 0.0))
                produced = audio_by_cid[cid]
                whole = bytes(pcm_by_cid.get(cid, b""))
                whole = whole[
                    : len(whole) - len(whole) % 2
                ]  # an odd last byte: dropped
                if len(whole) != life.nbytes:
                    v.append(
                        f"[reason] {rid}: ended normally with {life.nbytes} audio bytes; the "
                        f"server produced {produced} for it (lost or doubled audio)"
                    )
                elif bytes(life.pcm) != whole:
                    first = next(
                        i
                        for i, (a, b) in enumerate(zip(life.pcm, whole, strict=True))
                        if a != b
                    )
                    v.append(
                        f"[pcm] {rid}: its audio differs from what the server produced "
                        f"from byte {first} on (shifted or mixed samples)"
                    )
                got = "".join(text_by_cid.get(cid, "").split())
                want = "".join(inst.text.split())
                if got != want:
                    v.append(
                        f"[text] {rid}: Gradium got {got[:80]!r} for it, the request's text "
                        f"was {want[:80]!r} (text lost, reordered or doubled)"
                    )
        # bound
        if inst.end_t is not None and inst.end_t <= end.t:
            release = max(inst.end_t, prev_end_t)
            audio_s = life.nbytes / (
                2 * (next(iter(life.rates)) if life.rates else 16000)
            )
            limit = res.bound_s + audio_s
            if end.t - release > limit:
                v.append(
                    f"[bound] {rid}: ended {end.t - release:.1f} s after its release at "
                    f"{at(release)} (limit {limit:.1f} s)"
                )
        prev_end_t = end.t

    # -------------------------------------------- requests that never produced
    have = {(x.rid, x.epoch) for x in lives}
    for key, inst in insts.items():
        if key in have or inst.end_t is None:
            continue
        if inst.epoch < final_epoch or res.plan.stopped:
            continue  # flushed or stopped before it started: dropped, rightly silent
        if inst.reused:
            continue  # text for an id that ended before a flush: may be ignored
        v.append(
            f"[bound] {inst.rid}: text ended at {at(inst.end_t)} but it never ended "
            "(no tts_audio_start/tts_audio_end at all)"
        )

    # ------------------------------------------------------- no reconnect storm
    for a, b in outages:
        attempts = sum(
            1
            for e in server
            if e.direction == "event" and e.type == "connect" and a <= e.t <= b
        )
        asked = {
            (e["rid"], e["epoch"])
            for e in res.sent
            if e["op"] == "text" and a <= e["t"] <= b
        }
        allowed = 6 + 2 * (b - a) + 2 * len(asked)
        if attempts > allowed:
            v.append(
                f"[storm] {attempts} connection attempts during a {b - a:.2f} s outage at "
                f"{at(a)} with {len(asked)} request(s) asking (at most {allowed:.0f})"
            )

    # ------------------------------------------------------- the connect budget
    windows = list(outages)
    opened_at: dict[str, float] = {}
    for e in res.sent:
        if e["op"] == "budget_window":
            key = json.dumps({k: e[k] for k in e if k not in ("t", "on", "op")})
            if e["on"]:
                opened_at[key] = e["t"]
            elif key in opened_at:
                windows.append((opened_at.pop(key), e["t"] + 0.05))
    connects = sorted(
        e.t for e in server if e.direction == "event" and e.type == "connect"
    )
    for a, b in windows:
        inside = [t for t in connects if a <= t <= b]
        most = max(
            (sum(1 for u in inside if t <= u < t + BUDGET_WINDOW_S) for t in inside),
            default=0,
        )
        if most > BUDGET_HANDSHAKES:
            v.append(
                f"[budget] {most} handshakes in {BUDGET_WINDOW_S:g} s while the server "
                f"refused or dropped sockets ({at(a)} to {at(b)})"
            )

    # ---------------------------------------------------- no reuse after a stall
    response_max = max(
        [res.plan.params["response_timeout_s"]]
        + [
            float(u["configs"]["params"]["response_timeout_s"])
            for u in updates
            if u["status"] == 0
            and isinstance(
                u["configs"]["params"].get("response_timeout_s"), int | float
            )
        ]
    )
    eos_in = {
        e.client_req_id: e.t
        for e in server
        if e.direction == "in" and e.type == "end_of_stream" and e.client_req_id
    }
    for e in server:
        if not (
            e.direction == "event"
            and e.type == "fault_fired"
            and e.data.get("kind") in STALL_FAULTS
            and e.client_req_id in eos_in
        ):
            continue
        due = max(e.t, eos_in[e.client_req_id]) + 2 * response_max + 1.0
        later = [
            x.client_req_id
            for x in server
            if x.direction == "in"
            and x.type == "setup"
            and x.conn == e.conn
            and x.t > due
        ]
        if later:
            v.append(
                f"[reuse] socket {e.conn}: {e.client_req_id} stalled there at "
                f"{at(e.t)}, yet it took {later[:3]} after its deadline ({at(due)})"
            )

    # --------------------------------------------- status follows the new client
    for e in res.sent:
        if e["op"] != "status_check" or e["last"] == "connected":
            continue
        since = max((u["t"] for u in updates if u["t"] < e["t"]), default=t0)
        if not exposed(since, e["t"]):
            v.append(
                f"[status] the graph's last connection status at {at(e['t'])} is "
                f"{e['last']!r} after update_configs at {at(since)} (no fault since)"
            )

    # ----------------------------------------------------------------- secrets
    shown = [json.dumps(r.props, ensure_ascii=False) for r in recs]
    shown += [json.dumps(m.get("props", {})) for m in res.after_stop or []]
    shown += [str(e.get("message", "")) for e in res.sent if e["op"] == "update"]
    for text in shown:
        if any(k in text for k in SECRETS):
            v.append(f"[secret] a key in what the extension sent: {text[:200]}")
            break
    for line in res.leaked_logs[:3]:
        v.append(f"[secret] a key in a log line: {line}")

    # ------------------------------------------------------------ config, leaks
    for u in updates:
        want = 0 if u["valid"] else 1
        if u["status"] != want:
            v.append(
                f"[config] update_configs {u['configs']} returned {u['status']} (expected {want}) {u['message']!r}"
            )
    if res.open_after:
        v.append(
            f"[leak] {res.open_after} socket(s) still open on the server after the session ended"
        )
    if res.leftover_tasks:
        v.append(f"[leak] client tasks left running after stop: {res.leftover_tasks}")
    if res.unclosed_clients:
        v.append(
            f"[leak] {res.unclosed_clients} GradiumTTSClient(s) not closed after stop"
        )
    reordered = reordered_by_base_class(res)
    res.upstream = [x for x in v if _names_rid(x, reordered)]
    v = [x for x in v if not _names_rid(x, reordered)]
    return v


def _word_problems(life: _Life, r: Rec, when: str) -> list[str]:
    """[words]: finite, whole, non-negative times that never go back in a request."""
    out = []
    starts = [r.props.get("start_ms")] + [
        w.get("start_ms") for w in r.props.get("words") or []
    ]
    durations = [r.props.get("duration_ms")] + [
        w.get("duration_ms") for w in r.props.get("words") or []
    ]
    if not all(isinstance(x, int) and x >= 0 for x in starts + durations):
        out.append(
            f"[words] {life.rid}: text result at {when} with times {starts} "
            f"durations {durations}"
        )
    elif r.props["start_ms"] < life.last_word_ms:
        out.append(
            f"[words] {life.rid}: text result at {when} starts at "
            f"{r.props['start_ms']} ms, before the previous one ({life.last_word_ms})"
        )
    else:
        life.last_word_ms = r.props["start_ms"]
    return out


def reordered_by_base_class(res: ChaosResult) -> set[str]:
    """Requests whose text ten_ai_base handed over after their text_input_end.

    ten_ai_base (0.7.41, and the stand-in that follows it) holds the messages of a
    request that arrive while another one is being processed, and puts them back at
    the END of its input queue when that one finishes. A later message of the same
    request that is still in the queue then reaches request_tts first: when it is
    the text_input_end, the request ends with what it had and the held text comes
    "after text_input_end" (seen on the real runtime, chaos seed 144, r2-539). The
    extension cannot undo that order. A request counts here only when the tester
    sent nothing after its end (one use of the id, no late chunk) and the
    extension said it ignored text after text_input_end.
    """
    ends: dict[str, int] = {}
    epochs: dict[str, set[int]] = {}
    after_end: set[str] = set()
    for e in res.sent:
        if e["op"] != "text":
            continue
        rid = e["rid"]
        epochs.setdefault(rid, set()).add(e["epoch"])
        if e["late"] or rid in ends:
            after_end.add(rid)
        if e["end"]:
            ends[rid] = ends.get(rid, 0) + 1
    said = {
        rid
        for rid in ends
        if any(f"text after text_input_end for {rid}: ignored" in m for m in res.ten_lines)
    }
    return {r for r in said if len(epochs[r]) == 1 and r not in after_end}


def _names_rid(violation: str, rids: set[str]) -> bool:
    return any(re.search(rf"\b{re.escape(r)}\b", violation) for r in rids)


def report(res: ChaosResult, violations: list[str]) -> str:
    """What a failure prints: the seed, how to replay it, what broke, the records."""
    head = [
        f"chaos seed {res.plan.seed}: {len(violations)} invariant violation(s)",
        f"replay: CHAOS_SEED={res.plan.seed} .venv/bin/python -m pytest tests/test_chaos.py -q",
        *("  " + x for x in violations[:20]),
        f"records: {summary(res.records)[:3000]}",
    ]
    return "\n".join(head)


# =================================================================== statistics
def tally(res: ChaosResult, counts: dict[str, Counter[Any]]) -> None:
    """Add one session to the counters the benchmark prints."""
    for r in res.records:
        if r.name == "tts_audio_end":
            counts["reason"][r.props.get("reason")] += 1
        elif r.name == "error":
            counts["error_code"][r.props.get("code")] += 1
        elif r.name == "tts_flush_end":
            counts["flush"]["flush_end"] += 1
    for e in res.sent:
        if e["op"] == "fault":
            counts["fault"][(e["kind"], e["phase"])] += 1
        elif e["op"] == "flush":
            counts["flush"][e["moment"]] += 1
        elif e["op"] == "outage" and e["on"]:
            counts["fault"][("outage", "any")] += 1
        elif e["op"] == "budget_window" and e["on"]:
            counts["fault"][(f"window {e['kind']}", "any")] += 1
        elif e["op"] == "status_check":
            counts["fault"][("status check", e["last"])] += 1
        elif e["op"] == "update":
            counts["update"]["ok" if e["status"] == 0 else "refused"] += 1
    for e in res.server_log:
        if e.direction == "event" and e.type == "fault_fired":
            counts["fired"][e.data.get("kind")] += 1


# ==================================================================== shrinking
def shrink(
    plan: Plan, tag: str, *, budget: int = 60, tries: int = 2, log=print
) -> Plan:
    """Remove steps while the session still breaks invariant ``tag`` (e.g.
    ``"[flush]"``): delta debugging over the step list, each candidate played up to
    ``tries`` times (a race may need a second go), at most ``budget`` runs."""

    def fails(steps: list[dict[str, Any]]) -> bool:
        candidate = Plan(
            plan.seed, plan.params, steps, plan.stopped, plan.dump, plan.words
        )
        for _ in range(tries):
            if any(v.startswith(tag) for v in check(run_plan(candidate))):
                return True
        return False

    steps = list(plan.steps)
    runs = 0
    chunks = 2
    while len(steps) > 1 and runs < budget:
        size = max(1, len(steps) // chunks)
        removed = False
        for start in range(0, len(steps), size):
            if runs >= budget:
                break
            candidate = steps[:start] + steps[start + size :]
            runs += 1
            if candidate and fails(candidate):
                steps = candidate
                chunks = max(2, chunks - 1)
                removed = True
                log(f"shrink: {len(steps)} steps still break {tag}")
                break
        if not removed:
            if size == 1:
                break
            chunks = min(len(steps), chunks * 2)
    return Plan(plan.seed, plan.params, steps, plan.stopped, plan.dump, plan.words)
