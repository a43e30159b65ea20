"""pytest fixtures for the local Gradium server.

Register with ``pytest_plugins = ["gradium_server.pytest_plugin"]`` (``standalone/``
must be on ``sys.path``). Both fixtures bind a free port on 127.0.0.1 and use
``LatencyModel.instant()`` and the deterministic synthetic voice.

* ``gradium_server``: a ``GradiumServer`` on the test's own event loop (async tests).
* ``gradium_server_thread``: a ``ServerThread`` (its own loop and thread) for
  synchronous tests such as TEN's blocking tester.
* ``make_server``: a factory, ``await make_server(**ServerConfig fields)``, for
  tests that need their own latency, limits or keys; all stopped at teardown.
"""

from __future__ import annotations

from typing import Any

import pytest

from .config import ServerConfig
from .server import GradiumServer, ServerThread

try:
    import pytest_asyncio

    _async_fixture = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - async fixture unusable without it
    _async_fixture = pytest.fixture


@_async_fixture
async def gradium_server():
    server = GradiumServer(ServerConfig.for_tests())
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def gradium_server_thread():
    with ServerThread(ServerConfig.for_tests()) as server:
        yield server


@_async_fixture
async def make_server():
    servers: list[GradiumServer] = []

    async def factory(**overrides: Any) -> GradiumServer:
        server = GradiumServer(ServerConfig.for_tests(**overrides))
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()
