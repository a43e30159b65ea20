"""Decide, once, whether the TEN stand-ins are needed, and make the package importable.

The extension, its tests, the demo and the benchmarks import ``ten_runtime`` and
``ten_ai_base`` by their real names. Inside a TEN app those are the real packages
(installed by tman). Anywhere else ``import ten_runtime`` fails and this module puts
``standalone/stubs`` (the stand-ins) on ``sys.path``. Nothing else ever touches that
folder.

It also makes the repository importable as ``gradium_tts_python`` whatever the
checkout folder is called, because TEN's tooling and our tests import the package
by its addon name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

PACKAGE_NAME = "gradium_tts_python"
_HERE = Path(__file__).resolve().parent
STUBS_DIR = _HERE / "stubs"
REPO_ROOT = _HERE.parent

_host: str | None = None


def _forget(prefixes: tuple[str, ...]) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in prefixes:
            del sys.modules[name]


def ensure() -> str:
    """Return "real" when TEN's own packages import, else "standin" (after adding them)."""
    global _host
    if _host is not None:
        return _host
    try:
        importlib.import_module("ten_runtime")
        importlib.import_module("ten_ai_base")
        _host = "real"
    except ImportError:
        _forget(("ten_runtime", "ten_ai_base", "libten_runtime_python"))
        if str(STUBS_DIR) not in sys.path:
            sys.path.append(str(STUBS_DIR))
        importlib.import_module("ten_runtime")
        importlib.import_module("ten_ai_base")
        _host = "standin"
    ensure_package()
    return _host


def ensure_package() -> None:
    """Import this repository's root package as ``gradium_tts_python``.

    Importing it registers the addon (``__init__`` imports ``addon``), so a tester
    asking for ``gradium_tts_python`` finds it on the real runtime as on the
    stand-ins, whatever the checkout folder is called.
    """
    if PACKAGE_NAME in sys.modules:
        return
    if importlib.util.find_spec(PACKAGE_NAME) is not None:
        importlib.import_module(PACKAGE_NAME)
        return
    spec = importlib.util.spec_from_file_location(
        PACKAGE_NAME,
        REPO_ROOT / "__init__.py",
        submodule_search_locations=[str(REPO_ROOT)],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACKAGE_NAME]
        raise


def is_standin() -> bool:
    return ensure() == "standin"


_LOG_CONFIG = (
    '{"ten": {"log": {"handlers": [{"matchers": [{"level": "debug"}],'
    ' "formatter": {"type": "plain", "colored": false},'
    ' "emitter": {"type": "console", "config": {"stream": "stdout"}}}]}}}'
)


class AppRunner:
    """The TEN app every tester graph lives in, started as TEN's own tests do.

    ``with AppRunner():`` runs an ``App`` in a thread for the duration; on the real
    runtime this is required before any ``AsyncExtensionTester.run()``. The ``App``
    is created inside that thread: the real runtime aborts the process when an
    ``App`` runs in a thread other than the one that created it (contract §1.8).
    """

    def __init__(self, timeout_s: float = 10.0) -> None:
        import threading

        self._timeout_s = timeout_s
        self._ready = threading.Event()
        self._app = None
        self._thread = threading.Thread(target=self._main, name="ten-app", daemon=True)

    def _main(self) -> None:
        from ten_runtime import App, TenEnv

        ready = self._ready

        class _App(App):
            def on_configure(self, ten_env: TenEnv) -> None:
                ten_env.init_property_from_json(_LOG_CONFIG)
                ten_env.on_configure_done()

            def on_init(self, ten_env: TenEnv) -> None:
                ready.set()
                ten_env.on_init_done()

        self._app = _App()  # created in the thread that runs it
        self._app.run(False)

    def __enter__(self) -> AppRunner:
        self._thread.start()
        if not self._ready.wait(timeout=self._timeout_s):
            raise RuntimeError(
                f"the TEN app did not reach on_init within {self._timeout_s:g} s"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._app is not None:
            self._app.close()
        self._thread.join(timeout=10)
