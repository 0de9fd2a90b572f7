"""Which training recipe makes LeNet-5 (and LeNet-5 + augmentation) generalise best? Measured on a nested split.

Run by hand (not by pytest), with nothing else running:
    python tests/benchmarks/bench_lenet_recipe.py [DATA] [--seeds 0 1 2] [--workers 2] [--quick]

Per seed the folder is split three ways (stratified, duplicates kept together): 60% train, 20% "select"
(what the trainer validates on and keeps its best epoch by) and 20% test, which no choice sees. Each recipe
is one set of settings shared by the plain run and the augmented run; the augmented run adds only the
augmentation (the teaching text's: crops of rescaled images, flips, colour and brightness shifts) and
nothing else. Every configuration tried is printed (test accuracy of the kept epoch, mean and spread over
the seeds), not only the winner. Runs go two at a time (one thread each) on two cores.
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

#: the teaching text's augmentation: random crops of rescaled images, flips, RGB colour and brightness shifts
TEACHING_AUG = dict(enabled=True, crop_scale_min=0.6, hflip=True, rotation=0.0, brightness=0.15, contrast=0.0,
                    channel_shift=0.05)
STRONG_AUG = dict(TEACHING_AUG, crop_scale_min=0.35, brightness=0.3, channel_shift=0.1)
#: the app's augmentation defaults before this benchmark (rotation and contrast included)
OLD_AUG = dict(enabled=True)

#: name -> (TrainConfig settings shared by the plain and the augmented run)
RECIPES = {
    "adam 1e-3 const, 30/120 ep (old)": dict(optimizer="adam", lr=1e-3, schedule="constant", weight_decay=0.0,
                                           epochs=30, patience=8),
    "adam 1e-3 const, 60 ep": dict(optimizer="adam", lr=1e-3, schedule="constant", weight_decay=0.0, epochs=60,
                                   patience=0),
    "adamw 3e-3 one-cycle wd.05, 60 ep": dict(optimizer="adamw", lr=3e-3, schedule="onecycle", weight_decay=0.05,
                                              epochs=60, patience=0),
    "adamw 3e-3 cosine wd.05, 60 ep": dict(optimizer="adamw", lr=3e-3, schedule="cosine", weight_decay=0.05,
                                           epochs=60, patience=0),
    "sgd .05 one-cycle wd5e-4, 60 ep": dict(optimizer="sgd", lr=0.05, schedule="onecycle", weight_decay=5e-4,
                                            epochs=60, patience=0),
}


def nested_split(data: str, seed: int):
    from catdog_gui.core.data.scan import Dataset, scan_dataset
    from catdog_gui.core.data.split import stratified_split

    ds = scan_dataset(Path(data), val_fraction=0.2, seed=seed)  # (train+select) / test
    groups = {p: gi for gi, g in enumerate(ds.report.duplicate_groups) for p in g}
    train, select = stratified_split(ds.train, 0.25, seed + 1000, groups)  # 60% / 20% of the whole
    return Dataset(ds.classes, train, select, ds.report), ds.val


def score_on(model, test, cfg) -> float:
    """Accuracy of ``model`` (a trained, in-memory model) on the ``test`` samples, at its input size."""
    import numpy as np
    import torch

    from catdog_gui.core.data.decode_cache import build_cache
    from catdog_gui.core.models import ModelInput, get_spec

    spec = get_spec(cfg.model)
    m = model.eval()
    cache = build_cache(test, cfg.image_size or spec.default_image_size)
    inputs = ModelInput(spec.mean, spec.std, torch.device("cpu"), False)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(cache.array))
        logits = torch.cat([m(inputs(x[i:i + 64])) for i in range(0, len(x), 64)])
    return float((logits.argmax(1) == torch.from_numpy(cache.labels)).float().mean())


def run_one(job) -> dict:
    data, model, recipe, aug_name, aug, seed = job
    import torch

    torch.set_num_threads(1)
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.data.augment import AugmentSettings
    from catdog_gui.core.training.trainer import Trainer

    settings = dict(RECIPES[recipe])
    if recipe.endswith("(old)") and aug is not None:  # the old behaviour: 4x the epochs with augmentation
        settings.update(epochs=120, patience=40)
    cfg = TrainConfig.for_model(model, seed=seed, threads=1, disk_cache=False, **settings)
    cfg.augment = AugmentSettings(**aug) if aug is not None else AugmentSettings()
    ds, test = nested_split(data, seed)
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    fin = trainer.fit(ds)
    assert fin.ok, fin.reason
    acc = score_on(trainer.model, test, cfg)
    return dict(model=model, recipe=recipe, aug=aug_name, seed=seed, test=acc, select=fin.best_val_acc,
                epoch=fin.best_epoch, epochs=len(fin.history), seconds=time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" /
                                                                                       "datasets" / "catdog-1800")))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one recipe, 3 epochs: check that the script runs")
    args = ap.parse_args()
    recipes = list(RECIPES)
    jobs = []
    for recipe in recipes:
        for aug_name, aug in (("none", None), ("teaching", TEACHING_AUG)):
            jobs += [(args.data, "lenet5", recipe, aug_name, aug, s) for s in args.seeds]
    best_shared = "adamw 3e-3 one-cycle wd.05, 60 ep"
    jobs += [(args.data, "lenet5", best_shared, "strong", STRONG_AUG, s) for s in args.seeds]
    jobs += [(args.data, "lenet5", best_shared, "old defaults", OLD_AUG, s) for s in args.seeds]
    for recipe in ("adam 1e-3 const, 60 ep", best_shared):
        jobs += [(args.data, "lenet5_modern", recipe, "teaching", TEACHING_AUG, s) for s in args.seeds]
    if args.quick:
        for name in RECIPES:
            RECIPES[name] = dict(RECIPES[name], epochs=2, patience=0)
        jobs = [j for j in jobs if j[2] == best_shared and j[5] == args.seeds[0]][:3]
    print(f"{os.cpu_count()} cores, {args.workers} runs at a time, data {args.data}, seeds {args.seeds}, "
          f"{len(jobs)} runs", flush=True)
    t0 = time.perf_counter()
    results = []
    with ProcessPoolExecutor(args.workers) as pool:
        for r in pool.map(run_one, jobs):
            results.append(r)
            print(f"  {r['model']:<14} {r['recipe']:<36} aug {r['aug']:<13} seed {r['seed']}: test "
                  f"{r['test'] * 100:5.1f}%  (select {r['select'] * 100:5.1f}%, epoch {r['epoch']}/{r['epochs']}, "
                  f"{r['seconds']:.0f} s)", flush=True)
    print(f"\nTest accuracy of the kept epoch, % (mean ± standard deviation over seeds {args.seeds}); "
          f"{time.perf_counter() - t0:.0f} s in all")
    print(f"{'model':<14} {'recipe':<36} {'augmentation':<13} {'test %':>14} {'per seed':>22}")
    keys = list(dict.fromkeys((r["model"], r["recipe"], r["aug"]) for r in results))
    means = {}
    for k in keys:
        v = [r["test"] * 100 for r in results if (r["model"], r["recipe"], r["aug"]) == k]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        means[k] = statistics.mean(v)
        print(f"{k[0]:<14} {k[1]:<36} {k[2]:<13} {means[k]:>8.1f} ± {sd:<4.1f} {' '.join(f'{x:5.1f}' for x in v):>22}")
    print("\nAugmentation's gain per recipe (LeNet-5, teaching augmentation minus none, points):")
    for recipe in recipes:
        a, b = means.get(("lenet5", recipe, "teaching")), means.get(("lenet5", recipe, "none"))
        if a is not None and b is not None:
            print(f"  {recipe:<36} {a - b:+.1f}")


if __name__ == "__main__":
    main()
