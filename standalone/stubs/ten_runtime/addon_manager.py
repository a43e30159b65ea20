"""``register_addon_as_extension`` and the addon loader (contract §1.3).

As TEN's python addon loader does, the stand-in imports an addon only as
``ten_packages.extension.<name>`` (from the app folder on ``sys.path``) and
instantiates it from what that package registered. A class registered under the
same name by any other module (a checkout imported under another name, say) is
never instantiated: a patch applied to such a module does not reach the running
extension.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from .log_level import LogLevel


class _AddonManager:
    # name -> every registration: (class, base_dir, module that registered it)
    _registry: dict[str, list[tuple[type, str, str]]] = {}


def register_addon_as_extension(name: str, base_dir: str | None = None):
    """Class decorator for an Addon subclass.

    ``base_dir`` defaults to the directory of the file applying the decorator;
    when given, ``os.path.dirname(base_dir)`` is used (so pass ``__file__``).
    """

    def decorator(cls: type) -> type:
        if base_dir is None:
            path = sys._getframe(1).f_code.co_filename
            directory = os.path.dirname(os.path.abspath(path))
        else:
            directory = os.path.dirname(base_dir)
        _AddonManager._registry.setdefault(name, []).append(
            (cls, directory, cls.__module__)
        )
        return cls

    return decorator


def addon_package(name: str) -> str:
    """The one module the loader imports for addon ``name``."""
    return f"ten_packages.extension.{name}"


def _find_addon(name: str) -> tuple[Any, str]:
    """The addon that ``ten_packages.extension.<name>`` registered (imported first)."""
    from ._runtime import StandinFatalError, emit

    package = addon_package(name)
    try:
        importlib.import_module(package)
    except ModuleNotFoundError as e:
        if e.name is None or not package.startswith(e.name):
            raise
        emit(None, LogLevel.ERROR, f"Failed to import {package}: {e}")
        raise StandinFatalError(
            f"Addon '{name}' cannot be imported as {package} "
            "(no ten_packages/extension/<name> in the app folder)."
        ) from None
    for cls, directory, module in _AddonManager._registry.get(name, []):
        if module == package or module.startswith(package + "."):
            return cls, directory
    others = [m for _, _, m in _AddonManager._registry.get(name, [])]
    raise StandinFatalError(
        f"Addon '{name}' was not registered by {package}"
        + (f" (only by {', '.join(others)}, which TEN never loads)." if others else ".")
    )
