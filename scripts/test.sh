#!/usr/bin/env bash
# Every test: the extension, its client, the conformance and ordering suites, the
# TEN stand-ins and the local Gradium server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
exec .venv/bin/python -m pytest "$@"
