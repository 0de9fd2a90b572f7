"""The whole first-use flow in the real window, as a person does it: drop a folder on the Dataset tab,
tick augmentation, click Train, watch the plots fill, drop an unseen photo on the Prediction tab and
read "NN% class" — the same answer `catdog predict` gives for that file. Waits on signals only."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from tests.gui.dnd import drop_files
from tests.helpers import make_dataset, make_image


def test_drop_folder_augment_train_then_classify_a_new_photo(qtbot, window, tmp_path, capsys):
    from catdog_gui.cli import main as cli_main

    data = make_dataset(tmp_path / "pets", n_per_class=24)
    unseen = make_image(tmp_path / "new" / "mystery.jpg", (60, 60, 170), seed=987654)  # bluish: a "dog"
    window.show()
    d, t = window.dataset_tab, window.training_tab

    # 1. drop the folder on the Dataset tab
    with qtbot.waitSignal(d.scan_finished, timeout=30000) as scanned:
        drop_files(d, data)
    assert scanned.args[0] is not None and scanned.args[0].classes == ["cat", "dog"]
    assert d.train_action.isEnabled()
    d.train_action.click()
    assert window.tabs.currentWidget() is t

    # 2. tick augmentation (shared with the Dataset tab), keep the run short
    qtbot.mouseClick(t.form.augment_check, Qt.MouseButton.LeftButton)
    assert t.form.augment_check.isChecked() and d.augment_panel.augment_check.isChecked() and window.augment.enabled
    t.form.hyper["epochs"].setValue(4)
    t.form.hyper["patience"].setValue(0)

    # 3. Train: the plots fill while it runs, the result names what it was measured on
    epochs_seen = []
    with qtbot.waitSignal(t.run_finished, timeout=120000) as done:
        t.train_button.click()
        t.run.epoch_added.connect(lambda ev: epochs_seen.append(ev.epoch))
    fin = done.args[0]
    assert fin.status == "completed", fin.reason
    assert epochs_seen == [1, 2, 3, 4]
    assert fin.metrics is not None and fin.metrics.n == len(scanned.args[0].val)
    assert t.run.config.augment.enabled  # the checkbox reached the run's config
    assert list(t.plots.curve_val_acc.getData()[0]) == [1, 2, 3, 4]
    assert len(t.plots.curve_batch.getData()[0]) >= 4
    assert f"{fin.metrics.n:,} photos" in t.results.result_label.text()

    # 4. the new model is the current model everywhere
    qtbot.waitUntil(lambda: window.current.path == fin.best_path and window.current.predictor is not None,
                    timeout=30000)
    p = window.prediction_tab
    assert p.predictor is window.current.predictor

    # 5. drop an unseen photo on the Prediction tab and read the answer
    window.tabs.setCurrentWidget(window.prediction_page)
    with qtbot.waitSignal(p.results_ready, timeout=30000):
        drop_files(p, unseen)
    (card,) = p.cards
    assert card.error is None
    shown = {b.accessibleName().split(": ")[0]: float(b.accessibleName().split(": ")[1].rstrip("%").lstrip("<>"))
             for b in card.bars}
    assert card.headline.text() == max(shown, key=shown.get)

    # 6. the same answer as `catdog predict` on the saved model file
    capsys.readouterr()
    assert cli_main(["predict", fin.best_path, str(unseen), "--json", "--device", "cpu"]) == 0
    cli = json.loads(capsys.readouterr().out)["predictions"][0]
    assert cli["label"] == card.headline.text()
    for cls, pct in shown.items():
        assert pct == pytest.approx(cli["probabilities"][cls] * 100, abs=0.051)  # shown with one decimal
