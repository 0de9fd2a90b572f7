"""Soak test: the ten-cycle GUI session of issue 10, printing threads and memory per cycle.

Each cycle opens a main window, scans the dataset, trains LeNet-5 (odd cycles: a few epochs to the
end; even cycles: stopped after the first batches, as a person pressing Stop), opens the new model in
the Prediction tab and classifies photos, then closes the window. A healthy app shows flat thread
counts, RSS that levels off after the first cycles, no live windows left behind, and no batch
arriving on the screen after a run has finished ("stale").

Run by hand:  QT_QPA_PLATFORM=offscreen python tests/benchmarks/soak_gui.py [DATA] [--cycles 10] [--epochs 3]
DATA defaults to a small synthetic two-class set made in a temporary folder.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # peak, where /proc is missing

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024 * 1024)


def os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def make_data(root: Path, n: int = 60) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for ci, (c, color) in enumerate((("cat", (170, 60, 60)), ("dog", (60, 60, 170)))):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = np.clip(np.array(color)[None, None] + rng.normal(0, 30, (72, 96, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / c / f"{c}_{i:03d}.jpg", quality=90)
    return root


def wait_for(app, signal, timeout: float, action=None):
    """Run ``action`` and spin the event loop until ``signal`` fires; return its arguments."""
    got = []
    slot = lambda *a: got.append(a)  # noqa: E731
    signal.connect(slot)
    try:
        if action is not None:
            action()
        end = time.monotonic() + timeout
        while not got:
            if time.monotonic() > end:
                raise TimeoutError(f"no {signal} within {timeout:.0f} s")
            app.processEvents()
            time.sleep(0.005)
    finally:
        signal.disconnect(slot)
    return got[0]


def spin(app, seconds: float, until=None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        app.processEvents()
        time.sleep(0.005)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", help="dataset folder (default: synthetic)")
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="catdog-soak-"))
    os.environ.setdefault("CATDOG_CACHE_DIR", str(work / "cache"))
    data = Path(args.data) if args.data else make_data(work / "data")
    photos = sorted((data / "cat").glob("*"))[:4] + sorted((data / "dog").glob("*"))[:4]
    (work / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    photos.append(work / "broken.jpg")

    app = QApplication.instance() or QApplication(sys.argv)
    print(f"soak: {args.cycles} cycles on {data}, LeNet-5, {args.epochs} epochs (even cycles stopped early)")
    print(f"{'cycle':>5} {'run':>9} {'epochs':>6} {'predicted':>9} {'errors':>6} {'stale':>5} {'seconds':>7} "
          f"{'py threads':>10} {'os threads':>10} {'RSS MB':>8} {'widgets':>7}")
    base = None
    last_model = None
    for cycle in range(1, args.cycles + 1):
        t0 = time.perf_counter()
        win = MainWindow(Settings(work / "settings.ini"), models_folder=str(work / "models"))
        win.show()
        win.ensure_backend()
        ds = win.dataset_tab
        wait_for(app, ds.scan_finished, 120, lambda: ds.set_folders(str(data)))
        t = win.training_tab
        t.select_model("lenet5")
        t.form.hyper["epochs"].setValue(args.epochs)
        t.form.hyper["batch_size"].setValue(16)
        t.form.hyper["patience"].setValue(0)
        stop_early = cycle % 2 == 0

        def start():
            assert t.start_training(), "Train did not start"
            if stop_early:
                spin(app, 60, until=lambda: t.run is not None and len(t.run.batch_x) >= 2)
                t.stop()

        (result,) = wait_for(app, t.run_finished, 300, start)
        status = result.status
        seen = len(t.run.batch_x)
        spin(app, 0.3)
        stale = len(t.run.batch_x) - seen  # batches that reached the screen after the run ended
        predicted = failed = 0
        pt = win.prediction_tab
        model = result.best_path or last_model
        if model:  # a new model reaches the Prediction tab by itself; after a Stop, open the last one
            last_model = model
            if not result.best_path:
                win.set_model(model)
            spin(app, 60, until=lambda: pt.predictor is not None and pt.model_path == model)
            wait_for(app, pt.results_ready, 60, lambda: pt.classify_paths([str(p) for p in photos]))
            spin(app, 30, until=lambda: not pt.is_busy())
            predicted = sum(1 for c in pt.cards if c.prediction is not None)
            failed = sum(1 for c in pt.cards if c.error)
        epochs = len(result.history)
        win.close()
        win.deleteLater()
        del win, ds, t, pt, start
        spin(app, 0.3)
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        gc.collect()
        windows = len(app.topLevelWidgets())  # Qt widgets still alive: 0 when the window was freed
        rss = rss_mb()
        base = base or rss
        print(f"{cycle:>5} {status:>9} {epochs:>6} {predicted:>9} {failed:>6} {stale:>5} {time.perf_counter() - t0:>7.1f} "
              f"{threading.active_count():>10} {os_threads():>10} {rss:>8.0f} {windows:>7}", flush=True)
    print(f"RSS growth from cycle 1: {rss - base:+.0f} MB; threads left: {threading.active_count()} Python, "
          f"{os_threads()} OS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
