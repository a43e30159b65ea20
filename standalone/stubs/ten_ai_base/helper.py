"""AsyncQueue, PCMWriter, TimeHelper, generate_file_name (contract §2.7)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import datetime
from typing import Any


class AsyncQueue:
    """A deque with an asyncio.Condition, plus ``flush()``."""

    def __init__(self) -> None:
        self._queue: deque = deque()
        self._condition = asyncio.Condition()

    async def put(self, item: Any, prepend: bool = False) -> None:
        async with self._condition:
            if prepend:
                self._queue.appendleft(item)
            else:
                self._queue.append(item)
            self._condition.notify()

    async def get(self) -> Any:
        async with self._condition:
            while not self._queue:
                await self._condition.wait()
            return self._queue.popleft()

    def flush(self) -> None:
        self._queue.clear()

    def len(self) -> int:
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)


class PCMWriter:
    """Buffer PCM and append it to ``file_path`` from an executor thread.

    The file is opened in append mode and created only by the first non-empty
    write; ``flush()`` forces the write and waits for it.
    """

    def __init__(self, file_path: str, buffer_size: int = 1024 * 64):
        self.file_path = file_path
        self.buffer_size = buffer_size
        self.buffer = bytearray()
        self._lock = asyncio.Lock()  # keeps executor writes in order
        self._tasks: set[asyncio.Task] = set()

    async def write(self, data: bytes) -> None:
        self.buffer.extend(data)
        if len(self.buffer) >= self.buffer_size:
            chunk = bytes(self.buffer)
            self.buffer.clear()
            task = asyncio.create_task(self._write(chunk))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        if self.buffer:
            chunk = bytes(self.buffer)
            self.buffer.clear()
            task = asyncio.create_task(self._write(chunk))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def _write(self, chunk: bytes) -> None:
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(None, self._append, chunk)

    def _append(self, chunk: bytes) -> None:
        with open(self.file_path, "ab") as f:
            f.write(chunk)


class TimeHelper:
    @staticmethod
    def duration(start: float, end: float) -> float:
        return end - start

    @staticmethod
    def duration_since(start: float) -> float:
        return time.time() - start

    @staticmethod
    def duration_ms(start: float, end: float) -> int:
        return int((end - start) * 1000)

    @staticmethod
    def duration_ms_since(start: float) -> int:
        return int((time.time() - start) * 1000)


def generate_file_name(prefix: str) -> str:
    return f"{prefix}_{datetime.now().strftime('%Y%m%d_%H%M%S_%f')}"
