"""Which epoch to keep? Best-epoch rules compared on a nested split, for LeNet-5 and the Lite0 head.

Run by hand (not by pytest):
    python tests/benchmarks/bench_best_epoch.py [DATA] [--seeds 0 1 2] [--models lenet5 efficientnet_lite0]

The folder is split three ways per seed (stratified, duplicates kept together): 60% train, 20%
"select" (what the trainer validates on, where a rule chooses its epoch) and 20% test, which no
choice ever sees. Every run trains its full epoch budget (patience 0), and after each epoch the
current weights are scored on the test part, so every rule is judged on the same trajectory:

* ``acc+loss``: highest select accuracy, lower select loss breaks ties (the project's rule until now);
* ``acc~1+loss``: among the epochs within one select photo of the best select accuracy, the lowest
  select loss (one photo more or less right is noise; the loss then decides);
* ``loss``: lowest select loss;
* ``smooth acc``: highest 3-epoch moving average of select accuracy (the middle epoch is kept);
* ``last``: the last epoch;
* ``avg last 3``: the weights averaged over the last 3 epochs (a small stochastic weight average);
* ``oracle``: the best test accuracy of any epoch (a ceiling, not a rule).

Prints the test accuracy of each rule per seed and the mean.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

RULES = ("acc+loss", "acc~1+loss", "loss", "smooth acc", "last", "avg last 3", "oracle")


def nested_split(data: str, seed: int):
    from catdog_gui.core.data.scan import Dataset, scan_dataset
    from catdog_gui.core.data.split import stratified_split

    ds = scan_dataset(Path(data), val_fraction=0.2, seed=seed)  # (train+select) / test
    groups = {p: gi for gi, g in enumerate(ds.report.duplicate_groups) for p in g}
    train, select = stratified_split(ds.train, 0.25, seed + 1000, groups)  # 60% / 20% of the whole
    return Dataset(ds.classes, train, select, ds.report), ds.val


def run_one(data: str, model: str, seed: int) -> dict:
    import numpy as np
    import torch

    from catdog_gui.core.data.decode_cache import build_cache
    from catdog_gui.core.events import EpochEnd
    from catdog_gui.core.models import ModelInput, get_spec
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer
    from catdog_gui.core.training.loop import is_better_epoch

    spec = get_spec(model)
    pretrained = spec.is_backbone
    epochs = 30 if not pretrained else 15
    cfg = TrainConfig.for_model(model, pretrained=pretrained, seed=seed, epochs=epochs, patience=0)
    ds, test = nested_split(data, seed)
    size = cfg.image_size or spec.default_image_size
    test_cache = build_cache(test, size)
    y_test = torch.from_numpy(test_cache.labels)
    trainer = Trainer(cfg)
    state: dict = {"test_acc": [], "weights": [], "feats": None}
    inputs = ModelInput(spec.mean, spec.std, torch.device("cpu"), False)

    @torch.no_grad()
    def test_accuracy(m) -> float:
        m.eval()
        x_all = torch.from_numpy(np.ascontiguousarray(test_cache.array))
        if pretrained:  # the backbone is frozen: its test features once, then the head each epoch
            if state["feats"] is None:
                state["feats"] = torch.cat([m.backbone(inputs(x_all[i:i + 64])) for i in range(0, len(x_all), 64)])
            logits = m.head(state["feats"])
        else:
            logits = torch.cat([m(inputs(x_all[i:i + 256])) for i in range(0, len(x_all), 256)])
        return float((logits.argmax(1) == y_test).float().mean())

    def on_event(ev):
        if isinstance(ev, EpochEnd):
            m = trainer.model
            state["test_acc"].append(test_accuracy(m))
            state["weights"].append({k: v.detach().clone() for k, v in m.state_dict().items()})

    trainer.callbacks.append(on_event)
    fin = trainer.fit(ds)
    assert fin.ok, fin.reason
    hist = list(fin.history)
    acc = [e.val_acc for e in hist]
    loss = [e.val_loss for e in hist]
    t = state["test_acc"]
    best, best_acc, best_loss = 0, math.nan, math.inf
    for i, (a, lo) in enumerate(zip(acc, loss)):
        if is_better_epoch(a, lo, best_acc, best_loss):
            best, best_acc, best_loss = i, a, lo
    n_sel = len(ds.val)
    near = [i for i, a in enumerate(acc) if a >= max(acc) - 1.0 / n_sel - 1e-9]
    near_best = min(near, key=lambda i: loss[i])
    smooth = [statistics.mean(acc[max(0, i - 1):i + 2]) for i in range(len(acc))]
    avg = {k: sum(w[k].float() for w in state["weights"][-3:]) / 3 for k in state["weights"][-1]}
    m = trainer.model
    m.load_state_dict({k: v.to(state["weights"][-1][k].dtype) for k, v in avg.items()})
    out = {"acc+loss": t[best], "acc~1+loss": t[near_best], "loss": t[int(np.argmin(loss))], "smooth acc": t[int(np.argmax(smooth))],
           "last": t[-1], "avg last 3": test_accuracy(m), "oracle": max(t)}
    out["_n"] = (len(ds.train), len(ds.val), len(test))
    out["_epochs"] = {"acc+loss": best + 1, "acc~1+loss": near_best + 1, "loss": int(np.argmin(loss)) + 1, "smooth acc": int(np.argmax(smooth)) + 1}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" /
                                                                                       "datasets" / "catdog-1800")))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--models", nargs="*", default=["lenet5", "efficientnet_lite0"])
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores, data {args.data}, seeds {args.seeds}")
    for model in args.models:
        rows = []
        for seed in args.seeds:
            r = run_one(args.data, model, seed)
            rows.append(r)
            n = r["_n"]
            print(f"  {model} seed {seed}: train {n[0]}, select {n[1]}, test {n[2]}; chosen epochs {r['_epochs']}",
                  flush=True)
        print(f"\n{model}: test accuracy of the epoch each rule keeps (%)")
        print(f"{'rule':<12}" + "".join(f"{'seed ' + str(s):>9}" for s in args.seeds) + f"{'mean':>9}")
        for rule in RULES:
            v = [r[rule] * 100 for r in rows]
            print(f"{rule:<12}" + "".join(f"{x:>9.2f}" for x in v) + f"{statistics.mean(v):>9.2f}")
        print()


if __name__ == "__main__":
    main()
