"""Probe extensions for the stand-in tests (tests/standin).

Two addons, installed in the app folder by ``tests/standin/conftest.py`` (as tman
installs packages: ``<app>/ten_packages/extension/<name>``, see ``addons/``):
- ``standin_probe_tts``: a tiny AsyncTTS2BaseExtension (manifest imports the TTS
  interface, so message schemas apply);
- ``standin_probe_basic``: a plain AsyncExtension that records its lifecycle.
Their extension classes live in this library (``extension``), and both append what
they see to ``extension.EVENTS`` (same process as the tests).
"""

from pathlib import Path

ADDONS = Path(__file__).resolve().parent / "addons"


def install() -> None:
    """Install both probe addons in the TEN app folder (``tenhost.app_dir()``)."""
    import tenhost

    for src in sorted(ADDONS.iterdir()):
        if (src / "manifest.json").is_file():
            tenhost.install_addon(src)
