"""The Network tab's explainer ("Every unit"): the overview of every unit, a click shows the unit's
arithmetic with the numbers the core computes, keyboard moves, the animation fills a map, the softmax
shows the app's probabilities, what training changed, and the exports."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_image

from catdog_gui.core.inference.explain_html import num
from catdog_gui.core.text import probability_text


@pytest.fixture
def tab(qtbot, tiny_model, current, tmp_path):
    from catdog_gui.gui.network.tab import NetworkTab

    t = NetworkTab(current)
    qtbot.addWidget(t)
    t.resize(1280, 800)
    t.show()
    with qtbot.waitSignal(t.model_shown, timeout=20000):
        current.open(tiny_model)
    t.pages.setCurrentWidget(t.explainer)
    photo = make_image(tmp_path / "pet.jpg", (180, 120, 60), size=(64, 48), seed=2)
    with qtbot.waitSignal(t.explainer.explained, timeout=20000):
        t.set_image(str(photo))
    t.photo = photo
    yield t
    t.shutdown()


def _click(qtbot, overview, layer, c, y, x):
    from PySide6.QtCore import Qt

    col = overview.column(layer)
    centre = col.unit_rect(c, y, x).center().toPoint()
    qtbot.mouseClick(overview, Qt.MouseButton.LeftButton, pos=centre)


def test_overview_shows_every_unit_and_a_click_explains_it(qtbot, tab):
    ex = tab.explainer.explanation
    ov = tab.explainer.overview
    # every layer, input to softmax, each map laid out inside the widget, no two units overlapping
    assert [c.name for c in ov.columns] == ["input", "c1", "s2", "c3", "s4", "c5", "f6", "output", "softmax"]
    for col in ov.columns:
        n, h, w = col.shape
        assert (n, h, w) == ov.values[col.name].shape
        rects = [col.map_rect(i) for i in range(n)]
        assert all(ov.rect().toRectF().contains(r) for r in rects), col.name
        assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:]), col.name
    # click C3 map 8 at (2, 3): the detail shows that unit's arithmetic, numbers from the core
    with qtbot.waitSignal(tab.explainer.unit_shown, timeout=5000):
        _click(qtbot, ov, "c3", 7, 2, 3)
    assert ov.selected == ("c3", 7, 2, 3)
    u = ex.unit("c3", 7, 2, 3)
    text = tab.explainer.detail.shown_text()
    assert "C3 map 8, row 2, column 3" in text
    assert u.connected == [1, 2, 3, 4]
    assert "S2 map 1" in text and "not connected" in text
    for t in u.terms:
        if t.connected:
            assert num(t.total) in text and num(float(t.kernel[0, 0])) in text
    assert num(u.bias) in text and num(u.total) in text and num(u.value) in text
    # the units it reads: C3 map 8's four S2 maps, 5x5 at (2, 3)
    from catdog_gui.core.inference.unit_arithmetic import reads

    assert reads(ex.trace, ex.model, "c3", 7, 2, 3) == [(c, 2, 3, 5, 5) for c in (1, 2, 3, 4)]
    tab.explainer.grab()  # paints the edges


def test_keyboard_walks_units_and_layers(qtbot, tab):
    from PySide6.QtCore import Qt

    ov = tab.explainer.overview
    ov.select("c1", 0, 0, 0)
    ov.setFocus()
    qtbot.keyClick(ov, Qt.Key.Key_Right)
    qtbot.keyClick(ov, Qt.Key.Key_Down)
    assert ov.selected == ("c1", 0, 1, 1)
    qtbot.keyClick(ov, Qt.Key.Key_PageDown)
    assert ov.selected == ("c1", 1, 1, 1)
    qtbot.keyClick(ov, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    assert ov.selected == ("s2", 1, 1, 1)
    assert "S2 map 2, row 1, column 1" in tab.explainer.detail.shown_text()
    for _ in range(3):
        qtbot.keyClick(ov, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    assert ov.selected[0] == "c5"
    qtbot.keyClick(ov, Qt.Key.Key_Down)  # a flat layer: down is the next unit
    assert ov.selected == ("c5", 2, 0, 0)
    assert "C5 unit 3" in tab.explainer.detail.shown_text()
    # the window resizes: the layout follows and still fits
    tab.resize(900, 640)
    qtbot.waitUntil(lambda: ov.columns and ov.columns[-1].x + ov.columns[-1].width <= ov.width() + 1, timeout=5000)


def test_subsampling_full_connection_and_softmax_show_their_numbers(qtbot, tab, tiny_model):
    from catdog_gui.core.inference.predictor import Predictor

    ex, view = tab.explainer.explanation, tab.explainer
    view.overview.select("s4", 3, 1, 2)
    u = ex.unit("s4", 3, 1, 2)
    text = view.detail.shown_text()
    assert num(u.average) in text and num(u.coefficient) in text and num(u.bias) in text and num(u.value) in text
    view.overview.select("f6", 11)
    u = ex.unit("f6", 11)
    text = view.detail.shown_text()
    assert "F6 unit 12" in text and f"the other {u.rest_count}" in text
    assert all(num(c.product) in text for c in u.top) and num(u.total) in text
    view.softmax_button.click()
    assert view.overview.selected[0] == "softmax"
    text = view.detail.shown_text()
    pred = Predictor(tiny_model, "cpu").predict(tab.photo)
    for cls, p in pred.probabilities:  # the Prediction tab's numbers, as it prints them
        assert probability_text(p) in text
    sm = ex.unit("softmax")
    assert num(sm.total) in text and all(num(e) in text for e in sm.exps)


def test_animation_fills_the_map_one_value_at_a_time(qtbot, tab):
    view = tab.explainer
    view.overview.select("c1", 2, 0, 0)
    anim = view.animation
    assert anim.play_button.isEnabled()
    seen = []
    view.overview.unit_selected.connect(lambda *a: seen.append(a))  # frames do not re-emit
    anim.step()
    assert view.overview.selected == ("c1", 2, 0, 1) and view.overview.fill == ("c1", 2, 2)
    assert "row 0, column 1" in view.detail.shown_text() and "products" in view.detail.shown_text()
    anim.speed.setValue(60)
    anim.play()
    qtbot.waitUntil(lambda: anim.done >= 6, timeout=10000)
    assert "Pause or step to see every product" in view.detail.shown_text()  # playing: sums and value
    anim.pause()
    assert not anim.playing and seen == []
    y, x = view.overview.selected[2:]
    assert view.overview.fill == ("c1", 2, y * 28 + x + 1)  # paused half way: the map stays part-filled
    u = view.explanation.unit("c1", 2, y, x)
    text = view.detail.shown_text()
    assert "products" in text and num(float(u.terms[1].products[4, 4])) in text and num(u.value) in text
    view.grab()  # paints the part-filled map
    # a flat layer has nothing to slide
    view.overview.select("f6", 0)
    assert not anim.play_button.isEnabled()


def test_what_training_changed(qtbot, tab):
    view = tab.explainer
    ex = view.explanation
    assert ex.first is not None and view.compare_box.isEnabled()
    view.overview.select("c1", 0, 4, 4)
    view.compare_box.setChecked(True)
    text = view.detail.shown_text()
    a, b = ex.first_unit("c1", 0, 4, 4), ex.unit("c1", 0, 4, 4)
    assert f"after epoch {ex.first[0]}" in text and f"best epoch {ex.best_epoch}" in text
    assert num(float(a.terms[0].kernel[0, 0])) in text and num(float(b.terms[0].kernel[0, 0])) in text
    assert num(a.value) in text and num(b.value) in text
    assert not np.array_equal(a.terms[0].kernel, b.terms[0].kernel)


def test_exports(qtbot, tab, tmp_path):
    view = tab.explainer
    view.overview.select("c3", 0, 5, 5)
    page = view.export_html(tmp_path / "page.html")
    text = page.read_text("utf-8")
    assert 'data-layer="c3" data-unit="0,5,5"' in text and "http" not in text.split("<body>")[1].split("Every")[0]
    png = view.export_png(tmp_path / "view.png")
    from PySide6.QtGui import QImage

    img = QImage(str(png))
    assert not img.isNull() and img.width() > 400


def test_no_model_clears_the_explainer(qtbot, tab):
    view = tab.explainer
    view.set_predictor(None)
    assert view.explanation is None and not view.overview.isEnabled()
    assert "Click a unit" in view.detail.shown_text()


def test_the_modern_variant_explains_max_pooling(qtbot, tmp_path):
    import torch

    from catdog_gui.core.inference.predictor import Predictor
    from catdog_gui.core.models import create_model
    from catdog_gui.core.models.registry import HALF_MEAN, HALF_STD
    from catdog_gui.core.storage.modelfile import save_model
    from catdog_gui.gui.network.explainer_view import ExplainerView

    torch.manual_seed(0)
    path = save_model(tmp_path / "modern.pt", create_model("lenet5_modern", 2, 40), model_name="lenet5_modern",
                      classes=["cat", "dog"], image_size=40, mean=HALF_MEAN, std=HALF_STD)
    predictor = Predictor(path, "cpu")
    view = ExplainerView()
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.set_predictor(predictor)
    arr = predictor.preprocess(make_image(tmp_path / "p.png", (30, 160, 90), size=(50, 50), seed=4))
    with qtbot.waitSignal(view.explained, timeout=20000):
        view.set_photo(arr, "p.png")
    ex = view.explanation
    assert ex.first is None and not view.compare_box.isEnabled()  # saved without a first epoch
    assert [c.shape for c in view.overview.columns][1:3] == [(6, 36, 36), (6, 18, 18)]
    view.overview.select("s2", 4, 7, 9)
    u = ex.unit("s2", 4, 7, 9)
    text = view.detail.shown_text()
    assert "Max pooling" in text and num(u.value) in text and u.value == u.window.max()
    view.overview.select("c5", 17)
    u = ex.unit("c5", 17)
    assert f"each of the {16 * 7 * 7:,} S4 values" in view.detail.shown_text() and num(u.value) in view.detail.shown_text()
    view.shutdown()


def test_a_dropped_photo_is_explained(qtbot, tab, tmp_path):
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    other = make_image(tmp_path / "other.png", (20, 60, 200), size=(40, 40), seed=9)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "notes.txt")), QUrl.fromLocalFile(str(other))])
    event = QDropEvent(QPoint(10, 10).toPointF(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(tab.explainer.explained, timeout=20000):
        tab.dropEvent(event)
    assert tab.explainer.explanation.photo_name == "other.png"
    assert "other.png" in tab.explainer.note.text()
