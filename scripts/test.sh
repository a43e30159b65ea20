#!/usr/bin/env bash
# Every test: the extension, its client, the conformance and ordering suites, the
# TEN stand-ins and the local Gradium server. Extra arguments go to pytest; without
# a path among them, the whole tests/ folder runs.
#
# pytest settings (asyncio auto mode, 120 s per test) live in tests/conftest.py, not
# in pyproject.toml, so that no other suite run near this package picks them up.
# TEN_PYTHON_THREAD_MODE (single_thread, the default, or multi_thread) is honoured;
# so are PYTHON and VENV (see scripts/setup-venv.sh; scripts/test-matrix.sh sets them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh

paths=()
for arg in "$@"; do
  case "$arg" in
    -*) ;;
    *) if [ -e "${arg%%::*}" ]; then paths+=("$arg"); fi ;;
  esac
done
default=()
if [ ${#paths[@]} -eq 0 ]; then default=(tests); fi

exec "${VENV:-.venv}/bin/python" -m pytest -ra -o asyncio_default_fixture_loop_scope=function \
  ${default[@]+"${default[@]}"} "$@"
