"""Inference: single-image latency and batch throughput per model, catdog's Predictor vs a plain
torchvision loop (PIL open + Resize + CenterCrop + ToTensor + Normalize + model under no_grad), in
one run. CPU always; CUDA columns when a GPU is available.

Run by hand:
    python tests/benchmarks/bench_inference.py [DATA] [--models ...] [--single 30] [--batch-images 256]

* **single ms**: median wall time to classify one JPEG from disk (decode, resize, forward,
  softmax), ``--single`` different files, after 3 warm-up calls; p90 in brackets.
* **batch img/s**: ``Predictor.predict_many`` on ``--batch-images`` files (batch 64) vs the plain loop
  over a DataLoader (batch 64, 0 workers: the same single process); decode included.
* **forward img/s**: the model alone on a ready (64, 3, S, S) batch: the upper bound.

Model files are written from freshly built models (EfficientNet-Lite0 with its bundled ImageNet
weights; LeNet-5, ResNet-18 and MobileNetV3-Large with random weights: timing only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" / "datasets" / "catdog-1800"))
MODELS = ["lenet5", "efficientnet_lite0", "resnet18", "mobilenet_v3_large"]


def model_file(name: str, folder: Path) -> Path:
    from catdog_gui.core.storage.modelfile import save_model
    from catdog_gui.core.models import create_model, get_spec

    spec = get_spec(name)
    torch.manual_seed(0)
    model = create_model(name, 2, pretrained=(name == "efficientnet_lite0"))
    return save_model(folder / f"{name}.pt", model, model_name=name, classes=["cat", "dog"],
                      image_size=spec.default_image_size, mean=spec.mean, std=spec.std)


def timed(fn, reps):
    out = []
    for r in reps:
        t = time.perf_counter()
        fn(r)
        out.append(time.perf_counter() - t)
    return out


def bench(name: str, path: Path, files: list[Path], device: str, n_single: int, n_batch: int) -> dict:
    import torchvision.transforms as T
    from PIL import Image

    from catdog_gui.core.inference.predictor import Predictor

    pred = Predictor(path, device)
    dev = pred.device
    size = pred.info.image_size
    model = pred.model
    tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(pred.info.mean, pred.info.std)])

    def plain_one(p):
        with torch.no_grad():
            x = tf(Image.open(p).convert("RGB")).unsqueeze(0).to(dev)
            probs = torch.softmax(model(x), 1).cpu()
        return probs

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    singles = files[:n_single]
    for p in files[-3:]:  # warm-up
        pred.predict(p)
        plain_one(p)
    ours_single = timed(lambda p: pred.predict(p), singles)
    ref_single = timed(plain_one, singles)

    batch = files[:n_batch]
    t = time.perf_counter()
    pred.predict_many(batch, batch_size=64)
    ours_batch = len(batch) / (time.perf_counter() - t)

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(batch)

        def __getitem__(self, i):
            return tf(Image.open(batch[i]).convert("RGB"))

    t = time.perf_counter()
    with torch.no_grad():
        for x in torch.utils.data.DataLoader(DS(), batch_size=64, num_workers=0):
            torch.softmax(model(x.to(dev)), 1).cpu()
    ref_batch = len(batch) / (time.perf_counter() - t)

    x = torch.randn(64, 3, size, size, device=dev)
    with torch.inference_mode():
        model(x)
        sync()
        t = time.perf_counter()
        reps = 3
        for _ in range(reps):
            model(x)
        sync()
    forward = 64 * reps / (time.perf_counter() - t)

    def q(v, f):
        v = sorted(v)
        return v[min(len(v) - 1, int(f * len(v)))] * 1000

    return dict(ours_single=statistics.median(ours_single) * 1000, ours_single_p90=q(ours_single, 0.9),
                ref_single=statistics.median(ref_single) * 1000, ref_single_p90=q(ref_single, 0.9),
                ours_batch=ours_batch, ref_batch=ref_batch, forward=forward)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=DEFAULT_DATA)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--single", type=int, default=30)
    ap.add_argument("--batch-images", type=int, default=256)
    args = ap.parse_args()
    files = sorted(p for p in Path(args.data).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = files[:: max(1, len(files) // max(args.batch_images, args.single + 3))]  # both classes
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, devices {devices}, {len(files)} files", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="catdog-bench-inf-") as tmp:
        for name in args.models:
            path = model_file(name, Path(tmp))
            for dev in devices:
                r = bench(name, path, files, dev, args.single, args.batch_images)
                rows.append((name, dev, r))
                print(f"  {name} {dev}: {r}", flush=True)
    print()
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")
    hdr = (f"{'model':<20} {'dev':<5} {'single ms (p90)':>18} {'plain ms (p90)':>18} {'ratio':>6} "
           f"{'batch img/s':>11} {'plain img/s':>11} {'ratio':>6} {'forward img/s':>13}")
    print(hdr)
    print("-" * len(hdr))
    for name, dev, r in rows:
        print(f"{name:<20} {dev:<5} {r['ours_single']:>9.1f} ({r['ours_single_p90']:>6.1f}) "
              f"{r['ref_single']:>9.1f} ({r['ref_single_p90']:>6.1f}) {r['ref_single'] / r['ours_single']:>5.2f}x "
              f"{r['ours_batch']:>11.0f} {r['ref_batch']:>11.0f} {r['ours_batch'] / r['ref_batch']:>5.2f}x "
              f"{r['forward']:>13.0f}")
    print()
    print("ratio > 1: catdog faster. Single = one file from disk to probabilities; batch = decode + forward.")


if __name__ == "__main__":
    main()
