"""TensorBoard logging: a short run's event file, read back with tensorboard's EventAccumulator."""

from __future__ import annotations

import sys

import pytest

from catdog_gui.cli import main
from catdog_gui.core.errors import CatdogError
from catdog_gui.core.inference.evaluation import Mistake
from catdog_gui.core.events import EpochEnd, Finished, RunStarted
from catdog_gui.core.training.tensorboard import TensorBoardLogger, confusion_image, mistakes_image

from helpers import make_dataset, make_image

EPOCH_SCALARS = ["loss/train", "loss/val", "accuracy/train", "accuracy/val", "learning_rate", "speed/images_per_s"]
FINAL_SCALARS = ["hparam/val_accuracy", "hparam/val_loss", "hparam/train_accuracy", "hparam/best_epoch"]
IMAGES = ["augmentation/preview", "evaluation/confusion_matrix", "evaluation/mistakes"]


def _accumulator(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def test_cli_run_writes_scalars_hparams_and_images(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = make_dataset(tmp_path / "data", 12)
    logs = tmp_path / "runs"
    argv = ["train", str(data), "--epochs", "2", "--patience", "0", "--batch-size", "8", "--augment", "--quiet",
            "--lr", "0.002", "--out", str(tmp_path / "m.pt"), "--tensorboard", str(logs)]
    assert main(argv) == 0, capsys.readouterr().err
    runs = [p for p in logs.iterdir() if p.is_dir()]
    assert len(runs) == 1 and runs[0].name.startswith("lenet5-augment-")
    assert list(runs[0].glob("events.out.tfevents.*"))
    ea = _accumulator(runs[0])
    tags = ea.Tags()

    for tag in EPOCH_SCALARS:
        assert [s.step for s in ea.Scalars(tag)] == [1, 2], tag
    assert [s.value for s in ea.Scalars("learning_rate")] == pytest.approx([0.002, 0.002])
    assert all(0 <= s.value <= 1 for s in ea.Scalars("accuracy/val"))
    steps_per_epoch = -(-int(24 * 0.8) // 8)  # 19 or 20 training images in batches of 8
    assert len(ea.Scalars("loss/batch")) in (2 * steps_per_epoch, 2 * (steps_per_epoch - 1) + 2)
    assert [s.step for s in ea.Scalars("loss/batch")] == list(range(1, len(ea.Scalars("loss/batch")) + 1))
    best_epoch = ea.Scalars("hparam/best_epoch")[0].value
    for tag in FINAL_SCALARS:
        assert [s.step for s in ea.Scalars(tag)] == [best_epoch], tag

    assert sorted(tags["images"]) == sorted(IMAGES)
    assert [i.step for i in ea.Images("augmentation/preview")] == [0]
    for tag in IMAGES[1:]:
        assert [i.step for i in ea.Images(tag)] == [best_epoch], tag
    preview = ea.Images("augmentation/preview")[0]
    assert preview.width > 8 * 32 and preview.height > 2 * 32  # 2 classes x (original + 7)

    hp = ea.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(hp)
    start = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["model"].string_value == "lenet5"
    assert start.hparams["lr"].number_value == pytest.approx(0.002)
    assert start.hparams["augment"].number_value == 1  # torch writes bools as numbers (1 = on)
    exp = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in exp.metric_infos} == set(FINAL_SCALARS)
    assert {"run/config/text_summary", "run/dataset/text_summary", "run/result/text_summary"} <= set(tags["tensors"])


def test_learning_rate_follows_the_fine_tuning_phase_and_no_trainer_is_needed(tmp_path):
    pytest.importorskip("tensorboard")
    make_image(tmp_path / "data" / "cat" / "a.jpg", (170, 60, 60))
    logger = TensorBoardLogger(tmp_path / "runs", run_name="r1")
    cfg = {"model": "lenet5", "lr": 0.01, "finetune_lr_factor": 0.1, "augment": {"enabled": False}}
    logger(RunStarted("CPU", ("cat", "dog"), 10, 4, cfg, "finetune"))
    logger(EpochEnd(1, 2, 0.7, 0.5, 0.6, 0.5, 10.0, 1.0, 1.0, 1, True, "train"))
    logger(EpochEnd(2, 2, 0.6, 0.6, 0.5, 0.75, 10.0, 1.0, 0.0, 2, True, "finetune"))
    logger(Finished("completed", "trained 2 epochs", None, 2, 0.75))
    assert logger.error is None and logger.writer is None and logger.run_dir == tmp_path / "runs" / "r1"
    ea = _accumulator(logger.run_dir)
    assert [s.value for s in ea.Scalars("learning_rate")] == pytest.approx([0.01, 0.001])
    assert ea.Scalars("hparam/val_accuracy")[0].value == pytest.approx(0.75)
    assert ea.Tags()["images"] == []  # no trainer: no metrics to draw, and augmentation was off


def test_without_tensorboard_the_option_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(CatdogError, match="pip install tensorboard"):
        TensorBoardLogger(tmp_path / "runs")
    data = make_dataset(tmp_path / "data", 3)
    assert main(["train", str(data), "--out", str(tmp_path / "m.pt"), "--tensorboard", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "pip install tensorboard" in err and "Traceback" not in err
    assert not (tmp_path / "m.pt").exists()  # refused before training


def test_pictures_for_tensorboard(tmp_path):
    im = confusion_image([[5, 1, 0], [2, 3, 0], [0, 0, 4]], ["cat", "dog", "a very long class name"])
    assert im.mode == "RGB" and im.width > 3 * 72 and im.height > 3 * 72
    path = make_image(tmp_path / "x.jpg", (60, 60, 170))
    mistakes = [Mistake(str(path), "cat", "dog", 0.9), Mistake(str(tmp_path / "gone.jpg"), "dog", "cat", 0.8)]
    grid = mistakes_image(mistakes, cell=64)
    assert grid.width == 2 * (64 + 4) + 4 and grid.height > 64  # an unreadable photo gets a grey tile
    assert mistakes_image([]).size == (320, 40)
