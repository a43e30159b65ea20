"""The suite reaches the package only as TEN runs it (contract §1.3, issue 14).

TEN's python addon loader imports an addon only as ``ten_packages.extension.<name>``
from the app folder, a copy of the files the manifest's ``package.include`` lists.
These hold on the stand-ins and on the real runtime alike.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import tenhost
from harness import ADDON, ext_module

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = json.loads((ROOT / "manifest.json").read_text())["package"]["include"]


def test_every_module_comes_from_the_installed_copy():
    for sub in ("extension", "gradium_tts", "config", "text_filter"):
        module = ext_module(sub)
        assert module.__name__ == f"ten_packages.extension.{ADDON}.{sub}"
        path = Path(module.__file__).resolve()
        assert path.parent.name == ADDON
        assert path.parent.parent.name == "extension"
        assert path.parent.parent.parent.name == "ten_packages"
        assert path.parent != ROOT


def test_the_installed_copy_holds_what_the_manifest_ships():
    installed = Path(ext_module("extension").__file__).resolve().parent
    for name in INCLUDE:
        assert (installed / name).is_file(), name


def test_nothing_of_the_checkout_is_imported_and_its_name_does_not_import():
    """No module of the checkout itself is loaded (pytest collects the repository
    root as a plain folder), and ``import gradium_tts_python`` fails."""
    ours = {(ROOT / name).resolve() for name in INCLUDE if name.endswith(".py")}
    loaded = {
        key: Path(m.__file__).resolve()
        for key, m in list(sys.modules.items())
        if getattr(m, "__file__", None)
    }
    assert [k for k, path in loaded.items() if path in ours] == []
    assert importlib.util.find_spec(ADDON) is None


def test_the_host_names_the_module_it_instantiates():
    assert tenhost.addon_package() == f"ten_packages.extension.{ADDON}"
    assert ext_module("extension") is tenhost.addon_module("extension")
