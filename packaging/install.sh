#!/usr/bin/env bash
# Install catdog-gui for the current user only (nothing outside ~/.local; no root needed):
#   ~/.local/opt/catdog-gui/                                    the app folder (and this release's uninstall.sh)
#   ~/.local/bin/catdog-gui                                     a link to the app (on PATH in most desktops)
#   ~/.local/share/applications/catdog-gui.desktop              the menu entry
#   ~/.local/share/icons/hicolor/{256x256,scalable}/apps/       the icon
# Run it from the unpacked release archive. Safe to run again: the new app replaces the old one whole.
# Uninstall: ~/.local/opt/catdog-gui/uninstall.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
APP_SRC="$HERE/catdog-gui"
BIN="$HOME/.local/bin"
OPT="$HOME/.local/opt/catdog-gui"
SHARE="${XDG_DATA_HOME:-$HOME/.local/share}"

if [ ! -x "$APP_SRC/catdog-gui" ]; then
    echo "install.sh: $APP_SRC/catdog-gui is missing: run this script from the unpacked release archive" >&2
    exit 1
fi
for f in catdog-gui.desktop icons/icon.png icons/icon.svg uninstall.sh; do
    [ -f "$HERE/$f" ] || { echo "install.sh: $HERE/$f is missing: unpack the whole release archive" >&2; exit 1; }
done

# the app folder: copied beside the old one, then swapped in, so a failed copy leaves the old app working
mkdir -p "$(dirname "$OPT")" "$BIN"
rm -rf "$OPT.new" "$OPT.old"
cp -a "$APP_SRC" "$OPT.new"
install -m755 "$HERE/uninstall.sh" "$OPT.new/uninstall.sh"
[ -e "$OPT" ] && mv "$OPT" "$OPT.old"
mv "$OPT.new" "$OPT"
rm -rf "$OPT.old"

ln -sfn "$OPT/catdog-gui" "$BIN/catdog-gui"
install -Dm644 "$HERE/icons/icon.png" "$SHARE/icons/hicolor/256x256/apps/catdog-gui.png"
install -Dm644 "$HERE/icons/icon.svg" "$SHARE/icons/hicolor/scalable/apps/catdog-gui.svg"
mkdir -p "$SHARE/applications"
# the menu entry runs the app by its full path: it works even where ~/.local/bin is not on PATH
sed -e "s|^Exec=.*|Exec=$BIN/catdog-gui %F|" -e "s|^TryExec=.*|TryExec=$BIN/catdog-gui|" \
    "$HERE/catdog-gui.desktop" > "$SHARE/applications/catdog-gui.desktop"
chmod 644 "$SHARE/applications/catdog-gui.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$SHARE/applications" 2>/dev/null || true

echo "catdog-gui installed in $OPT"
echo "  start it from the applications menu, or run: catdog-gui"
case ":$PATH:" in
    *":$BIN:"*) ;;
    *) echo "  ($BIN is not on your PATH: add it, or run $BIN/catdog-gui)" ;;
esac
echo "  uninstall: $OPT/uninstall.sh"
