"""Configuration of the local Gradium TTS server: latency model, limits, keys, voice.

Every knob is a plain dataclass field so tests and the CLI can set it. The running
server reads ``config.latency`` / ``config.limits`` at each use, so replacing them
(``GradiumServer.set_latency`` / ``ServerThread.set_latency``) takes effect for the
next message on every open connection.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

VOICE_ENGINES = ("espeak", "synthetic")


@dataclass(frozen=True)
class LatencyModel:
    """Timing of the simulated service (all in seconds).

    * ``handshake_s``: extra delay before the HTTP 101 of the WebSocket upgrade is
      sent. It models the whole connect cost (TCP + TLS + upgrade); ``rtt_s`` is
      *not* added to it.
    * ``rtt_s``: network round trip. Every client->server message is processed
      ``rtt_s / 2`` after it arrived and every server->client message is written
      ``rtt_s / 2`` after it was produced; order is preserved in both directions.
    * ``first_audio_s``: from the moment a request's first (speakable) text is
      processed to the moment its first ``audio`` message is produced. A client
      that sends setup+text back to back therefore sees its first audio about
      ``rtt_s + first_audio_s`` after sending the text (0.19 s with the defaults).
    * ``rtf``: streaming real-time factor. After the first frame, producing N
      seconds of audio takes ``N * rtf`` seconds; frames are released at that pace.
      0 releases every frame as soon as it is synthesized.

    Defaults resemble the real service: Gradium publishes ~155 ms P50
    time-to-first-audio (reference §7.1 says "< 300 ms" when streaming).
    """

    handshake_s: float = 0.12
    rtt_s: float = 0.04
    first_audio_s: float = 0.15
    rtf: float = 0.3

    @classmethod
    def instant(cls) -> LatencyModel:
        """No simulated latency at all (unit tests)."""
        return cls(handshake_s=0.0, rtt_s=0.0, first_audio_s=0.0, rtf=0.0)

    @classmethod
    def realistic(cls) -> LatencyModel:
        """The defaults, spelled out (benchmarks)."""
        return cls()


@dataclass(frozen=True)
class Limits:
    """Service limits (reference §5).

    * ``session_cap_s``: maximum age of a socket (reference §5: 300 s per session).
      Exceeding it sends ``error`` 1008 "session duration exceeded" then close 1008.
      [undocumented] whether the real cap is per socket or per request; we apply it
      to the socket.
    * ``idle_timeout_s``: no client message and no active synthesis for that long
      -> ``error`` 1008 "idle timeout" then close 1008. The real value is
      [undocumented] (reference §5); we default to 60 s.
    * ``max_concurrent``: concurrent (not yet finished) requests per socket. An excess
      ``setup`` gets ``error`` 1008 "too many concurrent requests" (scoped when
      multiplexed) and that request is dropped. Real cap [undocumented]; default 16.
    * ``max_message_bytes``: largest client frame accepted (websockets ``max_size``);
      a bigger one closes the socket with 1009 (done by the websockets library).
    """

    session_cap_s: float = 300.0
    idle_timeout_s: float = 60.0
    max_concurrent: int = 16
    max_message_bytes: int = 1 << 20


def espeak_available() -> bool:
    """True when the ``espeakng_loader`` package can be found (not imported)."""
    try:
        return importlib.util.find_spec("espeakng_loader") is not None
    except (ImportError, ValueError):
        return False


def default_voice_engine() -> str:
    return "espeak" if espeak_available() else "synthetic"


@dataclass
class ServerConfig:
    """Everything a ``GradiumServer`` needs.

    * ``api_keys``: ``None`` accepts any non-empty key except those starting with
      ``"invalid"`` (rejected as "API key is revoked or expired"); a set accepts only
      its members.
    * ``voice_engine``: ``"espeak"`` (intelligible, eSpeak NG) or ``"synthetic"``
      (deterministic tone bursts). A setup ``voice_id``/``voice`` of ``"synthetic"``
      forces the synthetic voice for that request.
    * ``tail_flush_s``: audio is framed in 80 ms frames; the last partial frame of the
      text received so far is held back in case more text follows, and is flushed
      (as a shorter frame) after this much time without new text, on ``<flush>`` or
      on ``end_of_stream``.
    * ``model_ext``: what ``ready.model_ext`` reports.
    * ``ping_interval_s``: WebSocket pings to each client; ``None`` (default): none,
      since Gradium documents no server heartbeat (protocol reference §5).
    """

    api_keys: set[str] | None = None
    voice_engine: str = field(default_factory=default_voice_engine)
    latency: LatencyModel = field(default_factory=LatencyModel)
    limits: Limits = field(default_factory=Limits)
    tail_flush_s: float = 0.25
    model_ext: str = "local-tts-standin-1"
    ping_interval_s: float | None = None

    def __post_init__(self) -> None:
        if self.voice_engine not in VOICE_ENGINES:
            raise ValueError(f"voice_engine must be one of {VOICE_ENGINES}")
        if self.api_keys is not None:
            self.api_keys = set(self.api_keys)

    def key_ok(self, key: str | None) -> tuple[bool, str]:
        """Return (accepted, reason). The reason is used as the error message."""
        if not key:
            return False, "API key is missing"
        if self.api_keys is None:
            if key.startswith("invalid"):
                return False, "API key is revoked or expired"
            return True, ""
        if key in self.api_keys:
            return True, ""
        return False, "API key is revoked or expired"

    @classmethod
    def for_tests(cls, **overrides) -> ServerConfig:
        """Instant latency and the synthetic voice: the fixture defaults."""
        overrides.setdefault("latency", LatencyModel.instant())
        overrides.setdefault("voice_engine", "synthetic")
        return cls(**overrides)
