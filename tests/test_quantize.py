"""INT8 export: calibrated on training photos, measured against the float model on real photos, the metadata
says it is INT8, and nothing is written when the photos cannot be found."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from catdog_gui.core.errors import CatdogError  # noqa: E402
from catdog_gui.core.inference.export import read_metadata  # noqa: E402
from catdog_gui.core.inference.quantize import export_int8  # noqa: E402

#: the largest difference in any probability allowed between the INT8 and the float export of LeNet-5
INT8_BOUND = 0.05


def _real_subset(tmp_path: Path, n: int = 60) -> Path:
    """``n`` real photos of each class, linked (not copied) from CATDOG_TEST_DATA."""
    data = os.environ.get("CATDOG_TEST_DATA")
    if not data or not (Path(data) / "cat").is_dir():
        pytest.skip("CATDOG_TEST_DATA is not set: the INT8 check needs real photos")
    root = tmp_path / "real"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for p in sorted((Path(data) / cls).iterdir())[:n]:
            (root / cls / p.name).symlink_to(p)
    return root


def test_an_int8_export_stays_close_to_float_on_real_photos(tiny_model, tmp_path):
    photos = _real_subset(tmp_path)
    out = tmp_path / "m.int8.onnx"
    report = export_int8(tiny_model, out, calibration=str(photos))
    assert out.is_file() and report.int8_bytes == out.stat().st_size
    assert report.calibration_photos > 50 and report.validation_photos >= 20
    assert report.max_probability_difference < INT8_BOUND
    assert abs(report.int8_accuracy - report.float_accuracy) * report.validation_photos <= 2
    meta = read_metadata(out)
    assert meta["int8"]["calibration_photos"] == report.calibration_photos
    assert meta["int8"]["quantized_ops"] == ["Conv", "MatMul", "Gemm"] and meta["classes"] == ["cat", "dog"]
    proto_ops = {n.op_type for n in __import__("onnx").load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= proto_ops  # really quantized
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.zeros((3, 3, meta["image_size"], meta["image_size"]), np.float32)
    probs = sess.run(["probabilities"], {"input": x})[0]
    assert probs.shape == (3, 2) and np.allclose(probs.sum(1), 1, atol=1e-3)
    assert "INT8" in "\n".join(report.lines())


def test_without_its_photos_nothing_is_written_and_the_message_says_what_to_give(tmp_path):
    import shutil

    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer
    from tests.helpers import make_dataset

    data = make_dataset(tmp_path / "d", 8)
    model = tmp_path / "m.pt"
    assert Trainer(TrainConfig(model="lenet5", epochs=1, patience=0)).fit(data, out_path=model).ok
    shutil.rmtree(data)  # the photos it trained on have gone
    with pytest.raises(CatdogError, match="--calibration"):
        export_int8(model, tmp_path / "m.int8.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_cli_export_int8(tiny_model, tmp_path, capsys):
    from catdog_gui.cli import main

    photos = _real_subset(tmp_path, 30)
    out = tmp_path / "cli.int8.onnx"
    assert main(["export", str(tiny_model), "--int8", "--calibration", str(photos), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "validation accuracy" in text and "photos per second" in text and out.is_file()
    assert main(["export", str(tiny_model), "--int8", "--format", "torchscript"]) == 2
