"""The `catdog` command: exit codes, one-line errors, JSON outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from catdog_gui.cli import main


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

    assert main(["evaluate", str(out), str(tiny_dataset), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert {"accuracy", "n", "per_class", "confusion", "classes"} <= set(ev)
    assert ev["n"] == 40 and sum(map(sum, ev["confusion"])) == 40
    assert ev["accuracy"] > 0.8


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
