"""The README's accuracy table, re-measured: each row is the `catdog` command the README shows, run
as a user runs it (a fresh process), on one cache folder that starts empty, so "cold" pays the photo
decoding, the feature pass and the ONNX export, and "again" (the same command once more) shows the
caches at work.

Run by hand (not by pytest), with nothing else running:
    python tests/benchmarks/bench_readme.py [DATA] [--rows lenet5 augment lite0 lite1 lite2 finetune]
                                            [--seeds 0 1 2]

Columns: ``val acc``: the saved model's validation accuracy (the best epoch, on the seeded split's
held-out photos); ``wall s``: the whole command (interpreter start and imports included);
``again s``: the same command repeated (transfer rows only: the others have no cache to reuse).
Extra seeds (``--seeds 0 1 2``) add one row per seed for the pretrained backbones (accuracy only:
their features are already cached by then).
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

ROWS = {
    "lenet5": (["--model", "lenet5", "--epochs", "30"], False),
    "augment": (["--model", "lenet5", "--augment"], False),
    "lite0": (["--model", "efficientnet_lite0", "--pretrained"], True),
    "lite1": (["--pretrained"], True),
    "lite2": (["--model", "efficientnet_lite2", "--pretrained"], True),
    "finetune": (["--pretrained", "--finetune"], False),
}
SEEDED = ("lite0", "lite1", "lite2")


def _train(data: str, args: list[str], seed: int, out: Path, env: dict) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "catdog_gui.cli", "train", data, *args, "--seed", str(seed), "--out", str(out)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}")
    info = subprocess.run([sys.executable, "-m", "catdog_gui.cli", "info", str(out), "--json"], env=env,
                          stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(info.stdout)["meta"]["metrics"]["val_accuracy"], wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA", "../shared/datasets/catdog-1800"))
    ap.add_argument("--rows", nargs="*", choices=list(ROWS), default=[r for r in ROWS if r != "finetune"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="catdog-bench-readme-") as tmp:
        env = {**os.environ, "CATDOG_CACHE_DIR": str(Path(tmp) / "cache"), "CATDOG_DATA_DIR": str(Path(tmp) / "data")}
        print(f"{'row':<10} {'seed':>4} {'val acc':>8} {'wall s':>7} {'again s':>8}", flush=True)
        for row in a.rows:
            args, cached = ROWS[row]
            for seed in a.seeds if row in SEEDED else a.seeds[:1]:
                acc, wall = _train(a.data, args, seed, Path(tmp) / f"{row}-{seed}.pt", env)
                again = ""
                if cached and seed == a.seeds[0]:
                    _acc2, w2 = _train(a.data, args, seed, Path(tmp) / f"{row}-{seed}-again.pt", env)
                    again = f"{w2:.1f}"
                print(f"{row:<10} {seed:>4} {acc:>8.1%} {wall:>7.1f} {again:>8}", flush=True)


if __name__ == "__main__":
    main()
