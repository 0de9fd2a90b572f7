"""The Network tab: layer table with totals, feature maps computed in the background, filters,
the LeNet-5 diagram, a bad model file keeps the previous one, wiring in the main window."""

from __future__ import annotations

import pytest

from helpers import make_image


@pytest.fixture
def tab(qtbot, tiny_model, current):
    from catdog_gui.gui.network.tab import NetworkTab

    t = NetworkTab(current)
    qtbot.addWidget(t)
    t.resize(1200, 760)
    with qtbot.waitSignal(t.model_shown, timeout=20000):
        current.open(tiny_model)
    yield t
    t.shutdown()


def _col(tab, c):
    return [tab.table.item(r, c).text() for r in range(tab.table.rowCount())]


def test_table_matches_summary_and_totals(tab):
    import torch  # noqa: F401

    from catdog_gui.core.models import summary

    layers = summary(tab.predictor.model, 32)
    assert tab.table.rowCount() == len(layers) == 7
    assert _col(tab, 0)[0] == "C1 (c1)" and _col(tab, 0)[-1] == "OUTPUT (output)"
    assert _col(tab, 4) == [" x ".join(map(str, l.out_shape)) for l in layers]
    params = [int(x.replace(",", "")) for x in _col(tab, 5)]
    assert params == [l.params for l in layers]
    total = sum(params)
    assert len(tab.predictor.classes) == 2 and total == 60_470  # LeNet-5, 3 x 32 x 32 in, 2 classes
    assert f"{total:,} parameters" in tab.totals_label.text()
    stored = sum(p.numel() for p in tab.predictor.model.parameters())
    assert stored - total == 900 and f"{stored:,}" in tab.totals_label.text()
    # the diagram: the paper's labels, generated from the model
    assert [b.label for b in tab.diagram.boxes] == ["INPUT", "C1", "S2", "C3", "S4", "C5", "F6", "OUTPUT"]
    assert tab.diagram.isVisibleTo(tab)
    # filters: six 5x5 colour patches
    assert tab.filters_grid.tile_count() == 6
    # first layer selected, its caption shown; no photo yet
    assert tab.table.selected_layer() == "c1"
    assert "Convolution" in tab.caption_label.text()
    assert tab.maps_grid.tile_count() == 0 and "Choose a photo" in tab.maps_note.text()


def test_feature_maps_in_the_background(qtbot, tab, tmp_path):
    photo = make_image(tmp_path / "cat.jpg", (150, 110, 70), size=(80, 60))
    with qtbot.waitSignal(tab.maps_ready, timeout=20000) as blocker:
        tab.set_image(str(photo))
    assert blocker.args == ["c1"]
    assert tab.maps_grid.tile_count() == 6
    assert tab.photo_label.pixmap() is not None and not tab.photo_label.pixmap().isNull()
    # switching layers: C3 has 16 maps (already computed with the rest of LeNet: the grid follows at once
    # or after a background pass)
    with qtbot.waitSignal(tab.maps_ready, timeout=20000) as blocker:
        tab.select_layer("c3")
    assert blocker.args == ["c3"] and tab.maps_grid.tile_count() == 16
    assert "SparseConv2d" in tab.layer_heading.text() and "Table I" in tab.caption_label.text()
    # C5 is 120 maps of 1x1: capped at 64 with "show all"
    with qtbot.waitSignal(tab.maps_ready, timeout=20000):
        tab.select_layer("c5")
    assert tab.maps_grid.tile_count() == 64 and tab.show_all_button.isVisibleTo(tab)
    with qtbot.waitSignal(tab.maps_ready, timeout=20000):
        tab.show_all_button.click()
    assert tab.maps_grid.tile_count() == 120 and not tab.show_all_button.isVisibleTo(tab)
    # a flat layer has no maps to show
    tab.select_layer("f6")
    assert tab.maps_grid.tile_count() == 0 and "flat" in tab.maps_note.text()
    # clicking a volume in the diagram selects its layer
    tab.diagram.layer_clicked.emit("s4")
    assert tab.table.selected_layer() == "s4"
    qtbot.waitUntil(lambda: tab.maps_grid.tile_count() == 16, timeout=20000)
    tab.grab()  # paints the diagram with the feature maps on its planes


def test_new_image_recomputes_off_the_gui_thread(qtbot, tab, tmp_path):
    a = make_image(tmp_path / "a.jpg", (200, 10, 10))
    b = make_image(tmp_path / "b.png", (10, 10, 200), seed=1)
    with qtbot.waitSignal(tab.maps_ready, timeout=20000):
        tab.set_image(str(a))
    first = tab._maps["c1"].copy()
    tab.set_image(str(b))
    assert tab._maps_task is not None  # computed on a Task, not here
    qtbot.waitUntil(lambda: tab._maps_task is None and "c1" in tab._maps, timeout=20000)
    assert (tab._maps["c1"] != first).any()
    # an unreadable image: a message, nothing shown, no exception
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a picture")
    tab.set_image(str(bad))
    qtbot.waitUntil(lambda: "Could not compute" in tab.maps_note.text(), timeout=20000)
    assert tab.maps_grid.tile_count() == 0


def test_bad_model_file_keeps_the_previous_one(qtbot, tab, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"garbage, not a model")
    before = tab.model_path
    with qtbot.waitSignal(tab.current.failed, timeout=20000):
        tab.current.open(bad)
    assert tab.model_path == before == tab.current.path and tab.table.rowCount() == 7
    assert tab.model_error.isVisibleTo(tab)
    assert "broken.pt" in tab.model_error.text() and "Still showing" in tab.model_error.text()


def test_main_window_keeps_the_tab_in_sync(qtbot, make_window, tiny_model, tmp_path):
    from PySide6.QtGui import QKeySequence

    win = make_window()
    assert win.tabs.tabText(3) == "Network" and win.network_tab is not None
    assert any(a.shortcut() == QKeySequence("Alt+4") for a in win.actions())
    with qtbot.waitSignal(win.network_tab.model_shown, timeout=20000):
        win.set_model(str(tiny_model))
    assert win.network_tab.model_path == str(tiny_model)
    # one model in the whole window: both tabs show the same Predictor
    assert win.network_tab.predictor is win.prediction_tab.predictor is win.current.predictor is not None
    # a photo classified in the Prediction tab shows up here, as the model saw it (not decoded again)
    photo = make_image(tmp_path / "p.jpg", (90, 90, 90))
    with qtbot.waitSignal(win.network_tab.maps_ready, timeout=20000):
        win.prediction_tab.classify_paths([str(photo)])
    net = win.network_tab
    assert net.image_source == str(photo)
    assert (net._image_array == win.prediction_tab.cards[0].result.model_input).all()
    win.close()


def test_one_predictor_shared_with_the_prediction_tab(qtbot, tiny_model, current, tmp_path):
    from catdog_gui.gui.network.tab import NetworkTab
    from catdog_gui.gui.prediction.tab import PredictionTab

    net, pred = NetworkTab(current), PredictionTab(current)
    qtbot.addWidget(net)
    qtbot.addWidget(pred)
    with qtbot.waitSignal(net.model_shown, timeout=20000):
        current.open(tiny_model)
    assert net.current.predictor is pred.current.predictor is net.predictor is pred.predictor
    # a later model reaches both; the tabs load nothing themselves
    other = tmp_path / "copy.pt"
    other.write_bytes(tiny_model.read_bytes())
    first = current.predictor
    with qtbot.waitSignal(net.model_shown, timeout=20000):
        current.open(other)
    assert current.predictor is not first and net.predictor is pred.predictor is current.predictor
    assert "copy.pt" in pred.model_label.text() and "copy.pt" in net.model_label.text()
    net.shutdown()
    pred.shutdown()
