"""The Dataset tab's photo grid on many photos: GUI lateness while flinging the scrollbar, and memory.

Run by hand (offscreen Qt by default; ``xvfb-run -s "-screen 0 1280x800x24"`` works too):
    python tests/benchmarks/bench_grid.py [--sizes 2000 25000] [--seconds 6]

For each size, a folder of that many tiny synthetic photos (unique JPEGs, a few aspect ratios, cat/
and dog/, plus one unreadable file per 500) is made in a temporary folder, scanned once, and shown
in a :class:`~catdog_gui.gui.dataset.photo_grid.PhotoGrid` in a 1280x800 window. Then the scrollbar is
flung for ``--seconds``: a 16 ms timer moves it in fast sweeps top to bottom and back, with random
jumps, as a person dragging the thumb or spinning a wheel would.

* **lateness**: a 10 ms ``PreciseTimer``'s lateness (as bench_gui.py measures it) during the fling:
  what a click or a repaint would wait. Median, p99 and max, in ms.
* **RSS**: the process's resident memory after the fling once the decoders are idle, and its peak
  (VmHWM), in MB: the thumbnail cache is bounded (``CATDOG_THUMB_CACHE_MB``), so memory should not
  grow with the number of photos beyond the per-photo bookkeeping.
* **decoded / cached**: thumbnails decoded during the fling, and the cache's size at the end.

References in the same run, same window, same fling: an **empty QListView** (the event loop and
scrolling with nothing to draw) and a **plain QListView** of as many text items (Qt's own icon-mode
layout and painting, no thumbnails). Each measurement runs in a fresh interpreter, so RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _stats(v: list[float]) -> dict:
    q = sorted(v) or [0.0]
    return {"n": len(v), "median": statistics.median(q), "p99": q[int(0.99 * (len(q) - 1))], "max": q[-1]}


def _mem() -> dict:
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024
    except OSError:  # not Linux: peak only
        import resource

        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def make_folder(root: Path, n: int) -> Path:
    """``n`` unique small JPEGs in cat/ and dog/ (a few sizes), plus one unreadable file per 500."""
    from PIL import Image

    rng = random.Random(n)
    sizes = [(64, 48), (48, 64), (60, 60), (80, 45)]
    for i in range(n):
        cls = "cat" if i % 2 == 0 else "dog"
        w, h = sizes[i % len(sizes)]
        im = Image.new("RGB", (w, h), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        im.putpixel((i % w, (i // w) % h), (i % 256, (i // 256) % 256, 255))  # unique bytes: no duplicates
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        im.save(d / f"{cls}_{i:06d}.jpg", quality=70)
    for j in range(max(1, n // 500)):
        (root / "dog" / f"broken_{j}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 30)
    return root


# ------------------------------------------------------------------------------------------------
# the child: one view, one fling


def child(mode: str, folder: str, n: int, seconds: float) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QObject, QSize, QStringListModel, Qt, QTimer
    from PySide6.QtWidgets import QApplication, QListView, QVBoxLayout, QWidget

    sys.path.insert(0, str(ROOT))
    from tests.gui.eventloop import wait_until

    app = QApplication(sys.argv[:1])
    from catdog_gui.gui.common import style

    style.apply(app)
    out: dict = {"mode": mode, "n": n}
    win = QWidget()
    win.resize(1280, 800)
    lay = QVBoxLayout(win)
    grid = None
    if mode == "grid":
        from catdog_gui.core.data.scan import scan_dataset
        from catdog_gui.gui.dataset.photo_grid import PhotoGrid

        t = time.perf_counter()
        ds = scan_dataset(folder)
        out["scan_s"] = time.perf_counter() - t
        grid = PhotoGrid()
        lay.addWidget(grid)
        t = time.perf_counter()
        grid.set_dataset(ds)
        out["set_dataset_s"] = time.perf_counter() - t
        out["rows"] = grid.model.rowCount()
        view = grid.view
    else:
        from catdog_gui.gui.dataset.photo_grid import CELL_H, CELL_W

        view = QListView()
        view.setViewMode(QListView.ViewMode.IconMode)
        view.setMovement(QListView.Movement.Static)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setUniformItemSizes(True)
        view.setGridSize(QSize(CELL_W + 4, CELL_H + 4))
        view.setLayoutMode(QListView.LayoutMode.Batched)
        view.setBatchSize(2000)
        view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        if mode == "plain":
            model = QStringListModel([f"photo_{i:06d}.jpg" for i in range(n)])
            view.setModel(model)
            out["rows"] = n
        else:
            out["rows"] = 0
        lay.addWidget(view)
    win.show()
    t = time.perf_counter()
    wait_until(lambda: win.isVisible(), 10, "window")
    bar = view.verticalScrollBar()
    wait_until(lambda: out["rows"] == 0 or bar.maximum() > 0, 120, "layout")
    out["layout_s"] = time.perf_counter() - t

    class Paints(QObject):
        count = 0

        def eventFilter(self, obj, ev):  # noqa: N802
            if ev.type() == QEvent.Type.Paint:
                Paints.count += 1
            return False

    paints = Paints()
    view.viewport().installEventFilter(paints)

    samples: list[float] = []
    last = [None]

    def probe() -> None:
        now = time.perf_counter()
        if last[0] is not None:
            samples.append(max(0.0, (now - last[0]) * 1000 - 10))
        last[0] = now

    rng = random.Random(0)
    state = {"dir": 1, "ticks": 0}

    def fling() -> None:
        state["ticks"] += 1
        top = max(bar.maximum(), 1)
        if state["ticks"] % 60 == 0:  # about once a second: jump somewhere
            bar.setValue(rng.randrange(top + 1))
            return
        step = max(top // 90, bar.pageStep())  # a whole sweep in ~1.5 s (at least a page a tick)
        v = bar.value() + state["dir"] * step
        if v >= top or v <= 0:
            state["dir"] *= -1
        bar.setValue(min(max(v, 0), top))

    pt = QTimer(interval=10)
    pt.setTimerType(Qt.TimerType.PreciseTimer)
    pt.timeout.connect(probe)
    ft = QTimer(interval=16)
    ft.setTimerType(Qt.TimerType.PreciseTimer)
    ft.timeout.connect(fling)
    end = time.monotonic() + seconds
    pt.start()
    ft.start()
    wait_until(lambda: time.monotonic() >= end, seconds + 30, "fling")
    ft.stop()
    pt.stop()
    out["lateness"] = _stats(samples)
    out["paints"] = Paints.count
    out["flings"] = state["ticks"]
    if grid is not None:
        wait_until(lambda: grid.model.loader.pending() == 0, 30, "decoders idle")
        out["decoded"] = grid.model.loader.decoded
        out["cached_mb"] = grid.model.cache.nbytes / 2**20
        out["cached_n"] = len(grid.model.cache)
    app.processEvents()
    mem = _mem()
    out["rss_mb"] = mem.get("VmRSS")
    out["peak_mb"] = mem.get("VmHWM")
    print("RESULT " + json.dumps(out), flush=True)
    if grid is not None:
        grid.shutdown()
    os._exit(0)


def run_child(mode: str, folder: str, n: int, seconds: float) -> dict:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    p = subprocess.run([sys.executable, __file__, "--child", mode, folder, str(n), str(seconds)],
                       capture_output=True, text=True, env=env, timeout=600)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"child {mode} {n} failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 25000])
    ap.add_argument("--seconds", type=float, default=6.0, help="how long each fling lasts")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic folders (printed)")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        mode, folder, n, seconds = a.child
        child(mode, folder, int(n), float(seconds))
        return
    tmp = Path(tempfile.mkdtemp(prefix="catdog-bench-grid-"))
    rows = []
    try:
        rows.append(run_child("empty", "-", 0, a.seconds))
        for n in a.sizes:
            t = time.perf_counter()
            folder = make_folder(tmp / f"photos-{n}", n)
            made = time.perf_counter() - t
            rows.append(run_child("plain", str(folder), n, a.seconds))
            r = run_child("grid", str(folder), n, a.seconds)
            r["made_s"] = made
            rows.append(r)
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"folders kept in {tmp}")

    print(f"\nbench_grid: {a.seconds:g} s of flinging the scrollbar in a 1280x800 window "
          f"(QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM', 'offscreen')}, {os.cpu_count()} CPUs)")
    print(f"{'view':<28} {'rows':>7} {'lateness ms: median':>20} {'p99':>7} {'max':>7} {'RSS MB':>7} "
          f"{'peak MB':>8} {'paints':>7} {'decoded':>8} {'cache MB':>9}")
    names = {"empty": "reference: empty QListView", "plain": "reference: text QListView", "grid": "photo grid"}
    for r in rows:
        lat = r["lateness"]
        dec = f"{r['decoded']:>8,}" if "decoded" in r else f"{'':>8}"
        cache = f"{r['cached_mb']:>9.1f}" if "cached_mb" in r else f"{'':>9}"
        print(f"{names[r['mode']]:<28} {r['rows']:>7,} {lat['median']:>20.2f} {lat['p99']:>7.2f} {lat['max']:>7.1f} "
              f"{r['rss_mb'] or 0:>7.0f} {r['peak_mb'] or 0:>8.0f} {r['paints']:>7,} {dec} {cache}")
    for r in rows:
        if r["mode"] == "grid":
            print(f"  grid on {r['n']:,} photos: made in {r['made_s']:.1f} s, scanned in {r['scan_s']:.1f} s, "
                  f"model filled in {r['set_dataset_s'] * 1000:.0f} ms, laid out in {r['layout_s']:.2f} s")


if __name__ == "__main__":
    main()
