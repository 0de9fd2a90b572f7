"""Screenshot of the Runs tab with the teaching text's three runs (run by hand, not a test):

    xvfb-run -s "-screen 0 1280x800x24" python tests/gui/screenshot_runs.py [DATASET]

Trains, with the `catdog` command and its defaults, into a fresh run store: LeNet-5, LeNet-5 with
augmentation, and transfer learning from EfficientNet-Lite1, the default (each named after what it is);
then opens the real window at 1280x800 on the Runs tab with the three selected (curves overlaid,
metrics and differing settings in one table) and saves docs/screenshots/runs.png.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "docs", "screenshots")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eventloop import wait_until  # noqa: E402

RUNS = [("LeNet-5", []), ("LeNet-5, augmented", ["--augment"]), ("Transfer learning (Lite1)", ["--pretrained"])]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?", default=os.path.join(ROOT, "..", "shared", "datasets", "catdog-1800"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="catdog-shot-runs-")
    os.environ["CATDOG_DATA_DIR"] = os.path.join(tmp, "data")
    for name, flags in RUNS:
        out = os.path.join(tmp, name.replace(" ", "_").replace(",", "") + ".pt")
        subprocess.run([sys.executable, "-m", "catdog_gui.cli", "train", args.dataset, *flags, "--quiet",
                        "--out", out], check=True, env=dict(os.environ, PYTHONPATH=ROOT))
        from catdog_gui.core.storage.run_store import RunStore

        newest = RunStore().runs()[0]
        RunStore().update(newest.id, name=name)
        print(f"{name}: {newest.val_accuracy * 100:.1f}% in {newest.duration_s:.0f} s", flush=True)

    QStandardPaths.setTestModeEnabled(True)
    app = QApplication(sys.argv)
    from catdog_gui.gui.common import style
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    style.apply(app)
    win = MainWindow(Settings(os.path.join(tmp, "settings.ini")), models_folder=os.path.join(tmp, "models"))
    win.resize(1280, 800)
    win.show()
    win.ensure_backend()
    view = win.runs_view
    win.tabs.setCurrentWidget(view)
    view.refresh()
    view.select_ids([r.id for r in win.runs.store.runs()])
    wait_until(lambda: len(view.selected_ids()) == 3, 30, "three runs selected")
    settled = []
    from PySide6.QtCore import QTimer

    QTimer.singleShot(800, lambda: settled.append(1))  # let the plots lay out
    wait_until(lambda: bool(settled), 10, "layout")
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "runs.png")
    win.grab().save(path)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
