"""Export to ONNX and TorchScript: same probabilities as PyTorch on photos, metadata round trip,
atomic writes, the `catdog export` command, and the docs/export.md snippets run as written."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from catdog_gui.core.inference import export as E
from catdog_gui.core.errors import CatdogError
from catdog_gui.core.data.imageio import load_square_array, is_image_name

from helpers import make_dataset, real_data_dir

ort = pytest.importorskip("onnxruntime", reason="ONNX tests need onnxruntime (pip install 'catdog-gui[export]')")
pytest.importorskip("onnx", reason="ONNX tests need onnx (pip install 'catdog-gui[export]')")

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-4


def _photos(n_per_class: int) -> list[Path]:
    root = real_data_dir()
    if root is None:
        return []
    out = []
    for c in ("cat", "dog"):
        files = sorted(p for p in (root / c).iterdir() if is_image_name(p))
        out += files[:n_per_class]
    return out


@pytest.fixture(scope="module")
def synthetic_photos(tmp_path_factory) -> list[Path]:
    root = make_dataset(tmp_path_factory.mktemp("photos"), 4)
    return sorted(root.rglob("*.jpg"))


@pytest.fixture(scope="module")
def lite0_model(tmp_path_factory) -> Path:
    """EfficientNet-Lite0 with its bundled ImageNet weights and a new (seeded) 2-class head."""
    import torch

    from catdog_gui.core.storage.modelfile import save_model
    from catdog_gui.core.models import create_model, get_spec

    torch.manual_seed(0)
    spec = get_spec("efficientnet_lite0")
    model = create_model("efficientnet_lite0", 2, pretrained=True)
    with torch.no_grad():  # a head that gives probabilities away from 0.5, so differences would show
        for p in model.parameters():
            if p.dim() == 2 and p.shape[0] == 2:
                p.mul_(20)
    path = tmp_path_factory.mktemp("lite0") / "lite0.pt"
    save_model(path, model, model_name="efficientnet_lite0", classes=["cat", "dog"],
               image_size=spec.default_image_size, mean=spec.mean, std=spec.std)
    return path


def _runner(fmt: str, path: Path):
    """x (N, 3, S, S) float32 -> probabilities, with onnxruntime or torch.jit.load."""
    if fmt == "onnx":
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == ["input"]
        # the unfamiliarity score follows when the model file has the statistics
        assert [o.name for o in sess.get_outputs()] in (["probabilities"], ["probabilities", "unfamiliar_score"])
        return lambda x: sess.run(None, {"input": x})[0]
    import torch

    with warnings.catch_warnings():  # torch.jit is deprecated (FutureWarning) but loads fine
        warnings.simplefilter("ignore", FutureWarning)
        m = torch.jit.load(str(path), map_location="cpu")

    def run(x):
        with torch.no_grad():
            return m(torch.from_numpy(x)).numpy()
    return run


def _check_same_as_pytorch(model_path: Path, fmt: str, out: Path, photos: list[Path], verify=True) -> float:
    from catdog_gui.core.inference.predictor import Predictor

    written = E.export_model(model_path, fmt, out, verify=verify)
    assert written == out and out.is_file()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")], "temporary file left behind"

    meta = E.read_metadata(out)
    predictor = Predictor(model_path, "cpu")
    assert meta["format"] == "catdog-gui-export" and meta["output"] == "probabilities"
    assert meta["classes"] == predictor.classes
    assert meta["image_size"] == predictor.info.image_size
    assert meta["mean"] == pytest.approx(list(predictor.info.mean))
    assert meta["std"] == pytest.approx(list(predictor.info.std))
    assert meta["resize"] == "shorter-side-then-centre-crop"

    # preprocess from the metadata alone, as a user of the file would
    S = meta["image_size"]
    arrays = np.stack([load_square_array(p, S) for p in photos])  # (N, S, S, 3) uint8
    x = ((arrays.astype(np.float32) / 255 - np.array(meta["mean"], np.float32)) / np.array(meta["std"], np.float32))
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)
    run = _runner(fmt, out)
    got = run(x)
    want = predictor.probabilities(arrays.transpose(0, 3, 1, 2))
    assert got.shape == want.shape == (len(photos), len(meta["classes"]))
    np.testing.assert_allclose(got.sum(1), 1, atol=1e-5)
    diff = float(np.abs(got - want).max())
    assert diff < TOL, f"{fmt}: max |diff| {diff:.2g} on {len(photos)} photos"
    # the batch axis is free: one photo alone gives the same answer
    np.testing.assert_allclose(run(x[:1]), want[:1], atol=TOL)
    return diff


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_lenet_export_matches_pytorch(tiny_model, synthetic_photos, tmp_path, fmt):
    photos = _photos(3) or synthetic_photos  # real photos when CATDOG_TEST_DATA is set; always runs
    _check_same_as_pytorch(tiny_model, fmt, tmp_path / ("m.onnx" if fmt == "onnx" else "m.torchscript.pt"), photos)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_efficientnet_lite0_export_matches_pytorch_on_real_photos(lite0_model, tmp_path, fmt):
    photos = _photos(2)
    if not photos:
        pytest.skip("CATDOG_TEST_DATA is not set (or has no cat/ and dog/ folders): real-photo export test skipped")
    # verify=False: the export's own check on random input is redundant with this one (and costs time)
    _check_same_as_pytorch(lite0_model, fmt, tmp_path / ("m.onnx" if fmt == "onnx" else "m.ts"), photos, verify=False)


def test_onnx_metadata_props_are_readable_without_catdog(tiny_model, tmp_path):
    import json

    import onnx

    before = os.umask(0o022)  # the usual umask, whatever this session's is
    try:
        out = E.export_model(tiny_model, "onnx", tmp_path / "m.onnx", opset=13)
    finally:
        os.umask(before)
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["classes"]) == ["cat", "dog"]
    assert int(props["image_size"]) == 32 and json.loads(props["mean"]) == [0.5, 0.5, 0.5]
    assert json.loads(props["catdog.json"])["std"] == [0.5, 0.5, 0.5]
    assert proto.opset_import[0].version == 13 and proto.producer_name == "catdog-gui"
    # the batch axis is symbolic
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value
    # shareable: what a new file gets under umask 022, not the temporary file's owner-only 0600
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)


# ------------------------------------------------------------------------------------------------
# failures leave nothing behind


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_failing_exporter_leaves_no_file_and_says_why(tiny_model, tmp_path, monkeypatch, fmt):
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def boom(*_a, **_k):
        raise RuntimeError("Unsupported: ONNX export of operator foo\nmore details")

    monkeypatch.setattr("torch.onnx.export" if fmt == "onnx" else "torch.jit.trace", boom)
    with pytest.raises(CatdogError, match=rf"exporting model.pt to {fmt} failed: RuntimeError: Unsupported"):
        E.export_model(tiny_model, fmt, out_dir / "x.out")
    assert _listing(out_dir) == []


def test_failed_export_keeps_the_previous_file(tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous export")
    monkeypatch.setattr(E, "_verify", lambda *a: 0.5)  # an export that does not reproduce the model
    with pytest.raises(CatdogError, match="does not reproduce the model"):
        E.export_model(tiny_model, "onnx", out)
    assert out.read_bytes() == b"previous export"
    assert _listing(tmp_path) == ["m.onnx"]


def test_write_failure_leaves_no_file(tiny_model, tmp_path, monkeypatch):
    import catdog_gui.core.storage.files as MF  # atomic_write lives there

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(MF.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(CatdogError, match="No space left on device"):
        E.export_model(tiny_model, "torchscript", tmp_path / "m.ts")
    assert _listing(tmp_path) == []


def test_unwritable_folder(tiny_model, tmp_path, monkeypatch):
    """A folder the user may not write to (simulated: the OS refuses to create files in it, as it does for a
    non-root user in a read-only folder; root could write anyway): one sentence, nothing left behind."""
    import errno
    import tempfile

    ro = tmp_path / "ro"
    ro.mkdir()
    real_mkstemp = tempfile.mkstemp

    def refuse(*a, dir=None, **k):
        if dir is not None and Path(dir) == ro:
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(CatdogError, match=r"cannot .*m\.ts.*Permission denied"):
        E.export_model(tiny_model, "torchscript", ro / "m.ts")
    assert _listing(ro) == []


def test_user_errors(tiny_model, tmp_path):
    with pytest.raises(CatdogError, match="unknown export format"):
        E.export_model(tiny_model, "tflite", tmp_path / "m.tflite")
    with pytest.raises(CatdogError, match="does not exist"):
        E.export_model(tiny_model, "onnx", tmp_path / "nope" / "m.onnx")
    with pytest.raises(CatdogError, match="is a folder"):
        E.export_model(tiny_model, "onnx", tmp_path)
    with pytest.raises(CatdogError, match="opset 99 is not supported"):
        E.export_model(tiny_model, "onnx", tmp_path / "m.onnx", opset=99)
    with pytest.raises(CatdogError, match="does not exist"):
        E.export_model(tmp_path / "missing.pt", "onnx", tmp_path / "m.onnx")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(CatdogError, match="not a catdog-gui model file|damaged|refused"):
        E.export_model(junk, "torchscript", tmp_path / "m.ts")
    with pytest.raises(CatdogError, match="no catdog-gui metadata|neither"):
        E.read_metadata(junk)
    assert sorted(_listing(tmp_path)) == ["junk.pt"]


def test_missing_onnx_package_is_a_user_error(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(CatdogError, match="pip install"):
        E.export_model(tiny_model, "onnx", tmp_path / "m.onnx")
    assert _listing(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# CLI


def test_cli_export(tiny_model, tmp_path, capsys):
    from catdog_gui.cli import main

    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_model), "--format", "onnx", "--out", str(out)]) == 0
    assert "Exported" in capsys.readouterr().out and out.is_file()
    # format from the suffix
    assert main(["export", str(tiny_model), "--out", str(tmp_path / "m.torchscript.pt")]) == 0
    assert E.read_metadata(tmp_path / "m.torchscript.pt")["classes"] == ["cat", "dog"]
    capsys.readouterr()
    assert main(["export", str(tiny_model), "--out", str(tmp_path / "m.bin")]) == 2
    assert "--format" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.pt"), "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("catdog: error:") and "does not exist" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as e:
        main(["export", str(tiny_model), "--format", "tflite"])
    assert e.value.code == 2


# ------------------------------------------------------------------------------------------------
# the README snippets (docs/export.md), run as written


def _snippets() -> list[str]:
    text = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_docs_snippets_run(tiny_model, synthetic_photos, tmp_path, fmt):
    """The recipe in docs/export.md, run as written with plain PIL, gives catdog's own probabilities
    (within 1e-3) on real photos: same draft decoding, same resize."""
    from catdog_gui.core.inference.predictor import Predictor

    snippets = _snippets()
    assert len(snippets) == 2
    code = snippets[0] if fmt == "onnx" else snippets[1]
    assert len(code.strip().splitlines()) <= 14
    model_name = "model.onnx" if fmt == "onnx" else "model.torchscript.pt"
    assert f'"{model_name}"' in code
    E.export_model(tiny_model, fmt, tmp_path / model_name)
    (tmp_path / "snippet.py").write_text(code.replace("p.round(3).tolist()", "p.tolist()"))
    photos = _photos(2) or synthetic_photos[-2:]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    predictor = Predictor(tiny_model, "cpu")
    for photo in photos:
        r = subprocess.run([sys.executable, "snippet.py", str(photo)], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
        label, _prob, probs = r.stdout.split(maxsplit=2)
        got = ast.literal_eval(probs)
        pred = predictor.predict(photo)
        assert label == pred.label
        for c, p in pred.probabilities:
            assert abs(got[c] - p) < 1e-3, (photo.name, c, got[c], p)


# ------------------------------------------------------------------------------------------------
# File > Export (catdog_gui.gui.export_dialog), offscreen


class _Boxes:
    """Stands in for QMessageBox in export_dialog: records what would have been shown."""

    def __init__(self):
        self.shown: list[tuple[str, str]] = []

    def install(self, monkeypatch, mod):
        from PySide6.QtWidgets import QMessageBox

        rec = self

        class Box:
            Icon, StandardButton = QMessageBox.Icon, QMessageBox.StandardButton

            def __init__(self, _icon, title, text, _buttons=None, _parent=None):
                self.title, self.text, self.info = title, text, ""

            def setInformativeText(self, t):  # noqa: N802
                self.info = t

            def setDetailedText(self, t):  # noqa: N802
                pass

            def exec(self):
                rec.shown.append((self.title, self.text + " " + self.info))

            @staticmethod
            def information(_parent, title, text):
                rec.shown.append((title, text))

        monkeypatch.setattr(mod, "QMessageBox", Box)
        return self


def test_export_dialog_exports_in_background_and_reports(qtbot, tiny_model, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QWidget

    from catdog_gui.gui import export_dialog as D

    boxes = _Boxes().install(monkeypatch, D)
    parent = QWidget()
    qtbot.addWidget(parent)
    # the save dialog: the user types a name without suffix and picks the TorchScript filter
    asked = {}

    def fake_dialog(_parent, caption, start, filters, selected):
        asked.update(caption=caption, start=start, filters=filters)
        return str(tmp_path / "exported"), D.FORMATS[1][1]

    monkeypatch.setattr(D.QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    assert D.choose_export(parent, str(tiny_model)) == ("torchscript", str(tmp_path / "exported.torchscript.pt"))
    assert asked["start"].endswith("model.onnx") and "ONNX" in asked["filters"]

    results = []
    D.start_export(parent, str(tiny_model), "onnx", str(tmp_path / "m.onnx"), on_finished=lambda *a: results.append(a))
    qtbot.waitUntil(lambda: bool(results), timeout=30000)
    assert results == [(True, str(tmp_path / "m.onnx"))]
    assert boxes.shown[-1][0] == "Model exported" and "probabilities" in boxes.shown[-1][1]
    assert E.read_metadata(tmp_path / "m.onnx")["classes"] == ["cat", "dog"]

    # a failure is reported with its reason, and leaves no file
    results.clear()
    D.start_export(parent, str(tiny_model), "onnx", str(tmp_path / "missing" / "m.onnx"),
                   on_finished=lambda *a: results.append(a))
    qtbot.waitUntil(lambda: bool(results), timeout=30000)
    assert results[0][0] is False and "does not exist" in results[0][1]
    assert boxes.shown[-1][0] == "Export failed" and "does not exist" in boxes.shown[-1][1]
    assert not (tmp_path / "missing").exists()

    # the whole flow, cancelled in the file dialog: nothing happens
    monkeypatch.setattr(D.QFileDialog, "getSaveFileName", staticmethod(lambda *a: ("", "")))
    n = len(boxes.shown)
    assert D.export_model_dialog(parent, str(tiny_model)) is None
    assert len(boxes.shown) == n
