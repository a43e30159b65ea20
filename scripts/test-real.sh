#!/usr/bin/env bash
# The suite and TEN's tts_guarder on TEN's real runtime (built by
# scripts/ten-runtime.sh into its cache; nothing else is needed, no network).
#
#   bash scripts/test-real.sh                 # suite in both thread modes + guarder
#   bash scripts/test-real.sh tests/test_x.py -k name   # only these, both modes
#
# 1. lays out .ten/app as tman does (scripts/ten-app.sh: copies of the real
#    ten_runtime, ten_runtime_python, python_addon_loader, ten_ai_base and this
#    package) and runs TEN's test entry tests/bin/start with
#    TEN_PYTHON_THREAD_MODE=single_thread, then multi_thread;
# 2. without arguments, then runs the guarder (copied from the same ten-framework
#    snapshot) as `task tts-guarder-test` does, laid out the same way, against the
#    local Gradium server with tests/configs_local, connection-status and subtitle
#    tests enabled (scripts/guarder_enable.py).
# Prints a summary; exits non-zero if anything failed.
#
# TEN_RUNTIME_CACHE: the cache (default ~/.cache/gradium_tts_python/ten-runtime).
# GRADIUM_CHECKOUT: the checkout to test (default: the one holding this script).
# TEST_REAL_MODES: the thread modes (default "single_thread multi_thread").
# TEST_REAL_GUARDER=0/1: skip / force the guarder (default: only without arguments).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "${GRADIUM_CHECKOUT:-$here/..}" && pwd)
cache=${TEN_RUNTIME_CACHE:-$HOME/.cache/gradium_tts_python/ten-runtime}
if [ ! -f "$cache/env.sh" ]; then
  echo "test-real.sh: no TEN runtime at $cache; build it first:" >&2
  echo "  bash scripts/ten-runtime.sh TEN_FRAMEWORK_DIR TEN_GN_DIR TEN_AI_BASE_DIR" >&2
  exit 2
fi
# shellcheck disable=SC1091
. "$cache/env.sh"
export TEN_PYTHON_LIB_PATH
cd "$checkout"

# The Python the runtime embeds (shared libpython), in a venv kept in the cache.
venv="$cache/venv"
if [ ! -x "$venv/bin/python" ]; then
  "$TEN_REAL_PYTHON" -m venv "$venv" || exit 2
fi
# pytest < 9: TEN's guarder imports _pytest.config.Notset, which pytest 9 removed.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r requirements-dev.txt "pytest<9" \
  -r "$cache/ten_packages/system/ten_ai_base/requirements.txt" \
  -r "$cache/ten_packages/system/ten_runtime_python/requirements.txt" 2>&1 |
  grep -v "^WARNING: Location '"
[ "${PIPESTATUS[0]}" = 0 ] || exit 2

app=.ten/app
rm -rf "$app"
PYTHON="$venv/bin/python" bash "$here/ten-app.sh" "$app" "$cache/ten_packages" || exit 2
echo "== TEN runtime $TEN_REAL_RUNTIME_VERSION, ten_ai_base $TEN_REAL_AI_BASE_VERSION, $("$venv/bin/python" -V) ($cache)"

summary=()
failed=0
run_guarder=${TEST_REAL_GUARDER:-$([ $# -eq 0 ] && echo 1 || echo 0)}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

record() {  # name, status, log, seconds
  local line
  line=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* in [0-9.]+s' "$3" | tail -1)
  line=${line//=/}
  summary+=("$(printf '%-26s %-4s %s (%ss)' "$1" "$([ "$2" = 0 ] && echo ok || echo FAIL)" "${line# }" "$4")")
  [ "$2" = 0 ] || failed=1
}

for mode in ${TEST_REAL_MODES:-single_thread multi_thread}; do
  echo "== suite on the real runtime, TEN_PYTHON_THREAD_MODE=$mode"
  t0=$(date +%s)
  TEN_PYTHON_THREAD_MODE=$mode PYTEST="$venv/bin/python -m pytest" \
    bash tests/bin/start "$@" 2>&1 | tee "$logs/$mode.log"
  status=${PIPESTATUS[0]}
  record "suite $mode" "$status" "$logs/$mode.log" $(( $(date +%s) - t0 ))
done

if [ "$run_guarder" = 1 ]; then
  echo "== TEN's tts_guarder on the real runtime, local server, tests/configs_local"
  t0=$(date +%s)
  gapp=.ten/tts_guarder
  rm -rf "$gapp"
  cp -a "$cache/tts_guarder" "$gapp"
  sed 's/{{extension_name}}/gradium_tts_python/g' "$gapp/manifest-tmpl.json" > "$gapp/manifest.json"
  PYTHON="$venv/bin/python" bash "$here/ten-app.sh" "$gapp" "$cache/ten_packages" || exit 2
  # The local server on a free port (other runs may hold 8765).
  PYTHONPATH=standalone "$venv/bin/python" -m gradium_server --port 0 > "$logs/server.out" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    grep -q '^listening on' "$logs/server.out" && break
    sleep 0.1
  done
  url=$(sed -n 's/^listening on //p' "$logs/server.out")
  if [ -z "$url" ]; then
    cat "$logs/server.out"; kill "$server" 2>/dev/null
    echo "test-real.sh: the local server did not start" >&2; exit 2
  fi
  (
    cd "$gapp" &&
      PYTHONPATH=.:ten_packages/system/ten_runtime_python/lib:ten_packages/system/ten_runtime_python/interface:ten_packages/system/ten_ai_base/interface:ten_packages/extension/gradium_tts_python:$here \
        GRADIUM_LOCAL_URL=$url ENABLE_SAMPLE_RATE=True ENABLE_CONNECTION_STATUS=True \
        TEN_ENABLE_BACKTRACE_DUMP=true \
        "$venv/bin/python" -m pytest -p guarder_enable tests/ -ra \
        --extension_name gradium_tts_python --config_dir "$checkout/tests/configs_local" \
        --enable_subtitle_alignment=True
  ) 2>&1 | tee "$logs/guarder.log"
  status=${PIPESTATUS[0]}
  kill "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  # Every guarder test must run: a skip is a failure here.
  if grep -qE '^=+ .*skipped' "$logs/guarder.log"; then status=1; fi
  record "tts_guarder" "$status" "$logs/guarder.log" $(( $(date +%s) - t0 ))
fi

echo
echo "== real-runtime summary (TEN runtime $TEN_REAL_RUNTIME_VERSION, ten_ai_base $TEN_REAL_AI_BASE_VERSION)"
printf '%s\n' "${summary[@]}"
exit $failed
