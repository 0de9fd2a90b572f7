"""The `catdog` command: exit codes, one-line errors, JSON outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from catdog_gui.cli import main
from catdog_gui.core.config import DEFAULT_PRETRAINED_MODEL
from helpers import make_dataset


def test_train_then_info_predict_evaluate(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["train", str(tiny_dataset), "--epochs", "3", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "cat" in text and "epoch   3/3" in text and "validation accuracy" in text
    assert out.exists()

    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "LeNet-5" in info and "c1" in info and "6 x 28 x 28" in info and "Total parameters" in info

    img = tiny_dataset / "cat" / "cat_000.jpg"
    assert main(["predict", str(out), str(img), "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)["predictions"][0]
    assert set(pred["probabilities"]) == {"cat", "dog"}
    assert abs(sum(pred["probabilities"].values()) - 1) < 1e-5
    assert pred["label"] == max(pred["probabilities"], key=pred["probabilities"].get)

    heldout = make_dataset(tmp_path / "heldout", 50, seed=7)  # photos the model never saw
    assert main(["evaluate", str(out), str(heldout), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert {"accuracy", "n", "per_class", "confusion", "classes"} <= set(ev)
    assert ev["n"] == 100 and sum(map(sum, ev["confusion"])) == 100
    # chance (0.5) or an untrained network (~0.05 here) would be far below
    assert ev["accuracy"] >= 0.95 and all(row[i] >= 45 for i, row in enumerate(ev["confusion"]))


def test_predict_reports_bad_image_and_exits_2(tiny_model, tmp_path, capsys):
    bad = tmp_path / "x.jpg"
    bad.write_text("not an image")
    assert main(["predict", str(tiny_model), str(bad)]) == 2
    assert "not a readable image" in capsys.readouterr().err


@pytest.mark.parametrize("argv,msg", [
    (["train", "/no/such/folder", "--out", "/tmp/x.pt"], "does not exist"),
    (["train", ".", "--out", "/no/such/dir/m.pt"], "does not exist"),
    (["info", "/no/such/model.pt"], "does not exist"),
    (["train", ".", "--out", "m.pt", "--epochs", "many"], "not a whole number"),
    (["train", ".", "--out", "m.pt", "--model", "vgg99"], "unknown model"),
    (["frobnicate"], "invalid choice"),
])
def test_user_errors_exit_2_with_one_line(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(argv))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_not_a_model_file(tmp_path, capsys):
    p = tmp_path / "m.pt"
    p.write_text("hello")
    assert main(["info", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a catdog-gui model" in err[0]


def test_console_entry_point_runs_as_module(tmp_path):
    r = subprocess.run([sys.executable, "-m", "catdog_gui.cli", "scan", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "no images found" in r.stderr and "Traceback" not in r.stderr


def test_models_lists_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "lenet5_modern" in out


# ------------------------------------------------------------------------------------------------
# exit 130 (interrupted) and exit 1 (a bug)


def test_ctrl_c_stops_training_exits_130_and_keeps_the_best_model(tmp_path):
    import signal
    import threading

    from catdog_gui.core.storage.modelfile import read_model_file

    data = make_dataset(tmp_path / "data", 20)
    out = tmp_path / "m.pt"
    proc = subprocess.Popen([sys.executable, "-m", "catdog_gui.cli", "train", str(data), "--out", str(out),
                             "--epochs", "1000", "--patience", "0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, proc.kill)  # a hung run fails the test instead of hanging the suite
    watchdog.start()
    try:
        seen = []
        for line in proc.stdout:  # wait for the first epoch's line, then press Ctrl-C
            seen.append(line)
            if line.startswith("epoch   1/1000"):
                proc.send_signal(signal.SIGINT)
                break
        rest, err = proc.communicate()
    finally:
        watchdog.cancel()
    text = "".join(seen) + rest
    assert proc.returncode == 130, (text, err)
    assert "Stopping after this batch" in err and "Traceback" not in err
    epochs = [line for line in text.splitlines() if line.startswith("epoch ")]
    assert 1 <= len(epochs) < 1000  # it stopped long before the end
    info, _ = read_model_file(out)  # the best epoch so far is saved, as a complete model file
    assert 1 <= info.metrics["best_epoch"] <= len(epochs) and len(info.metrics["history"]) == len(epochs)
    assert not [p.name for p in tmp_path.iterdir() if p.name not in ("data", "m.pt")]  # no temp file left


def test_a_bug_during_training_exits_1_with_its_traceback(tiny_dataset, tmp_path, capsys, monkeypatch):
    from catdog_gui.core.models import lenet

    def broken(self, x):
        raise RuntimeError("planted bug in forward")

    monkeypatch.setattr(lenet.LeNet5, "forward", broken)
    out = tmp_path / "m.pt"
    assert main(["train", str(tiny_dataset), "--epochs", "1", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: planted bug in forward" in err
    assert not out.exists()


# ------------------------------------------------------------------------------------------------
# transfer learning flags: --pretrained, --val, --finetune, --weights


def test_train_pretrained_with_a_validation_folder(tmp_path, capsys):
    from catdog_gui.core.storage.modelfile import read_model_file

    train = make_dataset(tmp_path / "train", 10)
    val = make_dataset(tmp_path / "val", 7, seed=1)
    out = tmp_path / "m.pt"
    assert main(["train", str(train), "--val", str(val), "--pretrained", "--epochs", "2", "--out", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    # --pretrained alone: the bundled EfficientNet-Lite0, its head trained on cached features
    assert f"Training {DEFAULT_PRETRAINED_MODEL} (features)" in text
    assert "20 training, 14 validation" in text and "on 14 photos the model did not train on" in text
    info, _ = read_model_file(out)
    assert info.model_name == DEFAULT_PRETRAINED_MODEL and info.config["pretrained"] is True
    assert info.metrics["n_val"] == 14 and info.metrics["n_train"] == 20
    assert info.metrics["dataset"]["val_source"] == "folder"
    assert info.metrics["dataset"]["val_root"] == str(val)


def test_train_finetune(tmp_path, capsys):
    from catdog_gui.core.storage.modelfile import read_model_file

    data = make_dataset(tmp_path / "data", 6)
    out = tmp_path / "m.pt"
    assert main(["train", str(data), "--pretrained", "--finetune", "--finetune-epochs", "1", "--epochs", "1",
                 "--batch-size", "8", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert f"Training {DEFAULT_PRETRAINED_MODEL} (finetune)" in text
    assert [line[:11] for line in text.splitlines() if line.startswith("epoch ")] == ["epoch   1/2", "epoch   2/2"]
    info, _ = read_model_file(out)
    assert info.config["transfer_mode"] == "finetune" and info.config["pretrained"] is True
    assert [h["phase"] for h in info.metrics["history"]] == ["train", "finetune"]


def test_train_with_a_local_torchvision_weights_file(tmp_path, capsys):
    import torch
    import torchvision

    from catdog_gui.core.storage.modelfile import read_model_file

    torch.manual_seed(123)
    weights = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(weights, tmp_path / "resnet18-local.pth")
    data = make_dataset(tmp_path / "data", 6)
    out = tmp_path / "m.pt"
    assert main(["train", str(data), "--model", "resnet18", "--pretrained", "--weights",
                 str(tmp_path / "resnet18-local.pth"), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    assert "Training resnet18 (features)" in capsys.readouterr().out
    info, state = read_model_file(out)
    assert info.config["weights_path"] == str(tmp_path / "resnet18-local.pth")
    # the frozen backbone is exactly the file's weights (nothing downloaded, nothing trained)
    assert torch.equal(state["backbone.conv1.weight"], weights["conv1.weight"])
    assert torch.equal(state["backbone.layer4.1.bn2.running_mean"], weights["layer4.1.bn2.running_mean"])


def test_probabilities_are_printed_without_claiming_certainty_the_model_did_not_give():
    from catdog_gui.core.inference.predictor import Prediction
    from catdog_gui.core.text import probability_text

    assert [probability_text(p) for p in (0.9996, 0.99949, 0.955, 0.0004, 0.00051, 1.0, 0.0)] == \
        [">99.9%", "99.9%", "95.5%", "<0.1%", "0.1%", "100.0%", "0.0%"]
    pred = Prediction("x.jpg", "dog", 0.9997, (("dog", 0.9997), ("cat", 0.0003)))
    assert pred.describe() == ">99.9% dog, <0.1% cat"


def test_evaluate_says_when_the_test_folder_holds_training_photos(tiny_model, tmp_path, capsys):
    """The model file keeps its training photos' hashes: scoring it on its own training folder is refused
    with the count (it would read high), or, with --allow-overlap, shown beside the accuracy; a folder of
    other photos has no overlap."""
    import json as _json

    from catdog_gui.core.storage.modelfile import read_model_file

    data = tiny_model.parent / "data"
    n_train = len(read_model_file(tiny_model)[0].metrics["train_hashes"])
    assert n_train > 0
    assert main(["evaluate", str(tiny_model), str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{n_train:,} of the" in err and "photos this model trained on" in err
    assert main(["evaluate", str(tiny_model), str(data), "--allow-overlap", "--json"]) == 0
    assert _json.loads(capsys.readouterr().out)["overlap"] == n_train
    other = make_dataset(tmp_path / "other", 4, seed=7)  # other photos
    assert main(["evaluate", str(tiny_model), str(other), "--json"]) == 0
    assert _json.loads(capsys.readouterr().out)["overlap"] == 0
