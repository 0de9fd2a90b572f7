#!/usr/bin/env bash
# Build the one-folder desktop app with PyInstaller, then smoke-check it.
#
#   packaging/build.sh                 # build into /tmp/catdog-build/dist/catdog-gui, then smoke test
#   BUILD_DIR=~/build packaging/build.sh
#   SMOKE=0 packaging/build.sh         # build only
#
# Uses the current `python` (activate the environment you want frozen first; see packaging/README.md:
# a CPU-only torch keeps the bundle several GB smaller). Needs: pip install pyinstaller, and the app
# installed or importable from the repository (pip install -e . or this checkout).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
BUILD_DIR="${BUILD_DIR:-/tmp/catdog-build}"
PYTHON="${PYTHON:-python}"

"$PYTHON" -c "import PyInstaller" 2>/dev/null || { echo "PyInstaller is missing: $PYTHON -m pip install pyinstaller" >&2; exit 2; }
[ -f "$ROOT/catdog_gui/resources/icon.png" ] || "$PYTHON" "$HERE/make_icon.py"

mkdir -p "$BUILD_DIR"
echo "== torch: $("$PYTHON" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
echo "== building into $BUILD_DIR (this takes several minutes)"
start=$(date +%s)
cd "$ROOT"
"$PYTHON" -m PyInstaller --noconfirm --clean \
    --distpath "$BUILD_DIR/dist" --workpath "$BUILD_DIR/work" \
    "$HERE/catdog-gui.spec"
echo "== built in $(( $(date +%s) - start )) s"

APP="$BUILD_DIR/dist/catdog-gui"
cp "$ROOT/resources/catdog-gui.desktop" "$APP/"
echo "== size: $(du -sh "$APP" | cut -f1)  ($APP)"
du -sh "$APP"/_internal/* 2>/dev/null | sort -h | tail -8

if [ "${SMOKE:-1}" != "0" ]; then
    echo "== smoke test"
    start=$(date +%s.%N)
    QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}" "$APP/catdog-gui" --smoke-test "$@"
    echo "== smoke test passed in $(echo "$(date +%s.%N) - $start" | bc) s (wall clock, including start-up)"
fi
