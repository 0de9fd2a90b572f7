"""Screenshot of the learning-rate finder (run by hand, not a test):

    xvfb-run -a python tests/gui/screenshot_lr_finder.py [DATASET]

Opens the window on DATASET (default $CATDOG_TEST_DATA), picks LeNet-5 with a one-cycle schedule, clicks
"Find…" beside the learning rate, waits for the sweep, and saves the finder's window and the Training tab
(its Advanced form showing the schedule) as docs/screenshots/lr-finder.png and training-schedule.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "gui"))
from eventloop import wait_until  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    data = sys.argv[1] if len(sys.argv) > 1 else os.environ["CATDOG_TEST_DATA"]
    QStandardPaths.setTestModeEnabled(True)
    app = QApplication.instance() or QApplication(sys.argv)
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    tmp = tempfile.mkdtemp()
    win = MainWindow(Settings(tmp + "/settings.ini"), models_folder=tmp + "/models")
    win.resize(1280, 820)
    win.show()
    win.ensure_backend()
    wait_until(lambda: win.training_tab.backend_ready, 120, "the engine")
    win.data.set_folders(data)
    wait_until(lambda: win.data.dataset is not None, 120, "the scan")
    t = win.training_tab
    win.tabs.setCurrentWidget(t)
    t.select_model("lenet5")
    t.form.advanced.set_expanded(True)
    t.form.hyper["schedule"].setValue("onecycle")
    t.form.find_lr_button.click()
    d = t.lr_finder
    wait_until(lambda: not d.is_running(), 300, "the sweep")
    app.processEvents()
    OUT.mkdir(parents=True, exist_ok=True)
    d.grab().save(str(OUT / "lr-finder.png"))
    print(d.result.text())
    d.use_button.click()
    app.processEvents()
    win.grab().save(str(OUT / "training-schedule.png"))
    t.shutdown()
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
