"""Synthesize a sentence into a WAV file through Gradium's TTS WebSocket protocol,
using nothing but the ``websockets`` package.

Works against the local server (``PYTHONPATH=standalone python -m gradium_server``)
and against the real service (``--url wss://api.gradium.ai/api/speech/tts``).

    python examples/raw_websockets_client.py --url ws://127.0.0.1:8765/api/speech/tts \
        --api-key local --sample-rate 24000 --out hello.wav "Hello from Gradium."

Prints one JSON line on stdout: output path, sample rate, duration and the word
timestamps the server sent.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
import wave

from websockets.asyncio.client import connect

RATES = (8000, 16000, 22050, 24000, 44100, 48000)


async def synthesize(
    url: str, api_key: str, text: str, sample_rate: int, voice_id: str
):
    pcm = bytearray()
    words = []
    started = time.monotonic()
    first_audio = None
    async with connect(url, additional_headers={"x-api-key": api_key}) as ws:
        setup = {
            "type": "setup",
            "output_format": f"pcm_{sample_rate}",
            "voice_id": voice_id,
        }
        await ws.send(json.dumps(setup))
        await ws.send(json.dumps({"type": "text", "text": text}))
        await ws.send(json.dumps({"type": "end_of_stream"}))
        rate = sample_rate
        async for frame in ws:  # ends when the server closes after end_of_stream
            msg = json.loads(frame)
            kind = msg.get("type")
            if kind == "ready":
                rate = msg["sample_rate"]  # authoritative rate for the session
            elif kind == "audio":
                if first_audio is None and msg.get("stop_s", 0) > 0:
                    first_audio = time.monotonic() - started
                pcm += base64.b64decode(msg["audio"])
            elif kind == "text":
                words.append(
                    {
                        "text": msg["text"],
                        "start_s": msg["start_s"],
                        "stop_s": msg["stop_s"],
                    }
                )
            elif kind == "error":
                raise RuntimeError(
                    f"server error {msg.get('code')}: {msg.get('message')}"
                )
            elif kind == "end_of_stream":
                break
            # other types (e.g. need_more_text) are ignored
    return bytes(pcm), rate, words, first_audio


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="ws://127.0.0.1:8765/api/speech/tts")
    p.add_argument("--api-key", default=os.environ.get("GRADIUM_API_KEY", "local-key"))
    p.add_argument("--sample-rate", type=int, default=24000, choices=RATES)
    p.add_argument("--voice-id", default="YTpq7expH9539ERJ")
    p.add_argument("--out", default="out.wav")
    p.add_argument("text", nargs="+")
    args = p.parse_args()
    text = " ".join(args.text)
    pcm, rate, words, ttfa = asyncio.run(
        synthesize(args.url, args.api_key, text, args.sample_rate, args.voice_id)
    )
    with wave.open(args.out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    summary = {
        "out": args.out,
        "sample_rate": rate,
        "duration_s": len(pcm) / 2 / rate,
        "first_audio_s": ttfa,
        "words": words,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
