from __future__ import annotations

import os

from ten_runtime import Addon, TenEnv, register_addon_as_extension

_HERE = os.path.dirname(os.path.abspath(__file__))


@register_addon_as_extension("standin_probe_tts")
class ProbeTTSAddon(Addon):
    def on_create_instance(self, ten_env: TenEnv, name: str, context) -> None:
        from .extension import ProbeTTSExtension

        ten_env.on_create_instance_done(ProbeTTSExtension(name), context)


# base_dir is given as a file path: its directory (basic/) holds manifest/property.
@register_addon_as_extension(
    "standin_probe_basic", os.path.join(_HERE, "basic", "addon.py")
)
class ProbeBasicAddon(Addon):
    def on_create_instance(self, ten_env: TenEnv, name: str, context) -> None:
        from .extension import ProbeBasicExtension

        ten_env.on_create_instance_done(ProbeBasicExtension(name), context)
