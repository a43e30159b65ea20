from . import addon  # noqa: F401  (registers the addon with TEN)
