"""How fast is the Network tab's explainer? Opening the overview for a photo, and the kernel animation.

Run by hand (not collected by pytest), on 2 cores::

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_explainer.py            # ~1 min
    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_explainer.py --tiny     # smoke: a few seconds
    xvfb-run -a python tests/benchmarks/bench_explainer.py                          # with a real X server

The process is pinned to 2 CPU cores (when the machine has them) and torch to 2 threads. The model is
a LeNet-5 with seeded random weights saved as a model file (the arithmetic costs the same trained or
not), or ``--model`` a LeNet-5 model file; the photo is the first of ``$CATDOG_TEST_DATA``'s dogs,
or a generated one.

Rows:

* ``open overview``: from ``ExplainerView.set_photo`` (what the tab calls when a photo arrives) until
  the overview and the detail of the first unit are painted (the unit arithmetic of every layer on a
  worker thread, then the colour images and a full repaint). Median of ``--repeats`` (the first
  open, with its one-time costs, shown apart).
  Reference in the same run: one ``Predictor.predict`` of the same photo (decode + forward). Goal:
  < 300 ms.
* ``animate C1`` / ``animate C3``: the kernel animation at 30 values/s for ``--frames`` frames (each
  frame: select the next unit, fill the map, rebuild the detail's HTML, repaint). ``fps`` is frames
  per second achieved; ``late p99/max`` is how late a 4 ms probe timer fired while it ran (the event
  loop's lateness: what a user's click would wait). Reference: the same probe with the animation
  paused (``idle``). One step runs before each, so one-time costs (the first use of the monospace
  font, ~100 ms once per session) are not counted. Goal: 30 frames/s with lateness <= 16 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "gui"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _pin() -> str:
    try:
        cores = sorted(os.sched_getaffinity(0))[:2]
        os.sched_setaffinity(0, cores)
        return f"cores {cores}"
    except (AttributeError, OSError):
        return "cores not pinned"


def _model_file(folder: Path) -> Path:
    import torch

    from catdog_gui.core.models import create_model
    from catdog_gui.core.models.registry import HALF_MEAN, HALF_STD
    from catdog_gui.core.storage.modelfile import save_model

    torch.manual_seed(0)
    model = create_model("lenet5", 2, 32)
    first = {k: v + 0.01 for k, v in model.state_dict().items()}
    return save_model(folder / "bench.pt", model, model_name="lenet5", classes=["cat", "dog"], image_size=32,
                      mean=HALF_MEAN, std=HALF_STD, first_epoch=(1, first))


def _photo(folder: Path) -> Path:
    data = os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" / "datasets" / "catdog-1800"))
    dogs = sorted((Path(data) / "dog").glob("*.jpg")) if Path(data, "dog").is_dir() else []
    if dogs:
        return dogs[0]
    from helpers import make_image

    return make_image(folder / "photo.png", (180, 120, 60), size=(200, 160))


class Probe:
    """A 4 ms timer that records how late each tick fired (the event loop's lateness)."""

    def __init__(self):
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(4)
        self.timer.timeout.connect(self._tick)
        self.late: list[float] = []
        self._last = 0.0

    def start(self):
        self.late = []
        self._last = time.perf_counter()
        self.timer.start()

    def _tick(self):
        now = time.perf_counter()
        self.late.append(max(0.0, (now - self._last) * 1000 - 4.0))
        self._last = now

    def stop(self) -> tuple[float, float]:
        self.timer.stop()
        lat = sorted(self.late) or [0.0]
        return lat[min(len(lat) - 1, int(0.99 * len(lat)))], lat[-1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a LeNet-5 model file (default: a seeded one made here)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--frames", type=int, default=300, help="animation frames per layer (300 = 10 s)")
    ap.add_argument("--tiny", action="store_true", help="smoke run: 3 repeats, 20 frames")
    args = ap.parse_args()
    if args.tiny:
        args.repeats, args.frames = 4, 20
    pinned = _pin()
    import torch

    torch.set_num_threads(2)
    from eventloop import wait_until
    from PySide6.QtWidgets import QApplication

    from catdog_gui.core.inference.predictor import Predictor
    from catdog_gui.gui.network.explainer_view import ExplainerView

    app = QApplication.instance() or QApplication(sys.argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-explainer-"))
    model_path = Path(args.model) if args.model else _model_file(folder)
    photo = _photo(folder)
    predictor = Predictor(model_path, "cpu")
    array = predictor.preprocess(photo)

    view = ExplainerView()
    view.resize(1280, 800)
    view.show()
    view.set_predictor(predictor)
    opened, reference = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        predictor.predict(photo)
        reference.append((time.perf_counter() - t0) * 1000)
        done: list[int] = []
        def opened_one(d=done):
            d.append(1)

        view.explained.connect(opened_one)
        t0 = time.perf_counter()
        view.set_photo(array, photo.name)
        wait_until(lambda d=done: bool(d), 60, "the explanation")
        view.repaint()  # the overview and the detail, painted now
        app.processEvents()
        opened.append((time.perf_counter() - t0) * 1000)
        view.explained.disconnect(opened_one)

    first, opened = opened[0], opened[1:] or opened
    rows = [("open overview", f"{statistics.median(opened):.0f} ms", f"first {first:.0f} ms",
             f"predict {statistics.median(reference):.0f} ms",
             f"x{statistics.median(opened) / max(statistics.median(reference), 1e-9):.1f}",
             "ok" if statistics.median(opened) < 300 else "SLOW")]
    probe = Probe()
    probe.start()
    pause_until = time.perf_counter() + 1.0
    wait_until(lambda: time.perf_counter() >= pause_until, 5)
    idle = probe.stop()
    rows.append(("idle (reference)", "", "", "", "", f"late p99 {idle[0]:.1f} / max {idle[1]:.1f} ms"))
    for layer, unit in (("C3", ("c3", 0, 0, 0)), ("C1", ("c1", 0, 0, 0))):
        view.overview.select(*unit)
        anim = view.animation
        anim.speed.setValue(30)
        frames: list[float] = []
        anim.step()  # one frame first: the one-time costs (the monospace font's first use) are not counted
        app.processEvents()
        def count(*_a, f=frames):
            f.append(time.perf_counter())

        anim.frame.connect(count)
        probe.start()
        anim.play()
        wait_until(lambda f=frames, a=anim: len(f) >= args.frames or not a.playing, 120, "the frames")
        anim.pause()
        late = probe.stop()
        anim.frame.disconnect(count)  # only ours: the view's own slot stays
        n = len(frames)
        fps = (n - 1) / (frames[-1] - frames[0]) if n > 1 else 0.0
        ok = fps >= 29.0 and late[0] <= 16.0
        rows.append((f"animate {layer}", f"{fps:.1f} fps", f"{n} frames", "", "",
                     f"late p99 {late[0]:.1f} / max {late[1]:.1f} ms {'ok' if ok else 'SLOW'}"))
    view.shutdown()
    print(f"explainer benchmark: {pinned}, torch threads {torch.get_num_threads()}, "
          f"Qt platform {app.platformName()}, photo {photo.name}")
    width = max(len(r[0]) for r in rows)
    for r in rows:
        print("  ".join([r[0].ljust(width)] + [c.ljust(12) for c in r[1:]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
