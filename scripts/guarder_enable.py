"""pytest plugin for TEN's tts_guarder (scripts/test-real.sh loads it with ``-p``).

The guarder runs two of its tests only for extensions named in its own module-level
sets: ``test_connection_status.SUPPORTED_WEBSOCKET_TTS_EXTENSIONS`` (websocket TTS
that reports ``connection_status_changed``, also gated by the environment variable
``ENABLE_CONNECTION_STATUS=True``) and ``test_subtitle_alignment.SUPPORTED_TTS_EXTENSIONS``
(also gated by ``--enable_subtitle_alignment=True``). This extension is a websocket TTS
with word timestamps, so both apply: the plugin adds ``--extension_name`` to those
sets after collection, as adding the name to TEN's lists would. Nothing else of the
guarder changes.
"""

from __future__ import annotations

import pytest

_SETS = ("SUPPORTED_WEBSOCKET_TTS_EXTENSIONS", "SUPPORTED_TTS_EXTENSIONS")


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    name = config.getoption("--extension_name")
    found = set()
    for item in items:
        module = getattr(item, "module", None)
        for attr in _SETS:
            names = getattr(module, attr, None)
            if isinstance(names, set):
                names.add(name)
                found.add(attr)
    missing = set(_SETS) - found
    if missing:
        raise pytest.UsageError(f"guarder_enable: the guarder has no {sorted(missing)}")
