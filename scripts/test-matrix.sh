#!/usr/bin/env bash
# The whole suite once per supported CPython version, each in its own .venv-X.Y
# (made by scripts/setup-venv.sh). Extra arguments go to pytest, as with test.sh.
#
# Versions: PYTHON_VERSIONS (default "3.10 3.11 3.12 3.13"). The interpreter for
# X.Y is $PYTHONXY if set (PYTHON310=/path/to/python3.10), else the newest
# $(pyenv root)/versions/X.Y.*, else pythonX.Y on PATH. A version with no
# interpreter is skipped with a line saying so. Versions run one after another.
# Exit status: non-zero if any version failed, or if none ran (unless SKIP_OK=1,
# which .ci/run sets: a machine without the other interpreters still passes CI).
set -euo pipefail
cd "$(dirname "$0")/.."

versions=${PYTHON_VERSIONS:-3.10 3.11 3.12 3.13}
pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")

# Print the path of a working CPython X.Y interpreter, or nothing.
find_python() {
  local v=$1 var="PYTHON${1/./}" c
  local candidates=("${!var:-}")
  for c in $(ls -d "$pyenv_root"/versions/"$v".* 2>/dev/null | sort -V -r); do
    candidates+=("$c/bin/python$v")
  done
  candidates+=("$(command -v "python$v" 2>/dev/null || true)")
  for c in "${candidates[@]}"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if [ "$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$v" ]; then
      echo "$c"
      return
    fi
  done
}

passed=() failed=() skipped=()
for v in $versions; do
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    echo "== Python $v: SKIPPED, no interpreter (set PYTHON${v/./} or: pyenv install $v)"
    skipped+=("$v")
    continue
  fi
  venv=.venv-$v
  # A folder left by another interpreter of another version is made again.
  if [ -x "$venv/bin/python" ] && [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$v" ]; then
    rm -rf "$venv"
  fi
  echo "== tests on Python $v ($py, $venv)"
  if PYTHON=$py VENV=$venv bash scripts/test.sh "$@"; then
    passed+=("$v")
  else
    failed+=("$v")
  fi
done

echo "== matrix: passed: ${passed[*]:-none}; failed: ${failed[*]:-none}; skipped: ${skipped[*]:-none}"
if [ ${#failed[@]} -gt 0 ]; then exit 1; fi
if [ ${#passed[@]} -eq 0 ] && [ "${SKIP_OK:-0}" != 1 ]; then exit 1; fi
