"""The rescan after a camera burst: how long until the new photos are in the dataset, for a large folder.

Run by hand (not by pytest), with nothing else running:
    python tests/benchmarks/bench_rescan.py [DATA] [--sizes 2000 25000] [--burst 10] [--folder DIR]

Builds a folder of N photos per size (copies of DATA's JPEGs, each with a few bytes of its own after
the image so that every file differs, as photos do) under ``--folder`` (default a temporary folder,
removed afterwards), then times ``scan_dataset`` in one process:

* ``first``: the first scan (every header read, equal-sized files hashed; the page cache is warm,
  as it is for a folder just browsed);
* ``again``: the same folder unchanged;
* ``after burst``: ``--burst`` new photos added to one class, as the Camera panel's recording does;
* ``reference``: the same folder scanned once more with the scan's file memory emptied, which is
  what every rescan cost before it had one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def build(data: Path, out: Path, n: int) -> None:
    from catdog_gui.core.data.layouts import list_images

    sources = {c: list_images(data / c)[0] for c in ("cat", "dog")}
    for c, files in sources.items():
        (out / c).mkdir(parents=True, exist_ok=True)
        for i in range(n // 2):
            src = files[i % len(files)]
            with open(src, "rb") as f, open(out / c / f"{c}_{i:05d}.jpg", "wb") as g:
                g.write(f.read())
                g.write(i.to_bytes(4, "little"))  # after the JPEG's end: every file its own bytes


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared/datasets/catdog-1800")))
    ap.add_argument("--sizes", type=int, nargs="*", default=[2000, 25000])
    ap.add_argument("--burst", type=int, default=10)
    ap.add_argument("--folder", default=None)
    a = ap.parse_args()

    from catdog_gui.core.data.scan import FILE_MEMO, scan_dataset

    base = Path(a.folder or tempfile.mkdtemp(prefix="catdog-bench-rescan-"))
    print(f"{'photos':>7} {'first s':>8} {'again s':>8} {'after burst s':>14} {'reference s':>12} {'ratio':>6}")
    try:
        for n in a.sizes:
            folder = base / f"n{n}"
            build(Path(a.data), folder, n)
            FILE_MEMO.clear()
            first = timed(lambda: scan_dataset(folder))
            again = timed(lambda: scan_dataset(folder))
            cats = sorted((folder / "cat").iterdir())
            for i in range(a.burst):
                shutil.copy(cats[i], folder / "cat" / f"burst-{i:03d}.jpg")
                with open(folder / "cat" / f"burst-{i:03d}.jpg", "ab") as f:
                    f.write(b"burst" + i.to_bytes(4, "little"))
            after = timed(lambda: scan_dataset(folder))
            FILE_MEMO.clear()
            ref = timed(lambda: scan_dataset(folder))
            print(f"{n:>7} {first:>8.2f} {again:>8.2f} {after:>14.2f} {ref:>12.2f} {ref / after:>5.1f}x", flush=True)
    finally:
        if a.folder is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
