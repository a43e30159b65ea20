"""Shared test set-up: pick the TEN host (real packages or stand-ins) and start the app.

The same tests run on the stand-ins (a plain checkout) and on TEN's real runtime (in a
TEN app, through ``tests/bin/start``). Nothing here imports a stand-in by path:
``tenhost.ensure()`` adds the stand-ins to ``sys.path`` only when ``import ten_runtime``
fails.

Our pytest settings (asyncio auto mode, a 120 s timeout per test, the ``slow``
marker) live here, not in ``pyproject.toml``, and apply only when pytest was pointed
at this package. TEN's ``tts_guarder`` is run with ``--config_dir`` inside this
package (``tests/configs_local``): pytest then adopts the first pytest table it
finds above that path (our old ``timeout = 120`` killed the guarder's longest test),
and it also loads this file, because it sits in a parent folder of that path. In
such a foreign run this conftest does nothing at all.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# Our helpers (tenhost, the local server) import by name; nothing is imported here.
if str(ROOT / "standalone") not in sys.path:
    sys.path.insert(0, str(ROOT / "standalone"))

TEST_TIMEOUT_S = 120.0


def runs_this_suite(config: pytest.Config) -> bool:
    """True when pytest's own path arguments point into this package's tests.

    An option value such as the guarder's ``--config_dir`` is not a path argument.
    """
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (base / str(arg).split("::", 1)[0]).resolve()
        if path == ROOT or path == TESTS or TESTS in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Our settings, for our suite only; the command line and PYTEST_TIMEOUT win."""
    if not runs_this_suite(config):
        return
    import tenhost

    config.stash[_OURS] = tenhost.ensure()
    # The local Gradium server's fixtures: gradium_server, gradium_server_thread,
    # make_server.
    from gradium_server import pytest_plugin

    if not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin, "gradium_server.pytest_plugin")
    if config.pluginmanager.get_plugin("gradium_tts_python.plain_root") is None:
        config.pluginmanager.register(_PlainRoot(), "gradium_tts_python.plain_root")
    if config.getoption("asyncio_mode", None) is None:
        config.option.asyncio_mode = "auto"
    if (
        config.getoption("timeout", None) is None
        and not os.environ.get("PYTEST_TIMEOUT")
        and not config.getini("timeout")
    ):
        config.option.timeout = TEST_TIMEOUT_S
    if not config.getini("asyncio_default_fixture_loop_scope"):
        # Our async fixtures are all function-scoped: their loop scope is "function"
        # under pytest-asyncio's current default and its announced one alike.
        # (scripts/test.sh and tests/bin/start also set the option explicitly.)
        warnings.filterwarnings(
            "ignore",
            message='The configuration option "asyncio_default_fixture_loop_scope"',
            category=pytest.PytestDeprecationWarning,
        )
    config.addinivalue_line("markers", "slow: tests that take more than a few seconds")


_OURS = pytest.StashKey[str]()


class _PlainRoot:
    """Collect the repository root as a plain folder, never as a package.

    The root holds the package's ``__init__.py`` (TEN wants it there), so pytest
    would make it a ``Package`` and import it under the checkout folder's name
    (``w14``, ``gradium-tts``, ...): that imports ``addon`` and registers the addon
    from the checkout, and a folder name that is no identifier breaks collection.
    TEN loads the addon only from ``ten_packages.extension.<name>``; so do we.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path: Path, parent: pytest.Collector):
        if path == ROOT:
            return pytest.Dir.from_parent(parent, path=path)
        return None


def pytest_report_header(config: pytest.Config):
    host = config.stash.get(_OURS, None)
    if host is None:
        return None
    import tenhost

    mode = os.environ.get("TEN_PYTHON_THREAD_MODE", "single_thread (default)")
    try:
        app = str(tenhost.app_dir())
    except RuntimeError as exc:
        app = str(exc)
    return (
        f"TEN host: {host}; TEN_PYTHON_THREAD_MODE={mode}; "
        f"extension loaded as {tenhost.addon_package()} from the app folder {app}"
    )


@pytest.fixture(scope="session", autouse=True)
def global_setup_and_teardown():
    """One TEN app for the whole session, as TEN's own extension tests start it."""
    import tenhost

    with tenhost.AppRunner():
        yield


@pytest.fixture
def ten_log(monkeypatch):
    """What the extension under test passed to ``ten_env``'s log calls
    (``harness.TenLog``). Read extension log lines from here, never from ``caplog``:
    on TEN's real runtime they go to TEN's native log, not to Python's logging."""
    from harness import record_ten_log

    return record_ten_log(monkeypatch)


@pytest.fixture
def ten_host() -> str:
    import tenhost

    return tenhost.ensure()


@pytest.fixture(params=["fast", "fallback"])
def parser_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test twice: with orjson / pybase64 as installed ("fast"), and with
    both hidden from the client ("fallback": the standard json and base64, as on
    a machine without them). The client must behave the same in both (issue 25)."""
    if request.param == "fallback":
        from harness import ext_module

        client = ext_module("gradium_tts")
        monkeypatch.setattr(client, "orjson", None)
        monkeypatch.setattr(client, "pybase64", None)
        # (json.loads itself on code older than _json_loads)
        import json

        monkeypatch.setattr(
            client, "_loads", getattr(client, "_json_loads", json.loads)
        )
    return request.param
