"""The ``standin_probe_tts`` addon, as installed in the app folder.

Its extension class lives in the ``standin_probe_ext`` library (on ``sys.path``
next to the stand-in tests), so that every probe records into one ``EVENTS``.
"""

from ten_runtime import Addon, TenEnv, register_addon_as_extension


@register_addon_as_extension("standin_probe_tts")
class ProbeTTSAddon(Addon):
    def on_create_instance(self, ten_env: TenEnv, name: str, context) -> None:
        from standin_probe_ext.extension import ProbeTTSExtension

        ten_env.on_create_instance_done(ProbeTTSExtension(name), context)
