"""Test-time augmentation (mirror averaging): recorded in the model file, used by the Predictor,
changes nothing for a mirror-symmetric photo, and the validation accuracy is measured with it."""

from __future__ import annotations

import numpy as np
import pytest

from catdog_gui.core.inference.predictor import Predictor
from catdog_gui.core.storage.modelfile import read_model_file
from catdog_gui.core.config import TrainConfig
from catdog_gui.core.training.trainer import Trainer


@pytest.fixture(scope="module")
def tta_model(tmp_path_factory):
    from tests.helpers import make_dataset

    root = tmp_path_factory.mktemp("tta")
    out = root / "m.pt"
    fin = Trainer(TrainConfig(model="lenet5", epochs=2, seed=0, patience=0, tta=True)).fit(
        make_dataset(root / "data", 20), out_path=out)
    assert fin.status == "completed", fin.reason
    return out, fin


def test_tta_is_recorded_and_used_by_the_predictor(tta_model):
    out, _fin = tta_model
    info, _ = read_model_file(out)
    assert info.config["tta"] is True
    assert Predictor(out, "cpu").tta and not Predictor(out, "cpu", tta=False).tta


def test_mirror_symmetric_photo_gets_the_same_answer_and_others_the_average(tta_model):
    out, _ = tta_model
    on, off = Predictor(out, "cpu"), Predictor(out, "cpu", tta=False)
    rng = np.random.default_rng(0)
    half = rng.integers(0, 256, (3, 32, 16), dtype=np.uint8)
    symmetric = np.concatenate([half, half[:, :, ::-1]], axis=2)[None]
    np.testing.assert_allclose(on.probabilities(symmetric), off.probabilities(symmetric), atol=1e-6)
    photo = rng.integers(0, 256, (1, 3, 32, 32), dtype=np.uint8)
    mirrored = np.ascontiguousarray(photo[:, :, :, ::-1])
    expect = (off.probabilities(photo) + off.probabilities(mirrored)) / 2
    np.testing.assert_allclose(on.probabilities(photo), expect, atol=1e-6)
    assert not np.allclose(off.probabilities(photo), expect, atol=1e-4)  # the photo was not symmetric


def test_validation_accuracy_is_measured_with_tta(tta_model):
    out, fin = tta_model
    pred = Predictor(out, "cpu")
    paths = [m for m in fin.metrics.mistakes] + [c for c in fin.metrics.correct]
    assert len(paths) == fin.metrics.n
    # the stored per-photo confidences are the TTA ones the Predictor gives
    for item in paths[:5]:
        assert pred.predict(item.path).confidence == pytest.approx(item.confidence, abs=1e-4)


def test_export_states_that_tta_is_not_inside(tta_model, tmp_path):
    from catdog_gui.core.inference.export import export_metadata
    from catdog_gui.core.storage.modelfile import read_model_file

    info, _ = read_model_file(tta_model[0])
    meta = export_metadata(info)
    assert meta["tta"] is True and "mirror image" in meta["tta_note"]
