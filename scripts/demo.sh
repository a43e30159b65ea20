#!/usr/bin/env bash
# The main job: text to speech through the extension, written to a WAV file.
# Uses the local Gradium server unless GRADIUM_API_KEY is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
exec .venv/bin/python examples/tts_to_wav.py "$@"
