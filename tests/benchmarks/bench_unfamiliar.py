"""Unfamiliar photos and calibrated probabilities, per model kind, against the baselines.

Run by hand (not by pytest):
    python tests/benchmarks/bench_unfamiliar.py [DATA] [--limit N] [--epochs E] [--seed 0]
DATA defaults to $CATDOG_TEST_DATA (catdog-1800). ``--limit 120 --epochs 2`` is a smoke run.

For each model (LeNet-5, LeNet-5 + augmentation, lenet5_modern, the default pretrained
EfficientNet-Lite1 with a frozen backbone) it trains on one seeded split (LeNet-5s: ``--epochs``, 8 by
default, to keep the run under ~6 minutes on 2 cores), then scores:

* familiar photos: the validation split. The threshold of every method is set, as training sets it,
  at the 95th percentile of the familiar scores, but on one half of the validation photos (seeded)
  and the flagged share reported on the other half, so "familiar flagged" is not 5% by construction;
* unfamiliar photos: scikit-image's data images other than its cat (``chelsea``), and generated ones:
  drawings (random shapes), renders (shaded spheres, gradients), noise (uniform, Gaussian, salt and
  pepper), text, flat colours. ``--no-skimage`` leaves the packaged ones out.

Columns: AUROC (unfamiliar vs familiar), the share of unfamiliar photos flagged and of held-out
familiar ones flagged at that threshold, for every method: the maximum softmax probability (MSP,
Hendrycks & Gimpel 2017: the baseline), energy, Mahalanobis (shared covariance), k-th nearest
neighbour (cosine); ``*`` marks the method the model file uses. Then the ECE before and after
temperature scaling (after: cross-fitted on the validation photos, as stored in the model file),
the extra time of the check per prediction (``Predictor.predict`` on 1 photo file, decoding included, best
of 20, check on vs off, alternating: the ratio), and
the model file's extra size (the statistics and calibration vs a file without them).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MODELS = {
    "lenet5": dict(model="lenet5"),
    "lenet5+augment": dict(model="lenet5", augment=True),
    "lenet5_modern": dict(model="lenet5_modern"),
    "lite1 (default pretrained)": dict(model="efficientnet_lite1", pretrained=True),
}
METHODS = ("msp", "energy", "mahalanobis", "knn")


def unfamiliar_images(seed: int = 0, skimage: bool = True) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 H x W x 3) images that are neither cats nor dogs."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    out: list[tuple[str, np.ndarray]] = []
    if skimage:
        from skimage import data as skd

        for name in ("astronaut", "camera", "coffee", "coins", "rocket", "moon", "page", "text", "clock",
                     "horse", "hubble_deep_field", "immunohistochemistry", "retina", "checkerboard",
                     "grass", "gravel", "brick", "colorwheel", "logo", "microaneurysms", "cell",
                     "human_mitosis", "eagle", "binary_blobs", "shepp_logan_phantom"):
            fn = getattr(skd, name, None)
            if fn is None:
                continue
            try:
                a = np.asarray(fn())
            except Exception:  # noqa: BLE001 - an image that needs a download (pooch) is skipped
                continue
            if a.dtype == bool:
                a = a.astype(np.uint8) * 255
            if a.dtype != np.uint8:
                a = (255 * (a - a.min()) / max(float(a.max() - a.min()), 1e-9)).astype(np.uint8)
            if a.ndim == 2:
                a = np.stack([a] * 3, -1)
            out.append((f"skimage {name}", np.ascontiguousarray(a[..., :3])))
    s = 160
    for i in range(8):  # drawings
        img = Image.new("RGB", (s, s), tuple(int(v) for v in rng.integers(180, 256, 3)))
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(3, 9))):
            x0, y0 = (int(v) for v in rng.integers(0, s - 20, 2))
            box = [x0, y0, x0 + int(rng.integers(15, 90)), y0 + int(rng.integers(15, 90))]
            col = tuple(int(v) for v in rng.integers(0, 256, 3))
            (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, outline=col, width=3,
                                                             fill=col if rng.random() < 0.5 else None)
        out.append((f"drawing {i}", np.asarray(img)))
    yy, xx = np.mgrid[0:s, 0:s] / s
    for i in range(6):  # renders: a shaded sphere on a gradient
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.35)
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        z = np.sqrt(np.clip(1 - (dist / r) ** 2, 0, 1))
        col, bg = rng.uniform(0.2, 1, 3), rng.uniform(0, 1, 3)
        grad = (1 - yy)[..., None] * bg
        img = np.where((dist < r)[..., None], z[..., None] * col, grad)
        out.append((f"render {i}", (255 * img).astype(np.uint8)))
    for i in range(4):
        out.append((f"noise uniform {i}", rng.integers(0, 256, (s, s, 3), dtype=np.uint8)))
        out.append((f"noise gaussian {i}", np.clip(rng.normal(128, 50, (s, s, 3)), 0, 255).astype(np.uint8)))
        sp = (rng.random((s, s)) < 0.5).astype(np.uint8) * 255
        out.append((f"noise salt-and-pepper {i}", np.stack([sp] * 3, -1)))
    font = ImageFont.load_default()
    for i in range(6):  # text
        img = Image.new("RGB", (s, s), (255, 255, 255) if i % 2 == 0 else (30, 30, 60))
        d = ImageDraw.Draw(img)
        for line in range(10):
            words = "".join(chr(int(c)) for c in rng.integers(97, 123, 20))
            d.text((4, 4 + 15 * line), words, fill=(0, 0, 0) if i % 2 == 0 else (230, 230, 200), font=font)
        out.append((f"text {i}", np.asarray(img)))
    for i in range(8):  # flat colours
        out.append((f"flat {i}", np.full((s, s, 3), rng.integers(0, 256, 3), dtype=np.uint8)))
    return out


def _arrays(predictor, images) -> np.ndarray:
    from catdog_gui.core.data.imageio import load_square_array

    out = []
    for img in images:
        if isinstance(img, np.ndarray):
            from io import BytesIO

            from PIL import Image

            buf = BytesIO()
            Image.fromarray(img).save(buf, "PNG")
            img = buf.getvalue()
        out.append(load_square_array(img, predictor.info.image_size).transpose(2, 0, 1))
    return np.stack(out)


def _embed(predictor, arrays, batch=64):
    embs, logits = [], []
    for i in range(0, len(arrays), batch):
        e, z = predictor.embeddings(arrays[i:i + batch])
        embs.append(e)
        logits.append(z)
    return np.concatenate(embs), np.concatenate(logits)


def run_model(name, settings, data, args, odd, folder):
    from bench_transfer import (
        _dataset,  # the seeded split (and --limit subset) of the other benchmarks
    )

    from catdog_gui.core.config import make_config
    from catdog_gui.core.data.augment import AugmentSettings
    from catdog_gui.core.inference import unfamiliar as U
    from catdog_gui.core.inference.predictor import Predictor
    from catdog_gui.core.storage.modelfile import read_model_file, save_model
    from catdog_gui.core.training.trainer import Trainer

    settings = dict(settings)
    aug = AugmentSettings(enabled=True) if settings.pop("augment", False) else None
    epochs = None if settings.get("pretrained") else args.epochs
    cfg = make_config(settings.pop("model"), augment=aug, epochs=epochs, seed=args.seed, **settings)
    ds = _dataset(data, args.seed, args.limit)
    out = folder / f"{name.split()[0]}.pt"
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    result = trainer.fit(ds, out_path=out)
    train_s = time.perf_counter() - t0
    if result.status not in ("completed", "stopped_early"):
        raise SystemExit(f"{name}: {result.reason}")
    pred = Predictor(out)
    info = pred.info
    ytr = np.array([s.label for s in ds.train])
    yval = np.array([s.label for s in ds.val])
    tr_e, _ = _embed(pred, _arrays(pred, [s.path for s in ds.train]))
    va_e, va_z = _embed(pred, _arrays(pred, [s.path for s in ds.val]))
    od_e, od_z = _embed(pred, _arrays(pred, [img for _n, img in odd]))
    half = np.random.default_rng(args.seed).permutation(len(yval))
    a, b = half[: len(half) // 2], half[len(half) // 2:]
    rows = []
    for method in METHODS:
        fitted = U.fit(method, tr_e, ytr, va_e[a], va_z[a], seed=args.seed)
        fam, unf = fitted.scores(va_e, va_z), fitted.scores(od_e, od_z)
        rows.append((method, U.auroc(fam, unf), float(fitted.flags(unf).mean()), float(fitted.flags(fam[b]).mean())))
    cal = info.meta.get("calibration") or {}
    # the check's cost: one photo from its file (decoding included, as the app predicts), best of 20,
    # with and without it, alternating
    photo = ds.val[0].path
    times = {False: float("inf"), True: float("inf")}
    for _ in range(20):
        for on in (False, True):
            pred.unfamiliar_check = on
            t = time.perf_counter()
            pred.predict(photo)
            times[on] = min(times[on], time.perf_counter() - t)
    # the file's extra size: the same weights and metadata without the statistics and calibration
    meta, _state = read_model_file(out)
    plain = folder / "plain.pt"
    model = pred.model
    save_model(plain, model, model_name=meta.model_name, classes=meta.classes, image_size=meta.image_size,
               mean=meta.mean, std=meta.std, config=meta.config, metrics=meta.metrics)
    extra = out.stat().st_size - plain.stat().st_size
    return dict(name=name, train_s=train_s, acc=result.best_val_acc, rows=rows, used=info.meta["unfamiliar"]["method"],
                ece=(cal.get("ece_before"), cal.get("ece_after"), cal.get("temperature")), n_val=len(yval),
                t=(times[False], times[True]), extra=extra, size=out.stat().st_size)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA"))
    ap.add_argument("--limit", type=int, default=0, help="a seeded subset of N photos (smoke run)")
    ap.add_argument("--epochs", type=int, default=8, help="LeNet-5 epochs (the pretrained model uses its default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--no-skimage", action="store_true")
    args = ap.parse_args(argv)
    if not args.data:
        ap.error("give DATA or set CATDOG_TEST_DATA")
    sys.path.insert(0, str(Path(__file__).parent))
    odd = unfamiliar_images(args.seed, skimage=not args.no_skimage)
    kinds = {}
    for n, _img in odd:
        k = n.split()[0]
        kinds[k] = kinds.get(k, 0) + 1
    print(f"unfamiliar photos: {len(odd)} ({', '.join(f'{v} {k}' for k, v in kinds.items())})")
    print(f"LeNet-5 models: {args.epochs} epochs" + (f"; subset of {args.limit} photos" if args.limit else ""))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            r = run_model(name, MODELS[name], args.data, args, odd, Path(tmp))
            results.append(r)
            print(f"  {name}: trained in {r['train_s']:.0f} s, val acc {r['acc']:.3f}", flush=True)
    print()
    print(f"{'model':28} {'method':12} {'AUROC':>6} {'unfam. flagged':>15} {'familiar flagged':>17}")
    for r in results:
        msp = r["rows"][0]
        for method, auc, unf, fam in r["rows"]:
            mark = "*" if method == r["used"] else " "
            vs = "" if method == "msp" or msp[2] == 0 else f"  (x{unf / msp[2]:.2f} MSP's flagged share)"
            print(f"{r['name']:28} {mark}{method:11} {auc:6.3f} {unf:14.1%} {fam:16.1%}{vs}")
    print()
    print(f"{'model':28} {'n val':>6} {'T':>6} {'ECE before':>11} {'ECE after':>10} {'check ms':>9} "
          f"{'pred ms':>8} {'extra':>7} {'extra size':>11}")
    for r in results:
        before, after, temp = r["ece"]
        off, on = r["t"]
        print(f"{r['name']:28} {r['n_val']:6d} {temp:6.2f} {before:10.2%} {after:10.2%} {1e3 * (on - off):9.2f} "
              f"{1e3 * off:8.2f} {(on - off) / off:7.1%} {r['extra'] / 2**20:8.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
