from ten_runtime import Addon, TenEnv, register_addon_as_extension


@register_addon_as_extension("bench_idle_baseline")
class IdleBaselineAddon(Addon):
    def on_create_instance(self, ten_env: TenEnv, name: str, context) -> None:
        from .extension import IdleBaselineExtension

        ten_env.on_create_instance_done(IdleBaselineExtension(name), context)
