"""The seed's story in one table: LeNet-5 from scratch, LeNet-5 + augmentation, frozen transfer
learning (EfficientNet-Lite0 features + new head) and fine-tuned transfer, on the same data and split.

Run by hand:  python tests/benchmarks/bench_transfer.py [DATA] [--only NAME ...]
Each row is one full `Trainer.fit` with the defaults a user gets (wall time includes scanning,
decoding, feature extraction and the final evaluation). Validation = the same seeded 20% hold-out.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from catdog_gui.core.augment import AugmentSettings
from catdog_gui.core.data import scan_dataset
from catdog_gui.core.training import TrainConfig, Trainer

RUNS = {
    "lenet5": dict(model="lenet5"),
    "lenet5+augment": dict(model="lenet5", augment=True),
    "lite0 frozen": dict(model="efficientnet_lite0", pretrained=True),
    "lite0 finetune": dict(model="efficientnet_lite0", pretrained=True, transfer_mode="finetune"),
}


def config(model, augment=False, **kw):
    cfg = TrainConfig.for_model(model, **kw)
    if augment:
        cfg.augment = AugmentSettings(enabled=True)
        aug_defaults = getattr(cfg.augment, "recommended_epochs", None)
        if aug_defaults:
            cfg.epochs, cfg.patience = aug_defaults(cfg.epochs, cfg.patience)
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA", "../shared/datasets/catdog-1800"))
    ap.add_argument("--only", nargs="*", choices=list(RUNS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, data {args.data}, seed {args.seed}")
    rows = []
    for name in args.only or RUNS:
        cfg = config(**RUNS[name], seed=args.seed)
        ds = scan_dataset(Path(args.data), seed=args.seed)
        t = time.perf_counter()
        trainer = Trainer(cfg)
        r = trainer.fit(ds)
        wall = time.perf_counter() - t
        epochs = len(r.history)
        rows.append((name, r.status, epochs, r.best_epoch, r.metrics.accuracy if r.metrics else float("nan"),
                     r.metrics.n if r.metrics else 0, wall))
        print(f"  done {name}: {r.status} ({r.reason}) in {wall:.1f}s", flush=True)
    print()
    print(f"{'run':<16} {'epochs':>6} {'best':>5} {'val acc':>8} {'val n':>6} {'wall s':>8}  status")
    for name, status, epochs, best, acc, n, wall in rows:
        print(f"{name:<16} {epochs:>6} {best:>5} {acc * 100:>7.1f}% {n:>6} {wall:>8.1f}  {status}")


if __name__ == "__main__":
    main()
