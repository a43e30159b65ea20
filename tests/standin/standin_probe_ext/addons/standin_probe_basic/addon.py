"""The ``standin_probe_basic`` addon, as installed in the app folder.

``base_dir`` is given as a file path (``__file__``): its directory holds
manifest.json and property.json.
"""

from ten_runtime import Addon, TenEnv, register_addon_as_extension


@register_addon_as_extension("standin_probe_basic", __file__)
class ProbeBasicAddon(Addon):
    def on_create_instance(self, ten_env: TenEnv, name: str, context) -> None:
        from standin_probe_ext.extension import ProbeBasicExtension

        ten_env.on_create_instance_done(ProbeBasicExtension(name), context)
