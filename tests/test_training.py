"""The trainer: learning, events, cancel, pause, resume, NaN, failures, determinism."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from catdog_gui.core.events import (BatchEnd, CheckpointSaved, DatasetScanned, EpochEnd, Finished, RunStarted,
                                    StageProgress)
from catdog_gui.core.modelfile import load_model
from catdog_gui.core.training import TrainConfig, Trainer


def run(data, out=None, callbacks=(), resume=None, **cfg):
    cfg.setdefault("epochs", 3)
    cfg.setdefault("patience", 0)
    trainer = Trainer(TrainConfig(**cfg), list(callbacks))
    return trainer, trainer.fit(data, out_path=out, resume_from=resume)


def test_short_run_learns_and_writes_model(tiny_dataset, tmp_path):
    events = []
    trainer, result = run(tiny_dataset, tmp_path / "m.pt", [events.append], epochs=6)
    assert result.status == "completed"
    assert result.best_val_acc >= 0.9  # reddish vs bluish: far above chance (0.5)
    kinds = [type(e) for e in events if not isinstance(e, StageProgress)]
    assert kinds[0] is DatasetScanned and RunStarted in kinds and kinds[-1] is Finished
    assert kinds.index(RunStarted) < kinds.index(BatchEnd) < kinds.index(EpochEnd) < kinds.index(CheckpointSaved)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == list(range(1, 7))
    assert result.best_path == str(tmp_path / "m.pt")
    model, info = load_model(result.best_path)
    assert info.classes == ["cat", "dog"]
    assert info.metrics["best_epoch"] == result.best_epoch
    assert info.config["epochs"] == 6
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
    _, result = run(tmp_path, epochs=0)
    assert result.status == "failed" and "epochs" in result.reason


def test_early_stopping_keeps_best_epoch(tiny_dataset):
    _, result = run(tiny_dataset, epochs=40, patience=2, lr=0.05, optimizer="sgd")
    assert result.status in ("stopped_early", "completed")
    if result.status == "stopped_early":
        assert len(result.history) == result.best_epoch + 2
    best = max(result.history, key=lambda e: (e.val_acc, -e.val_loss))
    assert best.epoch == result.best_epoch


def test_resume_continues_from_saved_model(tiny_dataset, tmp_path):
    _, first = run(tiny_dataset, tmp_path / "a.pt", epochs=2)
    model_a, _ = load_model(tmp_path / "a.pt")
    starts = []
    holder = {}

    def cb(e):
        if isinstance(e, BatchEnd) and not starts:
            starts.append(True)

    trainer = Trainer(TrainConfig(epochs=2, patience=0), [cb])
    result = trainer.fit(tiny_dataset, out_path=tmp_path / "b.pt", resume_from=tmp_path / "a.pt")
    assert result.status == "completed"
    # continuing starts from the saved weights: the first validation loss is at most the saved one
    first_best_loss = min(e.val_loss for e in first.history)
    assert result.history[0].val_loss < first_best_loss + 0.05
    # and the saved file only changes if an epoch beat the model we continued from
    model_b, _ = load_model(tmp_path / "b.pt")
    assert any(not torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values())) \
        == (result.best_epoch > 0)


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
    from catdog_gui.core import augment

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
    from catdog_gui.core.augment import AugmentSettings

    plain = TrainConfig.for_model("lenet5")
    aug = TrainConfig.for_model("lenet5", augment=AugmentSettings(enabled=True))
    assert (aug.epochs, aug.patience) == AugmentSettings(enabled=True).recommended_epochs(plain.epochs, plain.patience)
    assert aug.epochs > plain.epochs
    fixed = TrainConfig.for_model("lenet5", augment=AugmentSettings(enabled=True), epochs=7, patience=2)
    assert (fixed.epochs, fixed.patience) == (7, 2)
    off = TrainConfig.for_model("lenet5", augment=AugmentSettings(enabled=False))
    assert (off.epochs, off.patience) == (plain.epochs, plain.patience)
