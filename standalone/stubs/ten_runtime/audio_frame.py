from __future__ import annotations

from enum import IntEnum

from .msg import Msg, _BufMixin


class AudioFrameDataFmt(IntEnum):
    INTERLEAVE = 1
    NON_INTERLEAVE = 2


class AudioFrame(_BufMixin, Msg):
    """Frame fields are not properties; ``get_data_fmt`` returns a plain int (§1.6)."""

    @classmethod
    def create(cls, name: str) -> AudioFrame:
        return cls._new(name)

    def _init_fields(self) -> None:
        self._buf = bytearray()
        self._timestamp = 0
        self._sample_rate = 0
        self._samples_per_channel = 0
        self._bytes_per_sample = 0
        self._number_of_channels = 0
        self._data_fmt = int(AudioFrameDataFmt.INTERLEAVE)
        self._line_size = 0
        self._eof = False

    def clone(self) -> AudioFrame:
        return self._copy()

    def get_timestamp(self) -> int:
        return self._timestamp

    def set_timestamp(self, timestamp: int) -> None:
        self._timestamp = int(timestamp)

    def get_sample_rate(self) -> int:
        return self._sample_rate

    def set_sample_rate(self, sample_rate: int) -> None:
        self._sample_rate = int(sample_rate)

    def get_samples_per_channel(self) -> int:
        return self._samples_per_channel

    def set_samples_per_channel(self, n: int) -> None:
        self._samples_per_channel = int(n)

    def get_bytes_per_sample(self) -> int:
        return self._bytes_per_sample

    def set_bytes_per_sample(self, n: int) -> None:
        self._bytes_per_sample = int(n)

    def get_number_of_channels(self) -> int:
        return self._number_of_channels

    def set_number_of_channels(self, n: int) -> None:
        self._number_of_channels = int(n)

    def get_data_fmt(self) -> int:
        return self._data_fmt

    def set_data_fmt(self, fmt: AudioFrameDataFmt) -> None:
        self._data_fmt = int(fmt)

    def get_line_size(self) -> int:
        return self._line_size

    def set_line_size(self, n: int) -> None:
        self._line_size = int(n)

    def is_eof(self) -> bool:
        return self._eof

    def set_eof(self, eof: bool) -> None:
        self._eof = bool(eof)
