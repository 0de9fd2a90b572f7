"""Screenshot of the Review view on a dataset (run by hand, not a test; it only reads the dataset):

    xvfb-run -s "-screen 0 1280x800x24" python tests/gui/screenshot_review.py [DATASET]

Opens the Review view at 1000x640 on DATASET (default ``$CATDOG_TEST_DATA`` or
``../shared/datasets/catdog-1800``), runs the review with the default pretrained backbone, selects the
first row and saves docs/screenshots/review.png.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtWidgets import QApplication

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eventloop import wait_until  # noqa: E402

OUT = os.path.join(ROOT, "docs", "screenshots")


def main() -> None:
    data = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "CATDOG_TEST_DATA", os.path.join(ROOT, "..", "shared", "datasets", "catdog-1800"))
    app = QApplication.instance() or QApplication([])
    from catdog_gui.gui.dataset.review_view import ReviewView

    view = ReviewView(os.path.abspath(data))
    view.resize(1000, 640)
    view.show()
    view.start()
    wait_until(lambda: view.review is not None or not view.is_running(), 900, "the review")
    view.tree.setColumnWidth(0, 150)
    if view.tree.topLevelItemCount():
        view.tree.topLevelItem(0).setSelected(True)
    app.processEvents()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "review.png")
    view.grab().save(path)
    print(path, view.summary.text())
    view.shutdown()


if __name__ == "__main__":
    main()
