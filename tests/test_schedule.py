"""Learning-rate schedules: the stated rates at the stated steps, in the formula and in a real fit (the rate
the optimizer steps with, the one each batch reports, the one the run keeps per epoch)."""

from __future__ import annotations

import math

import pytest
import torch

from catdog_gui.core.config import TrainConfig
from catdog_gui.core.training.schedule import (
    COSINE_WARM,
    ONECYCLE_DIV,
    ONECYCLE_FINAL_DIV,
    ONECYCLE_WARM,
    lr_factor,
)
from tests.helpers import make_dataset


def test_constant_is_one_everywhere():
    assert {lr_factor("constant", s, 50) for s in range(50)} == {1.0}


def test_onecycle_starts_low_peaks_at_30_percent_and_ends_near_zero():
    total = 101
    f = [lr_factor("onecycle", s, total) for s in range(total)]
    peak = round(ONECYCLE_WARM * (total - 1))
    assert f[0] == pytest.approx(1 / ONECYCLE_DIV)
    assert f[peak] == pytest.approx(1.0) and max(f) == f[peak]
    assert f[-1] == pytest.approx(1 / (ONECYCLE_DIV * ONECYCLE_FINAL_DIV))
    assert all(a <= b for a, b in zip(f[:peak], f[1:peak + 1]))  # rises, then falls
    assert all(a >= b for a, b in zip(f[peak:], f[peak + 1:]))
    assert f[(peak + total - 1) // 2] == pytest.approx((1 + 1 / (ONECYCLE_DIV * ONECYCLE_FINAL_DIV)) / 2, rel=0.05)


def test_cosine_warms_up_linearly_then_falls_to_zero():
    total = 200
    warm = round(COSINE_WARM * total)
    f = [lr_factor("cosine", s, total) for s in range(total)]
    assert f[:warm] == pytest.approx([(s + 1) / (warm + 1) for s in range(warm)])
    assert f[warm] == pytest.approx(1.0, abs=1e-3) and f[-1] == pytest.approx(0.0, abs=1e-12)
    half = warm + (total - warm) // 2
    assert f[half - 1] == pytest.approx(0.5, abs=0.02)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="one of constant, onecycle, cosine"):
        lr_factor("triangle", 0, 10)
    with pytest.raises(Exception, match="learning-rate schedule must be one of"):
        TrainConfig(schedule="triangle").validate()


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_a_fit_steps_with_the_scheduled_rates_and_records_them(tmp_path, monkeypatch, schedule):
    from catdog_gui.core.events import BatchEnd, EpochEnd
    from catdog_gui.core.training.trainer import Trainer

    stepped = []
    real_step = torch.optim.Adam.step

    def step(self, *a, **k):
        stepped.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    events = []
    data = make_dataset(tmp_path / "d", 10)
    cfg = TrainConfig(model="lenet5", epochs=3, batch_size=8, lr=0.01, patience=0, schedule=schedule)
    result = Trainer(cfg, [events.append]).fit(data, out_path=tmp_path / "m.pt")
    assert result.status == "completed", result.reason
    batches = [e for e in events if isinstance(e, BatchEnd)]
    total = len(batches)
    want = [0.01 * lr_factor(schedule, s, total) for s in range(total)]
    assert stepped == pytest.approx(want) and [b.lr for b in batches] == pytest.approx(want)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    per_epoch = total // 3
    assert [e.lr for e in epochs] == pytest.approx([want[per_epoch * (i + 1) - 1] for i in range(3)])
    assert not math.isclose(min(stepped), max(stepped))
    from catdog_gui.core.storage.modelfile import read_model_file

    info = read_model_file(tmp_path / "m.pt")[0]
    assert info.config["schedule"] == schedule and info.metrics["history"][-1]["lr"] == pytest.approx(want[-1])
