"""Output formats and their byte layout (reference §6).

PCM is signed 16-bit little-endian mono. ``ulaw_8000`` / ``alaw_8000`` are G.711
(1 byte per sample, 8 kHz). ``wav`` is 48 kHz PCM16 preceded by a streaming WAV
header, sent as its own first ``audio`` message with ``start_s == stop_s == 0``
(reference §3.2 [inferred]: "first audio message(s) can have stop_s == 0 (no real
audio yet, e.g. a container header)"). ``opus`` is a real Gradium format that this
local server does not implement: it is rejected like an unknown format.

Every format is framed in 80 ms frames (reference §6: 3840 samples at 48 kHz; the
other rates are "presumably 80 ms" [inferred]; for G.711 we also use 80 ms = 640
bytes rather than the 20 ms mentioned as a unit conversion in the telephony doc).
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass

FRAME_S = 0.08


@dataclass(frozen=True)
class OutputFormat:
    name: str
    sample_rate: int
    encoding: str  # "pcm" | "ulaw" | "alaw" | "wav"

    @property
    def frame_size(self) -> int:
        """Samples per audio message (ready.frame_size)."""
        return round(self.sample_rate * FRAME_S)

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self.encoding in ("ulaw", "alaw") else 2

    def encode(self, samples: array) -> bytes:
        """Encode int16 samples (``array('h')``) into this format's payload bytes."""
        if self.encoding == "ulaw":
            return ulaw_encode(samples)
        if self.encoding == "alaw":
            return alaw_encode(samples)
        return pcm16le_bytes(samples)

    def header(self) -> bytes:
        """Container header sent before the first audio frame (wav only)."""
        return wav_header(self.sample_rate) if self.encoding == "wav" else b""


FORMATS: dict[str, OutputFormat] = {
    "pcm": OutputFormat("pcm", 48000, "pcm"),
    "wav": OutputFormat("wav", 48000, "wav"),
    "ulaw_8000": OutputFormat("ulaw_8000", 8000, "ulaw"),
    "mulaw_8000": OutputFormat("mulaw_8000", 8000, "ulaw"),
    "alaw_8000": OutputFormat("alaw_8000", 8000, "alaw"),
}
for _rate in (8000, 16000, 22050, 24000, 44100, 48000):
    FORMATS[f"pcm_{_rate}"] = OutputFormat(f"pcm_{_rate}", _rate, "pcm")

DEFAULT_FORMAT = "wav"  # reference §2.1 / §6: server default when omitted


def lookup(name: str) -> OutputFormat | None:
    return FORMATS.get(name)


def pcm16le_bytes(samples: array) -> bytes:
    if sys.byteorder == "little":
        return samples.tobytes()
    swapped = array("h", samples)
    swapped.byteswap()
    return swapped.tobytes()


def wav_header(sample_rate: int) -> bytes:
    """44-byte RIFF/WAVE header for streaming PCM16 mono; sizes are 0xFFFFFFFF
    because the length is unknown when the header is sent."""
    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", unknown)
    )


# --- G.711 (ITU-T), segment/mantissa form -------------------------------------------

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def _ulaw_one(s: int) -> int:
    sign = 0x80 if s < 0 else 0
    mag = min(-s if s < 0 else s, _ULAW_CLIP) + _ULAW_BIAS
    exponent = min(7, max(0, (mag >> 7).bit_length() - 1))
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _alaw_one(s: int) -> int:
    if s >= 0:
        sign, mag = 0x80, s
    else:
        sign, mag = 0x00, -s - 1
    mag >>= 3  # 13-bit magnitude
    if mag < 32:
        exponent, mantissa = 0, mag >> 1
    else:
        exponent = min(7, mag.bit_length() - 5)
        mantissa = (mag >> exponent) & 0x0F
    return (sign | (exponent << 4) | mantissa) ^ 0x55


def ulaw_decode_one(b: int) -> int:
    b = ~b & 0xFF
    sign, exponent, mantissa = b & 0x80, (b >> 4) & 0x07, b & 0x0F
    mag = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return -mag if sign else mag


def alaw_decode_one(b: int) -> int:
    b ^= 0x55
    sign, exponent, mantissa = b & 0x80, (b >> 4) & 0x07, b & 0x0F
    if exponent == 0:
        mag = (mantissa << 4) + 8
    else:
        mag = ((mantissa << 4) + 0x108) << (exponent - 1)
    return mag if sign else -mag


_tables: dict[str, bytes] = {}


def _table(kind: str) -> bytes:
    """256 KiB-free lookup: one byte per int16 value, indexed by ``s & 0xFFFF``."""
    table = _tables.get(kind)
    if table is None:
        one = _ulaw_one if kind == "ulaw" else _alaw_one
        table = bytes(one(i - 65536 if i >= 32768 else i) for i in range(65536))
        _tables[kind] = table
    return table


def ulaw_encode(samples: array) -> bytes:
    t = _table("ulaw")
    return bytes(t[s & 0xFFFF] for s in samples)


def alaw_encode(samples: array) -> bytes:
    t = _table("alaw")
    return bytes(t[s & 0xFFFF] for s in samples)
