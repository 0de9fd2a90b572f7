"""Screenshot of the Network tab (run by hand, not a test):

    xvfb-run -s "-screen 0 1280x800x24" python tests/gui/screenshot_network.py MODEL.pt PHOTO [--layer c1]

Opens the real window at 1280x800 with MODEL (a LeNet-5 model file), switches to the Network tab,
shows PHOTO's feature maps for LAYER and saves docs/screenshots/network.png (and network-<layer>.png
for any other layer given; --name changes the prefix).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from PySide6.QtCore import QStandardPaths, QTimer
from PySide6.QtWidgets import QApplication

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "docs", "screenshots")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eventloop import wait_until  # noqa: E402


def wait(cond, timeout=120.0, what="condition"):
    wait_until(cond, timeout, what)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("photo")
    ap.add_argument("--layer", action="append", default=None, help="layer(s) to grab (default c1)")
    ap.add_argument("--name", default="network", help="file name (without .png) of the first screenshot")
    args = ap.parse_args()
    layers = args.layer or ["c1"]

    QStandardPaths.setTestModeEnabled(True)
    os.environ["CATDOG_SETTINGS"] = os.path.join(tempfile.mkdtemp(prefix="catdog-shot-"), "settings.ini")
    app = QApplication(sys.argv)
    from catdog_gui.gui.common import style
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    style.apply(app)
    win = MainWindow(Settings(os.environ["CATDOG_SETTINGS"]), models_folder=tempfile.mkdtemp(prefix="catdog-m-"))
    win.resize(1280, 800)
    win.show()
    win.ensure_backend()
    tab = win.network_tab
    shown = []
    tab.model_shown.connect(shown.append)
    win.set_model(args.model)
    wait(lambda: bool(shown), what="the model")
    win.tabs.setCurrentWidget(win.network_page)
    tab.set_image(args.photo)
    os.makedirs(OUT, exist_ok=True)
    for i, layer in enumerate(layers):
        tab.select_layer(layer)
        wait(lambda: tab._maps_task is None and layer in tab._maps and tab.maps_grid.tile_count() > 0,
             what=f"{layer}'s maps")
        end = QTimer(singleShot=True, interval=300)
        done = []
        end.timeout.connect(lambda: done.append(1))
        end.start()
        wait(lambda: bool(done))
        path = os.path.join(OUT, f"{args.name}.png" if i == 0 else f"{args.name}-{layer}.png")
        win.grab().save(path)
        print(path, os.path.getsize(path) // 1024, "KB")
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
