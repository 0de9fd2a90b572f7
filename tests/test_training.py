"""The trainer: learning, events, cancel, pause, resume, NaN, failures, determinism."""

from __future__ import annotations

import math
import threading

import pytest
import torch
from torch import nn

from catdog_gui.core.events import (
    BatchEnd,
    CheckpointSaved,
    DatasetScanned,
    EpochEnd,
    Finished,
    RunStarted,
    StageProgress,
)
from catdog_gui.core.storage.modelfile import load_model
from catdog_gui.core.config import TrainConfig
from catdog_gui.core.errors import CatdogError
from catdog_gui.core.training.trainer import Trainer


def run(data, out=None, callbacks=(), resume=None, **cfg):
    cfg.setdefault("epochs", 3)
    cfg.setdefault("patience", 0)
    trainer = Trainer(TrainConfig(**cfg), list(callbacks))
    return trainer, trainer.fit(data, out_path=out, resume_from=resume)


def test_short_run_learns_and_writes_model(tmp_path):
    from helpers import make_dataset

    events = []
    data = make_dataset(tmp_path / "data", 50)
    trainer, result = run(data, tmp_path / "m.pt", [events.append], epochs=6, val_fraction=0.5)
    assert result.status == "completed"
    assert len(trainer.dataset.val) == 50
    # reddish vs bluish on 50 unseen images: chance (0.5), the untrained network (~0.05) and a
    # trainer that learns too slowly (lr 1e-5: ~0.45 after 6 epochs) are all far below
    assert result.best_val_acc >= 0.96
    kinds = [type(e) for e in events if not isinstance(e, StageProgress)]
    assert kinds[0] is DatasetScanned and RunStarted in kinds and kinds[-1] is Finished
    assert kinds.index(RunStarted) < kinds.index(BatchEnd) < kinds.index(EpochEnd) < kinds.index(CheckpointSaved)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == list(range(1, 7))
    assert result.best_path == str(tmp_path / "m.pt")
    model, info = load_model(result.best_path)
    assert info.classes == ["cat", "dog"]
    assert info.metrics["best_epoch"] == result.best_epoch
    assert info.config["epochs"] == 6 and info.metrics["n_val"] == 50
    assert abs(info.metrics["val_accuracy"] - result.best_val_acc) < 1e-6


def test_same_seed_same_result(tiny_dataset):
    _, a = run(tiny_dataset, seed=3)
    _, b = run(tiny_dataset, seed=3)
    _, c = run(tiny_dataset, seed=4)
    la = [e.train_loss for e in a.history]
    assert la == [e.train_loss for e in b.history]
    assert la != [e.train_loss for e in c.history]


def test_cancel_stops_within_one_batch_and_keeps_best(tiny_dataset, tmp_path):
    batches = []
    holder = {}

    def cb(e):
        if isinstance(e, BatchEnd):
            batches.append((e.epoch, e.step))
            if e.epoch == 2 and e.step == 1:
                holder["t"].cancel()

    trainer = Trainer(TrainConfig(epochs=50, batch_size=4, patience=0), [cb])
    holder["t"] = trainer
    result = trainer.fit(tiny_dataset, out_path=tmp_path / "m.pt")
    assert result.status == "cancelled"
    assert batches[-1] == (2, 1)  # nothing ran after the batch that asked to stop
    assert result.best_epoch == 1 and (tmp_path / "m.pt").exists()


def test_pause_blocks_until_resume(tiny_dataset):
    paused_at = threading.Event()
    release = threading.Event()
    steps_after_pause = []
    holder = {}

    def cb(e):
        if isinstance(e, BatchEnd):
            if paused_at.is_set():
                steps_after_pause.append(e)
            elif e.epoch == 1 and e.step == 2:
                holder["t"].pause()
                paused_at.set()

    trainer = Trainer(TrainConfig(epochs=2, batch_size=8, patience=0), [cb])
    holder["t"] = trainer
    thread = threading.Thread(target=lambda: holder.setdefault("r", trainer.fit(tiny_dataset)))
    thread.start()
    assert paused_at.wait(60)
    thread.join(0.3)  # the trainer is parked: the thread is still alive and nothing advanced
    assert thread.is_alive() and trainer.paused and steps_after_pause == []
    trainer.resume()
    thread.join(60)
    assert holder["r"].status == "completed" and steps_after_pause


def test_nan_loss_stops_with_reason(tiny_dataset):
    holder = {}

    def cb(e):
        if isinstance(e, BatchEnd) and e.epoch == 2 and e.step == 1:
            with torch.no_grad():
                holder["t"].model.output.weight.fill_(float("nan"))

    trainer = Trainer(TrainConfig(epochs=5, patience=0), [cb])
    holder["t"] = trainer
    result = trainer.fit(tiny_dataset)
    assert result.status == "failed" and "NaN" in result.reason.replace("nan", "NaN")
    assert "learning rate" in result.reason
    assert result.best_epoch == 1 and len(result.history) == 1


def test_exception_in_training_becomes_failed_event(tiny_dataset):
    events = []

    def cb(e):
        events.append(e)
        if isinstance(e, EpochEnd):
            raise ZeroDivisionError("boom")

    _, result = run(tiny_dataset, callbacks=[cb])
    assert result.status == "failed" and not result.user_error
    assert "ZeroDivisionError" in result.traceback
    assert isinstance(events[-1], Finished) and events[-1] is result


def test_user_errors_are_failed_events(tmp_path):
    _, result = run(tmp_path / "missing")
    assert result.status == "failed" and result.user_error and "does not exist" in result.reason



def test_a_bad_setting_is_refused_before_anything_starts(tmp_path):
    """The Trainer checks its config when it is made (the one check): CatdogError names the setting."""
    with pytest.raises(CatdogError, match="epochs must be between"):
        Trainer(TrainConfig(epochs=0))


def test_early_stopping_keeps_best_epoch(tiny_dataset):
    _, result = run(tiny_dataset, epochs=40, patience=2, lr=0.05, optimizer="sgd")
    assert result.status == "stopped_early"  # the loss reaches 0 long before epoch 40
    assert len(result.history) == result.best_epoch + 2 < 40
    best = max(result.history, key=lambda e: (e.val_acc, -e.val_loss))
    assert best.epoch == result.best_epoch


# ------------------------------------------------------------------------------------------------
# the best-epoch rule: highest validation accuracy, lower validation loss breaks ties


class _ColourRule(nn.Module):
    """A one-feature classifier whose validation accuracy and loss the test sets exactly: the feature
    is red minus blue; ``shift`` moves the boundary (accuracy), ``scale`` the confidence (loss)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.shift = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        z = self.scale * ((x[:, 0] - x[:, 2]).mean((1, 2)) - self.shift)
        return torch.stack([z, -z], 1)  # class 0 (cat) when red outweighs blue


#: (scale, shift) set after each epoch's last batch, and the (accuracy, ~loss) that gives on the
#: validation photos below: accuracy and loss disagree
_SCHEDULE = [
    (1.0, 0.0),    # 1: acc 0.8, loss 0.39
    (20.0, 0.35),  # 2: acc 0.9, loss 0.65  first to reach the best accuracy, but not its lowest loss
    (8.0, 0.35),   # 3: acc 0.9, loss 0.34  the project's rule: best accuracy, lower loss of the ties
    (5.0, 0.25),   # 4: acc 0.8, loss 0.25  lowest loss of all, lower accuracy
    (12.0, 0.35),  # 5: acc 0.9, loss 0.44  last to reach the best accuracy
]


@pytest.fixture
def colour_rule_model(monkeypatch):
    from catdog_gui.core.models import registry

    built = []

    def build(**_):
        built.append(_ColourRule())
        return built[-1]

    spec = registry.ModelSpec(name="test_colour_rule", title="test colour rule", build=build, default_image_size=16,
                              fixed_image_size=True, mean=registry.HALF_MEAN, std=registry.HALF_STD)
    registry.get_spec("lenet5")  # the registry's own models first
    monkeypatch.setitem(registry._REGISTRY, spec.name, spec)
    return built


def _flat_photo(path, red_minus_blue: int):
    from PIL import Image

    r = 128 + (red_minus_blue + 1) // 2
    Image.new("RGB", (16, 16), (r, 100, r - red_minus_blue)).save(path)


def _colour_rule_run(tmp_path, model, schedule, **cfg):
    """Train the colour rule with its weights set to ``schedule[epoch - 1]`` after each epoch's last
    batch (so that is what the epoch's validation measures), on 10 flat-colour validation photos."""
    from helpers import make_dataset

    train = make_dataset(tmp_path / "train", 4)
    val = tmp_path / "val"
    for c, diffs in (("cat", (120, 100, 80, 50, 25)), ("dog", (-120, -100, -80, 15, 40))):  # 2 dogs look red
        (val / c).mkdir(parents=True)
        for d in diffs:
            _flat_photo(val / c / f"{c}_{d + 200}.png", d)

    def set_weights(e):
        if isinstance(e, BatchEnd) and e.step == e.steps:  # after the epoch's training, before its validation
            scale, shift = schedule[e.epoch - 1]
            with torch.no_grad():
                model[0].scale.fill_(scale)
                model[0].shift.fill_(shift)

    cfg = TrainConfig(model="test_colour_rule", lr=1e-6, batch_size=8, **cfg)
    return Trainer(cfg, [set_weights]).fit(train, val_dir=val, out_path=tmp_path / "m.pt")


def test_best_epoch_is_highest_val_accuracy_then_lowest_val_loss(tmp_path, colour_rule_model):
    from catdog_gui.core.storage.modelfile import read_model_file

    result = _colour_rule_run(tmp_path, colour_rule_model, _SCHEDULE, epochs=len(_SCHEDULE), patience=0)
    assert result.status == "completed", result.reason
    acc = [round(e.val_acc, 6) for e in result.history]
    loss = [e.val_loss for e in result.history]
    # the scenario: accuracy and loss disagree, and the tie at the best accuracy is broken by the loss
    assert acc == [0.8, 0.9, 0.9, 0.8, 0.9]
    assert min(loss) == loss[3] and loss[2] < loss[4] < loss[1]

    assert result.best_epoch == 3  # not 4 (lowest loss), 2 (first best accuracy) or 5 (last best accuracy)
    assert result.best_val_acc == pytest.approx(0.9)
    assert [e.is_best for e in result.history] == [True, True, True, False, False]
    assert [e.best_epoch for e in result.history] == [1, 2, 3, 3, 3]
    # and the file holds epoch 3's weights and measurements
    info, state = read_model_file(result.best_path)
    assert (state["scale"].item(), state["shift"].item()) == pytest.approx(_SCHEDULE[2])
    assert info.metrics["best_epoch"] == 3 and info.metrics["val_accuracy"] == pytest.approx(0.9)
    assert info.metrics["val_loss"] == pytest.approx(loss[2])


def test_is_better_epoch_rule():
    from catdog_gui.core.training.loop import is_better_epoch

    assert is_better_epoch(0.5, 9.0, float("nan"), math.inf)  # the first epoch is the best so far
    assert is_better_epoch(0.9, 1.0, 0.8, 0.1)  # higher accuracy wins, even with a higher loss
    assert not is_better_epoch(0.8, 0.1, 0.9, 1.0)  # a lower loss does not beat a higher accuracy
    assert is_better_epoch(0.9, 0.5, 0.9, 0.6)  # equal accuracy: the lower loss wins
    assert not is_better_epoch(0.9, 0.6, 0.9, 0.6) and not is_better_epoch(0.9, 0.7, 0.9, 0.6)


def test_early_stopping_waits_until_neither_loss_nor_best_accuracy_improves(tmp_path, colour_rule_model):
    schedule = [
        (1.0, 0.0),    # 1: acc 0.8, loss 0.39  best
        (20.0, 0.35),  # 2: acc 0.9, loss 0.65  best (accuracy), loss not lower: counts as progress
        (20.0, 0.35),  # 3: the same: no progress (1)
        (5.0, 0.25),   # 4: acc 0.8, loss 0.25  lowest loss so far: progress, the count starts again
        (20.0, 0.0),   # 5: acc 0.8, loss 1.73  no progress (1)
        (20.0, 0.0),   # 6: no progress (2): patience 2 stops here
        (8.0, 0.35), (8.0, 0.35),
    ]
    result = _colour_rule_run(tmp_path, colour_rule_model, schedule, epochs=len(schedule), patience=2)
    assert result.status == "stopped_early", result.reason
    assert [e.epoch for e in result.history] == [1, 2, 3, 4, 5, 6]
    assert result.best_epoch == 2 and "kept epoch 2" in result.reason


def test_resume_continues_from_saved_model(tiny_dataset, tmp_path):
    _, first = run(tiny_dataset, tmp_path / "a.pt", epochs=2)
    model_a, _ = load_model(tmp_path / "a.pt")
    trainer = Trainer(TrainConfig(epochs=2, patience=0))
    result = trainer.fit(tiny_dataset, out_path=tmp_path / "b.pt", resume_from=tmp_path / "a.pt")
    assert result.status == "completed"
    # continuing starts from the saved weights: the first validation loss is at most the saved one
    first_best_loss = min(e.val_loss for e in first.history)
    assert result.history[0].val_loss < first_best_loss + 0.05
    # and the saved file only changes if an epoch beat the model we continued from
    model_b, _ = load_model(tmp_path / "b.pt")
    assert any(not torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values())) \
        == (result.best_epoch > 0)


def test_continuing_on_another_split_says_its_validation_accuracy_reads_high(tiny_dataset, tmp_path):
    """The model's own training photos would be validated on: said (the run goes on)."""
    import torch as _torch

    from catdog_gui.core.events import Notice

    run(tiny_dataset, tmp_path / "a.pt", epochs=1, seed=0)

    def notices(**cfg):
        got = []
        _, result = run(tiny_dataset, tmp_path / "b.pt", [got.append], resume=tmp_path / "a.pt", epochs=1, **cfg)
        assert result.status == "completed"
        said = [e.text for e in got if isinstance(e, Notice)]
        # the result, the model file and every text built on them carry it
        assert result.val_seen == bool(said) == load_model(tmp_path / "b.pt")[1].metrics["val_seen_in_training"]
        return said

    assert notices(seed=0) == []  # the same split: nothing to say
    (said,) = notices(seed=3)
    assert "another validation split (20% held out with seed 0; this run: 20%, seed 3)" in said and "read high" in said
    from catdog_gui.core.inference.evaluation import measured_on

    assert measured_on(8) == "8 photos the model did not train on"
    assert "some of which the model it continued from trained on" in measured_on(8, seen=True)
    # a model file from before the stable split (no split_version): its split is not this one
    ckpt = _torch.load(tmp_path / "a.pt", weights_only=False)
    del ckpt["meta"]["metrics"]["dataset"]["split_version"]
    _torch.save(ckpt, tmp_path / "a.pt")
    (said,) = notices(seed=0)
    assert "the split of an earlier version of this app" in said


def test_resume_with_other_classes_is_refused(tiny_dataset, tmp_path):
    from helpers import make_dataset

    _, _ = run(tiny_dataset, tmp_path / "a.pt", epochs=1)
    other = make_dataset(tmp_path / "other", 5, classes=("ant", "bee", "cow"))
    _, result = run(other, resume=tmp_path / "a.pt", epochs=1)
    assert result.status == "failed" and "same classes" in result.reason


def test_modern_lenet_any_size(tiny_dataset):
    _, result = run(tiny_dataset, model="lenet5_modern", image_size=48, epochs=2)
    assert result.status == "completed" and not math.isnan(result.best_val_acc)


def test_config_round_trip_and_validation():
    cfg = TrainConfig(model="lenet5_modern", epochs=7, image_size=64)
    cfg.augment.enabled = True
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(Exception, match="learning rate"):
        TrainConfig(lr=-1).validate()
    with pytest.raises(Exception, match="unknown model"):
        TrainConfig(model="nope").validate()


def test_augmented_training_runs_and_never_augments_validation(tiny_dataset, monkeypatch):
    from catdog_gui.core.data import augment

    calls = []
    real = augment.BatchAugmenter.__call__

    def spy(self, x, generator=None):
        calls.append(x.shape[0])
        return real(self, x, generator)

    monkeypatch.setattr(augment.BatchAugmenter, "__call__", spy)
    cfg = dict(epochs=2, batch_size=8)
    trainer = Trainer(TrainConfig(**cfg, augment=augment.AugmentSettings(enabled=True)))
    result = trainer.fit(tiny_dataset)
    assert result.status == "completed"
    n_train = len(trainer.dataset.train)
    assert sum(calls) == 2 * n_train  # every training image once per epoch, no validation image ever


def test_augmentation_gets_more_epochs_unless_given():
    from catdog_gui.core.data.augment import AugmentSettings

    plain = TrainConfig.for_model("lenet5")
    aug = TrainConfig.for_model("lenet5", augment=AugmentSettings(enabled=True))
    assert (aug.epochs, aug.patience) == AugmentSettings(enabled=True).recommended_epochs(plain.epochs, plain.patience)
    assert aug.epochs > plain.epochs
    fixed = TrainConfig.for_model("lenet5", augment=AugmentSettings(enabled=True), epochs=7, patience=2)
    assert (fixed.epochs, fixed.patience) == (7, 2)
    off = TrainConfig.for_model("lenet5", augment=AugmentSettings(enabled=False))
    assert (off.epochs, off.patience) == (plain.epochs, plain.patience)
