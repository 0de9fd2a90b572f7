"""Transfer learning, side by side: EfficientNet-Lite0/1/2 x feature path (PyTorch vs onnxruntime),
cold and with a warm feature cache, on one seeded split.

Run by hand (not by pytest):
    python tests/benchmarks/bench_transfer.py [DATA] [--backbones lite0 lite1 lite2]
                                              [--paths pytorch onnxruntime] [--limit N] [--seed 0]
    python tests/benchmarks/bench_transfer.py [DATA] --only lenet5 "lite0 frozen" ...   (the older table)

Each row is one backbone and one feature path, exactly as ``catdog train DATA --model M --pretrained``
trains it (frozen backbone, the model's default head settings). It runs twice, each in a fresh
subprocess (so imports, torch's one-time costs and the first ONNX export are paid as a user pays
them) on one cache folder that starts empty:

* cold: empty caches (decoded photos, backbone features, ONNX export);
* warm: the same command again: photos and features come from the caches.

Columns: ``feat img/s``: images through the backbone per second of the cold run's feature stage
(from RunStarted to the last "features" progress event: weights hash, session start and the
check against PyTorch on 4 images included, the ONNX export excluded; it is shown apart as
``export s``; on a --limit smoke run the fixed costs dominate); ``cold s``/``warm s``: ``Trainer.fit`` wall time (scan, decode, features,
epochs, final evaluation; interpreter start and ``import torch`` excluded, see ``proc s``: the
whole process); ``val acc``: the best epoch on the validation split (the same split for every row);
``+TTA``: the warm run's model on the same photos with mirror averaging.
``--limit N`` takes a seeded N photos of the folder (same share per split) for a quick smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BACKBONES = {"lite0": "efficientnet_lite0", "lite1": "efficientnet_lite1", "lite2": "efficientnet_lite2"}
PATHS = ("pytorch", "onnxruntime")

#: the older table (LeNet-5 from scratch, with augmentation, frozen and fine-tuned Lite0): --only
RUNS = {
    "lenet5": dict(model="lenet5"),
    "lenet5+augment": dict(model="lenet5", augment=True),
    "lite0 frozen": dict(model="efficientnet_lite0", pretrained=True),
    "lite0 finetune": dict(model="efficientnet_lite0", pretrained=True, transfer_mode="finetune"),
}


def _dataset(data: str, seed: int, limit: int):
    """The seeded split of ``data``; with ``limit``, a seeded subset of it (each split keeps its share)."""
    import numpy as np

    from catdog_gui.core.data.scan import Dataset, scan_dataset

    ds = scan_dataset(Path(data), seed=seed)
    if not limit or limit >= len(ds.train) + len(ds.val):
        return ds
    rng = np.random.default_rng(seed)
    share = len(ds.val) / (len(ds.train) + len(ds.val))
    n_val = max(2, round(limit * share))

    def pick(samples, n):
        keep = sorted(rng.permutation(len(samples))[:n])
        return [samples[i] for i in keep]

    return Dataset(ds.classes, pick(ds.train, limit - n_val), pick(ds.val, n_val), ds.report)


# ------------------------------------------------------------------------------------------------
# one run, in a child process


def child(args) -> None:
    import torch

    from catdog_gui.core.inference import features
    from catdog_gui.core.events import Notice, RunStarted, StageProgress
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    ds = _dataset(args.data, args.seed, args.limit)
    marks: dict = {"export_s": 0.0, "notices": []}
    real_export = features._export

    def timed_export(*a, **k):
        t = time.perf_counter()
        try:
            return real_export(*a, **k)
        finally:
            marks["export_s"] += time.perf_counter() - t

    features._export = timed_export

    def on_event(ev):
        now = time.perf_counter()
        if isinstance(ev, RunStarted):
            marks["started"] = now
        elif isinstance(ev, StageProgress) and ev.stage == "features":
            marks["features_done"] = now
        elif isinstance(ev, Notice):
            marks["notices"].append(ev.text)

    cfg = TrainConfig.for_model(args.child, pretrained=True, seed=args.seed)
    trainer = Trainer(cfg, [on_event])
    trainer.feature_backend = "pytorch" if args.path == "pytorch" else "auto"
    model_file = Path(tempfile.mkdtemp(prefix="catdog-bench-model-")) / "m.pt"
    t0 = time.perf_counter()
    result = trainer.fit(ds, out_path=model_file)
    wall = time.perf_counter() - t0
    tta = {}
    if args.tta and result.best_path:  # after the timing: the same model, without and with mirror averaging
        from catdog_gui.core.inference.predictor import Predictor

        paths, labels = [str(s.path) for s in ds.val], [s.label for s in ds.val]
        for on in (False, True):
            pred = Predictor(result.best_path, "cpu", tta=on)
            got = pred.predict_many(paths)
            tta[on] = sum(ds.classes.index(g.label) == y for g, y in zip(got, labels)) / len(labels)
    stats = trainer.feature_stats
    feat_s = marks.get("features_done", marks.get("started", t0)) - marks.get("started", t0)
    compute_s = max(feat_s - marks["export_s"], 1e-9)
    out = {
        "status": str(result.status), "reason": result.reason, "wall_s": wall,
        "acc": result.metrics.accuracy if result.metrics else float("nan"),
        "n_val": result.metrics.n if result.metrics else 0, "n_train": len(ds.train),
        "best_epoch": result.best_epoch, "epochs": len(result.history),
        "computed": stats.get("computed", 0), "cached": stats.get("cached", 0), "path": stats.get("path"),
        "feat_s": feat_s, "export_s": marks["export_s"],
        "img_s": stats.get("computed", 0) / compute_s if stats.get("computed") else float("nan"),
        "threads": torch.get_num_threads(), "notices": marks["notices"],
        "acc_plain": tta.get(False, float("nan")), "acc_tta": tta.get(True, float("nan")),
    }
    print("RESULT " + json.dumps(out), flush=True)


def run_child(args, model: str, path: str, cache: Path, tta: bool = False) -> dict:
    env = dict(os.environ, CATDOG_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, __file__, args.data, "--child", model, "--path", path, "--seed", str(args.seed),
           "--limit", str(args.limit)] + (["--tta"] if tta else [])
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    proc = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"child failed:\n{p.stdout}\n{p.stderr}")
    res = json.loads(next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    res["proc_s"] = proc
    return res


def transfer_table(args) -> None:
    rows = []
    for short in args.backbones:
        for path in args.paths:
            with tempfile.TemporaryDirectory(prefix="catdog-bench-cache-") as cache:
                cold = run_child(args, BACKBONES[short], path, Path(cache))
                warm = run_child(args, BACKBONES[short], path, Path(cache), tta=True)
            rows.append((short, path, cold, warm))
            for note in cold["notices"]:
                print(f"  note ({short}, {path}): {note}")
            print(f"  done {short} {path}: cold {cold['wall_s']:.1f}s, warm {warm['wall_s']:.1f}s "
                  f"({warm['computed']} computed, {warm['cached']} cached), val acc {cold['acc'] * 100:.2f}%",
                  flush=True)
    print()
    print(f"{'backbone':<8} {'path':<11} {'ran on':<11} {'feat img/s':>10} {'export s':>8} {'cold s':>7} "
          f"{'warm s':>7} {'proc s':>13} {'val acc':>8} {'warm val':>8} {'+TTA':>8} {'val n':>6} {'best':>4}")
    for short, path, cold, warm in rows:
        ran = cold["path"] or "-"
        print(f"{short:<8} {path:<11} {ran:<11} {cold['img_s']:>10.1f} {cold['export_s']:>8.1f} "
              f"{cold['wall_s']:>7.1f} {warm['wall_s']:>7.1f} {cold['proc_s']:>6.1f}/{warm['proc_s']:<6.1f} "
              f"{cold['acc'] * 100:>7.2f}% {warm['acc'] * 100:>7.2f}% {warm['acc_tta'] * 100:>7.2f}% {cold['n_val']:>6} "
              f"{cold['best_epoch']:>4}")
    print("\nfeat img/s: cold run's backbone pass (export excluded); cold/warm s: Trainer.fit wall time, empty "
          "caches / the same run again; proc s: whole process, cold/warm; ran on: the path that computed "
          "the features (a fall-back shows here and as a note); +TTA: the warm run's model, predicting the "
          "validation photos with mirror averaging (Predictor, tta=True)")


# ------------------------------------------------------------------------------------------------
# the older table: LeNet-5 and Lite0 variants, in this process


def runs_table(args) -> None:
    from catdog_gui.core.data.augment import AugmentSettings
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    rows = []
    for name in args.only:
        kw = dict(RUNS[name])
        augment = kw.pop("augment", False)
        cfg = TrainConfig.for_model(kw.pop("model"), seed=args.seed, **kw)
        if augment:
            cfg.augment = AugmentSettings(enabled=True)
            aug_defaults = getattr(cfg.augment, "recommended_epochs", None)
            if aug_defaults:
                cfg.epochs, cfg.patience = aug_defaults(cfg.epochs, cfg.patience)
        ds = _dataset(args.data, args.seed, args.limit)
        t = time.perf_counter()
        r = Trainer(cfg).fit(ds)
        wall = time.perf_counter() - t
        rows.append((name, r.status, len(r.history), r.best_epoch, r.metrics.accuracy if r.metrics else float("nan"),
                     r.metrics.n if r.metrics else 0, wall))
        print(f"  done {name}: {r.status} ({r.reason}) in {wall:.1f}s", flush=True)
    print()
    print(f"{'run':<16} {'epochs':>6} {'best':>5} {'val acc':>8} {'val n':>6} {'wall s':>8}  status")
    for name, status, epochs, best, acc, n, wall in rows:
        print(f"{name:<16} {epochs:>6} {best:>5} {acc * 100:>7.1f}% {n:>6} {wall:>8.1f}  {status}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA", "../shared/datasets/catdog-1800"))
    ap.add_argument("--backbones", nargs="*", choices=list(BACKBONES), default=list(BACKBONES))
    ap.add_argument("--paths", nargs="*", choices=PATHS, default=list(PATHS))
    ap.add_argument("--only", nargs="*", choices=list(RUNS), help="the older table instead (these runs)")
    ap.add_argument("--limit", type=int, default=0, help="a seeded subset of this many photos (smoke runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--tta", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load {load:.1f}, data {args.data}, "
          f"seed {args.seed}" + (f", limit {args.limit}" if args.limit else ""))
    if args.only:
        runs_table(args)
    else:
        transfer_table(args)


if __name__ == "__main__":
    main()
