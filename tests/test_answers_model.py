"""A trained model file's calibration and unfamiliar-photo check, recomputed from its own photos:
the temperature is fitted on the validation photos, the statistics on the training photos, the
threshold passes 95% of the validation photos; old files still predict and say the check is missing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catdog_gui.core.data.imageio import load_square_array
from catdog_gui.core.data.scan import scan_dataset
from catdog_gui.core.inference import calibration as C
from catdog_gui.core.inference import unfamiliar as U
from catdog_gui.core.inference.predictor import Predictor
from catdog_gui.core.storage.modelfile import read_model_file, save_model


def _split(predictor):
    d = predictor.info.metrics["dataset"]
    ds = scan_dataset(d["root"], val_fraction=d["val_fraction"], seed=d["split_seed"])
    return ds


def _arrays(predictor, samples):
    return np.stack([load_square_array(s.path, predictor.info.image_size).transpose(2, 0, 1) for s in samples])


@pytest.fixture(scope="module")
def maha_model(tmp_path_factory):
    """The tiny LeNet-5 with the Mahalanobis check on its F6 features (the default for LeNet-5 is the
    energy score, which these flat coloured squares do not need: see test_lenet_default_method)."""
    from helpers import make_dataset

    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    root = tmp_path_factory.mktemp("maha")
    data = make_dataset(root / "data", 20)
    # a few photos in the wrong class folder: the model makes mistakes, so a temperature can be fitted
    for i, (a, b) in enumerate((("cat", "dog"), ("dog", "cat")) * 3):
        src = sorted((data / a).iterdir())[i]
        src.rename(data / b / f"moved_{i}{src.suffix}")
    trainer = Trainer(TrainConfig(model="lenet5", epochs=4, seed=0, patience=0))
    trainer.unfamiliar_method = "mahalanobis"
    result = trainer.fit(data, out_path=root / "model.pt")
    assert result.status == "completed", result.reason
    return root / "model.pt"


@pytest.fixture(scope="module")
def tiny(maha_model):
    p = Predictor(maha_model, "cpu")
    ds = _split(p)
    return p, ds


def test_lenet_default_method_and_its_threshold(tiny_model):
    p = Predictor(tiny_model, "cpu")
    ds = _split(p)
    assert p.unfamiliarity.method == U.METHOD_FOR["lenet"]
    scores = p.outputs(_arrays(p, ds.val))[2]
    _between_95th_and_next(scores, p.unfamiliarity.threshold)


def _between_95th_and_next(scores, threshold):
    """The threshold lies between the validation score that makes 95% pass and the next one up."""
    s = np.sort(scores)
    i = int(np.ceil(0.95 * len(s))) - 1
    assert s[i] < threshold
    if i + 1 < len(s):
        assert threshold < s[i + 1] or s[i + 1] == s[i]


def test_the_temperature_is_fitted_on_the_validation_photos(tiny):
    p, ds = tiny
    _probs, val_logits, _s = p.outputs(_arrays(p, ds.val))
    yval = np.array([s.label for s in ds.val])
    assert p.calibration is not None
    assert p.temperature == pytest.approx(C.fit_temperature(val_logits, yval), rel=1e-3)
    _probs, train_logits, _s = p.outputs(_arrays(p, ds.train))
    ytrain = np.array([s.label for s in ds.train])
    on_train = C.fit_temperature(train_logits, ytrain)
    assert abs(on_train - p.temperature) > 1e-2 * p.temperature  # the two splits give different temperatures
    assert p.calibration.ece_before == pytest.approx(C.ece(C.softmax(val_logits), yval), abs=1e-6)


def test_the_predictor_applies_the_temperature(tiny):
    p, ds = tiny
    probs, logits, _s = p.outputs(_arrays(p, ds.val[:3]))
    np.testing.assert_allclose(probs, C.softmax(logits, p.temperature), atol=1e-6)


def test_the_threshold_passes_95_percent_of_the_validation_photos(tiny):
    p, ds = tiny
    u = p.unfamiliarity
    assert u is not None and u.method == "mahalanobis"
    _probs, _logits, scores = p.outputs(_arrays(p, ds.val))
    _between_95th_and_next(scores, u.threshold)
    passed = np.mean(scores <= u.threshold)
    assert passed >= 0.95 and passed == pytest.approx(u.val_pass)


def test_photos_far_from_the_training_photos_are_flagged_and_training_photos_pass(tiny, tmp_path):
    """The tiny dataset is flat-ish coloured squares; noise and text are nothing like them."""
    p, ds = tiny
    rng = np.random.default_rng(0)
    odd = np.stack([rng.integers(0, 256, (3, 32, 32), dtype=np.uint8) for _ in range(10)])
    preds_scores = p.outputs(odd)[2]
    assert (preds_scores > p.unfamiliarity.threshold).all()
    train_scores = p.outputs(_arrays(p, ds.train))[2]
    assert np.mean(train_scores <= p.unfamiliarity.threshold) >= 0.9
    # and the predictions say so, with the score and the threshold
    from PIL import Image

    path = tmp_path / "noise.png"
    Image.fromarray(odd[0].transpose(1, 2, 0)).save(path)
    pred = p.predict(path)
    assert pred.unfamiliar is True and pred.unfamiliar_score > pred.unfamiliar_threshold
    d = json.loads(json.dumps(pred.to_dict()))
    assert d["unfamiliar"] is True and d["unfamiliar_score"] == pytest.approx(pred.unfamiliar_score)
    fam = p.predict(ds.train[0].path)
    assert fam.unfamiliar is False


def test_the_check_can_be_turned_off(maha_model, tiny):
    _p, ds = tiny
    off = Predictor(maha_model, "cpu", unfamiliar_check=False)
    pred = off.predict(ds.val[0].path)
    assert pred.unfamiliar is None and "off" in off.unfamiliar_notice


def test_an_old_model_file_without_statistics_still_predicts(maha_model, tiny, tmp_path):
    _p, ds = tiny
    info, state = read_model_file(maha_model)
    meta = {k: v for k, v in info.meta.items() if k not in ("calibration", "unfamiliar")}
    old = tmp_path / "old.pt"
    import torch

    torch.save({"format": "catdog-gui-model", "version": 1, "meta": meta, "state_dict": state}, old)
    q = Predictor(old, "cpu")
    pred = q.predict(ds.val[0].path)
    assert pred.ok and pred.unfamiliar is None and pred.to_dict()["unfamiliar"] is None
    assert q.temperature == 1.0 and q.calibration is None
    assert "not available" in q.unfamiliar_notice
    probs, logits, _s = q.outputs(_arrays(q, ds.val[:2]))
    np.testing.assert_allclose(probs, C.softmax(logits), atol=1e-6)


def test_statistics_survive_a_model_file_round_trip(maha_model, tiny, tmp_path):
    p, ds = tiny
    info, _state = read_model_file(maha_model)
    again = tmp_path / "again.pt"
    extra = {k: info.meta[k] for k in ("calibration", "unfamiliar")}
    save_model(again, p.model, model_name=info.model_name, classes=info.classes, image_size=info.image_size,
               mean=info.mean, std=info.std, config=info.config, metrics=info.metrics, extra_meta=extra,
               extras=info.extras)
    q = Predictor(again, "cpu")
    x = _arrays(p, ds.val)
    a, b = p.outputs(x), q.outputs(x)
    np.testing.assert_allclose(a[0], b[0])
    np.testing.assert_allclose(a[2], b[2])
    assert q.unfamiliarity.threshold == p.unfamiliarity.threshold
    assert maha_model.stat().st_size < 2 * 2**20  # the statistics of a LeNet-5: well under the few-MB budget


@pytest.mark.parametrize("which", ["maha", "default"])
def test_the_onnx_export_reproduces_the_probabilities_and_the_flag(which, maha_model, tiny_model, tiny, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from catdog_gui.core.inference.export import export_model, read_metadata

    path = maha_model if which == "maha" else tiny_model
    p = Predictor(path, "cpu")
    _p, ds = tiny
    rng = np.random.default_rng(0)
    x = np.concatenate([_arrays(p, ds.val), rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)])
    probs, _logits, scores = p.outputs(x)
    out = export_model(path, "onnx", tmp_path / "m.onnx")
    meta = read_metadata(out)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got_probs, got_scores = sess.run(None, {"input": p.to_input(x).numpy()})
    np.testing.assert_allclose(got_probs, probs, atol=1e-4)
    np.testing.assert_allclose(got_scores, scores, rtol=1e-4, atol=1e-4)
    assert meta["temperature"] == pytest.approx(p.temperature)
    assert meta["unfamiliar"]["threshold"] == pytest.approx(p.unfamiliarity.threshold)
    np.testing.assert_array_equal(got_scores > meta["unfamiliar"]["threshold"], p.unfamiliarity.flags(scores))


# ------------------------------------------------------------------------------------------------
# catdog predict / evaluate and the API


def _noise_png(path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    return path


def test_catdog_predict_says_neither_cat_nor_dog(maha_model, tiny, tmp_path, capsys):
    from catdog_gui.cli import main

    _p, ds = tiny
    noise = _noise_png(tmp_path / "noise.png")
    familiar = ds.train[0].path
    assert main(["predict", str(maha_model), str(noise), str(familiar), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    odd, fam = out["predictions"]
    assert odd["unfamiliar"] is True and odd["unfamiliar_score"] > odd["unfamiliar_threshold"]
    assert fam["unfamiliar"] is False and out["unfamiliar_check"] == "on"
    assert main(["predict", str(maha_model), str(noise), str(familiar)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "Looks like neither cat nor dog" in lines[0] and "the model's answer:" in lines[0]
    assert "neither" not in lines[1]
    assert main(["predict", str(maha_model), str(noise), "--json", "--no-unfamiliar-check"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["predictions"][0]["unfamiliar"] is None and "turned off" in captured.err


def test_catdog_predict_on_an_old_file_says_the_check_is_not_available(maha_model, tmp_path, capsys):
    import torch

    from catdog_gui.cli import main

    info, state = read_model_file(maha_model)
    old = tmp_path / "old.pt"
    meta = {k: v for k, v in info.meta.items() if k not in ("calibration", "unfamiliar")}
    torch.save({"format": "catdog-gui-model", "version": 1, "meta": meta, "state_dict": state}, old)
    assert main(["predict", str(old), str(_noise_png(tmp_path / "n.png"))]) == 0
    captured = capsys.readouterr()
    assert "not available" in captured.err and "neither" not in captured.out


def test_catdog_evaluate_prints_the_ece_and_the_unfamiliar_count(maha_model, tiny, capsys):
    from catdog_gui.cli import main
    from catdog_gui.core.inference.evaluation import evaluate_folder

    p, _ds = tiny
    root = p.info.metrics["dataset"]["root"]
    assert main(["evaluate", str(maha_model), root, "--allow-overlap"]) == 0
    text = capsys.readouterr().out
    assert "Calibration error (ECE)" in text and "Unfamiliar:" in text
    metrics, _skipped = evaluate_folder(p, root, allow_overlap=True)
    # the ECE of the folder, recomputed from its predictions and labels
    from pathlib import Path

    from catdog_gui.core.data.scan import scan_folder

    classes, samples, _report = scan_folder(Path(root))
    preds = p.predict_many([s.path for s in samples])
    probs = np.array([[dict(pr.probabilities)[c] for c in p.classes] for pr in preds])
    y = [p.classes.index(classes[s.label]) for s in samples]
    assert metrics.ece == pytest.approx(C.ece(probs, y))
    assert metrics.unfamiliar == sum(pr.unfamiliar for pr in preds)


def test_api_predict_carries_the_flag(maha_model, tmp_path):
    from catdog_gui import api

    pred = api.predict(maha_model, _noise_png(tmp_path / "n.png"))
    assert pred.unfamiliar is True
    assert api.predict(maha_model, tmp_path / "n.png", unfamiliar_check=False).unfamiliar is None


def test_catdog_info_says_the_temperature_and_the_check(maha_model, tmp_path, capsys):
    import torch

    from catdog_gui.cli import main

    p = Predictor(maha_model, "cpu")
    assert main(["info", str(maha_model)]) == 0
    text = capsys.readouterr().out
    assert f"temperature {p.temperature:.3g}" in text and "mahalanobis score, flagged above" in text
    info, state = read_model_file(maha_model)
    meta = {k: v for k, v in info.meta.items() if k not in ("calibration", "unfamiliar")}
    torch.save({"format": "catdog-gui-model", "version": 1, "meta": meta, "state_dict": state}, tmp_path / "o.pt")
    assert main(["info", str(tmp_path / "o.pt")]) == 0
    text = capsys.readouterr().out
    assert "Calibration  none" in text and "not available" in text
