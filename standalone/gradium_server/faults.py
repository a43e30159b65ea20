"""Fault injection (task §5).

A :class:`Fault` is armed with ``server.inject(...)`` (thread-safe) or by a text
marker ``[[fault:<kind>]]`` / ``[[fault:<kind>:<arg>]]`` inside a request's text.
Each armed fault fires for the next matching request (or, for connection-level
kinds, the next connection attempt) and is used up after ``count`` matches.

What the client sees for each kind (codes are WebSocket close codes):

========================  ===================================================================
kind                      behaviour
========================  ===================================================================
``refuse``                next connection: TCP closed before any HTTP response (no upgrade)
``reject_handshake``      next connection: HTTP ``arg`` (default 503) instead of 101
``accept_then_close``     next connection: upgraded (101), then at once ``error`` + close
                          with code ``arg`` (default 1011), or a TCP reset without close
                          frame when ``arg`` is ``"reset"`` (an outage behind a proxy)
``hang_handshake``        next connection: TCP accepted, the upgrade request read, and no
                          HTTP response ever (a network that swallows connection
                          attempts); the server holds it until the client gives up
``close_after``           next connection: upgraded (101), then closed (code 1000, no
                          ``error``) ``arg`` seconds later (default 2.5), whatever it is
                          doing; ``GradiumServer.set_close_after`` can also send an
                          ``error`` with a given code and message first
``error_1008``            after ``arg`` audio frames (default 1): ``error`` code 1008
                          (with the request's ``client_req_id``), then close 1008
``error_1011``            same with 1011
``drop_after``            after ``arg`` audio frames (default 1): TCP reset, no close frame
``stall_after_ready``     ``ready`` was sent; nothing more for that request (socket stays open)
``stall_mid_stream``      after ``arg`` audio frames (default 1): nothing more for that request
``stall_words``           after ``arg`` audio frames (default 1): no more audio, but a word
                          (``text``) every 0.1 s for that request, for up to 60 s, until
                          the socket closes (audio stalled while words keep coming)
``non_json``              before the first audio (or after ``arg`` frames): a text frame that
                          is not JSON; the request then continues normally
``unknown_type``          before the first audio: ``{"type":"need_more_text"}`` and
                          ``{"type":"x_local_unknown"}`` (or only ``{"type": arg}``), both
                          scoped; the request then continues normally
``oversized``             before the first audio: one JSON frame of type ``"x_padding"`` larger
                          than ``arg`` bytes (default 2 MiB); then continues normally
``slow_drip``             audio frames spaced ``arg`` seconds apart (default 0.5)
``close_1000_no_eos``     after all audio (or after ``arg`` frames): close 1000, no
                          ``end_of_stream``
``word_nan``              word timestamp number ``arg`` (default 0) of the request is sent
                          with ``start_s`` and ``stop_s`` NaN (JSON ``NaN``); then normal
``word_backwards``        word timestamp number ``arg`` (default 1) starts 1 s before the
                          word sent before it (below 0 for an early word); then normal
``odd_audio``             audio frame ``arg`` (default 0) is sent as two ``audio`` messages
                          of odd length (all but its last byte, then that byte), and one
                          stray byte follows the last frame, before ``end_of_stream``:
                          the request's audio is an odd number of bytes
``echo_key``              after ``arg`` audio frames (default 0): ``error`` code 1011 whose
                          message echoes the connection's API key (bare, as
                          ``x-api-key:``, ``api_key=`` and ``Bearer``), then close 1011
``word_surrogate``        word number ``arg`` (default 0) is sent with a lone surrogate as
                          its text (a JSON ``\\ud800`` escape); then normal
``word_absurd``           word number ``arg`` (default 1) is sent with ``start_s`` and
                          ``stop_s`` 1e300 (finite, far beyond any audio); then normal
``bad_frame``             before the first audio: one malformed frame of variant ``arg``
                          (default ``unhashable_id``); see ``BAD_FRAMES``. Variants that
                          name no request (``unhashable_id``, ``number_id``, ``deep``,
                          ``nan_audio``, ``type_object``) leave the request to continue
                          normally; ``rate``, ``code``, ``padding`` name it (a client
                          ends it, or replays it before audio)
========================  ===================================================================

Request faults are matched when the request's first text is processed (so
``match_text`` can see it), or at its ``end_of_stream`` if it never sent text;
``stall_after_ready`` therefore takes effect from the first text on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

CONNECTION_KINDS = frozenset(
    {"refuse", "reject_handshake", "accept_then_close", "hang_handshake", "close_after"}
)
REQUEST_KINDS = frozenset(
    {
        "error_1008",
        "error_1011",
        "drop_after",
        "stall_after_ready",
        "stall_mid_stream",
        "stall_words",
        "non_json",
        "unknown_type",
        "oversized",
        "slow_drip",
        "close_1000_no_eos",
        "word_nan",
        "word_backwards",
        "odd_audio",
        "echo_key",
        "word_surrogate",
        "word_absurd",
        "bad_frame",
    }
)
KINDS = CONNECTION_KINDS | REQUEST_KINDS

DEFAULT_ARGS: dict[str, float | int | str | None] = {
    "reject_handshake": 503,
    "accept_then_close": 1011,
    "hang_handshake": None,
    "close_after": 2.5,
    "error_1008": 1,
    "error_1011": 1,
    "drop_after": 1,
    "stall_mid_stream": 1,
    "stall_words": 1,
    "non_json": 0,
    "oversized": 2 * 1024 * 1024,
    "slow_drip": 0.5,
    "close_1000_no_eos": None,
    "unknown_type": None,
    "word_nan": 0,
    "word_backwards": 1,
    "odd_audio": 0,
    "echo_key": 0,
    "word_surrogate": 0,
    "word_absurd": 1,
    "bad_frame": "unhashable_id",
}

# bad_frame variants: a JSON text frame for request ``{cid}`` (a JSON string,
# quoted) with a wrong type or value in one field.
BAD_FRAMES: dict[str, str] = {
    "unhashable_id": '{"type":"end_of_stream","client_req_id":[%(cid)s]}',
    "number_id": '{"type":"end_of_stream","client_req_id":7}',
    "deep": "[" * 5000 + "]" * 5000,
    "nan_audio": '{"type":"audio","client_req_id":%(cid)s,"audio":"AAEC","start_s":NaN}',
    "type_object": '{"type":{"a":1}}',
    "rate": '{"type":"ready","client_req_id":%(cid)s,"sample_rate":"\u00b2"}',
    "code": '{"type":"error","client_req_id":%(cid)s,"code":"--1","message":"x"}',
    "padding": '{"type":"audio","client_req_id":%(cid)s,"audio":"AAEC="}',
}


@dataclass(frozen=True)
class Fault:
    """One fault to inject.

    ``arg``: the kind's parameter (see module doc). ``count``: how many matching
    requests/connections it applies to. ``client_req_id`` / ``match_text``: only
    requests with that id / whose first text contains that substring match
    (ignored for connection-level kinds).
    """

    kind: str
    arg: float | int | str | None = None
    count: int = 1
    client_req_id: str | None = None
    match_text: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; known: {sorted(KINDS)}"
            )
        if self.count < 1:
            raise ValueError("count must be >= 1")

    @property
    def value(self) -> float | int | str | None:
        """``arg`` or the kind's default."""
        return DEFAULT_ARGS.get(self.kind) if self.arg is None else self.arg

    def int_value(self, default: int = 1) -> int:
        v = self.value
        try:
            return int(float(v)) if v is not None else default
        except (TypeError, ValueError):
            return default

    def float_value(self, default: float = 0.0) -> float:
        v = self.value
        try:
            return float(v) if v is not None else default
        except (TypeError, ValueError):
            return default

    @classmethod
    def from_marker(cls, kind: str, arg: str | None) -> Fault:
        """Build from a ``[[fault:kind:arg]]`` marker (arg kept as text)."""
        return cls(kind=kind, arg=arg if arg not in (None, "") else None)


class FaultRegistry:
    """Armed faults, shared between the server loop and test threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._armed.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._armed)

    def _take(self, predicate) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._armed):
                if predicate(fault):
                    if fault.count > 1:
                        self._armed[i] = replace(fault, count=fault.count - 1)
                    else:
                        del self._armed[i]
                    return fault
        return None

    def take_connection_fault(self) -> Fault | None:
        return self._take(lambda f: f.kind in CONNECTION_KINDS)

    def take_request_fault(
        self, client_req_id: str | None, first_text: str
    ) -> Fault | None:
        def matches(f: Fault) -> bool:
            if f.kind not in REQUEST_KINDS:
                return False
            if f.client_req_id is not None and f.client_req_id != client_req_id:
                return False
            return f.match_text is None or f.match_text in first_text

        return self._take(matches)
