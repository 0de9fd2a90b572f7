"""CurrentModel: the one open model file and its one Predictor, loaded in the background; a failed
load keeps the previous model; a newer open wins over one still in flight."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication



def _record(current):
    seen = []
    current.loading.connect(lambda p: seen.append(("loading", p)))
    current.changed.connect(lambda p: seen.append(("changed", p)))
    current.failed.connect(lambda p, m: seen.append(("failed", p, m)))
    return seen


def test_loads_in_the_background_and_emits_changed(qtbot, current, tiny_model):
    seen = _record(current)
    assert current.predictor is None and current.path is None and current.classes == []
    with qtbot.waitSignal(current.changed, timeout=20000) as sig:
        task = current.open(tiny_model)
        # open() returned at once: the load runs on its own thread, nothing is current yet
        assert current.predictor is None and current.pending == str(tiny_model) and current.is_loading()
        assert task.is_running() or task.wait()
    predictor = sig.args[0]
    assert predictor is current.predictor and current.path == str(tiny_model)
    assert not current.is_loading()
    assert seen == [("loading", str(tiny_model)), ("changed", predictor)]
    # what views read from it
    assert current.classes == list(predictor.classes) and len(current.classes) == 2
    assert current.model_name == "lenet5" and "LeNet" in current.title
    assert current.file_name == tiny_model.name and current.info is predictor.info


def test_a_failed_load_keeps_the_previous_model(qtbot, current, tiny_model, tmp_path):
    with qtbot.waitSignal(current.changed, timeout=20000):
        current.open(tiny_model)
    before = current.predictor
    bad = tmp_path / "damaged.pt"
    bad.write_bytes(tiny_model.read_bytes()[:500])  # an interrupted copy
    with qtbot.waitSignal(current.failed, timeout=20000) as sig:
        current.open(bad)
    path, message = sig.args
    assert path == str(bad) and "damaged.pt" in message and "internal error" not in message
    assert current.predictor is before and current.path == str(tiny_model) and not current.is_loading()
    # a file that has gone: a message too, and still the same model
    with qtbot.waitSignal(current.failed, timeout=20000) as sig:
        current.open(tmp_path / "gone.pt")
    assert "does not exist" in sig.args[1]
    assert current.predictor is before


def test_a_newer_open_wins_over_one_in_flight(qtbot, current, tiny_model, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    seen = _record(current)
    first = current.open(bad)
    with qtbot.waitSignal(current.changed, timeout=20000):
        current.open(tiny_model)
    first.wait()
    QApplication.processEvents()  # anything the first load still had queued
    assert [s[0] for s in seen] == ["loading", "loading", "changed"]  # its failure never arrives
    assert current.path == str(tiny_model)


def test_open_now_and_clear(qtbot, current, tiny_model, tmp_path):
    from catdog_gui.core.errors import CatdogError

    seen = _record(current)
    p = current.open_now(tiny_model)
    assert p is current.predictor and seen[-1] == ("changed", p)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    with pytest.raises(CatdogError):
        current.open_now(bad)
    assert seen[-1][0] == "failed" and current.predictor is p
    current.clear()
    assert seen[-1] == ("changed", None) and current.predictor is None and current.path is None


def test_the_window_predicts_as_the_model_file_says_with_its_mirror_setting(qtbot, current, tiny_model, tmp_path):
    """A model trained with test-time augmentation (``tta``) predicts with it in the window too, and one
    trained without it does not: the window reads the setting from the file, like ``catdog predict``."""
    from catdog_gui.core.inference.predictor import Predictor
    from catdog_gui.core.storage.modelfile import load_model, save_model

    model, info = load_model(tiny_model)
    for tta in (True, False):
        path = tmp_path / f"tta-{tta}.pt"
        save_model(path, model, model_name=info.model_name, classes=list(info.classes), image_size=info.image_size,
                   mean=info.mean, std=info.std, config={**info.config, "tta": tta}, metrics=info.metrics)
        with qtbot.waitSignal(current.changed, timeout=20000) as sig:
            current.open(path)
        assert sig.args[0].tta is tta and Predictor(str(path), "cpu").tta is tta
