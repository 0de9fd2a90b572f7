"""Does augmentation pay? LeNet-5 (32x32) with and without it, same seeds, same split.

Run by hand (not collected by pytest)::

    python tests/benchmarks/bench_augment.py                       # 30 and 120 epochs, seeds 0 1 2
    python tests/benchmarks/bench_augment.py --epochs 60 --seeds 0 --patience 8
    python tests/benchmarks/bench_augment.py --user-defaults       # what a user gets (see below)
    python tests/benchmarks/bench_augment.py --set crop_scale_min=0.8 --set rotation=5

Data: ``$CATDOG_TEST_DATA`` (default ``../shared/datasets/catdog-1800`` next to the repository).
The split is made once (split seed 0) and shared by every run; each seed then trains once plain and
once with ``AugmentSettings(enabled=True)`` (the defaults, plus any ``--set`` overrides), one after
the other so that both see the same load on the machine. Images are decoded once for all runs.

By default both arms train the same number of epochs (``--epochs``, ``--patience``; patience 0 =
every epoch runs). ``--user-defaults`` compares what a user gets instead: the plain arm with the
model's own epochs and patience, the augmented arm with ``AugmentSettings.recommended_epochs``.

Columns: ``kept`` is the validation accuracy of the model the trainer keeps (its best epoch), an
optimistic number (the best of many noisy epochs); ``final`` is the last epoch's and ``last5`` the
mean of the last five epochs' (less noisy); ``s/epoch`` is wall time per epoch (training +
validation) and ``cpu s/ep`` the process CPU time per epoch, which other work on the machine
disturbs less. Goal (issue): at the default settings augmentation raises validation accuracy by
>= 3 points and an epoch costs <= 1.5x a plain one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from catdog_gui.core.training import preparation  # noqa: E402
from catdog_gui.core.data.augment import AugmentSettings  # noqa: E402
from catdog_gui.core.data.scan import scan_dataset  # noqa: E402
from catdog_gui.core.events import EpochEnd, RunStarted  # noqa: E402
from catdog_gui.core.config import TrainConfig  # noqa: E402
from catdog_gui.core.training.trainer import Trainer  # noqa: E402

ACC = ("kept", "final", "last5")


def _memoize_decoding() -> None:
    """Decode the (fixed) split once for all runs: wraps ``build_cache`` where the trainer's data preparation calls it."""
    real = preparation.build_cache
    memo: dict = {}

    def cached(samples, size, *args, **kwargs):
        key = (tuple(s.path for s in samples), size)
        if key not in memo:
            memo[key] = real(samples, size, *args, **kwargs)
        return memo[key]

    preparation.build_cache = cached


def _run(args, dataset, settings: AugmentSettings, epochs: int, patience: int, seed: int):
    """One training run; returns its row, or an error message."""
    cpu_marks: list[float] = []

    def on_event(ev) -> None:  # process CPU time per epoch: robust to other load on the machine
        if isinstance(ev, (RunStarted, EpochEnd)):
            cpu_marks.append(time.process_time())

    cfg = TrainConfig.for_model(args.model, epochs=epochs, seed=seed, patience=patience,
                                augment=replace(settings), device="cpu", threads=args.threads)
    r = Trainer(cfg, callbacks=[on_event]).fit(dataset)
    if r.status not in ("completed", "stopped_early"):
        return f"{r.status}: {r.reason}\n{r.traceback}"
    h = r.history
    return dict(kept=r.best_val_acc, final=h[-1].val_acc, last5=statistics.mean(e.val_acc for e in h[-5:]),
                sec=statistics.mean(e.seconds for e in h),
                cpu=(cpu_marks[-1] - cpu_marks[0]) / max(1, len(cpu_marks) - 1), ran=len(h), at=r.best_epoch)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared/datasets/catdog-1800")))
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--epochs", type=int, nargs="+", default=[30, 120])
    ap.add_argument("--patience", type=int, nargs="+", default=[0],
                    help="early-stopping patience (0 = off: every epoch runs)")
    ap.add_argument("--user-defaults", action="store_true",
                    help="plain: the model's epochs/patience; augmented: AugmentSettings.recommended_epochs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override an AugmentSettings default for the augmented runs")
    ap.add_argument("--threads", type=int, default=0, help="TrainConfig.threads (0 = the model's own choice)")
    args = ap.parse_args(argv)

    aug = AugmentSettings(enabled=True)
    names = {f.name for f in fields(AugmentSettings)}
    for item in args.set:
        k, _, v = item.partition("=")
        if k not in names:
            ap.error(f"unknown augmentation setting {k!r}; one of {', '.join(sorted(names))}")
        aug = replace(aug, **{k: v.lower() == "true" if v.lower() in ("true", "false") else float(v)})
    aug.validate()
    plain = AugmentSettings(enabled=False)

    # (group, arm, settings, epochs, patience): the two arms of a group are compared
    if args.user_defaults:
        base = TrainConfig.for_model(args.model)
        e, p = aug.recommended_epochs(base.epochs, base.patience)
        plans = [("user defaults", "plain", plain, base.epochs, base.patience),
                 ("user defaults", "aug", aug, e, p)]
    else:
        plans = [(f"{e} ep, pat {p}", arm, s, e, p) for e in args.epochs for p in args.patience
                 for arm, s in (("plain", plain), ("aug", aug))]

    _memoize_decoding()
    t0 = time.perf_counter()
    dataset = scan_dataset(args.data, val_fraction=0.2, seed=0)
    print(f"data: {args.data}: {len(dataset.train)} train / {len(dataset.val)} val, classes {dataset.classes}")
    print(f"model {args.model}; torch {torch.__version__}, {os.cpu_count()} cores, threads "
          f"{args.threads or 'auto'}; scan {time.perf_counter() - t0:.1f}s")
    print(f"augmentation: {aug.to_dict()}\n")

    for s in (plain, aug):  # warm-up (decoding, allocator, lazy imports): not reported
        _run(args, dataset, s, 1, 0, 0)

    header = (f"{'arm':<6} {'epochs':>6} {'pat':>4} {'seed':>4} {'ran':>4} {'kept@':>5} {'kept':>6} {'final':>6} "
              f"{'last5':>6} {'s/epoch':>8} {'cpu s/ep':>8}")
    print(header)
    print("-" * len(header))
    results: dict = {}
    groups = list(dict.fromkeys(g for g, *_ in plans))
    for group in groups:
        for seed in args.seeds:
            for g, arm, settings, epochs, patience in plans:
                if g != group:
                    continue
                row = _run(args, dataset, settings, epochs, patience, seed)
                if isinstance(row, str):
                    print(f"{arm} seed {seed}: {row}")
                    return 1
                results.setdefault((group, arm), []).append(row)
                print(f"{arm:<6} {epochs:>6} {patience:>4} {seed:>4} {row['ran']:>4} {row['at']:>5} "
                      f"{row['kept']:>6.1%} {row['final']:>6.1%} {row['last5']:>6.1%} {row['sec']:>8.2f} "
                      f"{row['cpu']:>8.2f}", flush=True)

    keys = ACC + ("ran", "sec", "cpu")
    print(f"\nsummary over seeds {' '.join(map(str, args.seeds))}: mean accuracy; gain = aug - plain in points "
          "(min..max over seeds); cost = aug / plain time per epoch")
    print(f"{'':<20} {'arm':<6} {'ran':>5} {'kept':>14} {'final':>14} {'last5':>14} {'s/epoch':>8} {'cpu s/ep':>8}")
    for group in groups:
        means = {}
        for arm in ("plain", "aug"):
            rows = results[(group, arm)]
            means[arm] = m = {k: statistics.mean(r[k] for r in rows) for k in keys}
            print(f"{group:<20} {arm:<6} {m['ran']:>5.0f} " + "".join(f"{m[k]:>14.1%} " for k in ACC)
                  + f"{m['sec']:>7.2f} {m['cpu']:>8.2f}")
        p, a = means["plain"], means["aug"]
        gains = []
        for k in ACC:
            per_seed = [100 * (ra[k] - rp[k]) for rp, ra in zip(results[(group, "plain")], results[(group, "aug")])]
            gains.append(f"{100 * (a[k] - p[k]):+5.1f} ({min(per_seed):+.0f}..{max(per_seed):+.0f})")
        print(f"{group:<20} {'gain':<6} {'':>5} " + "".join(f"{g:>14} " for g in gains)
              + f"{a['sec'] / p['sec']:>6.2f}x {a['cpu'] / p['cpu']:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
