"""Minimal VideoFrame."""

from __future__ import annotations

from enum import IntEnum

from .msg import Msg, _BufMixin


class PixelFmt(IntEnum):
    RGB24 = 1
    RGBA = 2
    BGR24 = 3
    BGRA = 4
    I422 = 5
    I420 = 6
    NV21 = 7
    NV12 = 8


class VideoFrame(_BufMixin, Msg):
    @classmethod
    def create(cls, name: str) -> VideoFrame:
        return cls._new(name)

    def _init_fields(self) -> None:
        self._buf = bytearray()
        self._width = 0
        self._height = 0
        self._timestamp = 0
        self._pixel_fmt = int(PixelFmt.RGBA)
        self._eof = False

    def clone(self) -> VideoFrame:
        return self._copy()

    def get_width(self) -> int:
        return self._width

    def set_width(self, width: int) -> None:
        self._width = int(width)

    def get_height(self) -> int:
        return self._height

    def set_height(self, height: int) -> None:
        self._height = int(height)

    def get_timestamp(self) -> int:
        return self._timestamp

    def set_timestamp(self, timestamp: int) -> None:
        self._timestamp = int(timestamp)

    def get_pixel_fmt(self) -> int:
        return self._pixel_fmt

    def set_pixel_fmt(self, fmt: PixelFmt) -> None:
        self._pixel_fmt = int(fmt)

    def is_eof(self) -> bool:
        return self._eof

    def set_eof(self, eof: bool) -> None:
        self._eof = bool(eof)
