#!/usr/bin/env bash
# Builds TEN's real runtime (ten_runtime, ten_runtime_python, python_addon_loader)
# from source and stages ten_ai_base and TEN's tts_guarder next to it, in a cache
# folder outside this repository; scripts/test-real.sh then needs only that cache.
#
#   bash scripts/ten-runtime.sh TEN_FRAMEWORK_DIR TEN_GN_DIR TEN_AI_BASE_DIR
#
# (or TEN_FRAMEWORK_SRC, TEN_GN_SRC, TEN_AI_BASE_SRC). The three are checkouts of
# github.com/TEN-framework/{ten-framework,ten_gn,ten_ai_base}; nothing of them is
# copied into this repository. The build happens in ten-framework's out/linux/x64
# (and puts gn at ten_gn's .gnfiles/bin/linux/x64/gn, as tgn expects); the results
# are copied to the cache. A second run with the same sources and Python only
# checks the stamp and prints the cache folder.
#
# Environment:
#   TEN_RUNTIME_CACHE  the cache (default ~/.cache/gradium_tts_python/ten-runtime)
#   TEN_PYTHON         a CPython >= 3.10 built with a shared libpython (the addon
#                      loader dlopen()s it); default: python3.11 of pyenv if present,
#                      else python3. Debian's python3 links libpython statically.
#   TEN_BUILD_JOBS     ninja -j (default: number of cores)
#   TEN_RUNTIME_FORCE=1  rebuild even when the stamp matches
# Needs the Debian packages generate-ninja clang libc++-dev libc++abi-dev; as root
# it installs missing ones (apt-get update first), else it says which are missing.
set -euo pipefail

die() { echo "ten-runtime.sh: $*" >&2; exit 1; }

fw=$(realpath "${1:-${TEN_FRAMEWORK_SRC:-}}" 2>/dev/null) || true
gnsrc=$(realpath "${2:-${TEN_GN_SRC:-}}" 2>/dev/null) || true
aib=$(realpath "${3:-${TEN_AI_BASE_SRC:-}}" 2>/dev/null) || true
[ -n "$fw" ] && [ -f "$fw/core/src/ten_runtime/BUILD.gn" ] ||
  die "first argument (or TEN_FRAMEWORK_SRC) must be a ten-framework checkout"
[ -n "$gnsrc" ] && [ -f "$gnsrc/.gnfiles/.gn" ] ||
  die "second argument (or TEN_GN_SRC) must be a ten_gn checkout"
[ -n "$aib" ] && [ -f "$aib/manifest.json" ] && [ -d "$aib/interface/ten_ai_base" ] ||
  die "third argument (or TEN_AI_BASE_SRC) must be a ten_ai_base checkout"

cache=${TEN_RUNTIME_CACHE:-$HOME/.cache/gradium_tts_python/ten-runtime}
guarder_src="$fw/ai_agents/agents/integration_tests/tts_guarder"
[ -d "$guarder_src/tests" ] || die "no tts_guarder at $guarder_src"

# The Python the runtime will embed: must have a shared libpython.
if [ -z "${TEN_PYTHON:-}" ]; then
  TEN_PYTHON=python3
  for cand in "$HOME"/.pyenv/versions/3.11.*/bin/python3; do
    [ -x "$cand" ] && TEN_PYTHON=$cand
  done
fi
py=$(command -v "$TEN_PYTHON") || die "no Python '$TEN_PYTHON'"
py=$(realpath "$py")
read -r pyver pyshared pylib pyinc < <("$py" -c '
import sys, sysconfig, os
v = "%d.%d" % sys.version_info[:2]
lib = os.path.join(sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("LDLIBRARY") or "")
print(v, sysconfig.get_config_var("Py_ENABLE_SHARED"), lib, sysconfig.get_paths()["include"])')
[ "$pyshared" = 1 ] && [ -f "$pylib" ] || die "$py has no shared libpython \
(Py_ENABLE_SHARED=$pyshared). Use a CPython built with --enable-shared, e.g.
  env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install 3.11
and pass it as TEN_PYTHON=/path/to/python3.11"

rev() { git -C "$1" rev-parse HEAD 2>/dev/null || echo "no-git:$(stat -c %Y "$1")"; }
stamp="ten-framework $(rev "$fw")
ten_gn $(rev "$gnsrc")
ten_ai_base $(rev "$aib") $(git -C "$aib" describe --tags 2>/dev/null || true)
python $py $pyver $pylib
script $(sha1sum "$0" | cut -c1-12)"
if [ "${TEN_RUNTIME_FORCE:-0}" != 1 ] && [ -f "$cache/STAMP" ] &&
  [ "$(cat "$cache/STAMP")" = "$stamp" ]; then
  echo "TEN runtime already built (same sources and Python): $cache"
  exit 0
fi

# Debian packages.
need=()
for pkg in generate-ninja clang libc++-dev libc++abi-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${need[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
  else
    die "missing Debian packages: ${need[*]} (sudo apt-get update && sudo apt-get install ${need[*]})"
  fi
fi

t0=$(date +%s)
work="$cache.build"
rm -rf "$work"
mkdir -p "$work/bin"

# python3-config for the embedded Python: include dir for --includes/--cflags,
# only -l entries for --libs/--ldflags (TEN's python_config.py turns every token
# of --libs into a library name). Also python3 -> that Python, for gn's scripts.
cat > "$work/bin/python3-config" <<EOF
#!/bin/sh
case "\$1" in
  --includes|--cflags) echo "-I$pyinc" ;;
  --libs|--ldflags) for t in \$("$py-config" --libs 2>/dev/null || echo -ldl -lm); do
      case "\$t" in -l*) printf '%s ' "\$t" ;; esac; done; echo ;;
  --prefix|--exec-prefix) "$py" -c 'import sys; print(sys.prefix)' ;;
  *) "$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' ;;
esac
EOF
chmod +x "$work/bin/python3-config"
ln -s "$py" "$work/bin/python3"
ln -s "$py" "$work/bin/python"

# gn: ten_gn's snapshot has no Linux gn; tgn looks for it here.
gnbin="$gnsrc/.gnfiles/bin/linux/x64/gn"
if [ ! -x "$gnbin" ]; then
  mkdir -p "$(dirname "$gnbin")"
  cp "$(command -v gn)" "$gnbin"
fi
ninja="$gnsrc/.gnfiles/bin/linux/x64/ninja"
[ -x "$ninja" ] || ninja=$(command -v ninja) || die "no ninja"

# .gn and .gnfiles linked from ten_gn, as tgn does.
(cd "$fw" && ln -sfn "$gnsrc/.gnfiles/.gn" .gn && ln -sfn "$gnsrc/.gnfiles" .gnfiles)

out=out/linux/x64
export PATH="$work/bin:$PATH"
export PYTHONPATH="$gnsrc/.gnfiles:$fw/build"
export PYTHONDONTWRITEBYTECODE=1
echo "== gn gen ($fw/$out), Python $pyver ($pylib)"
(
  cd "$fw"
  mkdir -p "$out"
  cat > "$out/args.gn" <<'EOF'
target_os = "linux"
target_cpu = "x64"
is_debug = false
is_clang = true
ten_enable_ten_rust = false
ten_enable_ten_manager = false
ten_enable_go_binding = false
ten_enable_nodejs_binding = false
ten_enable_python_binding = true
ten_enable_tests = false
ten_enable_example_packages = false
EOF
  "$gnbin" gen "$out" --root=.
  echo "== ninja (this takes a minute or more)"
  "$ninja" -C "$out" -j "${TEN_BUILD_JOBS:-$(nproc)}" \
    ten_runtime_system_package ten_python_binding_system_package core_addon_loaders
)

pk="$fw/$out/ten_packages"
for d in system/ten_runtime system/ten_runtime_python addon_loader/python_addon_loader; do
  [ -d "$pk/$d" ] || die "build gave no $pk/$d"
  mkdir -p "$work/ten_packages/$(dirname "$d")"
  cp -a "$pk/$d" "$work/ten_packages/$d"
done
# ten_ai_base as tman installs it: the files its manifest's package.include lists.
tab="$work/ten_packages/system/ten_ai_base"
mkdir -p "$tab"
for f in manifest.json interface api requirements.txt pyproject.toml; do
  [ -e "$aib/$f" ] && cp -a "$aib/$f" "$tab/"
done
find "$tab" -name __pycache__ -prune -exec rm -rf {} +
# TEN's tts_guarder, from the same ten-framework snapshot.
cp -a "$guarder_src" "$work/tts_guarder"
rm -f "$work/bin/python3" "$work/bin/python"
cat > "$work/env.sh" <<EOF
# Sourced by scripts/test-real.sh.
TEN_REAL_PYTHON=$py
TEN_PYTHON_LIB_PATH=$pylib
TEN_REAL_RUNTIME_VERSION=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$pk/system/ten_runtime/manifest.json" | head -1)
TEN_REAL_AI_BASE_VERSION=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$aib/manifest.json" | head -1)
EOF
echo "$stamp" > "$work/STAMP"
rm -rf "$cache"
mv "$work" "$cache"
echo "== built in $(( $(date +%s) - t0 )) s"
echo "TEN runtime ready: $cache"
