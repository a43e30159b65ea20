"""Addon lookup by import and the synchronous Extension (contract §1.3).

Stand-in only: the real loader imports ``ten_packages.extension.<name>`` from a
TEN app; the stand-in also tries a top-level ``<name>`` package.
"""

from __future__ import annotations

import sys
import textwrap

import pytest
import tenhost
from standin_probe_ext.harness import Recorder, data, run

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


def test_unregistered_addon_is_imported_on_demand(tmp_path, monkeypatch):
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text(CODE)
    (pkg / "property.json").write_text('{"greeting": "from property.json"}')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert PACKAGE not in sys.modules

    tester = Recorder([data("ping")], until=lambda r: bool(r.named("pong")))
    assert run(tester, PACKAGE) is None
    assert tester.named("pong") == [{"greeting": "from property.json"}]
    log = sys.modules[PACKAGE].LOG
    assert log == [("init", "from property.json", None), ("stop",)]
