"""Training across 2 processes (gloo on 127.0.0.1): shards, all-reduced metrics, one model file."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys

import pytest
import torch
import torch.multiprocessing as mp

from catdog_gui.core.storage.modelfile import load_model


def _free_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999): a port the kernel hands out could be
    taken again, as some connection's source port, before the rank-0 store binds it."""
    import random

    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out_dir: str, cfg: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from catdog_gui.core.training.distributed import init_from_env, shutdown
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    ctx = init_from_env(timeout_s=120)
    trainer = Trainer(TrainConfig.from_dict(cfg), dist=ctx)
    result = trainer.fit(data, out_path=os.path.join(out_dir, "ddp.pt"))
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"status": result.status, "reason": result.reason, "val_acc": result.best_val_acc,
                   "shard": [str(s.path) for s in trainer.train_samples],
                   "all_train": [str(s.path) for s in trainer.dataset.train],
                   "history": [e.val_acc for e in result.history]}, f)
    shutdown()


@pytest.fixture(scope="module")
def subset(real_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp") / "data"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for p in sorted((real_data / c).iterdir())[:40]:
            shutil.copy(p, root / c / p.name)
    return root


@pytest.mark.skipif(sys.platform == "win32", reason="gloo on Windows needs extra setup")
def test_two_processes_shard_and_match_single_process(subset, tmp_path):
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    cfg = TrainConfig(model="efficientnet_lite0", pretrained=True, epochs=15, batch_size=16, patience=0, seed=0)
    mp.spawn(_worker, args=(2, _free_port(), str(subset), str(tmp_path), cfg.to_dict()), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(r["status"] == "completed" for r in ranks), ranks
    # disjoint shards that cover the training set exactly
    a, b = set(ranks[0]["shard"]), set(ranks[1]["shard"])
    assert not a & b and a | b == set(ranks[0]["all_train"])
    # every rank printed the same (all-reduced) validation accuracy
    assert ranks[0]["history"] == ranks[1]["history"]
    # one model file, same format as a single-process run (no "module." prefixes), and it predicts
    model, info = load_model(tmp_path / "ddp.pt")
    assert info.classes == ["cat", "dog"] and not any(k.startswith("module.") for k in model.state_dict())
    single = Trainer(cfg).fit(subset)
    # 15 cheap epochs of the head on cached features: both runs have converged, so they should agree
    assert abs(single.best_val_acc - ranks[0]["val_acc"]) <= 0.1, (single.best_val_acc, ranks[0]["val_acc"])
    from catdog_gui.core.inference.predictor import Predictor

    pred = Predictor(tmp_path / "ddp.pt", "cpu").predict(sorted((subset / "dog").iterdir())[0])
    assert pred.label in ("cat", "dog") and abs(sum(p for _, p in pred.probabilities) - 1) < 1e-5
