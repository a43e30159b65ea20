"""Gradium streaming TTS client: asyncio + websockets, no TEN import.

Persistent sockets, opened ahead of time (``start``), carry many synthesis
requests: each request is a Gradium session multiplexed with its own
``client_req_id`` and ``close_ws_on_eos=false``. ``setup`` and the first text go
out back to back, without waiting for ``ready``. A single reader task per socket
routes ``ready`` / ``audio`` / ``text`` / ``end_of_stream`` / ``error`` by
``client_req_id`` to the request's event stream; audio that arrived while the
consumer was busy is handed over joined, one event per batch (``events``).

Sockets (``GradiumTTSClient``): the active one takes new requests, up to
``max_requests_per_socket``; with ``flush_mode="close"`` a standby is kept open
beside it while requests run, so a cancel can close the cancelled request's socket
(Gradium has no cancel message, §2.5) and the next request still pays no
handshake. One event-driven maintainer opens, promotes, recycles and closes
sockets, with capped, jittered backoff (the connect budget): a socket the server
ends young is a failure whatever it served, only one that stays open proves the
endpoint, and while failures are on record no request opens a socket of its own.

Failures are typed by ``classify``: the HTTP status of a refused upgrade, the
``code`` of an ``error`` message or close and, for Gradium's ambiguous 1008, its
message (a bad key is fatal, a limit is not). A request that fails before any of
its audio arrived is replayed once, on another socket, with the text sent so far.
Once its text ended, one deadline timer covers everything it waits for (socket,
handshake, ready, audio, replay). Errors carry Gradium's ``request_id``.

Protocol facts follow ``shared/reference/gradium-protocol.md`` (§ numbers below).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import itertools
import json
import logging
import math
import random
import re
import socket
import ssl
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)
from websockets.protocol import State

try:  # optional fast paths: the same job in C, several times faster (README)
    import orjson
except ImportError:  # pragma: no cover - exercised by tests with orjson hidden
    orjson = None
try:
    import pybase64
except ImportError:  # pragma: no cover - exercised by tests with pybase64 hidden
    pybase64 = None

log = logging.getLogger("gradium_tts")
# websockets logs the upgrade request, x-api-key header included, at DEBUG. Its
# logger for our sockets is pinned at INFO so no configuration can make it do so.
_ws_log = logging.getLogger("gradium_tts.websocket")
_ws_log.setLevel(logging.INFO)

API_SOURCE = "ten-gradium-tts-python"

# Close / error codes (§3.5, §5).
CODE_NORMAL = 1000
CODE_GOING_AWAY = 1001
CODE_PROTOCOL = 1002
CODE_UNSUPPORTED = 1003
CODE_ABNORMAL = 1006
CODE_POLICY = 1008
CODE_TOO_BIG = 1009
CODE_INTERNAL = 1011
# 1002/1003: the server refused what we sent (unknown model, invalid setup). Not
# retryable, and a configuration problem: fatal.
_FATAL_CLOSE_CODES = frozenset({CODE_PROTOCOL, CODE_UNSUPPORTED})
# HTTP statuses of a refused upgrade: the key (401/403), the URL or request (400/404).
_AUTH_HTTP = frozenset({401, 403})
_CONFIG_HTTP = frozenset({400, 404})
# Gradium's 1008 (§5) carries a bad key, a bad setup or format, and its limits; only
# the phase and the message tell them apart (``classify``, with its table test).
# The key: Gradium's documented message, or one naming the API key / a token and
# saying it is missing, invalid, revoked or expired, or "unauthorized".
_KEY_MESSAGE = re.compile(
    r"api key is revoked or expired|unauthori[sz]ed|authentication (?:failed|required)"
    r"|(?:(?<![a-z])(?:x-)?api[ _-]?key|(?:api|access|auth|temporary|temp)[ _-]?token)"
    r"s?(?![a-z]).*(?<![a-z])(?:missing|invalid|revoked|expired)(?![a-z])"
    r"|(?<![a-z])(?:missing|invalid|revoked|expired)(?![a-z]).*"
    r"(?<![a-z])(?:(?:x-)?api[ _-]?key|(?:api|access|auth|temporary|temp)[ _-]?token)"
)
# A limit that takes time to reach: idle expiry, session duration cap.
_EXPIRY_WORD = re.compile(r"idle|inactiv|duration")
# A limit or a busy service: transient whatever else the message names.
_LIMIT_WORD = re.compile(
    r"limit|concurren|too many|rate|quota|credit|capacity|overload|busy|unavailable"
    r"|try again|exceeded"
)
# What the request sent: its setup, voice, model or format.
_SETUP_WORD = re.compile(
    r"setup|voice|model|format|json_config|sample[ _]?rate|pronunciation"
    r"|config|first message|unsupported|unknown field|malformed"
)
# Hosts Gradium retired (§1): they answer every key with "API key is revoked or
# expired", valid ones included.
_RETIRED_HOST = re.compile(r"^(?:eu|us)\.(?:api\.)?gradium\.ai\.?(?::\d+)?$", re.I)

# Values that look like credentials in free text: ``<name>: <value>`` or
# ``<name>=<value>`` for key/token-like names (JSON quotes allowed), and
# ``Bearer <value>``.
_SECRET_FIELD = re.compile(
    r"(?i)((?:x-api-key|api[_-]?key|apikey|key|token|access[_-]?token|secret|"
    r"password|authorization)[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+)?"
    r"([^\s\"',;&}]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]+)")
_MIN_SECRET_LEN = 4  # shorter configured "keys" are not searched for in text
MASK = "***"


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` (a server's error message, a close reason) fit for logs and errors.

    Each of ``secrets`` (the configured key) is masked wherever it appears, and so
    is every value that looks like a credential: after ``x-api-key``, ``api_key``,
    ``key``, ``token``, ``secret``, ``password`` or ``authorization`` and a ``:``
    or ``=``, and after ``Bearer``.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_LEN:
            text = text.replace(secret, MASK)
    text = _SECRET_FIELD.sub(lambda m: m.group(1) + MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


# Audio already received for one request is handed over as one event of at most
# this many bytes (the first audio of a request always alone, at once): the
# consumer's per-event cost (a TEN frame) is paid once per batch, not per message.
COALESCE_MAX_BYTES = 32 * 1024

# Parsing and base64: orjson and pybase64 when installed, else the standard library,
# made to accept exactly what the fast ones accept (one behaviour in both modes):
# no NaN / Infinity literals, no float that overflows, no lone surrogate escape,
# integers beyond 64 bits as floats, nesting to 1024 levels, base64 in whole quanta
# only. Both take str or bytes; both raise ValueError subclasses (or RecursionError,
# too deep) on bad input.
_INT_RANGE = (-(2**63), 2**64 - 1)  # orjson's integers; beyond, a float
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def _bounded_int(text: str) -> int | float:
    value = int(text)
    if _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        return value
    try:
        return float(value)
    except OverflowError:
        raise ValueError("number out of range") from None


_json_decoder = json.JSONDecoder(
    parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int
)


# orjson refuses deeper; CPython's own parser stops near 1000 up to 3.12, past 5000 on 3.13
_MAX_DEPTH = 1024


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _json_loads(raw: str | bytes) -> Any:
    """``json.loads`` that accepts what ``orjson.loads`` accepts."""
    text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    value = _json_decoder.decode(text)
    if (
        isinstance(value, dict | list)
        and text.count("[") + text.count("{") > _MAX_DEPTH
        and _too_deep(value)
    ):
        raise ValueError("depth limit exceeded")
    if _SURROGATE_ESCAPE.search(text):  # rare: only then are the escapes walked
        _check_surrogate_escapes(text)
    return value


_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def _check_surrogate_escapes(text: str) -> None:
    """An escaped surrogate is fine in a high-low pair; alone it fails, as in
    orjson, even in a value a later duplicate key replaces."""
    high_end = -1  # where an unpaired high surrogate escape ends
    for m in _ESCAPE.finditer(text):
        code = int(m.group(1), 16) if m.group(1) else -1
        if high_end >= 0:
            if m.start() != high_end or not 0xDC00 <= code <= 0xDFFF:
                raise ValueError("lone surrogate escape")
            high_end = -1
        elif 0xD800 <= code <= 0xDBFF:
            high_end = m.end()
        elif 0xDC00 <= code <= 0xDFFF:
            raise ValueError("lone surrogate escape")
    if high_end >= 0:
        raise ValueError("lone surrogate escape")


_loads: Callable[[str | bytes], Any] = orjson.loads if orjson else _json_loads


def _b64decode(data: str | bytes) -> bytes:
    """Strict base64: invalid characters, or a length that is not whole 4-character
    quanta (missing or excess padding), raise ``binascii.Error``."""
    if pybase64 is not None:
        return pybase64.b64decode(data, validate=True)
    if len(data) % 4:
        raise binascii.Error("base64 input is not a whole number of quanta")
    return base64.b64decode(data, validate=True)


# --------------------------------------------------------------------------- errors
@dataclass
class GradiumError(Exception):
    """A failure of the service or the connection.

    ``fatal`` means retrying cannot help (bad key, invalid configuration); the
    extension reports it as FATAL_ERROR. ``vendor_code`` is the code Gradium or the
    transport gave (close/error code, HTTP status) or a short word such as
    ``timeout``; ``phase`` is where it happened: connect, setup or stream.
    ``cause`` is what ``classify`` made of it (``auth``, ``config``, ``expiry``,
    ``limit``, ``transient``). ``server_request_id`` is Gradium's id of the
    request (``ready.request_id``, "for logging and support"), when it had one.
    """

    message: str
    fatal: bool = False
    vendor_code: str = ""
    phase: str = "stream"
    cause: str = "transient"
    server_request_id: str = ""

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        kind = "fatal" if self.fatal else "non-fatal"
        return f"{self.message} ({kind}, code {self.vendor_code or '-'}, {self.phase})"


@dataclass(frozen=True)
class Verdict:
    fatal: bool
    cause: str  # auth, config, expiry, limit, transient


def classify(
    code: int | None = None,
    message: str = "",
    *,
    http_status: int | None = None,
    after_ready: bool = False,
    key_accepted: bool = False,
) -> Verdict:
    """What a failure means, from Gradium's own signals (reference §5).

    - HTTP 401/403 on the upgrade: the key was refused: FATAL (``auth``); 400/404:
      the URL or request is wrong: FATAL (``config``); any other status: NON_FATAL.
    - Close/error code 1002/1003: the server refused what we sent (unknown model,
      invalid setup): FATAL (``config``).
    - 1008 by phase, then message. ``after_ready``: the request (or, for a
      socket-wide error or close, the socket) had its ``ready``; ``key_accepted``:
      the socket had a ``ready``, so the server took the key.

      ========================  ==========================  ==========================
      1008 message              before ready                after ready
      ========================  ==========================  ==========================
      the key (documented       FATAL ``auth`` (unless the  NON_FATAL ``limit``: the
      "API key is revoked or    socket took the key         key was accepted; the
      expired", unauthorized)   already: NON_FATAL)         next handshake decides
      idle / duration           NON_FATAL ``expiry``        NON_FATAL ``expiry``
      a limit, busy, credits    NON_FATAL ``limit``         NON_FATAL ``limit``
      setup, voice, model,      FATAL ``config`` (the       NON_FATAL ``limit``
      format                    server's words)
      anything else             NON_FATAL ``limit``         NON_FATAL ``limit``
      ========================  ==========================  ==========================

      A NON_FATAL failure before audio is replayed once and counts for the
      reconnect backoff.
    - Everything else (1000/1001 before the end, 1006 lost connection, 1011 worker
      failure, unknown codes) is NON_FATAL (``transient``).
    """
    if http_status is not None:
        if http_status in _AUTH_HTTP:
            return Verdict(True, "auth")
        if http_status in _CONFIG_HTTP:
            return Verdict(True, "config")
        return Verdict(False, "transient")
    if code in _FATAL_CLOSE_CODES:
        return Verdict(True, "config")
    if code != CODE_POLICY:
        return Verdict(False, "transient")
    text = message.lower()
    if _EXPIRY_WORD.search(text):
        return Verdict(False, "expiry")
    if after_ready:
        return Verdict(False, "limit")
    if _KEY_MESSAGE.search(text):
        return Verdict(not key_accepted, "auth" if not key_accepted else "limit")
    if _LIMIT_WORD.search(text):
        return Verdict(False, "limit")
    if _SETUP_WORD.search(text):
        return Verdict(True, "config")
    return Verdict(False, "limit")


def endpoint(url: str) -> str:
    """``scheme://host:port`` of ``url``: never userinfo, path, query or key."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<invalid url>"
    if not host:
        return "<invalid url>"
    if port is None:
        port = 443 if parts.scheme == "wss" else 80
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}"


def _handshake_error(exc: BaseException, url: str, timeout_s: float) -> GradiumError:
    """A failed connect as a GradiumError naming the endpoint and the cause."""
    where = endpoint(url)
    fatal, cause = False, "transient"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        verdict = classify(http_status=status)
        if verdict.cause == "auth":
            what = "Gradium rejected the API key"
            host = urlsplit(url).hostname or ""
            if _RETIRED_HOST.match(host):
                what += f" ({host} is a retired regional host: use api.gradium.ai)"
        elif status == 404:
            what = "no Gradium TTS endpoint at this URL"
        else:
            what = "Gradium refused the connection"
        what, code, fatal = f"{what} (HTTP {status})", str(status), verdict.fatal
        cause = verdict.cause
    elif isinstance(exc, InvalidURI):
        what, code, fatal, cause = "invalid Gradium URL", "invalid_url", True, "config"
    elif isinstance(exc, asyncio.TimeoutError | TimeoutError):
        what, code = f"no answer within {timeout_s:g} s (handshake timeout)", "timeout"
    elif isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or type(exc).__name__
        what, code = f"TLS handshake failed ({reason}); is it a wss:// endpoint?", "tls"
    elif isinstance(exc, socket.gaierror):
        what, code = f"cannot resolve the host name (DNS: {exc.strerror})", "dns"
    elif isinstance(exc, ConnectionRefusedError):
        what, code = "connection refused (nothing listens on that port)", "refused"
    elif isinstance(exc, ConnectionResetError | ConnectionAbortedError | EOFError) or (
        isinstance(exc, InvalidMessage)
    ):
        what, code = (
            "the server reset the connection before the WebSocket upgrade",
            "reset",
        )
        if url.startswith("wss:") and isinstance(exc, ConnectionResetError):
            what += " (during TLS: is it a wss:// endpoint?)"
    elif isinstance(exc, InvalidHandshake):
        what, code = f"WebSocket handshake failed ({type(exc).__name__})", "handshake"
    elif isinstance(exc, OSError):
        what, code = f"network error ({exc.strerror or type(exc).__name__})", "network"
    else:
        what, code = f"connect failed ({type(exc).__name__})", "connect_failed"
    return GradiumError(
        f"cannot connect to Gradium at {where}: {what}",
        fatal=fatal,
        vendor_code=code,
        phase="connect",
        cause=cause,
    )


# --------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Ready:
    sample_rate: int
    server_request_id: str


@dataclass(frozen=True)
class Audio:
    pcm: bytes
    start_s: float
    stop_s: float


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    stop_s: float


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Failed:
    error: GradiumError

    @property
    def server_request_id(self) -> str:
        """Gradium's id of the failed request (``ready.request_id``), or ""."""
        return self.error.server_request_id


Event = Ready | Audio | Word | Done | Failed


class ClientListener(Protocol):
    """Optional hooks; each is awaited in order and must not raise or block."""

    async def on_connection_status(self, current: str, last: str) -> None: ...

    async def on_connected(self, connect_ms: int) -> None: ...

    async def on_connection_error(self, error: GradiumError) -> None: ...


# ----------------------------------------------------------------------- connection
class _Connection:
    """One open socket and the requests currently routed on it."""

    _numbers = itertools.count(1)

    def __init__(self, ws: ClientConnection, max_age_s: float, connect_ms: int) -> None:
        self.ws = ws
        self.number = next(self._numbers)
        self.opened_at = time.monotonic()
        self.connect_ms = connect_ms
        # Recycling starts at a random point in the last fifth of the socket's
        # life, so clients started together do not all reconnect at once.
        self.recycle_at = self.opened_at + max_age_s * (1 - _JITTER * random.random())
        self.routes: dict[str, TTSRequest] = {}
        # Ids we stopped listening to (cancelled, failed) that the server may
        # still be working on, with when: until their end_of_stream or an error
        # naming them, or _DROPPED_FORGET_S, they count against the cap.
        self.dropped: dict[str, float] = {}
        self.bad_frames = 0  # frames with a wrong type or value (_bad_frame)
        self.had_ready = False
        self.used = False  # a request was routed on it
        self.served = False  # a request on it got audio or its end_of_stream
        self.proven = False  # served a request: the endpoint works
        self.retired = False  # takes no new requests; closes when routes empty
        self.closed = False
        self.socket_error: GradiumError | None = None
        self.accounted = False  # its end by the server counted (_server_ended)
        self.reader: asyncio.Task[None] | None = None
        self.secrets: tuple[str, ...] = ()  # masked in any text from the server

    @property
    def age(self) -> float:
        return time.monotonic() - self.opened_at

    @property
    def load(self) -> int:
        """Requests the server still works on for this socket: the live ones, and
        the ones we left (cancelled, failed) until the server ends them (their
        end_of_stream or an error naming them) or, at the latest,
        ``_DROPPED_FORGET_S`` later. A request the server ended itself (a scoped
        error) does not count."""
        dropped = self.dropped
        if dropped:
            old = time.monotonic() - _DROPPED_FORGET_S
            for cid in [c for c, at in dropped.items() if at < old]:
                del dropped[cid]
        return len(self.routes) + len(dropped)


# -------------------------------------------------------------------------- request
class TTSRequest:
    """One Gradium session: text in, events out.

    ``send_text`` and ``end`` only queue; a worker task connects (if needed), sends
    ``setup`` + text in order, and replays once on a fresh socket when the request
    fails before any audio arrived. ``events()`` yields Ready/Audio/Word and ends
    with exactly one Done or Failed. ``cancel()`` drops everything still to come.

    Once the caller's text ended, one deadline timer covers everything the
    request waits for: a socket (handshake included), ``ready``, audio, and the
    replay (see ``_deadline``).
    """

    def __init__(
        self, client: GradiumTTSClient, setup: dict[str, Any], *, words: bool = True
    ) -> None:
        self._client = client
        self._setup = dict(setup)
        self.words = words  # False: Gradium's word timestamps are dropped on arrival
        self._base_id = f"{next(client._request_numbers)}-{uuid.uuid4().hex[:8]}"
        self._attempt = 0
        self.client_req_id = self._base_id
        self._texts: list[str] = []
        self._sent = 0  # how many of _texts went out on the current attempt
        self._ended = False
        self._ended_at: float | None = None  # when the caller's text ended
        self._eos_sent = False
        self._cancelled = False
        self._finished = False  # Done or Failed was queued for the consumer
        self._audio_seen = False
        self._ready_yielded = False  # events() handed out a Ready already
        self._audio_yielded = False  # events() handed out audio already
        self._conn: _Connection | None = None
        self._left: _Connection | None = None  # the socket a replay must avoid
        self._wakeup = asyncio.Event()
        # Events for the consumer, tagged with their attempt; one waiter at a time,
        # woken once per batch of events, not once per event.
        self._queue: deque[tuple[int, Event]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Liveness clocks: any message heard or text sent (before audio), the last
        # audio frame, the last text sent (once audio flowed: ``_deadline``).
        self._last_activity = time.monotonic()
        self._last_audio = -math.inf
        self._last_sent = -math.inf
        self.sample_rate: int | None = None
        # Gradium's id of this request (``ready.request_id``; the replay's, after
        # a replay), "" until a ready arrived. Also on its GradiumError / Failed.
        self.server_request_id = ""

    # ---------------------------------------------------------------- caller side
    def send_text(self, text: str) -> None:
        if self._cancelled or self._finished or self._ended:
            return
        self._texts.append(text)
        self._kick()

    def end(self) -> None:
        if self._cancelled or self._finished or self._ended:
            return
        self._ended = True
        self._ended_at = time.monotonic()
        self._arm(self._deadline()[0])
        self._kick()

    def cancel(self) -> None:
        """Stop listening; nothing of this request reaches the caller any more.

        ``flush_mode="close"``: Gradium has no cancel message, so the socket that
        carries the request is closed (the server stops generating) and new
        requests go to the standby socket. If other requests still stream on it,
        the socket is only retired: it takes no new request and closes when they
        are done. ``"drop"`` (and the retired case): ``end_of_stream`` for this id
        and its late messages are dropped.
        """
        if self._cancelled:
            return
        self._cancelled = True
        self._stop_timer()
        self._wakeup.set()
        conn = self._conn
        if conn is not None and not conn.closed:
            close = self._client.flush_mode == "close"
            alone = all(r is self for r in conn.routes.values())
            if close and alone:
                self._detach(conn, drop=False)
                self._client._retire(conn)  # no routes left: closes now
            else:
                if not self._eos_sent:
                    # Let the server wrap this session up instead of waiting for text.
                    self._client._spawn(self._send(conn, self._eos_message()))
                self._detach(conn, drop=True)
                if close:
                    self._client._retire(conn)
        self._push(Failed(GradiumError("cancelled")))

    async def events(self) -> AsyncIterator[Event]:
        """Ready, Audio and Word events, then one Done or Failed.

        Audio that arrived while the consumer was busy comes as one Audio event
        (its bytes in order, up to ``COALESCE_MAX_BYTES``; never across a word or
        another event); the first audio of a request always comes alone."""
        queue = self._queue
        while True:
            while not queue:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            attempt, event = queue.popleft()
            if self._cancelled:
                return
            if attempt != self._attempt:
                continue  # left over from an attempt that was replayed
            if type(event) is Audio:
                if self._audio_yielded:
                    if queue:
                        event = self._coalesce(event)
                else:
                    self._audio_yielded = True
            elif isinstance(event, Ready):
                if self._ready_yielded:
                    continue  # a replay's ready: the consumer already had one
                self._ready_yielded = True
            yield event
            if isinstance(event, Done | Failed):
                return

    def _coalesce(self, first: Audio) -> Audio:
        """``first`` joined with the audio events right behind it in the queue."""
        queue, attempt = self._queue, self._attempt
        parts = [first.pcm]
        size = len(first.pcm)
        last = first
        while queue:
            tag, event = queue[0]
            if (
                tag != attempt
                or type(event) is not Audio
                or size + len(event.pcm) > COALESCE_MAX_BYTES
            ):
                break
            queue.popleft()
            parts.append(event.pcm)
            size += len(event.pcm)
            last = event
        if last is first:
            return first
        return Audio(b"".join(parts), first.start_s, last.stop_s)

    def _push(self, event: Event) -> None:
        self._queue.append((self._attempt, event))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    # ---------------------------------------------------------------- worker side
    def _kick(self) -> None:
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = self._client._spawn(self._run())

    def _setup_message(self) -> dict[str, Any]:
        msg = {"type": "setup", **self._setup}
        msg["client_req_id"] = self.client_req_id
        msg["close_ws_on_eos"] = False
        return msg

    def _eos_message(self) -> dict[str, Any]:
        return {"type": "end_of_stream", "client_req_id": self.client_req_id}

    async def _send(self, conn: _Connection, message: dict[str, Any]) -> bool:
        try:
            await conn.ws.send(json.dumps(message))
            return True
        except ConnectionClosed:
            return False

    def _live(self) -> bool:
        return not self._cancelled and not self._finished

    async def _run(self) -> None:
        """Get a socket, send setup and the text as it comes, then end_of_stream;
        after that the reader and the deadline timer take over. A replay (set up
        by ``_fail``) loops here, or starts a new worker if this one returned."""
        while self._live():
            attempt = self._attempt
            try:
                conn = await self._client._acquire(self, avoid=self._left)
            except GradiumError as err:
                if not self._live():
                    return
                if self._attempt == attempt:  # else the deadline moved on already
                    self._fail(err, conn=None)
                continue
            if not self._live():
                return
            self._attach(conn)
            if not await self._send(conn, self._setup_message()):
                self._fail(_lost(conn), conn=conn)
                continue
            while self._live() and self._conn is conn:
                self._wakeup.clear()
                while self._sent < len(self._texts) and self._conn is conn:
                    text = self._texts[self._sent]
                    self._sent += 1
                    msg = {
                        "type": "text",
                        "text": text,
                        "client_req_id": self.client_req_id,
                    }
                    if not await self._send(conn, msg):
                        self._fail(_lost(conn), conn=conn)
                        break
                    self._last_activity = self._last_sent = time.monotonic()
                if (
                    self._ended
                    and not self._eos_sent
                    and self._conn is conn
                    and self._sent == len(self._texts)
                ):
                    self._eos_sent = True
                    if not await self._send(conn, self._eos_message()):
                        self._fail(_lost(conn), conn=conn)
                        break
                    self._last_activity = self._last_sent = time.monotonic()
                if self._eos_sent and self._conn is conn:
                    return  # all sent: the reader and the deadline take it from here
                await self._wakeup.wait()

    # ------------------------------------------------------------------ deadline
    def _deadline(self) -> tuple[float, float]:
        """(when this request gives up, the silence it allows) once text ended.

        Before audio: ``response_timeout_s`` (plus ``retry_for_s``) of silence,
        counted from the last message heard, the last text sent or the start of
        the attempt. The first attempt that runs out is replayed once, and the
        whole request, replay, waits for sockets and handshakes included, ends at
        most twice that after its last text.

        Once audio has flowed, liveness is audio: the request ends
        ``response_timeout_s`` after its last audio frame (or its last text sent,
        if later), whatever else keeps arriving (words, unknown messages).
        """
        timeout = self._client.response_timeout_s
        if self._audio_seen:
            return max(self._last_audio, self._last_sent) + timeout, timeout
        timeout += float(self._setup.get("retry_for_s") or 0)
        deadline = self._last_activity + timeout
        if not self._audio_seen and self._ended_at is not None:
            deadline = min(deadline, self._ended_at + 2 * timeout)
        return deadline, timeout

    def _arm(self, when: float) -> None:
        """One timer per request; frames only record their time (``_deliver``),
        the timer re-arms itself when it fires early (``_on_deadline``)."""
        self._stop_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(
            max(0.0, when - time.monotonic()), self._on_deadline
        )

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_deadline(self) -> None:
        self._timer = None
        if not self._live():
            return
        due, timeout = self._deadline()
        if time.monotonic() < due:
            self._arm(due)  # heard something since: not yet
            return
        conn = self._conn
        if conn is None:
            what = f"no socket to Gradium within {timeout:g} s (handshake unanswered)"
            phase = "connect"
        else:
            silent = "audio" if self._audio_seen else "response"
            what = f"no {silent} from Gradium for {timeout:g} s"
            phase = "setup" if self.sample_rate is None else "stream"
            # A socket that left a request unanswered takes no new request: it
            # closes once its other requests end.
            self._client._retire(conn)
        self._fail(GradiumError(what, vendor_code="timeout", phase=phase), conn=conn)
        if self._live():  # replayed: the replay's own (shared) deadline
            self._arm(self._deadline()[0])

    # ------------------------------------------------------------------- routes
    def _attach(self, conn: _Connection) -> None:
        self._conn = conn
        self._sent = 0
        self._eos_sent = False
        self._last_activity = time.monotonic()
        conn.used = True
        conn.routes[self.client_req_id] = self
        self._client._routes_changed()

    def _detach(self, conn: _Connection, *, drop: bool) -> None:
        if conn.routes.get(self.client_req_id) is self:
            del conn.routes[self.client_req_id]
            if drop and not conn.closed:
                conn.dropped[self.client_req_id] = time.monotonic()
        if self._conn is conn:
            self._conn = None
        self._client._maybe_close_retired(conn)
        self._client._routes_changed()

    # -------------------------------------------------------- reader side (routed)
    def _deliver(self, event: Event) -> None:
        """Queue an event for the consumer. Only its time is recorded for the
        deadline (no timer is touched), and the worker is woken only when the
        request is done: audio and words cost no task wakeup but the consumer's."""
        if self._cancelled or self._finished:
            return
        self._last_activity = now = time.monotonic()
        if type(event) is Audio:
            self._audio_seen = True
            self._last_audio = now
        elif isinstance(event, Ready):
            self.sample_rate = event.sample_rate
            self.server_request_id = event.server_request_id
        elif isinstance(event, Done):
            self._finished = True
            self._stop_timer()
            if self._conn is not None:
                self._detach(self._conn, drop=False)
            self._wakeup.set()
        self._push(event)

    def _fail(self, error: GradiumError, *, conn: _Connection | None) -> None:
        """Replay once if nothing was heard yet and retrying can help; else report."""
        if self._cancelled or self._finished:
            return
        if conn is not None:
            if self._conn is not conn:
                return  # stale: this attempt already left that socket
            self._detach(conn, drop=not conn.closed)
        if self.server_request_id and not error.server_request_id:
            error = dataclasses.replace(error, server_request_id=self.server_request_id)
        if error.fatal:
            self._client.last_fatal = error
        replayable = (
            not error.fatal
            and error.cause != "backoff"  # a replay would meet the same backoff
            and not self._audio_seen
            and self._attempt == 0
        )
        if replayable:
            self._attempt += 1
            self.client_req_id = f"{self._base_id}-r{self._attempt}"
            self._left = conn
            self._last_activity = time.monotonic()  # the replay starts now
            log.warning(
                "gradium request %s failed before audio (%s); replaying on a fresh "
                "socket as %s",
                self._base_id,
                error,
                self.client_req_id,
            )
            self._kick()
            return
        self._finished = True
        self._stop_timer()
        self._push(Failed(error))
        self._wakeup.set()


def _lost(conn: _Connection) -> GradiumError:
    """Why ``conn`` closed: its error message, else its close code."""
    if conn.socket_error is not None:
        return conn.socket_error
    code = conn.ws.close_code
    if code in (None, CODE_ABNORMAL):
        return GradiumError(
            "connection to Gradium lost", vendor_code=str(CODE_ABNORMAL)
        )
    if code in (CODE_NORMAL, CODE_GOING_AWAY):
        return GradiumError(
            "Gradium closed the socket before end_of_stream", vendor_code=str(code)
        )
    reason = conn.ws.close_reason or "socket closed"
    verdict = classify(
        code, reason, after_ready=conn.had_ready, key_accepted=conn.had_ready
    )
    reason = _server_text(reason, conn)
    return GradiumError(
        _says_what_to_fix(f"Gradium closed the socket: {reason}", verdict, _host(conn)),
        fatal=verdict.fatal,
        vendor_code=str(code),
        cause=verdict.cause,
    )


# --------------------------------------------------------------------------- client
# The connect budget. Backoff after failed attempts: exponential from 1 s, capped
# at 30 s, each delay drawn from its upper half. A failed attempt is a refused or
# failed handshake, or a socket the server (not the client) closed before it had
# been open _PROVEN_AGE_S, whatever it served meanwhile. Only a socket opened
# after the last failure that stays open _PROVEN_AGE_S proves the endpoint (the
# failure count is reset, the status says connected again); serving a request
# proves nothing (a server may close every socket right after its first answer),
# nor does an old socket living on (it says nothing about new handshakes). While failures are on record no
# standby is opened and no request opens a socket of its own: every handshake is
# the one scheduled attempt (``_acquire``).
_BACKOFF_FIRST_S = 1.0
_BACKOFF_MAX_S = 30.0
_PROVEN_AGE_S = 5.0
_SETTLE_S = 2.0  # a replay waits this long at most for its old socket's close
# Requests multiplexed on one socket at most. Gradium publishes no per-socket cap
# (reference §4, §8): 16 is a guess (the local server's default). A request that
# would exceed it goes to another open socket, or opens one.
MAX_REQUESTS_PER_SOCKET = 16
# A request we left stops counting against the cap after this long, even if the
# server never sends its end_of_stream (about the longest a turn's audio takes).
_DROPPED_FORGET_S = 60.0
_JITTER = 0.2  # reopen times spread over up to this fraction of a socket's life
_JITTER_MAX_S = 10.0  # ... but a reopen nobody asked for waits at most this long
# flush_mode "close": the standby socket lives while requests run and this long
# after the last one ended (below any plausible server idle limit); an idle client
# holds one socket.
STANDBY_LINGER_S = 30.0
# Keepalive: the kernel's TCP keepalive, not WebSocket pings. Probes after 30 s
# of silence, every 10 s, 3 unanswered: a dead peer or a dropped NAT mapping is
# found within 60 s, and an idle socket costs no Python CPU at all (a websockets
# ping every 30 s cost ~1 us/s per idle socket, 20x an idle node's whole cost).
# Gradium documents no heartbeat and its idle limit is unpublished; when the
# server expires an idle socket, the maintainer reopens it (jittered).
TCP_KEEPALIVE_IDLE_S = 30
TCP_KEEPALIVE_INTERVAL_S = 10
TCP_KEEPALIVE_PROBES = 3
FLUSH_MODES = ("close", "drop")


def _keepalive(ws: ClientConnection) -> None:
    """Turn on the kernel's TCP keepalive for this socket (where the OS has it)."""
    sock = ws.transport.get_extra_info("socket")
    if sock is None:
        return
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (
        ("TCP_KEEPIDLE", TCP_KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", TCP_KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", TCP_KEEPALIVE_PROBES),
    ):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        with contextlib.suppress(OSError):
            sock.setsockopt(level, option, value)


def _backoff_delay(failures: int) -> float:
    # (the exponent is capped: 2 ** 1024 failures of a long outage overflow a float)
    step = min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2 ** min(max(0, failures - 1), 32))
    return step / 2 + random.uniform(0, step / 2)


class GradiumTTSClient:
    """Persistent, multiplexed connections to Gradium's TTS WebSocket.

    Sockets: the *active* one takes new requests. With ``flush_mode="close"`` a
    *standby* is kept open beside it while requests run (and ``STANDBY_LINGER_S``
    after), so a cancel can close the active socket and the next request still
    finds an open one. A single event-driven maintainer task opens, promotes,
    recycles and closes sockets; it sleeps until something happens.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        listener: ClientListener | None = None,
        connect_timeout_s: float = 10.0,
        response_timeout_s: float = 5.0,
        max_socket_age_s: float = 240.0,
        flush_mode: str = "close",
        max_requests_per_socket: int = MAX_REQUESTS_PER_SOCKET,
    ) -> None:
        if flush_mode not in FLUSH_MODES:
            raise ValueError(
                f"flush_mode must be one of {FLUSH_MODES}, got {flush_mode!r}"
            )
        if max_requests_per_socket < 1:
            raise ValueError("max_requests_per_socket must be at least 1")
        self._url = url
        self._api_key = api_key
        self._listener = listener
        self.connect_timeout_s = connect_timeout_s
        self.response_timeout_s = response_timeout_s
        self.max_socket_age_s = max_socket_age_s
        self.flush_mode = flush_mode
        self.max_requests_per_socket = max_requests_per_socket
        self._active: _Connection | None = None
        self._standby: _Connection | None = None
        self._conns: set[_Connection] = set()  # every open socket, retired included
        self._opening: asyncio.Task[_Connection] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._request_numbers = itertools.count(1)
        self._status = "disconnected"
        self._failures = 0  # failed attempts in a row
        self._last_failure: GradiumError | None = None
        self._failed_at = -math.inf  # when the last attempt failed
        self._retry_at = 0.0  # no attempt before (backoff), background or request
        self._reopen_at = 0.0  # no background reopen before (jitter after a loss)
        self._idle_since = -math.inf  # when the last request left the sockets
        self._closed = False
        self._wake = asyncio.Event()
        self._maintainer: asyncio.Task[None] | None = None
        self.maintainer_wakeups = 0
        self.last_fatal: GradiumError | None = None
        self.connections_opened = 0

    # ------------------------------------------------------------------ public API
    def start(self) -> None:
        """Open the socket in the background (prewarm); never raises."""
        self._ensure_maintainer()
        self._wake.set()

    def request(self, setup: dict[str, Any], *, words: bool = True) -> TTSRequest:
        """A new request; nothing is sent until its first ``send_text``.
        ``words=False``: the caller wants no Word events (dropped on arrival)."""
        if self._closed:
            raise RuntimeError("client is closed")
        return TTSRequest(self, setup, words=words)

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until a socket is open (for callers that want a warm start).
        It keeps the connect budget: while the client backs off it waits for
        the next scheduled attempt."""
        deadline = time.monotonic() + timeout
        while (now := time.monotonic()) < deadline:
            if self.connected:
                return True
            if self.last_fatal is not None:
                return False
            if now < self._retry_at and not self._opening_now():
                await asyncio.sleep(min(self._retry_at, deadline) - now)
                continue
            task = self._opening if self._opening_now() else self._open_soon()
            with contextlib.suppress(GradiumError, asyncio.TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(task), max(0.0, deadline - time.monotonic())
                )
        return self.connected

    def silence(self) -> None:
        """Report nothing more to the listener: this client is being replaced,
        and the status the graph sees follows the new one (its requests still
        end through their own events)."""
        self._listener = None

    @property
    def connected(self) -> bool:
        return self._usable(self._active) or self._usable(self._standby)

    async def aclose(self) -> None:
        self._closed = True
        tasks = [t for t in (self._opening, self._maintainer) if t is not None]
        for task in tasks:
            task.cancel()
        self._active = self._standby = None
        for conn in list(self._conns):
            await self._close_conn(conn, "client closed")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
        await self._set_status("disconnected")

    # ------------------------------------------------------------- connection mgmt
    def _usable(self, conn: _Connection | None) -> bool:
        """Open, not retired, and no socket-wide error from the server on it."""
        return (
            conn is not None
            and not conn.closed
            and not conn.retired
            and conn.socket_error is None
        )

    def _opening_now(self) -> bool:
        return self._opening is not None and not self._opening.done()

    def _open_soon(self) -> asyncio.Task[_Connection]:
        if not self._opening_now():
            self._opening = asyncio.get_running_loop().create_task(self._open())
            self._opening.add_done_callback(_consume_exception)
        assert self._opening is not None
        return self._opening

    def _busy(self) -> bool:
        return any(conn.routes for conn in self._conns)

    def _routes_changed(self) -> None:
        if not self._busy():
            self._idle_since = time.monotonic()
        self._wake.set()

    def _full(self, conn: _Connection) -> bool:
        return conn.load >= self.max_requests_per_socket

    def _pick(self, avoid: _Connection | None) -> _Connection | None:
        """An open socket for a new request: the active one, else the standby
        (promoted). A socket past its age limit, or carrying
        ``max_requests_per_socket`` requests, takes no new request."""
        for conn in (self._active, self._standby):
            if (
                self._usable(conn)
                and conn is not avoid
                and conn.age < self.max_socket_age_s
                and not self._full(conn)
            ):
                if conn is self._standby:
                    self._promote()
                return conn
        return None

    async def _acquire(
        self, request: TTSRequest, avoid: _Connection | None = None
    ) -> _Connection:
        """A socket for ``request``; never ``avoid`` (the one a replay left).

        Without a usable socket, the request joins the one attempt under way, or
        starts it if the backoff allows. While the client backs off, it never
        opens a socket of its own: it waits for the next scheduled attempt when
        that comes before its own deadline, else it ends (NON_FATAL, not
        replayed) with an error saying Gradium is refusing or dropping
        connections and when the next attempt is. Each handshake is bounded by
        ``connect_timeout_s``; the request's own deadline may give up sooner (the
        handshake goes on for the next request)."""
        if self._closed:
            raise GradiumError("client is closed", vendor_code="closed")
        if avoid is not None:
            await self._settle(avoid)
            if avoid is self._active:
                self._retire(avoid)
        while True:
            conn = self._pick(avoid)
            if conn is not None:
                return conn
            if self._closed or not request._live():
                raise GradiumError("no socket needed any more", vendor_code="closed")
            now = time.monotonic()
            if now < self._retry_at and not self._opening_now():
                if self._retry_at >= request._deadline()[0]:
                    raise self._backoff_error(now)
                await asyncio.sleep(self._retry_at - now)  # the scheduled attempt
                continue
            try:
                opened = await asyncio.shield(self._open_soon())
            except GradiumError as err:
                if err.fatal or not self._failures or self.last_fatal is not None:
                    raise
                # Say it as the budget sees it (replayable: the replay waits for
                # the next scheduled attempt, within the request's deadline).
                raise dataclasses.replace(
                    self._backoff_error(time.monotonic()), cause=err.cause
                ) from None
            conn = self._pick(avoid)
            if conn is not None:
                return conn
            if opened.socket_error is not None:
                raise opened.socket_error  # refused at once (a bad key): say why
            if opened.closed and not opened.retired:
                # It closed at once: the request fails on it (and is replayed
                # once) with the server's reason.
                return opened
            if self._closed or not request._live():
                raise GradiumError("no socket needed any more", vendor_code="closed")
            # Others filled it meanwhile (max_requests_per_socket): open another.

    async def _settle(self, conn: _Connection) -> None:
        """A replay leaving ``conn``: if the server is closing it (a send failed,
        a socket-wide error came), let its reader account for the close first, so
        the failure and its backoff count before the replay looks for a socket
        (else request + replay make two attempts at once)."""
        reader = conn.reader
        if conn.accounted or reader is None or reader.done():
            return
        if conn.socket_error is None and conn.ws.state is State.OPEN:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait({reader}, timeout=_SETTLE_S)

    def _promote(self) -> None:
        old, self._active, self._standby = self._active, self._standby, None
        if old is not None:
            self._retire(old)
        self._wake.set()  # the maintainer opens a new standby if one is wanted

    async def _open(self) -> _Connection:
        if self._status == "disconnected" and self._failures == 0:
            await self._set_status("connecting")
        started = time.monotonic()
        try:
            ws = await websockets.connect(
                self._url,
                additional_headers={
                    "x-api-key": self._api_key,
                    "x-api-source": API_SOURCE,
                },
                open_timeout=self.connect_timeout_s,
                compression=None,  # base64 PCM barely compresses; deflate adds latency
                ping_interval=None,  # TCP keepalive instead (_keepalive)
                close_timeout=2,
                max_size=2**22,
                logger=_ws_log,
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a GradiumError
            error = _handshake_error(exc, self._url, self.connect_timeout_s)
            log.warning("gradium connect failed: %s", error)
            self._attempt_failed(error)
            if not self.connected:
                await self._set_status("disconnected")
            if error.fatal:
                # An upgrade refused with 401/403/404: unambiguous, report it now.
                self.last_fatal = error
                await self._notify("on_connection_error", error)
            raise error from None
        connect_ms = int((time.monotonic() - started) * 1000)
        _keepalive(ws)
        conn = _Connection(ws, self.max_socket_age_s, connect_ms)
        conn.secrets = (self._api_key,)
        self._conns.add(conn)
        self.connections_opened += 1
        role = self._place(conn)
        conn.reader = asyncio.get_running_loop().create_task(self._read(conn))
        log.info("gradium socket #%d open in %d ms (%s)", conn.number, connect_ms, role)
        if self._failures == 0:
            await self._set_status("connected")
            if role == "active":
                await self._notify("on_connected", connect_ms)
        # else: after failures, a socket is reported once it proved itself
        self._wake.set()
        return conn

    def _place(self, conn: _Connection) -> str:
        now = time.monotonic()
        active = self._active
        if not self._usable(active) or now >= active.recycle_at or self._full(active):
            # (a full active keeps its requests, retired, and closes after them)
            self._active = conn
            if active is not None:
                self._retire(active)
            return "active"
        if not self._usable(self._standby):
            self._standby = conn
            return "standby"
        self._retire(conn)  # both places taken meanwhile: not needed
        return "surplus"

    def _attempt_failed(self, error: GradiumError) -> None:
        self._failures += 1
        self._last_failure = error
        self._failed_at = time.monotonic()
        delay = _backoff_delay(self._failures)
        self._retry_at = time.monotonic() + delay
        log.info(
            "gradium reconnect backoff: %.1f s (failure %d)", delay, self._failures
        )
        self._wake.set()

    def _backoff_error(self, now: float) -> GradiumError:
        if self.last_fatal is not None:
            return self.last_fatal  # the key was refused: that is the news
        last = self._last_failure
        return GradiumError(
            f"Gradium is refusing or dropping connections ({self._failures} failed "
            f"attempt(s) in a row, last: {last.message if last else 'unknown'}); "
            f"next attempt in {self._retry_at - now:.1f} s",
            vendor_code=last.vendor_code if last and last.vendor_code else "backoff",
            phase="connect",
            cause="backoff",
        )

    async def _proved(self, conn: _Connection) -> None:
        """``conn`` served a request (the reader calls this once per socket).

        That alone proves nothing: a server may close every socket right after
        its first answer. The maintainer counts a socket as proof once it has
        been open ``_PROVEN_AGE_S`` (``_recovered``)."""
        conn.proven = True

    def _proves(self, conn: _Connection) -> bool:
        """Only a socket opened after the last failure can prove it is over (an
        old socket that lives on says nothing about new handshakes)."""
        return conn.opened_at > self._failed_at

    async def _recovered(self, conn: _Connection) -> None:
        """``conn`` stayed open ``_PROVEN_AGE_S``: the outage, if any, is over."""
        self._failures = 0
        self._last_failure = None
        self._retry_at = 0.0
        log.info("gradium socket #%d stayed open: backoff reset", conn.number)
        if self.connected and self._status != "connected":
            await self._set_status("connected")
            if self._usable(self._active):
                await self._notify("on_connected", self._active.connect_ms)

    def _retire(self, conn: _Connection) -> None:
        conn.retired = True
        if self._active is conn:
            self._active = None
        if self._standby is conn:
            self._standby = None
        self._maybe_close_retired(conn)

    def _maybe_close_retired(self, conn: _Connection) -> None:
        if conn.retired and not conn.closed and not conn.routes:
            conn.closed = True  # from now on, nothing routes to it
            self._spawn(self._close_conn(conn, "retired"))

    async def _close_conn(self, conn: _Connection, why: str) -> None:
        conn.closed = True
        self._conns.discard(conn)
        log.info("closing gradium socket #%d (%s)", conn.number, why)
        with contextlib.suppress(Exception):
            await conn.ws.close()
        if conn.reader is not None and conn.reader is not asyncio.current_task():
            conn.reader.cancel()
            with contextlib.suppress(BaseException):
                await conn.reader

    def _ensure_maintainer(self) -> None:
        if self._maintainer is None or self._maintainer.done():
            self._maintainer = asyncio.get_running_loop().create_task(self._maintain())

    async def _maintain(self) -> None:
        """Sleep until something happens (a socket opened or closed, a request
        started or ended, a recycle / linger / backoff / settle deadline), act,
        sleep again. No polling."""
        while not self._closed:
            self.maintainer_wakeups += 1
            self._wake.clear()
            try:
                deadline = await self._tend(time.monotonic())
            except Exception:  # noqa: BLE001 - a bug must not stop the maintainer
                log.exception("gradium maintainer failed")
                deadline = time.monotonic() + 1.0
            timeout = (
                None if deadline is None else max(0.0, deadline - time.monotonic())
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _tend(self, now: float) -> float | None:
        """Bring the sockets where they should be; return the next deadline."""
        deadlines: list[float] = []
        for conn in (self._active, self._standby):
            if conn is not None and conn.socket_error is not None:
                # The server ended it: counted now (not when it closes, after a
                # reopen), retired (it closes after its routes).
                await self._server_ended(conn, conn.socket_error)
                self._retire(conn)
        if not self._usable(self._active) and self._usable(self._standby):
            self._promote()
        standby = self._standby
        if self._usable(standby) and now >= standby.recycle_at:
            self._retire(standby)  # reopened below if one is still wanted
        active = self._active
        if (
            self._usable(active)
            and now >= active.recycle_at
            and self._usable(self._standby)
        ):
            self._promote()  # the standby is younger: no handshake needed
        if self._failures:
            # Proof that an outage is over: a socket open _PROVEN_AGE_S.
            for conn in list(self._conns):
                proven_at = conn.opened_at + _PROVEN_AGE_S
                if conn.closed or conn.accounted or not self._proves(conn):
                    continue  # (accounted: the server ended it)
                if now >= proven_at:
                    await self._recovered(conn)
                    break
                deadlines.append(proven_at)
        busy = self._busy()
        # While failures are on record, one socket at a time (the connect budget).
        want_standby = (
            self.flush_mode == "close"
            and not self._failures
            and (busy or now < self._idle_since + STANDBY_LINGER_S)
        )
        if self.flush_mode == "close" and not busy and want_standby:
            deadlines.append(self._idle_since + STANDBY_LINGER_S)
        if self._usable(self._standby) and not want_standby:
            self._retire(self._standby)
        for conn in (self._active, self._standby):
            if self._usable(conn) and conn.recycle_at > now:
                deadlines.append(conn.recycle_at)
        active = self._active
        need = (
            not self._usable(active)
            or now >= active.recycle_at
            or (want_standby and not self._usable(self._standby))
        )
        blocked = self.last_fatal is not None
        if need and not blocked and not self._opening_now():
            not_before = max(self._retry_at, self._reopen_at)
            if now >= not_before:
                self._open_soon()
            else:
                deadlines.append(not_before)
        return min(deadlines, default=None)

    # --------------------------------------------------------------------- reader
    async def _read(self, conn: _Connection) -> None:
        """Hand each frame to ``_dispatch`` until the socket closes. Nothing a frame
        holds ends this loop; once it ends, for whatever reason, the socket's
        requests fail (``_on_socket_closed``) and the socket is closed."""
        ws, dispatch = conn.ws, self._dispatch
        try:
            while True:
                # bytes: the JSON parser reads UTF-8 itself, no str is built first
                raw = await ws.recv(decode=False)
                try:
                    dispatch(conn, raw)
                except Exception as exc:  # noqa: BLE001 - costs this frame only
                    _bad_frame(
                        conn, None, f"could not be handled ({type(exc).__name__})"
                    )
                if conn.served and not conn.proven:
                    await self._proved(conn)
        except ConnectionClosed as exc:
            sent = exc.sent
            if sent is not None and sent.code == CODE_TOO_BIG:
                conn.socket_error = conn.socket_error or GradiumError(
                    f"Gradium sent a frame too large to take ({sent.reason})",
                    vendor_code=str(CODE_TOO_BIG),
                )
        except Exception:  # noqa: BLE001 - a reader bug must not kill the loop
            log.exception("gradium reader #%d crashed", conn.number)
        finally:
            try:
                await self._on_socket_closed(conn)
            finally:
                if conn.ws.state is not State.CLOSED:  # the reader ended on its own
                    await self._close_conn(conn, "its reader ended")

    def _dispatch(self, conn: _Connection, raw: str | bytes) -> None:
        """One frame from Gradium, untrusted: every field is checked here, and a
        wrong one costs at most the request the frame names (``_bad_frame``)."""
        try:
            msg = _loads(raw)
        except (ValueError, RecursionError):  # UnicodeError and orjson's included
            _bad_frame(conn, None, "is not JSON")
            return
        if type(msg) is not dict:
            _bad_frame(conn, None, "is not a JSON object")
            return
        kind = msg.get("type")
        cid = msg.get("client_req_id")
        if kind == "audio":  # the hot path: one message per 80 ms of speech
            request = self._route(conn, cid)
            if request is not None:
                self._on_audio(conn, request, msg)
            return
        if type(kind) is not str:
            _bad_frame(conn, self._route(conn, cid), "has no valid type")
            return
        if kind == "ready":
            conn.had_ready = True
            self.last_fatal = None
        request = self._route(conn, cid)

        if kind == "error":
            self._on_error(conn, request, cid, msg)
            return

        if request is None:
            if kind == "end_of_stream" and type(cid) is str and cid in conn.dropped:
                del conn.dropped[cid]
                conn.served = True
            return  # late message of a cancelled request, or unknown id

        if kind == "ready":
            value = msg.get("sample_rate")
            rate = None if value is None else _int_or_none(value)
            if value is not None and (rate is None or not 0 < rate <= _MAX_SAMPLE_RATE):
                what = f"is a ready with an invalid sample_rate {_shown(value, conn)}"
                _bad_frame(conn, request, what)
                return
            server_id = msg.get("request_id")
            server_id = _server_text(server_id, conn) if type(server_id) is str else ""
            request._deliver(Ready(rate or 0, server_id))
        elif kind == "text":
            if not request.words:
                request._last_activity = time.monotonic()  # heard; not wanted
                return
            self._on_word(conn, request, msg)
        elif kind == "end_of_stream":
            conn.served = True
            request._deliver(Done())
        else:
            # flushed, need_more_text and future types (§3.6): ignore.
            log.debug(
                "gradium socket #%d: ignoring message type %s",
                conn.number,
                _server_text(kind, conn),
            )

    def _on_error(
        self,
        conn: _Connection,
        request: TTSRequest | None,
        cid: Any,
        msg: dict[str, Any],
    ) -> None:
        """An ``error`` message: the request it names fails, or with no
        ``client_req_id`` every request on the socket (the server closes next)."""
        code = _int_or_none(msg.get("code"))
        message = msg.get("message")
        if type(message) is not str or not message.strip():
            message = "Gradium reported an error"
        scoped = cid is not None
        if scoped:
            after_ready = request is not None and request.sample_rate is not None
        else:
            after_ready = conn.had_ready
        verdict = classify(
            code, message, after_ready=after_ready, key_accepted=conn.had_ready
        )
        error = GradiumError(
            _says_what_to_fix(_server_text(message, conn), verdict, _host(conn)),
            fatal=verdict.fatal,
            vendor_code=str(code) if code is not None else "error",
            phase="stream" if after_ready else "setup",
            cause=verdict.cause,
        )
        if not scoped:
            conn.socket_error = error
            for req in list(conn.routes.values()):
                req._fail(error, conn=conn)
            return
        if request is not None:
            request._fail(error, conn=conn)
        if type(cid) is str:
            conn.dropped.pop(cid, None)  # the server ended it: no end_of_stream

    @staticmethod
    def _on_audio(conn: _Connection, request: TTSRequest, msg: dict[str, Any]) -> None:
        data = msg.get("audio")
        try:
            pcm = _b64decode(data) if type(data) is str else None
        except (binascii.Error, ValueError):
            pcm = None
        if pcm is None:
            if data is None or data == "":
                return  # an empty frame: nothing to play
            _bad_frame(conn, request, "is audio that is not valid base64")
            return
        if pcm:
            conn.served = True  # audio flowed: the endpoint works
            request._deliver(
                Audio(pcm, _float(msg.get("start_s")), _float(msg.get("stop_s")))
            )

    @staticmethod
    def _on_word(conn: _Connection, request: TTSRequest, msg: dict[str, Any]) -> None:
        text = msg.get("text")
        if type(text) is not str:
            text = ""  # (a lone surrogate cannot get here: _loads refuses it)
        start = _float(msg.get("start_s"), missing=0.0)
        stop = _float(msg.get("stop_s"), missing=start)
        request._deliver(Word(_server_text(text, conn, limit=0), start, stop))

    def _route(self, conn: _Connection, cid: Any) -> TTSRequest | None:
        if type(cid) is str:
            return conn.routes.get(cid)
        if cid is None:
            if len(conn.routes) == 1:  # an unscoped reply can only be for this one
                return next(iter(conn.routes.values()))
            return None
        _bad_frame(conn, None, "has a client_req_id that is not a string")
        return None  # not an id we gave (a number, a list, ...): names no request

    async def _on_socket_closed(self, conn: _Connection) -> None:
        was_closed_by_us = conn.closed
        conn.closed = True
        self._conns.discard(conn)
        if self._active is conn:
            self._active = None
        if self._standby is conn:
            self._standby = None
        self._wake.set()
        server_ended = conn.socket_error is not None  # an error for the whole socket
        if was_closed_by_us and not server_ended and not conn.routes:
            return
        error = _lost(conn)
        log.info("gradium socket #%d closed: %s", conn.number, error)
        if not was_closed_by_us or server_ended:  # else aclose(): our doing
            await self._server_ended(conn, error)
        for req in list(conn.routes.values()):
            req._fail(error, conn=conn)
        conn.routes.clear()

    async def _server_ended(self, conn: _Connection, error: GradiumError) -> None:
        """The server closed ``conn`` or sent an error for the whole socket (once
        per socket). Young (open less than ``_PROVEN_AGE_S``), whatever it served
        meanwhile: a failed attempt (a refused key, an outage, a cap, a close N s
        after opening). Older: not a failure (idle expiry, a session cap, a
        restart); reopened at a random moment so a fleet expired together does
        not reconnect together (a request arriving meanwhile opens one at once),
        and the status does not change."""
        if conn.accounted:
            return
        conn.accounted = True
        if conn.age < _PROVEN_AGE_S:
            self._attempt_failed(error)
            if error.fatal:
                # The key was refused: background attempts stop (_tend); the next
                # request asks once more (after the backoff) and reports it.
                self.last_fatal = error
            if not self._closed and not self.connected:
                await self._set_status("disconnected")
            return
        if self._failures and self._proves(conn):
            await self._recovered(conn)
        if not conn.routes:
            spread = min(_JITTER * conn.age, _JITTER_MAX_S)
            self._reopen_at = time.monotonic() + random.uniform(0, spread)

    # -------------------------------------------------------------------- helpers
    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_consume_exception)
        return task

    async def _set_status(self, current: str) -> None:
        last, self._status = self._status, current
        if last != current:
            await self._notify("on_connection_status", current, last)

    async def _notify(self, hook: str, *args: Any) -> None:
        if self._listener is None:
            return
        try:
            await getattr(self._listener, hook)(*args)
        except Exception:  # noqa: BLE001 - a listener bug must not break the client
            log.exception("gradium listener %s failed", hook)


def _says_what_to_fix(message: str, verdict: Verdict, host: str = "") -> str:
    if verdict.cause == "auth":
        text = f"Gradium rejected the API key, check the API key: {message}"
        if _RETIRED_HOST.match(host):
            text += (
                f" ({host} is a retired regional host that answers every key this "
                "way: use wss://api.gradium.ai/api/speech/tts)"
            )
        return text
    if verdict.cause == "config" and verdict.fatal:
        return f"invalid configuration: Gradium refused the setup: {message}"
    return message


def _host(conn: _Connection) -> str:
    """The Host the socket was opened to (for the retired-host hint)."""
    try:
        return str(conn.ws.request.headers.get("Host", ""))
    except AttributeError:
        return ""


# Text from the server shown in logs and errors: masked, control characters
# escaped (one log line stays one line), at most this long.
_SHOWN_MAX = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def printable(text: str, limit: int = _SHOWN_MAX) -> str:
    """``text`` on one line: control characters escaped (``\\n``), cut to ``limit``
    characters (0: no limit), lone surrogates replaced."""
    if limit and len(text) > limit:
        text = text[:limit] + "..."
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    if not _encodable(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _server_text(value: Any, conn: _Connection, *, limit: int = _SHOWN_MAX) -> str:
    """A string the server sent, fit for a log line, an error or an event: every
    secret masked; for logs and errors (``limit``), also on one line and short."""
    text = mask_secrets(value if type(value) is str else repr(value), conn.secrets)
    return printable(text, limit) if limit else text


def _shown(value: Any, conn: _Connection) -> str:
    return _server_text(repr(value), conn, limit=40)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Frames with a problem logged per socket at WARNING; later ones at DEBUG.
_BAD_FRAMES_LOGGED = 5


def _bad_frame(conn: _Connection, request: TTSRequest | None, what: str) -> None:
    """A frame that ``what`` (a wrong type or value): logged, and the request it
    names (if any) fails NON_FATAL saying so. The socket and its reader go on."""
    conn.bad_frames += 1
    level = logging.WARNING if conn.bad_frames <= _BAD_FRAMES_LOGGED else logging.DEBUG
    log.log(level, "gradium socket #%d: a message that %s", conn.number, what)
    if request is not None:
        phase = "setup" if request.sample_rate is None else "stream"
        request._fail(
            GradiumError(
                f"Gradium sent a message that {what}",
                vendor_code="bad_message",
                phase=phase,
            ),
            conn=conn,
        )


def _consume_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


_MAX_SAMPLE_RATE = 384_000
_INT_TEXT = re.compile(r"-?[0-9]{1,9}")


def _int_or_none(value: Any) -> int | None:
    """An integer field (a code, a rate): an int, an integral float or a string of
    ASCII digits; anything else is None."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is str and _INT_TEXT.fullmatch(value.strip()):
        return int(value)
    return None


def _float(value: Any, missing: float = 0.0) -> float:
    """A timestamp field: absent is ``missing``; a wrong type is NaN (unusable)."""
    if value is None:
        return missing
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)  # at most 64 bits (_loads): never overflows
    return math.nan
