#!/usr/bin/env bash
# The suite in the installed layout: builds .ten/app as `tman install --standalone`
# lays it out, with the TEN stand-ins (standalone/stubs) in place of the real
# ten_runtime_python and ten_ai_base packages, then runs TEN's test entry
# (tests/bin/start) there. The extension under test is the copy at
# .ten/app/ten_packages/extension/gradium_tts_python (the files of the manifest's
# package.include), imported as ten_packages.extension.gradium_tts_python.
# Extra arguments go to pytest (paths too); TEN_PYTHON_THREAD_MODE is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh

app=.ten/app
rm -rf "$app"
PYTHON=.venv/bin/python bash scripts/ten-app.sh "$app"
echo "== tests in the installed layout ($app, TEN stand-ins)"
PYTEST=".venv/bin/python -m pytest" exec bash tests/bin/start "$@"
