"""Text to WAV through the gradium_tts_python extension, the way a TEN graph drives it.

    python examples/tts_to_wav.py "Hello from TEN. This is Gradium speaking." -o hello.wav

Without GRADIUM_API_KEY (or with --local) it starts the local Gradium server in
this process (eSpeak NG voice, realistic latency) and points the extension at it;
with a key it speaks through Gradium's real service. The text is split into
sentences and sent as separate ``tts_text_input`` segments, as an LLM node would.
It prints the voice settings it used, the TTFB the extension measured and the
length of the audio.

    python examples/tts_to_wav.py --speed 1.5 "Faster: 1.0 is normal, 2.0 the fastest."
    python examples/tts_to_wav.py --language fr "J'ai 123 chats."
    python examples/tts_to_wav.py --text-normalization "" "Call 555 0123."
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "standalone"))

import tenhost  # noqa: E402

tenhost.ensure()

from ten_runtime import (  # noqa: E402
    AsyncExtensionTester,
    AsyncTenEnvTester,
    AudioFrame,
    Data,
    TenError,
    TenErrorCode,
)

DEFAULT_TEXT = (
    "Hello from TEN. This sentence was streamed to Gradium one segment at a time, "
    "and the audio came back while the text was still arriving."
)


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", text) if p.strip()]
    return parts or [text]


class Speak(AsyncExtensionTester):
    """Sends the sentences as one request and collects what the extension returns."""

    def __init__(self, props: dict, segments: list[str]) -> None:
        super().__init__()
        self.set_test_mode_single("gradium_tts_python", json.dumps(props))
        self.set_timeout(120_000_000)
        self.segments = segments
        self.pcm = bytearray()
        self.sample_rate = 0
        self.ttfb_ms: int | None = None
        self.sent_at = 0.0
        self.first_frame_after_s: float | None = None
        self.end: dict | None = None
        self.error: dict | None = None

    async def on_start(self, ten_env: AsyncTenEnvTester) -> None:
        self.sent_at = time.monotonic()
        for i, segment in enumerate(self.segments):
            data = Data.create("tts_text_input")
            payload = {
                "request_id": "demo-1",
                "text": segment,
                "text_input_end": i == len(self.segments) - 1,
                "metadata": {"session_id": "demo", "turn_id": 1},
            }
            data.set_property_from_json(None, json.dumps(payload))
            await ten_env.send_data(data)

    async def on_data(self, ten_env: AsyncTenEnvTester, data: Data) -> None:
        raw, _ = data.get_property_to_json(None)
        props = json.loads(raw or "{}")
        name = data.get_name()
        if name == "metrics" and "ttfb" in props.get("metrics", {}):
            self.ttfb_ms = props["metrics"]["ttfb"]
        elif name == "error":
            self.error = props
            if props.get("code") == -1000:  # fatal: nothing will come
                message = props.get("message", "fatal error")
                ten_env.stop_test(
                    TenError.create(TenErrorCode.ErrorCodeGeneric, message)
                )
        elif name == "tts_audio_end":
            self.end = props
            ten_env.stop_test()

    async def on_audio_frame(
        self, ten_env: AsyncTenEnvTester, frame: AudioFrame
    ) -> None:
        if self.first_frame_after_s is None:
            self.first_frame_after_s = time.monotonic() - self.sent_at
        self.sample_rate = frame.get_sample_rate()
        self.pcm.extend(frame.get_buf())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "text", nargs="*", help="text to speak (default: a demo sentence)"
    )
    parser.add_argument(
        "-o", "--out", default="out/gradium_demo.wav", help="WAV file to write"
    )
    parser.add_argument("--sample-rate", type=int, default=24000)
    parser.add_argument("--voice-id", default=None, help="Gradium voice id")
    parser.add_argument(
        "--local", action="store_true", help="use the local server even with a key"
    )
    # Voice settings (params.speed etc.); unset: the extension's defaults.
    parser.add_argument(
        "--language",
        default=None,
        help="the voice's language: en, fr, de, es, pt or a BCP-47 tag such as "
        "fr-FR (default: en); picks the text normalization",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="0.5 to 2.0, 1.0 is normal, bigger is faster",
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="0.0 to 1.4 (Gradium's temp)"
    )
    parser.add_argument(
        "--voice-similarity",
        type=float,
        default=None,
        help="1.0 to 4.0 (Gradium's cfg_coef)",
    )
    parser.add_argument(
        "--text-normalization",
        default=None,
        help='en, fr, de, es, pt, a rule list such as NumberEn,UrlEn, or "" for off '
        "(default: en)",
    )
    args = parser.parse_args()

    text = " ".join(args.text) or DEFAULT_TEXT
    key = os.environ.get("GRADIUM_API_KEY", "")
    params: dict = {"sample_rate": args.sample_rate}
    if args.voice_id:
        params["voice_id"] = args.voice_id
    for name in (
        "language",
        "speed",
        "temperature",
        "voice_similarity",
        "text_normalization",
    ):
        value = getattr(args, name)
        if value is not None:
            params[name] = value

    with tenhost.AppRunner():
        if key and not args.local:
            params["api_key"] = key
            print("speaking through Gradium (GRADIUM_API_KEY is set)")
            return run(params, text, args.out)
        from gradium_server import LatencyModel, ServerConfig, ServerThread

        config = ServerConfig(latency=LatencyModel.realistic())
        with ServerThread(config) as server:
            params.update(api_key="local-demo-key", url=server.url)
            print(
                f"speaking through the local Gradium server at {server.url} "
                f"(voice: {config.voice_engine}; set GRADIUM_API_KEY for the real service)"
            )
            return run(params, text, args.out)


def print_settings(params: dict) -> None:
    """The voice settings this run uses, as the extension sends them to Gradium."""
    config_module = tenhost.addon_module("config")  # the copy the TEN host runs
    VOICE_SETTINGS = config_module.VOICE_SETTINGS
    ConfigError = config_module.ConfigError
    GradiumTTSConfig = config_module.GradiumTTSConfig

    try:
        config = GradiumTTSConfig.from_properties({"params": params})
    except ConfigError:
        return  # the extension reports it (FATAL) below
    sent = config.voice_settings()
    # §2.1 (speed 1.0 is Gradium's padding_bonus 0.0)
    gradium_defaults = {"speed": 1.0, "temperature": 0.7, "voice_similarity": 2.0}
    shown = []
    for name, (wire, _, _) in VOICE_SETTINGS.items():
        value = sent.get(wire)
        if value is None:
            shown.append(f"{name}={gradium_defaults[name]} (Gradium's default)")
        elif name == "speed":
            shown.append(f"speed={config.speed} (sent as {wire} {value})")
        else:
            shown.append(f"{name}={value} (sent as {wire})")
    shown.append(f"language={config.language}")
    rules = sent.get("rewrite_rules")
    shown.append(
        f"text_normalization={rules} (sent as rewrite_rules)"
        if rules
        else "text_normalization=off"
    )
    print(f"voice {config.voice_id or config.voice}: " + ", ".join(shown))


def run(params: dict, text: str, out: str) -> int:
    print_settings(params)
    tester = Speak({"params": params}, sentences(text))
    err = tester.run()
    if err is not None or tester.end is None or tester.end.get("reason") != 1:
        why = err.error_message() if err is not None else (tester.error or tester.end)
        print(f"failed: {why}", file=sys.stderr)
        return 1
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(tester.sample_rate)
        wav.writeframes(bytes(tester.pcm))
    seconds = len(tester.pcm) / (2 * tester.sample_rate) if tester.sample_rate else 0.0
    print(f"segments sent:  {len(sentences(text))}")
    print(f"TTFB (metric):  {tester.ttfb_ms} ms")
    if tester.first_frame_after_s is not None:
        print(
            f"first frame:    {tester.first_frame_after_s * 1000:.0f} ms after the first segment"
        )
    print(
        f"audio:          {seconds:.2f} s at {tester.sample_rate} Hz "
        f"(extension reported {tester.end['request_total_audio_duration_ms']} ms)"
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
