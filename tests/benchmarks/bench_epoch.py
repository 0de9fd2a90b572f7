"""Epoch time: catdog's pipeline (decode once, uint8 cache) vs a plain torchvision ImageFolder +
DataLoader loop, same model (LeNet-5), same images, same batch size, in one run.

Run by hand:  python tests/benchmarks/bench_epoch.py [DATA] [--epochs 4]
DATA defaults to $CATDOG_TEST_DATA or ../shared/datasets/catdog-1800.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch import nn


def ours(data: Path, epochs: int, batch_size: int):
    from catdog_gui.core.events import EpochEnd
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    t0 = time.perf_counter()
    marks = []

    def cb(e):
        if isinstance(e, EpochEnd):
            marks.append(time.perf_counter())

    trainer = Trainer(TrainConfig(model="lenet5", epochs=epochs, batch_size=batch_size, patience=0, seed=0), [cb])
    result = trainer.fit(data)
    n = len(trainer.dataset.train)
    times = [marks[0] - t0] + [b - a for a, b in zip(marks, marks[1:])]
    return n, times, result


def plain(data: Path, epochs: int, batch_size: int, workers: int, train_paths: set[str]):
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    from catdog_gui.core.models import create_model

    tf = T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    full = ImageFolder(str(data), transform=tf)
    idx = [i for i, (p, _) in enumerate(full.samples) if str(Path(p)) in train_paths]
    ds = torch.utils.data.Subset(full, idx)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    torch.manual_seed(0)
    model = create_model("lenet5", 2)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.train()
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t)
    return len(ds), times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA", "../shared/datasets/catdog-1800"))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    data = Path(args.data)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, data {data}")
    n, ours_t, result = ours(data, args.epochs, args.batch_size)
    from catdog_gui.core.data.scan import scan_dataset

    train_paths = {str(s.path) for s in scan_dataset(data, seed=0).train}
    rows = [("catdog (decode once, uint8 cache)", n, ours_t)]
    for w in (0, 2):
        m, t = plain(data, args.epochs, args.batch_size, w, train_paths)
        rows.append((f"ImageFolder + DataLoader, {w} workers", m, t))
    print()
    print(f"{'pipeline':<40} {'images':>6} {'epoch 1 (s)':>12} {'later epochs (s)':>17} {'later img/s':>12}")
    for name, m, t in rows:
        later = sum(t[1:]) / max(1, len(t) - 1)
        print(f"{name:<40} {m:>6} {t[0]:>12.2f} {later:>17.3f} {m / later:>12.0f}")
    best_ref_first = min(r[2][0] for r in rows[1:])
    best_ref_later = min(sum(r[2][1:]) / (len(r[2]) - 1) for r in rows[1:])
    ours_later = sum(ours_t[1:]) / (len(ours_t) - 1)
    print()
    print(f"later epochs: catdog is {best_ref_later / ours_later:.1f}x faster than the faster plain loop")
    print(f"first epoch (catdog's includes scanning, duplicate check and decoding): "
          f"{best_ref_first / ours_t[0]:.2f}x")


if __name__ == "__main__":
    main()
