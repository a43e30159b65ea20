#!/usr/bin/env bash
# Create .venv with Python >= 3.10 (3.11 recommended) and install everything the demo,
# the tests and the benchmarks need. Safe to run again: it only installs what is missing.
# PYTHON picks the interpreter (default python3), VENV the folder (default .venv);
# scripts/test-matrix.sh uses both to keep one .venv-X.Y per Python version.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is required")'
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
