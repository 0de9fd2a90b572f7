"""INT8 against float32 for the pretrained models: validation accuracy, file size and photos per second.

Run by hand (not by pytest), with nothing else running:
    python tests/benchmarks/bench_int8.py [DATA] [--models efficientnet_lite0 efficientnet_lite1 efficientnet_lite2]

Each model's head is trained on frozen features (5 epochs, the standard split), exported with
``catdog export --int8``'s code (calibrated on 300 training photos) and measured on the validation photos
against the float export in the same run: accuracy (and how many more or fewer photos are right), the largest difference in a
probability, size, and photos per second through onnxruntime (2 threads, batches of 32). The same numbers
decide whether the frozen backbone's features could use INT8 too (the feature pass is nearly all of the
work): only if accuracy stays within one photo of float and the pass gets faster.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" /
                                                                                       "datasets" / "catdog-1800")))
    ap.add_argument("--models", nargs="*", default=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
    args = ap.parse_args()
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.inference.quantize import export_int8
    from catdog_gui.core.training.trainer import Trainer

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            out = Path(tmp) / f"{model}.pt"
            fin = Trainer(TrainConfig.for_model(model, pretrained=True, epochs=5, patience=0)).fit(args.data,
                                                                                               out_path=out)
            assert fin.ok, fin.reason
            r = export_int8(out, Path(tmp) / f"{model}.int8.onnx")
            rows.append((model, r))
            print("\n".join(r.lines()), flush=True)
    print(f"\n{os.cpu_count()} cores; validation photos: {rows[0][1].validation_photos}")
    print(f"{'model':<20} {'float acc':>9} {'INT8 acc':>9} {'Δ right':>7} {'max dp':>7} {'float MB':>9} "
          f"{'INT8 MB':>8} {'float img/s':>12} {'INT8 img/s':>11} {'speed-up':>9}")
    for model, r in rows:
        n = r.validation_photos
        print(f"{model:<20} {r.float_accuracy * 100:>8.2f}% {r.int8_accuracy * 100:>8.2f}% "
              f"{round(abs(r.float_accuracy - r.int8_accuracy) * n):>7d} {r.max_probability_difference:>7.3f} "
              f"{r.float_bytes / 1e6:>9.2f} {r.int8_bytes / 1e6:>8.2f} {r.float_images_per_s:>12.1f} "
              f"{r.int8_images_per_s:>11.1f} {r.int8_images_per_s / r.float_images_per_s:>8.2f}x")


if __name__ == "__main__":
    main()
