#!/usr/bin/env bash
# Remove what install.sh put in ~/.local (the app folder, the link, the menu entry, the icon). Your
# models, runs, settings and caches stay (~/.local/share/catdog-gui, ~/.cache/catdog-gui, ~/.config/catdog-gui).
set -euo pipefail

BIN="$HOME/.local/bin"
OPT="$HOME/.local/opt/catdog-gui"
SHARE="${XDG_DATA_HOME:-$HOME/.local/share}"

# the link only if it is ours (points into the app folder)
if [ -L "$BIN/catdog-gui" ] && [ "$(readlink "$BIN/catdog-gui")" = "$OPT/catdog-gui" ]; then
    rm -f "$BIN/catdog-gui"
fi
rm -f "$SHARE/applications/catdog-gui.desktop" \
      "$SHARE/icons/hicolor/256x256/apps/catdog-gui.png" \
      "$SHARE/icons/hicolor/scalable/apps/catdog-gui.svg"
rm -rf "$OPT" "$OPT.new" "$OPT.old"
# folders install.sh may have made, if they are empty now
for d in "$SHARE/icons/hicolor/256x256/apps" "$SHARE/icons/hicolor/256x256" "$SHARE/icons/hicolor/scalable/apps" \
         "$SHARE/icons/hicolor/scalable" "$SHARE/icons/hicolor" "$SHARE/icons" "$SHARE/applications" \
         "$HOME/.local/opt"; do
    rmdir "$d" 2>/dev/null || true
done
command -v update-desktop-database >/dev/null && update-desktop-database -q "$SHARE/applications" 2>/dev/null || true
echo "catdog-gui uninstalled (your models, runs and settings are kept)"
