"""Training throughput: catdog's Trainer vs a plain torchvision ImageFolder + DataLoader loop, per model,
on the same images, split, batch size and model, in one run. Prints one table.

Run by hand:
    python tests/benchmarks/bench_throughput.py [DATA] [--models lenet5 efficientnet_lite0 ...]
        [--per-class N] [--epochs E] [--backbone-per-class N] [--backbone-epochs E]

DATA defaults to $CATDOG_TEST_DATA or ../shared/datasets/catdog-1800. ``--per-class`` takes the first
N images of each class (symlinks in a temp folder, nothing is copied); backbones default to a
smaller subset (224x224 convolutions on 2 CPU cores are slow) - the ratio, not the absolute time, is
the point.

What each column means:

* **epoch 1 (s)**: wall time from "start" to the end of the first epoch *including validation*:
  for catdog that is scan (header check of every file, duplicate detection), decode into the uint8
  cache (cold: a fresh disk-cache folder), feature extraction in features mode, one training epoch
  and the validation pass; for the reference it is building the ImageFolder, one epoch of decoding +
  training, and a validation pass through a second DataLoader.
* **later epoch (s)**: mean wall time of the epochs after the first (training + validation).
* **train img/s**: training images / training seconds in the later epochs (validation excluded).
* **2nd run, 1st batch (s)**: catdog only: a new ``Trainer.fit`` on the same folder; the disk cache
  memory-maps the decoded images, so this is scan + cache load + model build until the first batch.

Models: LeNet-5 trains from scratch (what the app does). Backbones run as the app runs them with
``pretrained=True`` and no augmentation: **features mode** (backbone frozen, features computed
once, the head trains on cached features). The reference does what a plain loop would: the frozen
backbone runs under ``torch.no_grad`` on every batch of every epoch, the head learns.
EfficientNet-Lite0 uses its bundled ImageNet weights. ResNet-18 and MobileNetV3-Large would download
their ImageNet weights, which this offline machine cannot: they run with **random weights** saved to
a local file and passed as ``weights_path`` (identical compute, meaningless accuracy).

The reference loop uses torch's default thread count; catdog uses each model's thread hint
(LeNet-5: 1 thread). Same optimizer (Adam, lr 1e-3) and batch size.

Profile notes (cProfile of a 4-epoch LeNet-5 Trainer.fit on catdog-1800, 2 shared cores): the later
epochs are the model's own work (``run_backward``, ``conv2d``, ``tanh``, ``avg_pool2d``); the uint8
cache gather + normalise (``Trainer._batch``) is ~4% of the loop; Adam's unfused per-parameter step
was the largest remaining overhead (fused since 11131cf). The reference decodes every JPEG in every
epoch: its later epochs take as long as its first, and 2 loader workers do not help on 2 busy cores.
The first optimizer of a process imports ``torch._dynamo`` (~2-3 s here), in both pipelines.
For backbones in features mode the cost is one backbone forward per image, once; the head's epochs
are milliseconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" / "datasets" / "catdog-1800"))


def subset(data: Path, per_class: int, tmp: Path) -> Path:
    """The first ``per_class`` images of each class folder, as symlinks under ``tmp`` (0: all of them)."""
    if not per_class:
        return data
    out = tmp / f"subset-{per_class}"
    if out.exists():
        return out
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        (out / d.name).mkdir(parents=True)
        for f in sorted(d.iterdir())[:per_class]:
            (out / d.name / f.name).symlink_to(f.resolve())
    return out


def random_weights_file(model: str, tmp: Path) -> str | None:
    """torchvision backbones: random ImageNet-shaped weights in a local file (no download possible)."""
    if model not in ("resnet18", "mobilenet_v3_large"):
        return None
    import torchvision.models as tvm

    path = tmp / f"{model}-random.pth"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(getattr(tvm, model)(weights=None).state_dict(), path)
    return str(path)


def ours(data: Path, model: str, epochs: int, batch_size: int, weights_path: str | None):
    from catdog_gui.core.events import BatchEnd, EpochEnd
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    def run(n_epochs):
        marks: dict = {"epochs": []}
        t0 = time.perf_counter()

        def cb(e):
            if isinstance(e, BatchEnd) and "batch" not in marks:
                marks["batch"] = time.perf_counter() - t0
            elif isinstance(e, EpochEnd):
                marks["epochs"].append((time.perf_counter(), e))

        backbone = model != "lenet5"
        cfg = TrainConfig.for_model(model, epochs=n_epochs, batch_size=batch_size, patience=0, seed=0,
                                    pretrained=backbone, weights_path=weights_path)
        trainer = Trainer(cfg, [cb])
        result = trainer.fit(data)
        if not result.ok:
            raise SystemExit(f"catdog {model}: {result.status}: {result.reason}\n{result.traceback}")
        return trainer, marks, t0

    trainer, marks, t0 = run(epochs)
    ev = marks["epochs"]
    first = ev[0][0] - t0
    later = [e.seconds for _, e in ev[1:]]
    ips = [e.images_per_s for _, e in ev[1:]]
    _, marks2, _ = run(1)  # the second run on the same files: disk cache hit
    return dict(n=len(trainer.dataset.train), first=first, later=statistics.mean(later),
                ips=statistics.mean(ips), second_first_batch=marks2["batch"], threads=_threads(model))


def _threads(model: str) -> int:
    from catdog_gui.core.models import get_spec

    return int(get_spec(model).defaults.get("threads", 0)) or torch.get_num_threads()


def reference(data: Path, model: str, epochs: int, batch_size: int, workers: int, weights_path: str | None,
              train_paths: set[str], val_paths: set[str]):
    """The loop a PyTorch tutorial would write: ImageFolder + DataLoader, decoding every epoch."""
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    from catdog_gui.core.models import create_model, get_spec

    spec = get_spec(model)
    size = spec.default_image_size
    backbone = model != "lenet5"
    t0 = time.perf_counter()
    tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(spec.mean, spec.std)])
    full = ImageFolder(str(data), transform=tf)
    tr = [i for i, (p, _) in enumerate(full.samples) if str(Path(p)) in train_paths]
    va = [i for i, (p, _) in enumerate(full.samples) if str(Path(p)) in val_paths]
    kw = dict(batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0)
    train_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(full, tr), shuffle=True, **kw)
    val_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(full, va), shuffle=False, **kw)
    torch.manual_seed(0)
    net = create_model(model, 2, pretrained=backbone, weights_path=weights_path)
    if backbone:
        net.set_backbone_trainable("frozen")
        net.eval()
        params = net.head.parameters()
    else:
        params = net.parameters()
    opt = torch.optim.Adam(params, 1e-3)
    loss_fn = nn.CrossEntropyLoss()
    walls, train_s = [], []
    for _ in range(epochs):
        t = time.perf_counter()
        net.train(not backbone)
        for x, y in train_loader:
            if backbone:
                with torch.no_grad():
                    f = net.backbone(x)
                logits = net.head(f)
            else:
                logits = net(x)
            loss = loss_fn(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_s.append(time.perf_counter() - t)
        net.eval()
        with torch.no_grad():
            for x, y in val_loader:
                net(x)
        walls.append(time.perf_counter() - (t0 if not walls else t))
    return dict(n=len(tr), first=walls[0], later=statistics.mean(walls[1:]),
                ips=len(tr) / statistics.mean(train_s[1:]), threads=torch.get_num_threads())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=DEFAULT_DATA)
    ap.add_argument("--models", nargs="*", default=["lenet5", "efficientnet_lite0", "resnet18", "mobilenet_v3_large"])
    ap.add_argument("--per-class", type=int, default=0, help="LeNet-5: images per class (0: all)")
    ap.add_argument("--epochs", type=int, default=4, help="LeNet-5 epochs (the first one decodes)")
    ap.add_argument("--backbone-per-class", type=int, default=150)
    ap.add_argument("--backbone-epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", default="0,2", help="reference DataLoader worker counts (best one is compared)")
    ap.add_argument("--backbone-workers", default="2", help="the same for backbones (0 workers is never faster)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="catdog-bench-tp-"))
    os.environ["CATDOG_CACHE_DIR"] = str(tmp / "cache")  # cold cache: the first run decodes
    from catdog_gui.core.data.scan import scan_dataset

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, data {args.data}", flush=True)
    rows = []
    try:
        for model in args.models:
            lenet = model == "lenet5"
            data = subset(Path(args.data), args.per_class if lenet else args.backbone_per_class, tmp)
            epochs = args.epochs if lenet else args.backbone_epochs
            wp = random_weights_file(model, tmp)
            ds = scan_dataset(data, seed=0)
            tp, vp = {str(s.path) for s in ds.train}, {str(s.path) for s in ds.val}
            o = ours(data, model, epochs, args.batch_size, wp)
            print(f"  {model}: catdog done (epoch 1 {o['first']:.1f}s, later {o['later']:.2f}s)", flush=True)
            refs = []
            for w in [int(v) for v in (args.workers if lenet else args.backbone_workers).split(",")]:
                r = reference(data, model, epochs, args.batch_size, w, wp, tp, vp)
                r["workers"] = w
                refs.append(r)
                print(f"  {model}: reference {w} workers done (epoch 1 {r['first']:.1f}s, "
                      f"later {r['later']:.2f}s)", flush=True)
            rows.append((model + (" (random weights)" if wp else ""), o, refs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")
    hdr = (f"{'model':<36} {'pipeline':<22} {'train n':>7} {'epoch 1 s':>9} {'later s':>8} {'train img/s':>11} "
           f"{'2nd run 1st batch s':>19}")
    print(hdr)
    print("-" * len(hdr))
    for name, o, refs in rows:
        print(f"{name:<36} {'catdog':<22} {o['n']:>7} {o['first']:>9.2f} {o['later']:>8.3f} {o['ips']:>11.0f} "
              f"{o['second_first_batch']:>19.2f}")
        for r in refs:
            print(f"{'':<36} {'ImageFolder+DL ' + str(r['workers']) + 'w':<22} {r['n']:>7} {r['first']:>9.2f} "
                  f"{r['later']:>8.3f} {r['ips']:>11.0f} {'-':>19}")
        best_ips = max(r["ips"] for r in refs)
        best_first = min(r["first"] for r in refs)
        best_later = min(r["later"] for r in refs)
        print(f"{'':<36} {'ratio (vs best ref)':<22} {'':>7} {best_first / o['first']:>8.1f}x "
              f"{best_later / o['later']:>7.1f}x {o['ips'] / best_ips:>10.1f}x")
    print()
    print("ratio > 1: catdog faster. epoch 1 = setup + first epoch + validation; later = mean later epoch "
          "(train + validation); train img/s = later epochs, training only.")


if __name__ == "__main__":
    main()
