"""Screenshots of both camera panels fed by a video file (run by hand, not a test):

    xvfb-run -s "-screen 0 1280x800x24" python tests/gui/screenshot_camera.py [DATASET] [--per-class 100]

Makes an MJPEG video of DATASET's photos, trains LeNet-5 briefly on a subset, opens the window at
1280x800 on the subset, grabs the Dataset tab's Camera panel playing the video (after a short burst
recorded into a scratch copy), then the Prediction tab's Camera page classifying it live. PNGs go to
docs/screenshots/camera-collect.png and camera-live.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
from bench_camera import DEFAULT_DATA, make_video, subset, train  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def spin(app, until, timeout=30.0):
    end = time.monotonic() + timeout
    while not until() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    return until()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=DEFAULT_DATA)
    ap.add_argument("--per-class", type=int, default=100)
    a = ap.parse_args()
    QStandardPaths.setTestModeEnabled(True)
    tmp = Path(tempfile.mkdtemp(prefix="shot-camera-"))
    os.environ["CATDOG_SETTINGS"] = str(tmp / "settings.ini")
    app = QApplication(sys.argv[:1])
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    data = subset(Path(a.data), a.per_class, tmp / "data")
    video = make_video(data, tmp / "clip.mjpeg", 60)
    model = train("lenet5", data, tmp / "lenet5.pt", 3)
    win = MainWindow(Settings(tmp / "settings.ini"), models_folder=str(tmp / "models"))
    win.resize(1280, 800)
    win.show()
    win.ensure_backend()
    ds = win.dataset_tab
    ds.set_folders(str(data))
    spin(app, lambda: ds.dataset is not None)
    ds.show_camera(True)
    panel = ds.camera_panel
    panel.source.use_file(str(video))
    panel.class_combo.setEditText("cat")
    spin(app, lambda: panel._latest is not None)
    panel.take_photo()
    spin(app, lambda: False, 1.0)
    OUT.mkdir(parents=True, exist_ok=True)
    win.grab().save(str(OUT / "camera-collect.png"))
    panel.shutdown()
    win.current.open_now(model)
    win.tabs.setCurrentWidget(win.prediction_page)
    pt = win.prediction_tab
    pt.pages.setCurrentWidget(pt.camera_holder)
    pt.camera.source.use_file(str(video))
    spin(app, lambda: pt.camera.predicted >= 10)
    spin(app, lambda: False, 0.5)
    win.grab().save(str(OUT / "camera-live.png"))
    print("wrote", OUT / "camera-collect.png", OUT / "camera-live.png",
          f"({pt.camera.predicted} classified, {pt.camera.dropped} dropped)")
    win.close()


if __name__ == "__main__":
    main()
