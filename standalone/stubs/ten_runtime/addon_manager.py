"""``register_addon_as_extension`` and the addon registry (contract §1.3)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


class _AddonManager:
    _registry: dict[str, tuple[type, str]] = {}


def register_addon_as_extension(name: str, base_dir: str | None = None):
    """Class decorator for an Addon subclass.

    ``base_dir`` defaults to the directory of the file applying the decorator;
    when given, ``os.path.dirname(base_dir)`` is used (so pass ``__file__``).
    The first registration of a name wins.
    """

    def decorator(cls: type) -> type:
        if base_dir is None:
            path = sys._getframe(1).f_code.co_filename
            directory = os.path.dirname(os.path.abspath(path))
        else:
            directory = os.path.dirname(base_dir)
        _AddonManager._registry.setdefault(name, (cls, directory))
        return cls

    return decorator


def _find_addon(name: str) -> tuple[Any, str]:
    """Registered addon, importing ``ten_packages.extension.<name>`` or ``<name>``."""
    if name not in _AddonManager._registry:
        for module in (f"ten_packages.extension.{name}", name):
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as e:
                if e.name is None or not module.startswith(e.name):
                    raise
            if name in _AddonManager._registry:
                break
    if name not in _AddonManager._registry:
        from ._runtime import StandinFatalError

        raise StandinFatalError(
            f"Addon '{name}' is not registered and cannot be imported."
        )
    return _AddonManager._registry[name]
