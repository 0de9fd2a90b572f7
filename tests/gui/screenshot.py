"""Screenshots of the real window (run by hand, not a test), plus two measurements.

    xvfb-run -s "-screen 0 1280x800x24" python tests/gui/screenshot.py [DATASET] [--epochs N]

Opens the window at 1280x800, grabs the empty Dataset tab, loads DATASET (default
../shared/datasets/catdog-1800), waits for the scan, the thumbnails and the augmentation preview,
grabs it, trains LeNet-5 for a few epochs (grabbing mid-run and at the end, with a confusion-matrix
cell opened), and grabs the Prediction tab with the new model. PNGs go to docs/screenshots/.

Prints the time to first paint (process start to the window's first paint event) and the GUI
event loop's lateness during training (a 10 ms QTimer: median, p99, max).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

T0 = time.perf_counter()

from PySide6.QtCore import QEvent, QObject, QStandardPaths, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "docs", "screenshots")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eventloop import wait_until  # noqa: E402


class FirstPaint(QObject):
    def __init__(self):
        super().__init__()
        self.at = None

    def eventFilter(self, obj, ev):  # noqa: N802
        if self.at is None and ev.type() == QEvent.Type.Paint:
            self.at = time.perf_counter() - T0
        return False


def wait(app, cond, timeout=600.0, what="condition"):
    """Run the real event loop (no sleeps) until ``cond()`` holds."""
    wait_until(cond, timeout, what)


def settle(app, seconds=0.3):
    end = time.monotonic() + seconds
    wait(app, lambda: time.monotonic() >= end, seconds + 5)


class Lateness:
    """A 10 ms QTimer's lateness: how long the GUI thread could not react."""

    def __init__(self):
        self.samples: list[float] = []
        self.stalls: list[tuple[float, float]] = []  # (seconds since T0, lateness ms) over 100 ms
        self.timer = QTimer(interval=10)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.last = None

    def _tick(self):
        now = time.perf_counter()
        if self.last is not None:
            late = max(0.0, (now - self.last) * 1000 - 10)
            self.samples.append(late)
            if late > 100:
                self.stalls.append((now - T0, late))
        self.last = now

    def start(self):
        self.last = None
        self.timer.start()

    def stop(self):
        self.timer.stop()

    def report(self, what):
        q = sorted(self.samples)
        if q:
            print(f"event-loop lateness during {what} ({len(q)} ticks): median {statistics.median(q):.1f} ms, "
                  f"p99 {q[int(0.99 * (len(q) - 1))]:.1f} ms, max {q[-1]:.1f} ms")


def save(win, name, limit_kb=290):
    """Grab the window; photos make big PNGs, so squeeze to a 256-colour palette when needed."""
    path = os.path.join(OUT, name)
    win.grab().save(path, "PNG", 0)  # 0: the strongest compression
    if os.path.getsize(path) > limit_kb * 1024:
        from PIL import Image

        im = Image.open(path).convert("RGB")
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"saved {path} ({os.path.getsize(path) // 1024} KB)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?", default=os.path.join(ROOT, "..", "shared", "datasets", "catdog-1800"))
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    QStandardPaths.setTestModeEnabled(True)
    tmp = tempfile.mkdtemp(prefix="catdog-shots-")
    app = QApplication.instance() or QApplication(sys.argv[:1])

    from catdog_gui.gui.common import style
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    style.apply(app)
    win = MainWindow(Settings(os.path.join(tmp, "settings.ini")), models_folder=os.path.join(tmp, "models"))
    fp = FirstPaint()
    win.installEventFilter(fp)
    win.resize(1280, 800)
    win.show()
    wait(app, lambda: fp.at is not None, 30, "first paint")
    print(f"time to first paint: {fp.at:.2f} s (torch imported by then: {'torch' in sys.modules})")
    settle(app, 0.5)
    save(win, "dataset-empty.png")

    t = time.perf_counter()
    wait(app, lambda: win.ready, 120, "backend")
    print(f"training engine ready {time.perf_counter() - T0:.2f} s after start "
          f"({time.perf_counter() - t:.2f} s after first paint)")

    d = win.dataset_tab
    win.open_dataset_path(os.path.abspath(args.dataset))
    wait(app, lambda: d.dataset is not None or d.error, 300, "scan")
    if d.dataset is None:
        raise SystemExit(f"scan failed: {d.error}")
    win.augment.set_enabled(True)
    wait(app, lambda: bool(d.augment_panel.preview_images) and d.grid.model.loader.decoded > 0
         and d.grid.model.loader.pending() == 0, 60, "thumbnails and preview")
    settle(app, 1.0)
    save(win, "dataset.png")

    tt = win.training_tab
    win.augment.set_enabled(False)
    d.train_action.click()
    tt.select_model("lenet5")
    tt.form.hyper["epochs"].setValue(args.epochs)
    tt.form.hyper["patience"].setValue(0)
    settle(app, 0.3)
    save(win, "training-ready.png")

    lat = Lateness()
    assert tt.start_training()
    lat.start()
    wait(app, lambda: tt.run is not None and len(tt.run.epochs) >= max(2, args.epochs // 2), 600, "half the epochs")
    lat.stop()  # grabbing the window takes a while: not the training's fault
    settle(app, 0.3)
    save(win, "training-running.png")
    lat.start()
    wait(app, lambda: not tt.is_running(), 600, "end of training")
    lat.stop()
    lat.report("LeNet-5 training (whole run: decode, epochs, evaluation, saving)")
    print(tt.results.result_label.text())
    m = tt.run.metrics
    if m is not None:  # open the off-diagonal cell with the most mistakes
        k = len(m.classes)
        cells = [(m.confusion[i][j], i, j) for i in range(k) for j in range(k) if i != j]
        _, i, j = max(cells)
        tt.results.confusion.setCurrentCell(i, j)
        tt.results.show_cell(i, j)
        settle(app, 1.5)
    save(win, "training-done.png")

    # the seed's second improvement: transfer learning from ImageNet (EfficientNet-Lite0, frozen features)
    tt.form.transfer_check.setChecked(True)  # with a LeNet model selected this switches to efficientnet_lite0
    settle(app, 0.3)
    t = time.perf_counter()
    assert tt.start_training()
    wait(app, lambda: not tt.is_running(), 1800, "end of transfer learning")
    print(f"transfer learning: {tt.results.result_label.text()} ({time.perf_counter() - t:.0f} s)")
    settle(app, 1.0)
    save(win, "training-transfer.png")

    win.tabs.setCurrentIndex(2)
    pt = win.prediction_tab
    wait(app, lambda: pt is not None and win.model_path is not None and not win.current.is_loading(), 120,
         "model in Prediction")
    val = d.dataset.val  # photos the model never trained on: two dogs and a cat
    photos = [str(s.path) for s in val if d.dataset.classes[s.label] == "dog"][3:5] + \
        [str(s.path) for s in val if d.dataset.classes[s.label] == "cat"][7:8]
    done = []
    pt.results_ready.connect(lambda: done.append(1))
    pt.cam_check.setChecked(True)
    pt.classify_paths(photos)
    wait(app, lambda: bool(done), 300, "predictions")
    settle(app, 4.0)  # heat maps arrive after the answers
    save(win, "prediction.png")
    win.close()
    settle(app, 0.2)


if __name__ == "__main__":
    main()
