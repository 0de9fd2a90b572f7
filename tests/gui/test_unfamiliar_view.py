"""The Prediction tab says "Looks like neither blue nor red" for a photo unlike the training photos:
on its card (the answer still shown, smaller), in the folder table's sortable column and its CSV; the
setting turns it off and is remembered; an old model file shows plain answers."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt

from catdog_gui.core.storage.modelfile import read_model_file
from catdog_gui.gui.prediction.tab import PredictionTab
from catdog_gui.gui.settings import FLAG_UNFAMILIAR_KEY, Settings

CLASSES = ("blue", "red")


def _square(path, red: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 90, (32, 32, 3))
    a[..., 0 if red else 2] += 150
    Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(path)


def _odd(path) -> None:
    """Black text-like strokes on white: nothing like a coloured square."""
    a = np.full((32, 32, 3), 255, np.uint8)
    a[4::6, 2:30] = 0
    Image.fromarray(a).save(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    root = tmp_path_factory.mktemp("unf")
    data = root / "data"
    for i, cls in enumerate(CLASSES):
        (data / cls).mkdir(parents=True)
        for j in range(20):
            _square(data / cls / f"{cls}{j}.png", cls == "red", seed=100 * i + j)
    samples = root / "samples"
    samples.mkdir()
    _square(samples / "a_red.png", True, 999)
    _odd(samples / "b_odd.png")
    trainer = Trainer(TrainConfig(model="lenet5", epochs=3, batch_size=8, patience=0, device="cpu", seed=0))
    trainer.unfamiliar_method = "mahalanobis"  # on LeNet-5's features: these squares are easy to tell apart
    fin = trainer.fit(data, out_path=root / "m.pt")
    assert fin.ok and fin.best_path, fin.reason
    info, state = read_model_file(root / "m.pt")
    meta = {k: v for k, v in info.meta.items() if k not in ("calibration", "unfamiliar")}
    torch.save({"format": "catdog-gui-model", "version": 1, "meta": meta, "state_dict": state}, root / "old.pt")
    return {"model": str(root / "m.pt"), "old": str(root / "old.pt"), "samples": samples, "root": root}


def _tab(qtbot, current, model, settings=None):
    t = PredictionTab(current)
    qtbot.addWidget(t)
    t.resize(1100, 700)
    if settings is not None:
        t.settings = settings
    with qtbot.waitSignal(current.changed, timeout=20000):
        current.open(model)
    return t


def _card_for(tab, name):
    return next(c for c in tab.cards if c.item.name == name)


def test_the_card_says_neither_and_still_shows_the_answer(qtbot, trained, current, tmp_path):
    settings = Settings(tmp_path / "s.ini")
    tab = _tab(qtbot, current, trained["model"], settings)
    with qtbot.waitSignal(tab.results_ready, timeout=20000):
        tab.classify_paths([str(trained["samples"] / "b_odd.png"), str(trained["samples"] / "a_red.png")])
    odd, red = _card_for(tab, "b_odd.png"), _card_for(tab, "a_red.png")
    assert odd.prediction.unfamiliar is True and red.prediction.unfamiliar is False
    assert odd.headline.text() == "Looks like neither blue nor red"
    assert "unlike the photos this model was trained on" in odd.summary.text().lower()
    assert f"<b>{odd.prediction.label}</b>" in odd.summary.text() and len(odd.bars) == 2
    assert red.headline.text() == red.prediction.label
    tab.grab().save(str(tmp_path / "card.png"))
    # the setting turns it off (and is remembered)
    tab.unfamiliar_check.setChecked(False)
    assert odd.headline.text() == odd.prediction.label
    assert settings.get_bool(FLAG_UNFAMILIAR_KEY, True) is False
    tab.unfamiliar_check.setChecked(True)
    assert odd.headline.text() == "Looks like neither blue nor red"
    tab.shutdown()
    again = PredictionTab(current)
    qtbot.addWidget(again)
    settings.set(FLAG_UNFAMILIAR_KEY, False)
    again.settings = settings
    assert not again.unfamiliar_check.isChecked()
    again.shutdown()


def test_the_folder_table_sorts_by_unfamiliarity_and_the_csv_has_it(qtbot, trained, current, tmp_path):
    tab = _tab(qtbot, current, trained["model"])
    with qtbot.waitSignal(tab.batch_finished, timeout=30000):
        tab.classify_folder(str(trained["samples"]))
    page = tab.folder
    page.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    proxy = page.proxy
    first = proxy.index(0, 0).data()
    assert first == "b_odd.png" and proxy.index(0, 3).data().startswith("⚠ Neither blue nor red")
    assert proxy.index(1, 3).data() == ""
    key = Qt.ItemDataRole.UserRole  # sorted by how far above (or below) the threshold
    assert proxy.index(0, 3).data(key) > 0 > proxy.index(1, 3).data(key)
    page.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    assert proxy.index(1, 0).data() == "b_odd.png"
    out = tmp_path / "p.csv"
    page.export_csv(str(out))
    with open(out, newline="", encoding="utf-8") as f:
        rows = {r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader(f)}
    assert rows["b_odd.png"]["unfamiliar"] == "yes" and rows["a_red.png"]["unfamiliar"] == "no"
    assert float(rows["b_odd.png"]["unfamiliar_score"]) > float(rows["a_red.png"]["unfamiliar_score"])
    tab.unfamiliar_check.setChecked(False)
    assert page.table.isColumnHidden(3)
    tab.shutdown()


def test_an_old_model_file_gives_plain_answers(qtbot, trained, current):
    tab = _tab(qtbot, current, trained["old"])
    with qtbot.waitSignal(tab.results_ready, timeout=20000):
        tab.classify_paths([str(trained["samples"] / "b_odd.png")])
    (card,) = tab.cards
    assert card.error is None and card.prediction.unfamiliar is None
    assert card.headline.text() == card.prediction.label
    tab.shutdown()


@pytest.fixture
def no_cameras(monkeypatch):
    from catdog_gui.gui.common import camera_source

    monkeypatch.setattr(camera_source, "video_inputs", lambda: [])


def test_the_camera_page_says_neither_over_the_picture(qtbot, no_cameras):
    from PySide6.QtGui import QImage

    from catdog_gui.core.inference.predictor import Prediction
    from catdog_gui.gui.models.current_model import CurrentModel
    from catdog_gui.gui.prediction.camera_live import CameraLivePage

    page = CameraLivePage(CurrentModel())
    qtbot.addWidget(page)
    img = QImage(64, 48, QImage.Format.Format_RGB888)
    img.fill(0)
    odd = Prediction("frame", "dog", 0.93, (("dog", 0.93), ("cat", 0.07)), unfamiliar=True,
                     unfamiliar_score=0.8, unfamiliar_threshold=0.5)
    page._on_prediction(odd, img)
    assert page.answer_label.text().startswith("Neither cat nor dog?") and "dog 93" in page.answer_label.text()
    page.flag_unfamiliar = False
    page._on_prediction(odd, img)
    assert page.answer_label.text().startswith("dog 93")
