"""GUI waits: launch to a painted window, event-loop lateness while LeNet-5 trains, and drop-to-result
in the Prediction tab, each next to a reference measured in the same run.

Run by hand (offscreen Qt by default; ``xvfb-run -s "-screen 0 1280x800x24"`` works too):
    python tests/benchmarks/bench_gui.py [DATA] [--launches 3] [--epochs 6] [--drops 10]

* **launch to paint**: wall time from ``subprocess.Popen`` of a fresh interpreter to the main window's
  first paint event (the window paints before torch is imported: torch loads afterwards in a
  background thread). Reference: a bare ``QApplication`` + empty ``QMainWindow`` in a fresh
  interpreter, i.e. what PySide6 itself costs. Median of ``--launches`` launches each.
* **event-loop lateness**: a 10 ms ``PreciseTimer``'s lateness (as tests/gui/screenshot.py measures
  it) during a whole LeNet-5 training run started from the Training tab (cold decode cache: scan
  already done in the Dataset tab, then decode, epochs, evaluation, saving). Reference: the same
  timer over 3 s with the window idle, in the same process.
* The training and drop measurements run twice: LeNet-5 (``--epochs``) and transfer learning from
  the default pretrained model (``--transfer-epochs``, frozen backbone), each followed by drops with the
  model that run saved.
* **drop to result**: a file URL dropped on the Prediction tab (a real ``QDropEvent``) until the
  tab's ``results_ready`` signal (card filled in: decode, predict, picture). Reference:
  ``Predictor.predict`` on the same files in the same process (no GUI).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" / "datasets" / "catdog-1800"))


def _stats(v: list[float]) -> dict:
    q = sorted(v)
    return {"n": len(q), "median": statistics.median(q), "p99": q[int(0.99 * (len(q) - 1))], "max": q[-1]}


# ------------------------------------------------------------------------------------------------
# children


def child_bare() -> None:
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication(sys.argv[:1])
    win = QMainWindow()
    win.resize(1280, 800)

    class F(QObject):
        def eventFilter(self, obj, ev):  # noqa: N802
            if ev.type() == QEvent.Type.Paint:
                print("PAINT", time.time(), flush=True)
                QTimer.singleShot(0, app.quit)
            return False

    f = F()
    win.installEventFilter(f)
    win.show()
    app.exec()


def child_app(data: str, epochs: int, drops: int, full: bool, transfer_epochs: int = 10) -> None:
    from PySide6.QtCore import QEvent, QMimeData, QObject, QPoint, QPointF, QStandardPaths, Qt, QTimer, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    QStandardPaths.setTestModeEnabled(True)
    tmp = tempfile.mkdtemp(prefix="catdog-bench-gui-")
    os.environ["CATDOG_CACHE_DIR"] = os.path.join(tmp, "cache")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from catdog_gui.gui.common import style
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    style.apply(app)
    win = MainWindow(Settings(os.path.join(tmp, "settings.ini")), models_folder=os.path.join(tmp, "models"))
    painted: list[float] = []

    class F(QObject):
        def eventFilter(self, obj, ev):  # noqa: N802
            if not painted and ev.type() == QEvent.Type.Paint:
                painted.append(time.time())
            return False

    f = F()
    win.installEventFilter(f)
    win.resize(1280, 800)
    win.show()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gui"))
    from eventloop import wait_until

    def wait(cond, timeout=900.0, what="condition"):
        wait_until(cond, timeout, what)

    wait(lambda: bool(painted), 60, "first paint")
    out: dict = {"paint": painted[0], "torch_at_paint": "torch" in sys.modules}
    if not full:
        print("RESULT " + json.dumps(out), flush=True)
        os._exit(0)  # the warm-up thread may still be importing torch: no teardown needed
    t = time.perf_counter()
    wait(lambda: win.ready, 300, "backend")
    out["backend_after_paint_s"] = time.perf_counter() - t

    class Lateness:
        def __init__(self):
            self.samples: list[float] = []
            self.last = None
            self.timer = QTimer(interval=10)
            self.timer.setTimerType(Qt.TimerType.PreciseTimer)
            self.timer.timeout.connect(self._tick)

        def _tick(self):
            now = time.perf_counter()
            if self.last is not None:
                self.samples.append(max(0.0, (now - self.last) * 1000 - 10))
            self.last = now

    idle = Lateness()
    idle.timer.start()
    end = time.monotonic() + 3.0
    wait(lambda: time.monotonic() >= end, 10)
    idle.timer.stop()
    out["idle"] = _stats(idle.samples)

    d, tt = win.dataset_tab, win.training_tab
    win.open_dataset_path(os.path.abspath(data))
    wait(lambda: d.dataset is not None or d.error, 600, "scan")
    if d.dataset is None:
        raise SystemExit(f"scan failed: {d.error}")
    d.train_action.click()
    pt = None
    files = sorted(p for p in Path(data).rglob("*.jpg"))[:: 97][:drops]

    def run(model: str, pretrained: bool, n_epochs: int) -> dict:
        """Train ``model`` from the Training tab (lateness sampled throughout), then drop photos on
        the Prediction tab with the model it saved."""
        nonlocal pt
        res: dict = {}
        tt.select_model(model)
        tt.form.transfer_check.setChecked(pretrained)
        tt.form.hyper["epochs"].setValue(n_epochs)
        tt.form.hyper["patience"].setValue(0)
        lat = Lateness()
        t = time.perf_counter()
        assert tt.start_training()
        lat.timer.start()
        wait(lambda: not tt.is_running(), 1800, "end of training")
        lat.timer.stop()
        res["training_s"] = time.perf_counter() - t
        res["training"] = _stats(lat.samples)
        saved = tt.run.model_path
        win.tabs.setCurrentIndex(2)
        pt = win.prediction_tab
        wait(lambda: win.current.path == saved and pt.predictor is not None, 120, "model in the Prediction tab")
        ready = []
        pt.results_ready.connect(lambda: ready.append(time.perf_counter()))
        lat_drop = []
        for p in files:
            mime = QMimeData()
            mime.setUrls([QUrl.fromLocalFile(str(p))])
            n = len(ready)
            t = time.perf_counter()
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                                        Qt.KeyboardModifier.NoModifier)
            QApplication.sendEvent(pt, enter)
            drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                              Qt.KeyboardModifier.NoModifier)
            QApplication.sendEvent(pt, drop)
            wait(lambda: len(ready) > n, 60, "drop result")
            lat_drop.append((ready[n] - t) * 1000)
        pt.results_ready.disconnect()
        res["drop_ms"] = _stats(lat_drop)
        from catdog_gui.core.inference.predictor import Predictor

        pred = Predictor(saved, "cpu")
        pred.predict(files[0])
        ref = []
        for p in files:
            t = time.perf_counter()
            pred.predict(p)
            ref.append((time.perf_counter() - t) * 1000)
        res["predict_ms"] = _stats(ref)
        win.tabs.setCurrentIndex(1)
        return res

    out["lenet5"] = run("lenet5", False, epochs)
    from catdog_gui.core.config import DEFAULT_PRETRAINED_MODEL

    out["transfer"] = run(DEFAULT_PRETRAINED_MODEL, True, transfer_epochs)
    out["transfer_model"] = DEFAULT_PRETRAINED_MODEL
    print("RESULT " + json.dumps(out), flush=True)
    os._exit(0)


# ------------------------------------------------------------------------------------------------


def launch(kind: str, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    t = time.time()
    p = subprocess.run([sys.executable, __file__, "--child", kind, *extra], env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"child {kind} failed:\n{p.stdout}\n{p.stderr[-3000:]}")
    if kind == "bare":
        paint = float(next(ln for ln in p.stdout.splitlines() if ln.startswith("PAINT")).split()[1])
        return {"launch_s": paint - t}
    res = json.loads(next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    res["launch_s"] = res["paint"] - t
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=DEFAULT_DATA)
    ap.add_argument("--launches", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--drops", type=int, default=10)
    ap.add_argument("--transfer-epochs", type=int, default=10)
    ap.add_argument("--child")
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    if args.child == "bare":
        return child_bare()
    if args.child == "app":
        return child_app(args.data, args.epochs, args.drops, args.full, args.transfer_epochs)

    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, QT_QPA_PLATFORM="
          f"{os.environ.get('QT_QPA_PLATFORM', 'offscreen')}", flush=True)
    bare, app = [], []
    for _ in range(args.launches):  # interleaved, so both see the same load
        bare.append(launch("bare")["launch_s"])
        r = launch("app")
        app.append(r["launch_s"])
        print(f"  launch: bare {bare[-1]:.2f}s, catdog {app[-1]:.2f}s (torch imported at paint: "
              f"{r['torch_at_paint']})", flush=True)
    full = launch("app", args.data, "--epochs", str(args.epochs), "--drops", str(args.drops),
                  "--transfer-epochs", str(args.transfer_epochs), "--full")
    print(f"  full run: {json.dumps(full)}", flush=True)

    print()
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")
    b, a = statistics.median(bare), statistics.median(app)
    print(f"{'measurement':<44} {'catdog':>22} {'reference':>22} {'ratio':>7}")
    print("-" * 98)
    print(f"{'launch to painted window, median (s)':<44} {a:>22.2f} {b:>22.2f} {a / b:>6.2f}x")
    idle = full["idle"]

    def trio(s):
        return f"{s['median']:.1f}/{s['p99']:.1f}/{s['max']:.0f}"

    for name, title in (("lenet5", "LeNet-5"), ("transfer", full["transfer_model"].replace("efficientnet_", "") +
                                                 " transfer")):
        r = full[name]
        tr, dr, pr = r["training"], r["drop_ms"], r["predict_ms"]
        print(f"{title + ': lateness med/p99/max (ms)':<44} {trio(tr):>22} {trio(idle):>22} "
              f"{tr['p99'] / max(idle['p99'], 0.1):>6.1f}x")
        print(f"{'  (catdog: during training; ref: idle)':<44} "
              f"{'%d ticks, %.0f s' % (tr['n'], r['training_s']):>22} {'%d ticks' % idle['n']:>22}")
        print(f"{title + ': drop to answer, median/max (ms)':<44} {'%.0f/%.0f' % (dr['median'], dr['max']):>22} "
              f"{'%.0f/%.0f' % (pr['median'], pr['max']):>22} {dr['median'] / pr['median']:>6.1f}x")
        print(f"{'  (ref: Predictor.predict, no GUI)':<44}")
    print(f"backend (torch) ready {full['backend_after_paint_s']:.2f} s after first paint")
    print("ratio = catdog / reference (lower is better; the references are floors, not competitors).")


if __name__ == "__main__":
    main()
