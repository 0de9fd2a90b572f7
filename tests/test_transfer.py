"""Transfer learning in the trainer: cached features, fine-tuning, normalisation in the model file."""

from __future__ import annotations

import pytest
import torch

from catdog_gui.core.data.augment import AugmentSettings
from catdog_gui.core.events import EpochEnd, RunStarted
from catdog_gui.core.inference.predictor import Predictor
from catdog_gui.core.storage.modelfile import read_model_file
from catdog_gui.core.models import get_spec
from catdog_gui.core.config import TrainConfig
from catdog_gui.core.training.trainer import Trainer


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    from helpers import make_dataset

    return make_dataset(tmp_path_factory.mktemp("tl") / "data", 10)


def _count_backbone_calls(trainer_holder, calls):
    def hook(*_):
        calls.append(1)

    def cb(e):
        if isinstance(e, RunStarted):
            trainer_holder["t"].model.backbone.register_forward_hook(hook)

    return cb


def test_frozen_backbone_features_are_computed_once(tmp_path):
    from helpers import make_dataset

    data = make_dataset(tmp_path / "data", 35)
    calls, holder, modes = [], {}, []
    cb = _count_backbone_calls(holder, calls)
    trainer = Trainer(TrainConfig(model="efficientnet_lite0", pretrained=True, epochs=3, patience=0, val_fraction=0.5),
                      [cb, lambda e: isinstance(e, RunStarted) and modes.append(e.mode)])
    holder["t"] = trainer
    trainer.feature_backend = "pytorch"  # counted on the PyTorch module (onnxruntime: tests/test_features.py)
    result = trainer.fit(data, out_path=tmp_path / "m.pt")
    assert result.status == "completed" and modes == ["features"]
    n_train, n_val = len(trainer.dataset.train), len(trainer.dataset.val)
    assert n_val >= 34
    # one pass over train and val in batches of 64, then never again (3 epochs + final measurement)
    assert len(calls) == -(-n_train // 64) + -(-n_val // 64)
    # a head on ImageNet features separates reddish from bluish: at most 1 of the 34+ unseen images
    # wrong, where chance (0.5) or an untrained head would miss about half
    assert result.best_val_acc >= 1 - 1.5 / n_val


def test_backbone_stays_frozen_and_batchnorm_stats_unchanged(small_data):
    from catdog_gui.core.models import create_model

    reference = create_model("efficientnet_lite0", 2, pretrained=True).backbone.state_dict()
    trainer = Trainer(TrainConfig(model="efficientnet_lite0", pretrained=True, epochs=2, patience=0,
                                  augment=AugmentSettings(enabled=True)))
    result = trainer.fit(small_data)
    assert result.status == "completed"
    after = trainer.model.backbone.state_dict()
    assert all(torch.equal(reference[k], after[k].cpu()) for k in reference)


def test_pretrained_normalisation_travels_in_model_file(small_data, tmp_path):
    out = tmp_path / "m.pt"
    Trainer(TrainConfig(model="efficientnet_lite0", pretrained=True, epochs=1, patience=0)).fit(small_data, out_path=out)
    info, _ = read_model_file(out)
    spec = get_spec("efficientnet_lite0")
    assert info.image_size == 224 and tuple(info.mean) == pytest.approx(spec.mean) and tuple(info.std) == pytest.approx(spec.std)
    p = Predictor(out, "cpu")
    img = sorted((small_data / "cat").iterdir())[0]
    x = p.preprocess(img)
    manual = (torch.from_numpy(x).float()[None] / 255 - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = torch.softmax(p.model(manual), 1).numpy()[0]
    got = p.predict(img)
    assert dict(got.probabilities)["cat"] == pytest.approx(float(expected[0]), abs=1e-5)


def test_finetune_unfreezes_later_blocks_after_head(small_data):
    phases = []
    trainer = Trainer(TrainConfig(model="efficientnet_lite0", pretrained=True, transfer_mode="finetune", epochs=2,
                                  finetune_epochs=1, patience=0, batch_size=8),
                      [lambda e: isinstance(e, EpochEnd) and phases.append(e.phase)])
    result = trainer.fit(small_data)
    assert result.status == "completed"
    assert phases == ["train", "train", "finetune"]
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert any(n.startswith("head") for n in trainable)
    assert any(n.startswith("backbone") for n in trainable)
    assert not any("_conv_stem" in n for n in trainable)  # early layers stay frozen


def test_frozen_lite0_is_accurate_on_real_photos(real_data, tmp_path):
    """Transfer learning on real photos (CATDOG_TEST_DATA): the bundled EfficientNet-Lite0, frozen,
    with a new head trained on 200 photos, is right on at least 95% of 110 other photos."""
    from catdog_gui.core.data.imageio import is_image_name

    for c in ("cat", "dog"):
        photos = sorted(p for p in (real_data / c).iterdir() if is_image_name(p.name) and "(" not in p.name)
        assert len(photos) >= 155, f"{real_data / c} needs at least 155 photos"
        for i, p in enumerate(photos[:155]):  # symlinks: 100 to train on, the next 55 held out
            dest = tmp_path / ("train" if i < 100 else "val") / c / p.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(p)
    trainer = Trainer(TrainConfig.for_model("efficientnet_lite0", pretrained=True, seed=0))
    result = trainer.fit(tmp_path / "train", val_dir=tmp_path / "val", out_path=tmp_path / "m.pt")
    assert result.status in ("completed", "stopped_early"), result.reason
    n_val = len(trainer.dataset.val)
    assert n_val >= 100  # (a held-out photo identical to a training one would be dropped)
    assert result.best_val_acc >= 0.95, f"{result.best_val_acc:.3f} on {n_val} held-out photos"
    recall = {c: v["recall"] for c, v in result.metrics.per_class.items()}
    assert set(recall) == {"cat", "dog"} and min(recall.values()) >= 0.9, recall
