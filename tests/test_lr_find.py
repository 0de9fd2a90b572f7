"""The learning-rate finder: an exponential sweep that stops when the loss diverges, a suggestion by its
stated rule, and nothing changed: not the model it starts from, not its settings, not a file."""

from __future__ import annotations

import threading
from dataclasses import asdict

import numpy as np
import pytest
import torch

from catdog_gui.core.config import TrainConfig
from catdog_gui.core.errors import Cancelled
from catdog_gui.core.training.harness import find_learning_rate
from catdog_gui.core.training.lr_find import RULES, suggest, valley
from tests.helpers import make_dataset


def _files(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_sweep_grows_exponentially_and_suggests_by_its_rule(tmp_path):
    data = make_dataset(tmp_path / "d", 12)
    cfg = TrainConfig(model="lenet5", batch_size=8)
    before_cfg, before_files = asdict(cfg), _files(tmp_path)
    found = find_learning_rate(cfg, data, steps=40)
    lrs = np.array(found.lrs)
    assert len(lrs) >= 11 and lrs[0] == pytest.approx(1e-7)
    ratios = lrs[1:] / lrs[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] == pytest.approx((10 / 1e-7) ** (1 / 39))
    assert len(found.losses) == len(found.smoothed) == len(lrs) and np.isfinite(found.smoothed).all()
    i = int(np.argmin(found.smoothed))
    assert found.lr_at_min == lrs[i] and found.by_rule["min/10"] == pytest.approx(max(lrs[i] / 10, 1e-6))
    assert found.rule == "valley" and found.suggestion == valley(lrs, found.smoothed)
    assert set(found.by_rule) == set(RULES)
    assert asdict(cfg) == before_cfg and _files(tmp_path) == before_files  # no setting, no file changed
    assert "Suggested learning rate" in "\n".join(found.lines())


def test_the_model_it_continues_from_is_unchanged(tmp_path, tiny_model):
    """Sweeping from a model: its weights are put back afterwards (the file is never written either)."""
    from catdog_gui.core.storage.modelfile import load_model
    from catdog_gui.core.training.trainer import Trainer

    data = make_dataset(tmp_path / "d", 12)
    file_bytes = tiny_model.read_bytes()
    reference, _ = load_model(tiny_model)
    trainer = Trainer(TrainConfig(model="lenet5", batch_size=8))
    found = trainer.find_lr(data, resume_from=tiny_model, steps=30)
    assert found.lrs[-1] > 1.0 or found.diverged  # the sweep went far enough to wreck the weights
    after = trainer.model.state_dict()
    for k, v in reference.state_dict().items():
        assert torch.equal(after[k].cpu(), v), k
    assert tiny_model.read_bytes() == file_bytes


def test_cancel_stops_the_sweep(tmp_path):
    data = make_dataset(tmp_path / "d", 12)
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 5:
            cancel.set()

    with pytest.raises(Cancelled):
        find_learning_rate(TrainConfig(model="lenet5", batch_size=8), data, steps=10_000, progress=progress,
                           cancel=cancel)
    assert 5 <= max(seen) < 200


def test_the_rules_on_known_curves():
    lrs = np.logspace(-6, 0, 61)
    # falls from 1e-6 to 1e-2, flat minimum at 1e-2, rises after
    smooth = np.where(lrs <= 1e-2, 1.0 - 0.1 * (np.log10(lrs) + 6), 0.6 + 2 * (np.log10(lrs) + 2) ** 2)
    s, at_min, steep = suggest(lrs, smooth, "min/10")
    assert at_min == pytest.approx(1e-2) and s == pytest.approx(1e-3)
    v = valley(lrs, smooth)
    assert lrs[0] < v < at_min  # inside the falling stretch
    assert suggest(lrs, smooth, "valley")[0] == v


def test_cli_lr_find(tmp_path, capsys):
    from catdog_gui.cli import main

    data = make_dataset(tmp_path / "d", 12)
    assert main(["lr-find", str(data), "--steps", "30", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "Suggested learning rate" in out and f"catdog train {data} --model lenet5 --lr " in out
    assert main(["lr-find", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
