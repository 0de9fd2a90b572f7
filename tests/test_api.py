"""catdog_gui.api: the notebook/script API, its progress bars, and the README example run as written."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from catdog_gui import api
from catdog_gui.core.errors import CatdogError
from catdog_gui.core.events import BatchEnd, EpochEnd, Finished, RunStarted, StageProgress
from catdog_gui.core.training.progress import TqdmProgress

from helpers import make_dataset, make_image, real_data_dir

ROOT = Path(__file__).resolve().parents[1]
SECTION = "Use from Python or a notebook"

NO_QT = """
import sys
sys.modules['PySide6'] = None      # any import of Qt now fails
sys.modules['pyqtgraph'] = None
from catdog_gui import api
import catdog_gui.core.training.progress, catdog_gui.core.training.tensorboard
ds = api.scan(sys.argv[1], show=False)
assert ds.classes == ['cat', 'dog'], ds.classes
bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6') and sys.modules[m] is not None]
print('QT' if bad else 'CLEAN')
"""


def _headless_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_api_works_without_qt_or_display(tmp_path):
    make_dataset(tmp_path, 3)
    r = subprocess.run([sys.executable, "-c", NO_QT, str(tmp_path)], capture_output=True, text=True, env=_headless_env(),
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "CLEAN"


def test_train_predict_evaluate(tiny_dataset, tmp_path, capsys):
    ds = api.scan(tiny_dataset)
    assert ds.classes == ["cat", "dog"] and len(ds.train) + len(ds.val) == 40
    assert "cat" in capsys.readouterr().out

    out = tmp_path / "m.pt"
    run = api.train(tiny_dataset, epochs=3, out=out, patience=0, seed=0)
    printed = capsys.readouterr().out
    assert "epoch   3/3" in printed and f"Saved {out}" in printed
    assert run.status == "completed" and run.model_path == str(out) and out.exists()
    assert [h["epoch"] for h in run.history] == [1, 2, 3] and {"train_loss", "val_acc"} <= set(run.history[0])
    assert run.classes == ["cat", "dog"] and run.metrics.n == len(ds.val)
    assert run.val_accuracy == run.metrics.accuracy and "validation accuracy" in str(run)

    cat = tiny_dataset / "cat" / "cat_000.jpg"
    p = run.predict(cat)
    assert p.label == "cat" and abs(sum(v for _, v in p.probabilities) - 1) < 1e-5
    many = api.predict(out, tiny_dataset)  # a folder: every image in it
    assert len(many) == 40 and all(q.ok for q in many)
    assert [q.label for q in api.predict(out, [cat, cat])] == [p.label] * 2
    heldout = make_dataset(tmp_path / "heldout", 50, seed=7)  # photos the model never saw
    m = api.evaluate(out, heldout)
    assert m.n == 100 and sum(map(sum, m.confusion)) == 100
    assert m.accuracy >= 0.95  # chance (0.5) or an untrained network (~0.05 here) would be far below
    assert run.evaluate(heldout).accuracy == m.accuracy


def test_train_without_out_saves_to_a_temporary_file_and_accepts_a_scanned_dataset(tiny_dataset):
    ds = api.scan(tiny_dataset, show=False)
    run = api.train(ds, epochs=1, progress=False, augment={"rotation": 5.0})
    assert run.config.augment.enabled and run.config.augment.rotation == 5.0
    try:
        assert Path(run.model_path).exists() and Path(run.model_path).name == "lenet5.pt"
    finally:
        shutil.rmtree(Path(run.model_path).parent, ignore_errors=True)


def test_interrupt_stops_after_the_batch_and_keeps_the_best_epoch(tiny_dataset, tmp_path):
    def interrupt(ev):
        if isinstance(ev, BatchEnd) and ev.epoch == 2 and ev.step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    run = api.train(tiny_dataset, epochs=5, out=tmp_path / "m.pt", progress=False, callbacks=[interrupt],
                    batch_size=8)
    assert run.status == "cancelled" and run.best_epoch == 1 and Path(run.model_path).exists()
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("kwargs,msg", [
    (dict(epochs=1, learning_rate=0.1), "unknown setting learning_rate"),
    (dict(epochs=0), "epochs must be between 1 and 1000"),
    (dict(epochs=1, out="/no/such/dir/m.pt"), "does not exist"),
    (dict(epochs=1, model="vgg99"), "unknown model"),
])
def test_user_errors_raise_catdog_error(tiny_dataset, kwargs, msg):
    with pytest.raises(CatdogError, match=msg):
        api.train(tiny_dataset, progress=False, **kwargs)


def test_missing_folder_is_a_catdog_error(tmp_path):
    with pytest.raises(CatdogError, match="does not exist"):
        api.train(tmp_path / "nothing", epochs=1, progress=False)
    with pytest.raises(CatdogError):
        api.scan(tmp_path / "nothing")


def test_preview_augmentation_grid(tmp_path):
    img = make_image(tmp_path / "a.jpg", (60, 60, 170))
    a = api.preview_augmentation(img, n=8, seed=3)
    assert a.mode == "RGB" and a.size == (9 * (128 + 4) + 4, a.size[1]) and a.size[1] > 128
    assert a.tobytes() == api.preview_augmentation(img, n=8, seed=3).tobytes()  # a seed gives the same pictures
    assert a.tobytes() != api.preview_augmentation(img, n=8, seed=4).tobytes()
    small = api.preview_augmentation(img, n=2, settings={"hflip": False}, size=48, cell=48, columns=1)
    assert small.size[0] == 48 + 8


def _feed(progress: TqdmProgress) -> None:
    for ev in [StageProgress("decode", 5, 10), StageProgress("decode", 10, 10),
               RunStarted("CPU", ("cat", "dog"), 32, 8, {"model": "lenet5"}, "scratch"),
               BatchEnd(1, 1, 2, 0.7), BatchEnd(1, 2, 2, 0.6),
               EpochEnd(1, 2, 0.65, 0.5, 0.6, 0.75, 100.0, 0.1, 0.1, 1, True),
               BatchEnd(2, 1, 2, 0.5), BatchEnd(2, 2, 2, 0.4, "train"),
               EpochEnd(2, 2, 0.45, 0.8, 0.5, 0.75, 100.0, 0.1, 0.0, 1, False),
               Finished("completed", "trained 2 epochs")]:
        progress(ev)


def test_tqdm_progress_one_bar_per_stage_and_epoch_and_a_line_per_epoch():
    buf, lines = io.StringIO(), []
    p = TqdmProgress(write=lines.append, file=buf, disable=False, leave=True, ascii=True, mininterval=0)
    _feed(p)
    bars = buf.getvalue()
    assert "reading the photos" in bars and "epoch 1" in bars and "epoch 2" in bars and "loss=0.400" in bars
    assert lines[0].startswith("Training lenet5 (scratch) on CPU: 32 training, 8 validation")
    assert lines[1].startswith("epoch   1/2") and lines[1].endswith("*") and lines[2].startswith("epoch   2/2")
    assert p._bar is None  # every bar closed at the end

    quiet = TqdmProgress(bars=False, report=False, write=lines.append, file=io.StringIO())
    n = len(lines)
    _feed(quiet)
    assert [l[:11] for l in lines[n:]] == ["epoch   1/2", "epoch   2/2"]


# ---------------------------------------------------------------------------- the README example
def _section_source() -> tuple[str, Path]:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    if re.search(rf"^#+\s+{re.escape(SECTION)}\s*$", text, re.M):
        return text, readme
    path = ROOT / "docs" / "notebook.md"
    return path.read_text(encoding="utf-8"), path


def example_blocks(text: str) -> list[str]:
    """The ```python blocks of the section (up to the next heading of the same or a higher level)."""
    m = re.search(rf"^(#+)\s+{re.escape(SECTION)}\s*$", text, re.M)
    assert m, f"no '{SECTION}' section"
    level = len(m.group(1))
    end = re.search(rf"^#{{1,{level}}}\s", text[m.end():], re.M)
    body = text[m.end():m.end() + end.start()] if end else text[m.end():]
    return re.findall(r"^```python\n(.*?)^```", body, re.M | re.S)


def test_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    real = real_data_dir()
    if real is None:
        pytest.skip("CATDOG_TEST_DATA is not set (or has no cat/ and dog/ folders): the README example needs real photos")
    text, source = _section_source()
    blocks = example_blocks(text)
    assert blocks, f"no python example in {source}"
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        blocks = [b for b in blocks if "tensorboard=" not in b]
    for c in ("cat", "dog"):  # 20 photos of each to train on, 5 more kept apart
        photos = sorted(p for p in (real / c).iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        assert len(photos) >= 26, f"{real / c} needs at least 26 JPEGs"
        for i, p in enumerate(photos[:25]):
            dest = tmp_path / ("pets" if i < 20 else "pets_test") / c / p.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dest)
        if c == "dog":
            shutil.copy(photos[25], tmp_path / "photo.jpg")
    code = compile("\n\n".join(blocks), str(source), "exec")
    monkeypatch.chdir(tmp_path)  # run in this process: torch is already imported (test_api_works_without_qt
    exec(code, {"__name__": "__main__"})  # proves the API needs no Qt in a fresh interpreter)
    out = capsys.readouterr().out
    assert (tmp_path / "lenet.pt").exists() and (tmp_path / "augment.png").exists()
    assert "Accuracy" in out and "epoch  10/10" in out
