"""Addon lookup by import and the synchronous Extension (contract §1.3).

Stand-in only. As the real python addon loader, the stand-in imports an addon only
as ``ten_packages.extension.<name>`` from the app folder and instantiates it from
that package: a package of the same name anywhere else, or the checkout imported
under the addon's name, is never what runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
import textwrap

import pytest
import tenhost
from harness import ext_module
from standin_probe_ext.harness import Recorder, data, run
from ten_runtime import StandinFatalError

if not tenhost.is_standin():
    pytest.skip("stand-in addon lookup", allow_module_level=True)

PACKAGE = "standin_lazy_sync_probe"
CODE = textwrap.dedent(
    """
    from ten_runtime import Addon, Data, Extension, register_addon_as_extension

    LOG = []


    class SyncProbe(Extension):
        def on_init(self, ten_env):
            value, err = ten_env.get_property_string("greeting")
            LOG.append(("init", value, err))
            ten_env.on_init_done()

        def on_data(self, ten_env, data):
            reply = Data.create("pong")
            reply.set_property_string("greeting", ten_env.get_property_string("greeting")[0])
            ten_env.send_data(reply)

        def on_stop(self, ten_env):
            LOG.append(("stop",))
            ten_env.on_stop_done()


    @register_addon_as_extension("standin_lazy_sync_probe")
    class SyncProbeAddon(Addon):
        def on_create_instance(self, ten_env, name, context):
            ten_env.on_create_instance_done(SyncProbe(name), context)
    """
)


def _install(name: str, code: str) -> None:
    pkg = tenhost.app_dir() / "ten_packages" / "extension" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(code)
    (pkg / "property.json").write_text('{"greeting": "from property.json"}')


@pytest.fixture
def lazy_probe():
    yield PACKAGE
    shutil.rmtree(tenhost.app_dir() / "ten_packages" / "extension" / PACKAGE, True)


def test_unregistered_addon_is_imported_on_demand(lazy_probe):
    _install(PACKAGE, CODE)
    module = f"ten_packages.extension.{PACKAGE}"
    assert module not in sys.modules

    tester = Recorder([data("ping")], until=lambda r: bool(r.named("pong")))
    assert run(tester, PACKAGE) is None
    assert tester.named("pong") == [{"greeting": "from property.json"}]
    log = sys.modules[module].LOG
    assert log == [("init", "from property.json", None), ("stop",)]


def test_a_top_level_package_of_the_addon_name_is_never_loaded(tmp_path, monkeypatch):
    name = "standin_top_level_probe"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(CODE.replace(PACKAGE, name))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(StandinFatalError, match=f"ten_packages.extension.{name}"):
        run(Recorder([data("ping")]), name)
    # imported under its own name, it registers; the loader still ignores it
    __import__(name)
    with pytest.raises(StandinFatalError, match=f"ten_packages.extension.{name}"):
        run(Recorder([data("ping")]), name)
    monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def checkout_as_addon_name():
    """The checkout imported as ``gradium_tts_python`` (what tests used to patch)."""
    name = tenhost.PACKAGE_NAME
    assert name not in sys.modules
    spec = importlib.util.spec_from_file_location(
        name,
        tenhost.REPO_ROOT / "__init__.py",
        submodule_search_locations=[str(tenhost.REPO_ROOT)],
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)  # registers the addon, from the checkout
        yield importlib.import_module(f"{name}.extension")
    finally:
        for key in [k for k in sys.modules if k.split(".")[0] == name]:
            del sys.modules[key]


def _spy_run(module, monkeypatch) -> list:
    """Run this package's addon with ``module.GradiumTTSExtension`` patched."""
    initialised: list = []

    class Spy(module.GradiumTTSExtension):
        async def on_init(self, ten_env):
            initialised.append(self)
            await super().on_init(ten_env)

    class StopSoon(Recorder):
        async def on_start(self, ten_env):
            await asyncio.sleep(0.3)
            ten_env.stop_test()

    monkeypatch.setattr(module, "GradiumTTSExtension", Spy)
    props = {"params": {"api_key": "k", "url": "ws://127.0.0.1:9/api/speech/tts"}}
    assert run(StopSoon(), tenhost.PACKAGE_NAME, props) is None
    monkeypatch.undo()
    return initialised


def test_a_patch_on_the_checkout_does_not_reach_the_running_extension(
    checkout_as_addon_name, monkeypatch
):
    assert checkout_as_addon_name is not ext_module("extension")
    assert _spy_run(checkout_as_addon_name, monkeypatch) == []
    # control: the module the host runs, patched the same way
    assert len(_spy_run(ext_module("extension"), monkeypatch)) == 1


def test_the_extension_runs_from_the_app_folder():
    module = ext_module("extension")
    assert module.__name__ == f"ten_packages.extension.{tenhost.PACKAGE_NAME}.extension"
    app_copy = tenhost.app_dir() / "ten_packages" / "extension" / tenhost.PACKAGE_NAME
    assert module.__file__ == str(app_copy / "extension.py")
    assert sorted(p.name for p in app_copy.iterdir() if p.is_file()) == sorted(
        tenhost.package_files()
    )
