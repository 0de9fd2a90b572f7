"""Scale: how scan, decode, epochs, a second run and memory grow with the number of images.

Run by hand:
    python tests/benchmarks/bench_scale.py [--sizes 2000 10000 25000] [--epochs 3] [--pool DIR]

Synthetic photos (two classes, JPEG quality 85, width 300-500 x height 250-450, smooth colour
fields + shapes + grain so file sizes vary like photos: ~10-50 KB) are generated once into
``--pool`` (default /tmp/catdog-scale-pool, kept between runs; generating 25,000 takes a few
minutes on 2 cores). A folder of N images is N hard links into the pool (same files, no copies).

Each size runs in a fresh subprocess (so peak RSS is that size's own) with an empty disk-cache
folder: LeNet-5, batch 32, ``--epochs`` epochs, exactly as ``catdog train`` runs it. Then a second
fresh subprocess trains on the same folder again (1 epoch): the disk cache is warm, and
"2nd run: 1st batch" is the time from ``Trainer.fit`` to the first finished batch (scan + cache
key + memory-map + model). Peak RSS is ``ru_maxrss`` of each child (``RUSAGE_SELF`` reported by the
child; the parent cross-checks with ``RUSAGE_CHILDREN``).

Memory bound: the decoded cache is N x 3 x S x S bytes (LeNet-5: S=32, 3 KB per image, 77 MB for
25,000); it lives in RAM up to ``CATDOG_CACHE_RAM_MB`` (2048 MB) and in a memory-mapped file above
that, so RSS is bounded by ~ interpreter + torch (~350 MB) + min(cache, 2 GB) + per-file metadata
(~1 KB per file) whatever N is.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("cat", "dog")


# ------------------------------------------------------------------------------------------------
# synthetic photos


_NOISE = None


def _make(args) -> int:
    """One synthetic photo: a smooth random colour field (a coarse grid upsampled), a few shapes,
    and grain cropped at a random offset from a shared noise tile (cheap, and every file differs)."""
    global _NOISE
    path, seed = args
    import numpy as np
    from PIL import Image, ImageDraw

    if _NOISE is None:
        _NOISE = np.random.default_rng(12345).normal(0, 1, (700, 700, 1)).astype(np.float32)
    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(300, 501)), int(rng.integers(250, 451))
    coarse = rng.integers(0, 256, (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3), dtype=np.uint8)
    im = Image.fromarray(coarse, "RGB").resize((w, h), Image.BICUBIC)
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(2, 12))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=color)
    oy, ox = int(rng.integers(0, 700 - h)), int(rng.integers(0, 700 - w))
    grain = _NOISE[oy:oy + h, ox:ox + w] * float(rng.uniform(2, 9))
    arr = np.asarray(im, dtype=np.float32) + grain
    part = path + ".part"
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").save(part, "JPEG", quality=85)
    os.replace(part, path)  # an interrupted generation keeps what it finished
    return os.path.getsize(path)


def ensure_pool(pool: Path, n: int) -> None:
    """``pool/{cat,dog}/NNNNN.jpg``: n images in all (generated once, extended when more are asked)."""
    todo = []
    for i in range(n):
        cls = CLASSES[i % 2]
        p = pool / cls / f"{cls}.{i // 2:05d}.jpg"
        if not p.exists():
            todo.append((str(p), i))
    if not todo:
        return
    for c in CLASSES:
        (pool / c).mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    print(f"generating {len(todo)} JPEGs into {pool} ...", flush=True)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for _ in ex.map(_make, todo, chunksize=64):
            pass
    print(f"  generated in {time.perf_counter() - t:.0f} s", flush=True)


def folder_of(pool: Path, n: int, base: Path) -> Path:
    """A folder with the pool's first n images (hard links: the same inodes, no copy)."""
    out = base / f"n{n}"
    if out.exists() and sum(1 for _ in out.rglob("*.jpg")) == n:
        return out
    for i in range(n):
        cls = CLASSES[i % 2]
        src = pool / cls / f"{cls}.{i // 2:05d}.jpg"
        dst = out / cls / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            try:
                os.link(src, dst)
            except OSError:
                dst.symlink_to(src)
    return out


# ------------------------------------------------------------------------------------------------
# one measurement, in a child process


def child(folder: str, epochs: int) -> None:
    t_start = time.perf_counter()
    import torch  # noqa: F401  (imported before the clock starts for the run itself)

    from catdog_gui.core.data.scan import scan_dataset
    from catdog_gui.core.events import BatchEnd, EpochEnd, RunStarted
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    t_import = time.perf_counter() - t_start
    out: dict = {"import_s": t_import}
    if epochs > 1:  # the scan alone (the Dataset tab's wait)
        t = time.perf_counter()
        scan_dataset(folder, seed=0)
        out["scan_s"] = time.perf_counter() - t
    marks: dict = {"epochs": []}
    t0 = time.perf_counter()

    def cb(e):
        now = time.perf_counter() - t0
        if isinstance(e, RunStarted):
            marks["started"] = now
            out["n_train"], out["n_val"] = e.n_train, e.n_val
        elif isinstance(e, BatchEnd) and "batch" not in marks:
            marks["batch"] = now
        elif isinstance(e, EpochEnd):
            marks["epochs"].append((now, e.seconds, e.images_per_s))

    cfg = TrainConfig.for_model("lenet5", epochs=epochs, patience=0, seed=0)
    result = Trainer(cfg, [cb]).fit(folder)
    if not result.ok:
        raise SystemExit(f"{result.status}: {result.reason}\n{result.traceback}")
    out["total_s"] = time.perf_counter() - t0
    out["to_started_s"] = marks["started"]
    out["first_batch_s"] = marks["batch"]
    out["epoch1_s"] = marks["epochs"][0][0]
    later = marks["epochs"][1:]
    if later:
        out["later_s"] = sum(e[1] for e in later) / len(later)
        out["later_ips"] = sum(e[2] for e in later) / len(later)
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


def run_child(folder: Path, epochs: int, cache_dir: Path) -> dict:
    env = dict(os.environ, CATDOG_CACHE_DIR=str(cache_dir), PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    p = subprocess.run([sys.executable, __file__, "--child", str(folder), "--epochs", str(epochs)],
                       env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"child failed:\n{p.stdout}\n{p.stderr}")
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))
    res = json.loads(line[7:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res["children_maxrss_mb"] = after / 1024 if after > before else None
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[2000, 10000, 25000])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--pool", default=os.path.join(tempfile.gettempdir(), "catdog-scale-pool"))
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return

    pool = Path(args.pool)
    ensure_pool(pool / "all", max(args.sizes))
    sizes_kb = [p.stat().st_size / 1024 for p in list((pool / "all" / "cat").iterdir())[:2000]]
    print(f"pool: {pool} (JPEG sizes {min(sizes_kb):.0f}-{max(sizes_kb):.0f} KB, mean "
          f"{sum(sizes_kb) / len(sizes_kb):.0f} KB); {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
          flush=True)
    rows = []
    for n in args.sizes:
        folder = folder_of(pool / "all", n, pool)
        with tempfile.TemporaryDirectory(prefix="catdog-scale-cache-") as cache:
            first = run_child(folder, args.epochs, Path(cache))
            second = run_child(folder, 1, Path(cache))
        rows.append((n, first, second))
        print(f"  {n}: {json.dumps(first)}\n  {n} second run: {json.dumps(second)}", flush=True)

    print()
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")
    hdr = (f"{'images':>7} {'scan s':>7} {'to 1st epoch s':>14} {'epoch 1 s':>9} {'later epoch s':>13} "
           f"{'later img/s':>11} {'peak RSS MB':>11} {'2nd run 1st batch s':>19} {'2nd run RSS MB':>14}")
    print(hdr)
    print("-" * len(hdr))
    for n, f, s in rows:
        print(f"{n:>7} {f['scan_s']:>7.2f} {f['to_started_s']:>14.2f} {f['epoch1_s']:>9.2f} "
              f"{f.get('later_s', float('nan')):>13.2f} {f.get('later_ips', float('nan')):>11.0f} "
              f"{f['maxrss_mb']:>11.0f} {s['first_batch_s']:>19.2f} {s['maxrss_mb']:>14.0f}")
    print()
    print("scan s: scan_dataset alone (listing, header check of every file, duplicate detection). "
          "to 1st epoch: Trainer.fit until RunStarted (scan + decode, cold cache). epoch 1: Trainer.fit "
          "until the first epoch's end (incl. validation). later epoch: train + validation. Times exclude "
          "the interpreter start and `import torch` (~"
          f"{rows[0][1]['import_s']:.1f} s here).")
    if len(rows) > 1:
        (n0, f0, _), (n1, f1, _) = rows[0], rows[-1]
        k = n1 / n0
        print(f"growth {n0} -> {n1} images ({k:.1f}x): scan {f1['scan_s'] / f0['scan_s']:.1f}x, "
              f"epoch 1 {f1['epoch1_s'] / f0['epoch1_s']:.1f}x, later epoch "
              f"{f1.get('later_s', 0) / max(f0.get('later_s', 1e-9), 1e-9):.1f}x, "
              f"peak RSS {f1['maxrss_mb'] / f0['maxrss_mb']:.2f}x")


if __name__ == "__main__":
    main()
