"""Does the review find the photos that hurt? (issue 18)

Run by hand (not collected by pytest)::

    python tests/benchmarks/bench_review.py                          # catdog-1800, seeds 0 1 2
    python tests/benchmarks/bench_review.py --per-class 100 --seeds 0 --errors 6 --copies 4 --junk 3   # a smoke run

Data: ``$CATDOG_TEST_DATA`` (default ``../shared/datasets/catdog-1800`` next to the repository),
copied into a temporary folder (``--per-class``: only the first N photos of each class). Per seed it
plants ``--errors`` photos moved to the wrong class (30), ``--copies`` resized (60-85%) and
recompressed (JPEG quality 55-80) copies of photos (15) and ``--junk`` non-animal images made here
(gradients, stripes, noise, shapes: 10), then runs :func:`catdog_gui.core.inference.review.review_dataset`
with the default pretrained backbone, and prints, for each finder, precision and recall:

- label errors: of the top ``--top`` (60) suggestions, how many are planted (precision) and how many
  planted errors are among them (recall). Goal: recall >= 80%.
- near-duplicates: a planted copy is found when a group holds it and its original; a false group
  is one holding no planted copy. Goal: >= 90% found, no false group on the data as it is (the
  "as it is" line: the review of the unmodified copy).
- outliers ("no class fits"): flagged junk images / flagged photos.

It also prints the measurement behind ``NEAR_DUPLICATE_THRESHOLD``: the lowest cosine similarity of
a planted copy to its original, and the highest similarity of each other photo (neither planted nor
in a group of the data as it is) to its nearest other photo (the 99.9th percentile and the maximum). Time: the whole review (features, folds,
finders) per seed, with the number of CPU threads torch uses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from catdog_gui.core.inference import review as rv
from catdog_gui.core.data.imageio import is_image_name


def data_dir() -> Path:
    value = os.environ.get("CATDOG_TEST_DATA")
    return Path(value) if value else Path(__file__).resolve().parents[3] / "shared" / "datasets" / "catdog-1800"


def copy_subset(src: Path, dst: Path, per_class: int | None) -> None:
    for cls in sorted(d for d in src.iterdir() if d.is_dir()):
        files = sorted(f for f in cls.iterdir() if is_image_name(f))[:per_class]
        (dst / cls.name).mkdir(parents=True)
        for f in files:
            shutil.copy2(f, dst / cls.name / f.name)


def junk_image(rng: np.random.Generator, size=(320, 240)) -> Image.Image:
    w, h = size
    kind = rng.integers(4)
    if kind == 0:  # a colour gradient
        a, b = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
        t = np.linspace(0, 1, w)[None, :, None]
        arr = np.broadcast_to(a * (1 - t) + b * t, (h, w, 3))
    elif kind == 1:  # stripes
        period = int(rng.integers(6, 40))
        x = (np.arange(w) // period) % 2
        arr = np.broadcast_to(np.where(x[None, :, None], rng.integers(0, 255, 3), rng.integers(0, 255, 3)), (h, w, 3))
    elif kind == 2:  # noise
        arr = rng.integers(0, 255, (h, w, 3))
    else:  # shapes on a plain background
        img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
        d = ImageDraw.Draw(img)
        for _ in range(6):
            x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
            box = (x0, y0, x0 + int(rng.integers(20, 120)), y0 + int(rng.integers(20, 120)))
            fill = tuple(int(v) for v in rng.integers(0, 255, 3))
            (d.ellipse if rng.integers(2) else d.rectangle)(box, fill=fill)
        return img
    return Image.fromarray(np.ascontiguousarray(arr).astype(np.uint8))


def plant(root: Path, seed: int, n_errors: int, n_copies: int, n_junk: int):
    rng = np.random.default_rng(seed)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    photos = [p for c in classes for p in sorted((root / c).iterdir())]
    picks = rng.choice(len(photos), n_errors + n_copies, replace=False)
    errors, copies, junk = set(), {}, set()
    for i in picks[:n_errors]:
        p = photos[i]
        other = [c for c in classes if c != p.parent.name][int(rng.integers(len(classes) - 1))]
        dst = root / other / f"planted_{p.name}"
        p.rename(dst)
        errors.add(str(dst))
    for i in picks[n_errors:]:
        p = photos[i]
        img = Image.open(p).convert("RGB")
        f = float(rng.uniform(0.6, 0.85))
        dst = p.with_name(f"copy_{p.stem}.jpg")
        img.resize((max(1, int(img.width * f)), max(1, int(img.height * f))), Image.BICUBIC).save(
            dst, "JPEG", quality=int(rng.integers(55, 81)))
        copies[str(dst)] = str(p)
    for k in range(n_junk):
        dst = root / classes[k % len(classes)] / f"junk_{k}.jpg"
        junk_image(rng).save(dst, "JPEG", quality=90)
        junk.add(str(dst))
    return errors, copies, junk


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:5.1f}%" if b else "   -  "


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--per-class", type=int, default=None, help="only the first N photos of each class")
    ap.add_argument("--errors", type=int, default=30)
    ap.add_argument("--copies", type=int, default=15)
    ap.add_argument("--junk", type=int, default=10)
    ap.add_argument("--top", type=int, default=60)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    import torch

    src = data_dir()
    if not (src / "cat").is_dir():
        raise SystemExit(f"no dataset at {src} (set CATDOG_TEST_DATA)")
    features = rv.pretrained_features(args.model)
    print(f"data {src} (per class: {args.per_class or 'all'}), torch threads {torch.get_num_threads()}, "
          f"threshold {rv.NEAR_DUPLICATE_THRESHOLD}")
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        clean = Path(tmp) / "clean"
        copy_subset(src, clean, args.per_class)
        t0 = time.perf_counter()
        base = rv.review_dataset(clean, features)
        print(f"as it is: {len(base.duplicate_groups)} near-duplicate group(s), {len(base.label_errors)} "
              f"suggested label errors, {len(base.outliers)} outliers ({time.perf_counter() - t0:.1f} s, "
              "features computed)")
        for g in base.duplicate_groups[:10]:
            print("   group: " + "  ".join(os.path.relpath(p, clean) for p in g))
        rows = []
        for seed in args.seeds:
            root = Path(tmp) / f"seed{seed}"
            shutil.copytree(clean, root)
            errors, copies, junk = plant(root, seed, args.errors, args.copies, args.junk)
            t0 = time.perf_counter()
            r = rv.review_dataset(root, features)
            secs = time.perf_counter() - t0
            top = [s.path for s in r.label_errors[:args.top]]
            hit = len(errors & set(top))
            groups = [set(g) for g in r.duplicate_groups]
            found = sum(any(c in g and o in g for g in groups) for c, o in copies.items())
            # groups the data already had (its own copies, listed under "as it is") are not false
            known = [{os.path.join(str(root), os.path.relpath(p, clean)) for p in g} for g in base.duplicate_groups]
            # a photo planted as a label error keeps its group (renamed planted_<name>): not false either
            moved = {os.path.join(str(root), os.path.relpath(p, root)).replace("planted_", ""): p for p in errors}
            known = [k | {moved[q] for q in moved if os.path.basename(q) in {os.path.basename(x) for x in k}}
                     for k in known]
            false = [g for g in groups if not (g & set(copies)) and not any(g <= k for k in known)]
            junk_groups = [g for g in false if g <= junk]  # generated images alike (two noise images...)
            false = [g for g in false if not g <= junk]
            false_groups = len(false)
            if junk_groups:
                print(f"   {len(junk_groups)} group(s) of generated non-animal images alike (not counted as false)")
            for g in false:
                print("   false group: " + "  ".join(os.path.relpath(p, root) for p in sorted(g)))
            flagged = {s.path for s in r.outliers}
            # the threshold's measurement: copy vs original, and every other photo vs its nearest neighbour
            paths = [str(p) for c in r.classes for p in sorted((root / c).iterdir())]
            f = features([Path(p) for p in paths], None, None)
            x = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
            idx = {p: i for i, p in enumerate(paths)}
            copy_sims = [float(x[idx[c]] @ x[idx[o]]) for c, o in copies.items()]
            planted = {idx[c] for c in copies} | {idx[o] for o in copies.values()}
            planted |= {idx[p] for k in known for p in k if p in idx}  # the data's own copies
            planted |= {idx[p] for p in junk}
            sim = x @ x.T
            np.fill_diagonal(sim, -1)
            rest = [i for i in range(len(paths)) if i not in planted]
            nn = sim[np.ix_(rest, rest)].max(1)
            rows.append((seed, hit, len(top), found, len(groups), false_groups, len(flagged & junk), len(flagged),
                         secs, min(copy_sims) if copy_sims else float("nan"), float(np.percentile(nn, 99.9)),
                         float(nn.max())))
            print(f"seed {seed}: label errors {hit}/{len(errors)} planted in the top {len(top)} "
                  f"(recall {pct(hit, len(errors))}, precision {pct(hit, len(top))}); near-duplicates "
                  f"{found}/{len(copies)} found (recall {pct(found, len(copies))}), {len(groups)} groups, "
                  f"{false_groups} false (precision {pct(len(groups) - false_groups, len(groups))}); outliers "
                  f"{len(flagged & junk)}/{len(junk)} junk flagged (recall {pct(len(flagged & junk), len(junk))}), "
                  f"{len(flagged)} flagged (precision {pct(len(flagged & junk), len(flagged))}); {secs:.1f} s; "
                  f"similarity: copies >= {rows[-1][9]:.3f}, distinct photos' nearest: p99.9 {rows[-1][10]:.3f}, "
                  f"max {rows[-1][11]:.3f}")
        if rows:
            a = np.array([r[1:9] for r in rows], dtype=float)
            print(f"mean over {len(rows)} seed(s): label-error recall@{args.top} {100 * a[:, 0].mean() / args.errors:.1f}%"
                  f", near-duplicate recall {100 * a[:, 2].mean() / max(1, args.copies):.1f}%, false groups "
                  f"{a[:, 4].mean():.1f}, outlier recall {100 * a[:, 5].mean() / max(1, args.junk):.1f}%, "
                  f"{a[:, 7].mean():.1f} s per review")


if __name__ == "__main__":
    main()
