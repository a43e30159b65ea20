"""bench/cpu.py's floor: a TTS node without network or decoding that sends the
frames the local server sends for the same text, through the same base class.

Properties: ``sample_rate`` and ``frames``, a map from a request's whole text to
the byte sizes of the audio frames the server sends for it (bench/cpu.py probes
them). A request's text is collected until ``text_input_end``; then the node
sends ``tts_audio_start``, one ``send_tts_audio_data`` per server frame (zeros of
that size), the TTFB metric after the first, ``tts_audio_end`` and
``finish_request``: what any TTS node must do per frame, and nothing else.

``coalesce_bytes`` (default 0: off): after the first frame, consecutive frames
are joined into calls of at most that many bytes, the most a node that hands over
received audio in batches (as the package does) could save on the base class.
"""

from __future__ import annotations

import json
import time

from ten_ai_base.message import TTSAudioEndReason
from ten_ai_base.struct import TTSTextInput
from ten_ai_base.tts2 import AsyncTTS2BaseExtension
from ten_runtime import AsyncTenEnv


class FloorExtension(AsyncTTS2BaseExtension):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.rate = 24000
        self.frames: dict[str, list[int]] = {}
        self.texts: dict[str, str] = {}
        self.zeros: dict[int, bytes] = {}

    def vendor(self) -> str:
        return "floor"

    def synthesize_audio_sample_rate(self) -> int:
        return self.rate

    async def on_init(self, ten_env: AsyncTenEnv) -> None:
        await super().on_init(ten_env)
        raw, _ = await ten_env.get_property_to_json("")
        props = json.loads(raw or "{}")
        self.rate = int(props.get("sample_rate") or 24000)
        self.frames = dict(props.get("frames") or {})
        self.coalesce = int(props.get("coalesce_bytes") or 0)

    async def request_tts(self, t: TTSTextInput) -> None:
        rid = t.request_id
        self.texts[rid] = self.texts.get(rid, "") + t.text
        if not t.text_input_end:
            return
        started = time.monotonic()
        sizes = self.frames.get(self.texts.pop(rid), [])
        if self.coalesce and sizes:
            sizes = _coalesced(sizes, self.coalesce)
        await self.send_tts_audio_start(rid)
        sent = 0
        for i, size in enumerate(sizes):
            pcm = self.zeros.get(size)
            if pcm is None:
                pcm = self.zeros[size] = bytes(size)
            await self.send_tts_audio_data(pcm, sent * 1000 // (self.rate * 2))
            sent += size
            if i == 0:
                ttfb = int((time.monotonic() - started) * 1000)
                await self.send_tts_ttfb_metrics(rid, ttfb)
        await self.send_tts_audio_end(rid, 0, sent * 1000 // (self.rate * 2))
        await self.finish_request(rid, TTSAudioEndReason.REQUEST_END)


def _coalesced(sizes: list[int], cap: int) -> list[int]:
    """The first size alone, then runs of sizes joined up to ``cap`` bytes."""
    out = [sizes[0]]
    run = 0
    for size in sizes[1:]:
        if run and run + size > cap:
            out.append(run)
            run = 0
        run += size
    if run:
        out.append(run)
    return out
