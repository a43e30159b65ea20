"""Local server speaking Gradium's TTS WebSocket protocol.

Follows /work/shared/reference/gradium-protocol.md (the "reference"; sections are
cited as §N in docstrings). Shares no code with the extension's client.

    from gradium_server import GradiumServer, ServerConfig, LatencyModel, Fault
    async with GradiumServer(ServerConfig.for_tests()) as server:
        ...  # connect to server.url with header x-api-key

Run as a process: ``PYTHONPATH=standalone python -m gradium_server --port 8765``.
"""

from .config import (
    LatencyModel,
    Limits,
    ServerConfig,
    default_voice_engine,
    espeak_available,
)
from .eventlog import LogEntry
from .faults import KINDS as FAULT_KINDS
from .faults import Fault
from .formats import FORMATS, OutputFormat
from .server import TTS_PATH, GradiumServer, ServerThread
from .voices import synthesize_synthetic

__all__ = [
    "FAULT_KINDS",
    "FORMATS",
    "TTS_PATH",
    "Fault",
    "GradiumServer",
    "LatencyModel",
    "Limits",
    "LogEntry",
    "OutputFormat",
    "ServerConfig",
    "ServerThread",
    "default_voice_engine",
    "espeak_available",
    "synthesize_synthetic",
]
