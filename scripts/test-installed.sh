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
system="$app/ten_packages/system"
mkdir -p "$system/ten_runtime_python/lib" "$system/ten_runtime_python/interface" \
  "$system/ten_ai_base/interface"
cp -r standalone/stubs/ten_runtime "$system/ten_runtime_python/interface/"
cp -r standalone/stubs/ten_ai_base "$system/ten_ai_base/interface/"
cp -r standalone/stubs/ten_ai_base/api "$system/ten_ai_base/"
find "$app" -name __pycache__ -prune -exec rm -rf {} +
cat > "$app/manifest.json" <<'JSON'
{
  "type": "app",
  "name": "gradium_tts_python_test_app",
  "version": "0.1.0",
  "dependencies": [{ "path": "../.." }]
}
JSON
# The extension, as tman installs it: the files its manifest's package.include lists.
.venv/bin/python - "$app" <<'PY'
import sys
from pathlib import Path

sys.path.insert(0, "standalone")
import tenhost

tenhost.install_addon(Path("."), tenhost.PACKAGE_NAME, Path(sys.argv[1]))
PY
echo "== tests in the installed layout ($app, TEN stand-ins)"
PYTEST=".venv/bin/python -m pytest" exec bash tests/bin/start "$@"
