"""Shared test set-up: pick the TEN host (real packages or stand-ins) and start the app.

The same tests run on the stand-ins (a plain checkout) and on TEN's real runtime (in a
TEN app, through ``tests/bin/start``). Nothing here imports a stand-in by path:
``tenhost.ensure()`` adds the stand-ins to ``sys.path`` only when ``import ten_runtime``
fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "standalone") not in sys.path:
    sys.path.insert(0, str(ROOT / "standalone"))

import tenhost  # noqa: E402

TEN_HOST = tenhost.ensure()

# The local Gradium server's fixtures: gradium_server, gradium_server_thread,
# make_server.
pytest_plugins = ["gradium_server.pytest_plugin"]


def pytest_report_header(config):
    return f"TEN host: {TEN_HOST}"


@pytest.fixture(scope="session", autouse=True)
def global_setup_and_teardown():
    """One TEN app for the whole session, as TEN's own extension tests start it."""
    with tenhost.AppRunner():
        yield


@pytest.fixture
def ten_host() -> str:
    return TEN_HOST
