"""Helpers for the local Gradium server's own tests (raw ``websockets`` client only).

These tests never touch TEN or the extension's client. ``standalone/`` is put on
``sys.path`` here too, so ``pytest tests/server --confcutdir=tests/server`` works
without the repository's TEN bootstrap.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "standalone") not in sys.path:
    sys.path.insert(0, str(ROOT / "standalone"))

from gradium_server.pytest_plugin import (  # noqa: E402,F401 - fixtures
    gradium_server,
    gradium_server_thread,
    make_server,
)
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

API_KEY = "test-key"


@dataclass
class Result:
    """Everything one client saw on a socket."""

    messages: list[dict] = field(default_factory=list)
    non_json: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    close_sent: int | None = None  # code of the close frame the client sent
    closed: bool = False
    arrival: list[float] = field(default_factory=list)  # loop time per message

    def of(self, type: str, cid: Any = ...) -> list[dict]:
        return [
            m
            for m in self.messages
            if m.get("type") == type and (cid is ... or m.get("client_req_id") == cid)
        ]

    def types(self, cid: Any = ...) -> list[str]:
        return [
            m.get("type")
            for m in self.messages
            if cid is ... or m.get("client_req_id") == cid
        ]

    def audio(self, cid: Any = ...) -> bytes:
        return b"".join(base64.b64decode(m["audio"]) for m in self.of("audio", cid))

    def words(self, cid: Any = ...) -> list[dict]:
        return self.of("text", cid)

    @property
    def error(self) -> dict | None:
        errors = self.of("error")
        return errors[0] if errors else None


async def open_ws(url: str, key: str | None = API_KEY, **kw) -> ClientConnection:
    headers = {"x-api-key": key} if key is not None else {}
    return await connect(url, additional_headers=headers, open_timeout=10, **kw)


async def send(ws: ClientConnection, **msg: Any) -> None:
    await ws.send(json.dumps(msg))


async def collect(
    ws: ClientConnection,
    result: Result | None = None,
    timeout: float = 10.0,
    until=None,
) -> Result:
    """Read until the socket closes, ``until(msg)`` is true, or ``timeout`` passes
    (a timeout returns what arrived; ``result.closed`` tells whether it closed)."""
    result = result if result is not None else Result()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                frame = await asyncio.wait_for(ws.recv(), remaining)
            except asyncio.TimeoutError:  # not TimeoutError on 3.10
                break
            result.arrival.append(loop.time())
            try:
                msg = json.loads(frame)
            except ValueError:
                result.non_json.append(frame)
                continue
            result.messages.append(msg)
            if until is not None and until(msg):
                return result
    except ConnectionClosed as exc:
        result.closed = True
        result.close_code = exc.rcvd.code if exc.rcvd else None
        result.close_reason = exc.rcvd.reason if exc.rcvd else ""
        result.close_sent = exc.sent.code if exc.sent else None
    return result


async def synth(
    url: str,
    texts: str | list[str],
    *,
    eos: bool = True,
    key: str | None = API_KEY,
    timeout: float = 10.0,
    **setup: Any,
) -> Result:
    """One request on a fresh socket: setup, texts, end_of_stream, read to close."""
    setup.setdefault("output_format", "pcm_16000")
    scope = (
        {"client_req_id": setup["client_req_id"]} if "client_req_id" in setup else {}
    )
    ws = await open_ws(url, key)
    try:
        try:
            await send(ws, type="setup", **setup)
            for text in [texts] if isinstance(texts, str) else texts:
                await send(ws, type="text", text=text, **scope)
            if eos:
                await send(ws, type="end_of_stream", **scope)
        except ConnectionClosed:
            pass  # e.g. a rejected key: the server closed first; read what it sent
        return await collect(ws, timeout=timeout)
    finally:
        await ws.close()


def pcm16(data: bytes) -> list[int]:
    return [
        int.from_bytes(data[i : i + 2], "little", signed=True)
        for i in range(0, len(data), 2)
    ]


def rms(samples: list[int]) -> float:
    return (sum(s * s for s in samples) / len(samples)) ** 0.5 if samples else 0.0


class Helpers:
    Result = Result
    open_ws = staticmethod(open_ws)
    send = staticmethod(send)
    collect = staticmethod(collect)
    synth = staticmethod(synth)
    pcm16 = staticmethod(pcm16)
    rms = staticmethod(rms)
    API_KEY = API_KEY


@pytest.fixture
def h() -> type[Helpers]:
    """The raw-client helpers (a fixture because test files cannot import conftest)."""
    return Helpers
