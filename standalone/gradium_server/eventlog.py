"""The server's record of what each client sent and what happened (task §6).

Entries are appended from the server loop and read from any thread. The API key is
never stored: connection entries carry ``key_ok`` (and ``key_source``) instead.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LogEntry:
    """One thing that happened.

    * ``t``: ``time.monotonic()`` (for "in": when the frame arrived, before the
      simulated rtt/2; for "out": when it was written to the socket).
    * ``conn``: connection number (1-based, in accept order).
    * ``direction``: ``"in"`` (client message), ``"out"`` (server message) or
      ``"event"`` (connect, close, fault, ignored field, ...).
    * ``type``: message type (``setup``, ``audio``...) or event name.
    * ``raw``: the received frame (``str`` or ``bytes``) for ``"in"``; ``None``
      otherwise. Audio is kept decoded in ``data["pcm"]`` (and ``audio_bytes``).
    * ``data``: extra details (parsed message, close code, audio byte count...).
    """

    t: float
    conn: int
    direction: str
    type: str
    client_req_id: str | None = None
    text: str | None = None
    raw: str | bytes | None = None
    data: dict[str, Any] = field(default_factory=dict)


class EventLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LogEntry] = []

    def add(
        self,
        conn: int,
        direction: str,
        type: str,
        *,
        client_req_id: str | None = None,
        text: str | None = None,
        raw: str | bytes | None = None,
        t: float | None = None,
        **data: Any,
    ) -> LogEntry:
        entry = LogEntry(
            t=time.monotonic() if t is None else t,
            conn=conn,
            direction=direction,
            type=type,
            client_req_id=client_req_id,
            text=text,
            raw=raw,
            data=data,
        )
        with self._lock:
            self._entries.append(entry)
        return entry

    def snapshot(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def select(
        self,
        direction: str | None = None,
        type: str | None = None,
        client_req_id: str | None = None,
        conn: int | None = None,
    ) -> list[LogEntry]:
        return [
            e
            for e in self.snapshot()
            if (direction is None or e.direction == direction)
            and (type is None or e.type == type)
            and (client_req_id is None or e.client_req_id == client_req_id)
            and (conn is None or e.conn == conn)
        ]
