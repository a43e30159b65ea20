"""Decide, once, whether the TEN stand-ins are needed; lay the extension out as TEN does.

The extension, its tests, the demo and the benchmarks import ``ten_runtime`` and
``ten_ai_base`` by their real names. Inside a TEN app those are the real packages
(installed by tman). Anywhere else ``import ten_runtime`` fails and this module puts
``standalone/stubs`` (the stand-ins) on ``sys.path``. Nothing else ever touches that
folder.

TEN's python addon loader imports an addon only as ``ten_packages.extension.<name>``
from the app folder (contract §1.3), and instantiates it from that module. So does
the stand-in. Inside a TEN app (or the installed layout of
``scripts/test-installed.sh``) that package is already there; in a plain checkout
``ensure()`` builds a temporary app folder laid out as ``tman`` lays it,
``<app>/ten_packages/extension/gradium_tts_python``, holding a copy of the files the
manifest's ``package.include`` lists. The checkout itself is never importable as
``gradium_tts_python``: a test that patches anything but ``addon_module(sub)``
patches a module TEN does not run.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE_NAME = "gradium_tts_python"
_HERE = Path(__file__).resolve().parent
STUBS_DIR = _HERE / "stubs"
REPO_ROOT = _HERE.parent
_INTERFACE = STUBS_DIR / "ten_ai_base" / "api" / "tts-interface.json"

_host: str | None = None
_app_dir: Path | None = None


def _forget(prefixes: tuple[str, ...]) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in prefixes:
            del sys.modules[name]


def ensure() -> str:
    """Return "real" when TEN's own packages are used, else "standin".

    The stand-ins are used when ``import ten_runtime`` fails (they are then put on
    ``sys.path``) or when the ``ten_runtime`` found is the stand-in itself (the
    installed layout of ``scripts/test-installed.sh``). Either way the extension is
    then importable as ``ten_packages.extension.gradium_tts_python``.
    """
    global _host
    if _host is not None:
        return _host
    try:
        runtime = importlib.import_module("ten_runtime")
        importlib.import_module("ten_ai_base")
        host = "standin" if hasattr(runtime, "StandinFatalError") else "real"
    except ImportError:
        _forget(("ten_runtime", "ten_ai_base", "libten_runtime_python"))
        if str(STUBS_DIR) not in sys.path:
            sys.path.append(str(STUBS_DIR))
        importlib.import_module("ten_runtime")
        importlib.import_module("ten_ai_base")
        host = "standin"
    _ensure_app(build=host == "standin")
    _host = host
    return _host


def is_standin() -> bool:
    return ensure() == "standin"


# ------------------------------------------------------------------ the app folder
def addon_package(name: str = PACKAGE_NAME) -> str:
    """The module TEN's addon loader imports for addon ``name``; it runs that one."""
    ensure()
    return f"ten_packages.extension.{name}"


def addon_module(sub: str | None = None, name: str = PACKAGE_NAME) -> ModuleType:
    """The (sub)module of addon ``name`` that the host actually runs: e.g.
    ``addon_module("config")`` is
    ``ten_packages.extension.gradium_tts_python.config``."""
    package = addon_package(name)
    return importlib.import_module(f"{package}.{sub}" if sub else package)


def app_dir() -> Path:
    """The TEN app folder whose ``ten_packages/extension`` holds the addons."""
    ensure()
    if _app_dir is None:
        raise RuntimeError(
            f"no TEN app folder on sys.path holds ten_packages/extension/{PACKAGE_NAME}"
        )
    return _app_dir


def package_files(src: Path = REPO_ROOT) -> list[str]:
    """The files of the package, as its manifest's ``package.include`` lists them."""
    manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    return list(manifest["package"]["include"])


def install_addon(src: Path, name: str | None = None, app: Path | None = None) -> Path:
    """Copy an addon package into ``<app>/ten_packages/extension/<name>``, as tman
    installs it: the files of its manifest's ``package.include`` (the whole folder
    when the manifest lists none). ``name`` defaults to the manifest's name."""
    src = Path(src)
    manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    name = name or manifest["name"]
    dest = (app or app_dir()) / "ten_packages" / "extension" / name
    if dest.exists():
        shutil.rmtree(dest)
    include = (manifest.get("package") or {}).get("include")
    if include:
        for rel in include:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dest / rel)
    else:
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    importlib.invalidate_caches()
    return dest


def build_app(app: Path) -> Path:
    """Lay out ``app`` as tman does for this package, with the stand-ins' TTS
    interface at ``ten_packages/system/ten_ai_base/api`` (the manifest's
    ``import_uri`` then resolves there)."""
    api = app / "ten_packages" / "system" / "ten_ai_base" / "api"
    api.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_INTERFACE, api / _INTERFACE.name)
    install_addon(REPO_ROOT, PACKAGE_NAME, app)
    return app


def _installed_app() -> Path | None:
    """The app folder holding an installed ``ten_packages.extension.<us>``, if any."""
    for entry in sys.path:
        base = Path(entry or ".").resolve()
        package = base / "ten_packages" / "extension" / PACKAGE_NAME
        if (package / "__init__.py").is_file():
            return base
    return None


def _ensure_app(build: bool) -> None:
    """Find the app folder; on the stand-ins, build a temporary one if there is none
    (the real runtime loads addons only from its own app folder)."""
    global _app_dir
    if _app_dir is not None:
        return
    found = _installed_app()
    if found is None and build:
        tmp = Path(tempfile.mkdtemp(prefix="ten-app-"))
        atexit.register(shutil.rmtree, tmp, True)
        found = build_app(tmp / "app")
        sys.path.insert(0, str(found))
        importlib.invalidate_caches()
    _app_dir = found


# ------------------------------------------------------- after the tester stopped
def after_stop() -> list[dict[str, Any]] | None:
    """What the extension sent in the last test run after the tester's ``on_stop``
    had begun (never delivered, as on the real runtime), each with ``in_on_stop``:
    True when sent before the extension's ``on_stop`` returned. None on the real
    runtime, which does not tell."""
    if ensure() != "standin":
        return None
    from ten_runtime import _runtime

    return _runtime.last_after_stop()


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
