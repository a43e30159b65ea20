"""Make the probe extensions importable and reset what they record."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(autouse=True)
def probe_events():
    from standin_probe_ext import extension

    extension.EVENTS.clear()
    yield extension.EVENTS
    extension.EVENTS.clear()
