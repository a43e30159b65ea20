"""bench/idle.py's baseline: a TTS node that holds nothing (TEN's base class, no
vendor, no socket): what any TTS node costs idle."""

from ten_ai_base.struct import TTSTextInput
from ten_ai_base.tts2 import AsyncTTS2BaseExtension


class IdleBaselineExtension(AsyncTTS2BaseExtension):
    def vendor(self) -> str:
        return "none"

    async def request_tts(self, t: TTSTextInput) -> None:
        await self.finish_request(t.request_id)

    def synthesize_audio_sample_rate(self) -> int:
        return 24000
