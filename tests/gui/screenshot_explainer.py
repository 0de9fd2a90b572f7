"""Screenshots of the Network tab's "Every unit" explainer (run by hand, not a test):

    xvfb-run -s "-screen 0 1280x900x24" python tests/gui/screenshot_explainer.py MODEL.pt PHOTO

Opens the real window at 1280x900 with MODEL (a LeNet-5 model file that kept its first epoch),
explains PHOTO and saves into docs/screenshots/: explainer-overview.png (a C1 unit), explainer-c3.png
(a C3 unit reading three of S2's maps), explainer-softmax.png, explainer-changed.png (the same unit
after the first epoch and at the best one), explainer-f6.png (a full connection) and
explainer-animation.png (the kernel half way over C3 map 7).
"""

from __future__ import annotations

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


def settle(ms: int = 300) -> None:
    done = []
    QTimer.singleShot(ms, lambda: done.append(1))
    wait_until(lambda: bool(done))


def main() -> int:
    model, photo = sys.argv[1], sys.argv[2]
    QStandardPaths.setTestModeEnabled(True)
    os.environ["CATDOG_SETTINGS"] = os.path.join(tempfile.mkdtemp(prefix="catdog-shot-"), "settings.ini")
    app = QApplication(sys.argv)
    from catdog_gui.gui.common import style
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    style.apply(app)
    win = MainWindow(Settings(os.environ["CATDOG_SETTINGS"]), models_folder=tempfile.mkdtemp(prefix="catdog-m-"))
    win.resize(1280, 900)
    win.show()
    win.ensure_backend()
    tab = win.network_tab
    shown = []
    tab.model_shown.connect(shown.append)
    win.set_model(model)
    wait_until(lambda: bool(shown), 120, "the model")
    win.tabs.setCurrentWidget(win.network_page)
    tab.pages.setCurrentWidget(tab.explainer)
    view = tab.explainer
    tab.set_image(photo)
    wait_until(lambda: view.explanation is not None, 120, "the explanation")
    os.makedirs(OUT, exist_ok=True)
    view.split.setSizes([330, 520])
    shots = [("explainer-overview", ("c1", 0, 14, 14), False), ("explainer-c3", ("c3", 0, 5, 5), False),
             ("explainer-f6", ("f6", 0, 0, 0), False), ("explainer-softmax", ("softmax", 0, 0, 0), False),
             ("explainer-changed", ("c1", 0, 14, 14), True)]
    for name, unit, compare in shots:
        view.compare_box.setChecked(compare)
        view.overview.select(*unit)
        settle()
        path = os.path.join(OUT, f"{name}.png")
        win.grab().save(path)
        print(path, os.path.getsize(path) // 1024, "KB")
    view.compare_box.setChecked(False)
    view.overview.select("c3", 6, 0, 0)  # the animation half way through C3 map 7
    for _ in range(54):
        view.animation.step()
    settle()
    path = os.path.join(OUT, "explainer-animation.png")
    win.grab().save(path)
    print(path, os.path.getsize(path) // 1024, "KB")
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
