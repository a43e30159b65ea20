#!/usr/bin/env bash
# Lays out a TEN app folder as `tman install --standalone` does, with copies (never
# symlinks): the TEN system packages under ten_packages/system (and the addon
# loader under ten_packages/addon_loader), this package under
# ten_packages/extension/gradium_tts_python (the files of its manifest's
# package.include).
#
#   bash scripts/ten-app.sh APP_DIR [TEN_PACKAGES_DIR]
#
# Without TEN_PACKAGES_DIR the TEN stand-ins (standalone/stubs) take the place of
# ten_runtime_python and ten_ai_base. With it (scripts/ten-runtime.sh's
# <cache>/ten_packages), its system/ten_runtime, system/ten_runtime_python,
# system/ten_ai_base and addon_loader/python_addon_loader are copied: TEN's real
# runtime. APP_DIR's ten_packages is replaced; a manifest.json naming this package
# is written unless APP_DIR has one. The package copied is the checkout this script
# lives in, or GRADIUM_CHECKOUT. PYTHON runs the copy (default: python3).
set -euo pipefail
app=${1:?usage: ten-app.sh APP_DIR [TEN_PACKAGES_DIR]}
packages=${2:-}
checkout=$(cd "${GRADIUM_CHECKOUT:-$(dirname "$0")/..}" && pwd)
mkdir -p "$app"
app=$(cd "$app" && pwd)
rm -rf "$app/ten_packages"
system="$app/ten_packages/system"
if [ -z "$packages" ]; then
  stubs="$checkout/standalone/stubs"
  mkdir -p "$system/ten_runtime_python/lib" "$system/ten_runtime_python/interface" \
    "$system/ten_ai_base/interface"
  cp -r "$stubs/ten_runtime" "$system/ten_runtime_python/interface/"
  cp -r "$stubs/ten_ai_base" "$system/ten_ai_base/interface/"
  cp -r "$stubs/ten_ai_base/api" "$system/ten_ai_base/"
else
  for d in system/ten_runtime system/ten_runtime_python system/ten_ai_base \
    addon_loader/python_addon_loader; do
    [ -d "$packages/$d" ] || { echo "ten-app.sh: no $packages/$d" >&2; exit 1; }
    mkdir -p "$app/ten_packages/$(dirname "$d")"
    cp -a "$packages/$d" "$app/ten_packages/$d"
  done
fi
find "$app/ten_packages" -name __pycache__ -prune -exec rm -rf {} +
if [ ! -f "$app/manifest.json" ]; then
  cat > "$app/manifest.json" <<'JSON'
{
  "type": "app",
  "name": "gradium_tts_python_test_app",
  "version": "0.1.0",
  "dependencies": [{ "path": "../.." }]
}
JSON
fi
# The extension, as tman installs it: the files its manifest's package.include lists.
"${PYTHON:-python3}" - "$checkout" "$app" <<'PY'
import sys
from pathlib import Path

checkout, app = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(checkout / "standalone"))
import tenhost

tenhost.install_addon(checkout, tenhost.PACKAGE_NAME, app)
PY
