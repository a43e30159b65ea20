"""Make the probe extensions importable and reset what they record.

These tests check the stand-ins against TEN's documented behaviour. The probe
addons are installed in the app folder, where the stand-in loader looks for them. On TEN's real
runtime (inside a TEN app) there is nothing of ours to check here, and the probe
addons are not part of the app, so the folder is not collected at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tenhost

HERE = Path(__file__).resolve().parent

collect_ignore_glob = [] if tenhost.is_standin() else ["test_*.py"]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if tenhost.is_standin():
    import standin_probe_ext

    standin_probe_ext.install()  # as tman would: <app>/ten_packages/extension/<name>


@pytest.fixture(autouse=True)
def probe_events():
    from standin_probe_ext import extension

    extension.EVENTS.clear()
    yield extension.EVENTS
    extension.EVENTS.clear()
