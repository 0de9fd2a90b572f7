"""Screenshots of the first minutes (run by hand, not a test):

    xvfb-run -s "-screen 0 1280x800x24" python tests/gui/screenshot_samples.py [DATASET]

1. ``dataset-samples-empty.png``: the empty Dataset tab with "Get sample photos";
2. ``samples-download.png``: the download in progress (bytes, speed, time left, Cancel). Nothing is
   downloaded from the internet: the app's own address for the small set is answered by a local
   server on 127.0.0.1, serving a synthetic archive of the real archive's size on a slow line;
3. ``dataset-grid-skipped.png``: a copy of DATASET (default ../shared/datasets/catdog-1800) with a
   few unreadable files added and two photos excluded, the grid filtered to the skipped ones.

PNGs go to docs/screenshots/.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import zipfile

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "docs", "screenshots")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eventloop import wait_until  # noqa: E402


def settle(seconds=0.3):
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= end, seconds + 5)


def save(widget, name):
    path = os.path.join(OUT, name)
    widget.grab().save(path)
    print("saved", path)


def archive_of_size(size: int) -> bytes:
    """The synthetic sample layout padded (a stored entry) to exactly ``size`` bytes."""
    from tests.archive_server import sample_zip

    def build(pad: int) -> bytes:
        buf = io.BytesIO(sample_zip(n_train=20, n_val=10))
        with zipfile.ZipFile(buf, "a", zipfile.ZIP_STORED) as zf:
            zf.writestr("cats_and_dogs_filtered/padding.bin", b"\0" * pad)
        return buf.getvalue()

    first = build(1000)
    body = build(1000 + size - len(first))
    assert len(body) == size, (len(body), size)
    return body


def main() -> None:
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "datasets", "catdog-1800")
    QStandardPaths.setTestModeEnabled(True)
    tmp = tempfile.mkdtemp(prefix="catdog-shots-")
    os.environ["CATDOG_DATA_DIR"] = os.path.join(tmp, "data")
    os.environ["CATDOG_CACHE_DIR"] = os.path.join(tmp, "cache")
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        os.environ.pop(k, None)
    app = QApplication(sys.argv[:1])
    from catdog_gui.core.data import sample_photos as samples
    from catdog_gui.gui.common import style
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings
    from tests.archive_server import ArchiveServer

    style.apply(app)
    small = samples.SAMPLE_SETS["small"]
    with ArchiveServer(lifetime=300) as server:
        local = server.add("/cats_and_dogs_filtered.zip", archive_of_size(small.size), rate=5.6e6)
        real_opener = samples._opener

        class Redirect(urllib.request.BaseHandler):  # the real address, answered on 127.0.0.1
            def default_open(self, req):
                if req.full_url == small.url:
                    req.full_url = local
                return None

        samples._opener = lambda url: urllib.request.build_opener(urllib.request.ProxyHandler({}), Redirect()) \
            if url == small.url else real_opener(url)

        win = MainWindow(Settings(os.path.join(tmp, "settings.ini")), models_folder=os.path.join(tmp, "models"))
        win.resize(1280, 800)
        win.show()
        wait_until(lambda: win.isVisible(), 30)
        d = win.dataset_tab
        settle(0.5)
        save(win, "dataset-samples-empty.png")

        d.empty.samples_button.click()
        dlg = d.samples_dialog
        dlg.download_button.click()
        wait_until(lambda: dlg.last_progress is not None and dlg.last_progress.done > 0.4 * small.size, 60, "download")
        settle(0.3)
        shot = win.grab()
        from PySide6.QtGui import QPainter

        from PySide6.QtGui import QColor

        p = QPainter(shot)  # the dialog is its own window (no window manager here): draw it over the window
        p.fillRect(shot.rect(), QColor(0, 0, 0, 70))
        at = dlg.geometry().topLeft() - win.geometry().topLeft()
        p.fillRect(at.x() - 1, at.y() - 1, dlg.width() + 2, dlg.height() + 2, QColor(90, 90, 90))
        p.drawPixmap(at, dlg.grab())
        p.end()
        shot.save(os.path.join(OUT, "samples-download.png"))
        print("saved", os.path.join(OUT, "samples-download.png"))
        dlg.cancel_button.click()
        wait_until(lambda: not dlg.is_running(), 60, "cancel")
        dlg.reject()

        # the grid, filtered to the skipped photos
        pets = os.path.join(tmp, "pets")
        shutil.copytree(data, pets)
        dog = os.path.join(pets, "dog")
        open(os.path.join(dog, "empty.jpg"), "wb").close()
        with open(os.path.join(dog, "notes.jpg"), "w") as f:
            f.write("this is not a photo")
        with open(os.path.join(pets, "cat", "cut.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0" + b"\0" * 64)
        win.open_dataset_path(pets)
        wait_until(lambda: d.dataset is not None or d.error, 300, "scan")
        ds = d.dataset
        d.set_excluded([ds.train[3].path, ds.train[-5].path], True)
        wait_until(lambda: d.dataset is not None and d.dataset.report.excluded, 300, "rescan")
        d.grid.set_filter(None, "skipped")
        m = d.grid.model
        wait_until(lambda: all(m.cache.get(str(m.photo(r).path)) is not None for r in range(m.rowCount())), 60,
                   "thumbnails")
        settle(0.5)
        save(win, "dataset-grid-skipped.png")
        d.shutdown()
        win.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
