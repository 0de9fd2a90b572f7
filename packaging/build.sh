#!/usr/bin/env bash
# Build the one-folder desktop app with PyInstaller, smoke-test it, and pack the release archive.
#
#   packaging/build.sh                 # build into /tmp/catdog-build/dist/catdog-gui, then smoke test
#   BUILD_DIR=~/build packaging/build.sh
#   SMOKE=0 packaging/build.sh         # no smoke test
#   ARCHIVE=0 packaging/build.sh       # no release archive ($BUILD_DIR/catdog-gui-<version>-linux-<arch>.tar.gz)
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
echo "== size: $(du -sh "$APP" | cut -f1)  ($APP)"
du -sh "$APP"/_internal/* 2>/dev/null | sort -h | tail -8

if [ "${SMOKE:-1}" != "0" ]; then
    echo "== smoke test"
    start=$(date +%s.%N)
    QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}" "$APP/catdog-gui" --smoke-test "$@"
    echo "== smoke test passed in $(echo "$(date +%s.%N) - $start" | bc) s (wall clock, including start-up)"
fi

# the release archive: the app folder, the menu entry, the icons, install.sh / uninstall.sh
if [ "${ARCHIVE:-1}" != "0" ]; then
    VERSION="$("$PYTHON" -c 'import catdog_gui; print(catdog_gui.__version__)')"
    NAME="catdog-gui-$VERSION-linux-$(uname -m)"
    REL="$BUILD_DIR/release/$NAME"
    rm -rf "$BUILD_DIR/release"
    mkdir -p "$REL/icons"
    mv "$APP" "$REL/catdog-gui"  # moved, not copied: the archive is made from the one tree
    cp "$ROOT/resources/catdog-gui.desktop" "$REL/"
    cp "$ROOT/catdog_gui/resources/icon.png" "$ROOT/catdog_gui/resources/icon.svg" "$REL/icons/"
    install -m755 "$HERE/install.sh" "$HERE/uninstall.sh" "$REL/"
    echo "== archiving $NAME.tar.gz"
    tar -C "$BUILD_DIR/release" -czf "$BUILD_DIR/$NAME.tar.gz" "$NAME"
    mv "$REL/catdog-gui" "$APP"
    rm -rf "$BUILD_DIR/release"
    echo "== release: $BUILD_DIR/$NAME.tar.gz ($(du -h "$BUILD_DIR/$NAME.tar.gz" | cut -f1)); unpack it and run ./install.sh"
fi
