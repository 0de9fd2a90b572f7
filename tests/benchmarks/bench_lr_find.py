"""Is the learning-rate finder's suggestion any good? Against a grid of 6 learning rates, same runs otherwise.

Run by hand (not by pytest), with nothing else running:
    python tests/benchmarks/bench_lr_find.py [DATA] [--seeds 0 1] [--models lenet5 efficientnet_lite0]

For each model (LeNet-5 from scratch; the pretrained head on frozen Lite0 features) and seed: the finder
sweeps on the model's default settings, then the model trains with each rule's suggestion (fastai's
"valley" and "min/10") and with each learning rate of the grid, every other setting equal; the table is
the validation accuracy of the kept epoch (best-epoch rule) on the standard split, and the test accuracy
on a held-out 20% no run sees (the nested split of bench_lenet_recipe.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


def train_with(job) -> tuple:
    data, model, seed, label, lr = job
    import torch

    torch.set_num_threads(1)
    from bench_lenet_recipe import nested_split, score_on

    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.models import get_spec
    from catdog_gui.core.training.trainer import Trainer

    spec = get_spec(model)
    cfg = TrainConfig.for_model(model, pretrained=spec.is_backbone, seed=seed, lr=lr, threads=1)
    ds, test = nested_split(data, seed)
    trainer = Trainer(cfg)
    fin = trainer.fit(ds)
    assert fin.ok, fin.reason
    test_acc = score_on(trainer.model, test, cfg)
    return model, seed, label, lr, fin.best_val_acc, test_acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" /
                                                                                       "datasets" / "catdog-1800")))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    ap.add_argument("--models", nargs="*", default=["lenet5", "efficientnet_lite0"])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from bench_lenet_recipe import nested_split

    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.models import get_spec
    from catdog_gui.core.training.harness import find_learning_rate

    t0 = time.perf_counter()
    jobs = []
    for model in args.models:
        for seed in args.seeds:
            ds, _test = nested_split(args.data, seed)
            spec = get_spec(model)
            found = find_learning_rate(TrainConfig.for_model(model, pretrained=spec.is_backbone, seed=seed), ds)
            print(f"{model} seed {seed}: finder {len(found.lrs)} batches, suggestions "
                  + ", ".join(f"{r} {v:.2e}" for r, v in found.by_rule.items()), flush=True)
            jobs += [(args.data, model, seed, f"finder {r}", v) for r, v in found.by_rule.items()]
            jobs += [(args.data, model, seed, "grid", lr) for lr in GRID]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(train_with, jobs))
    print(f"\nValidation (select) and test accuracy of the kept epoch, %; seeds {args.seeds}; "
          f"{time.perf_counter() - t0:.0f} s in all")
    print(f"{'model':<20} {'learning rate':<22} {'select %':>9} {'test %':>8}   per seed (test)")
    for model in args.models:
        labels = list(dict.fromkeys((r[2], r[3] if r[2] == "grid" else None) for r in rows if r[0] == model))
        for label, lr in labels:
            got = [r for r in rows if r[0] == model and r[2] == label and (lr is None or r[3] == lr)]
            name = f"{lr:.0e}" if lr is not None else f"{label} (" + "/".join(f"{r[3]:.1e}" for r in got) + ")"
            sel = statistics.mean(r[4] * 100 for r in got)
            test = statistics.mean(r[5] * 100 for r in got)
            print(f"{model:<20} {name:<22} {sel:>9.1f} {test:>8.1f}   " + " ".join(f"{r[5] * 100:.1f}" for r in got))


if __name__ == "__main__":
    main()
