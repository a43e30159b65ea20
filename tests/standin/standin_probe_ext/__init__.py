"""Probe extensions for the stand-in tests (tests/standin).

Two addons, registered by importing this package:
- ``standin_probe_tts``: a tiny AsyncTTS2BaseExtension (manifest imports the TTS
  interface, so message schemas apply);
- ``standin_probe_basic``: a plain AsyncExtension that records its lifecycle.
Both append what they see to ``extension.EVENTS`` (same process as the tests).
"""

from . import addon  # noqa: F401
