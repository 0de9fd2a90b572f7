"""The Dataset tab: background scan with counts and health report, empty and unusable folders,
drag and drop, the shared augmentation setting and its live preview, the grid of every photo,
"Exclude from training" (really left out of the Dataset the Training tab trains on), and "Get
sample photos" from the empty state against a local server, through to one epoch of training."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QPixmap

from catdog_gui.gui.dataset.tab import DatasetTab
from catdog_gui.gui.models.augment_model import AugmentModel
from catdog_gui.gui.models.dataset_model import DatasetModel


@pytest.fixture
def tab(qtbot):
    data, augment = DatasetModel(), AugmentModel()
    t = DatasetTab(data, augment)
    qtbot.addWidget(t)
    t.resize(1200, 700)
    yield t
    t.shutdown()
    data.shutdown()


def test_empty_state_teaches_the_layout(tab):
    assert tab.stack.currentIndex() == 0
    assert not tab.train_action.isEnabled()
    text = " ".join(w.text() for w in tab.stack.widget(0).findChildren(type(tab.empty.error_label)))
    assert "cat/" in text and "dog/" in text and "drop" in text


def test_scan_shows_counts_and_unreadable_files(qtbot, tab, tiny_dataset, gui):
    gui.add_bad_files(tiny_dataset / "cat")
    ds = gui.scan(qtbot, tab, tiny_dataset)
    assert ds is not None and ds.classes == ["cat", "dog"]
    r = ds.report
    assert r.n_train + r.n_val == 40
    assert tab.stack.currentIndex() == 2
    assert "40 photos in 2 classes" in tab.report.report_title.text()
    assert tab.report.count_bars._rows == [("cat", r.train_counts["cat"], r.val_counts["cat"]),
                                    ("dog", r.train_counts["dog"], r.val_counts["dog"])]
    assert tab.report.bad_label.isVisibleTo(tab) and "2 files could not be read" in tab.report.bad_label.text()
    files = sorted(tab.report.bad_list.topLevelItem(i).text(0) for i in range(tab.report.bad_list.topLevelItemCount()))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["broken.jpg", "notes.jpg"]
    assert all(tab.report.bad_list.topLevelItem(i).text(1) for i in range(2))  # a reason for each
    assert tab.train_action.isEnabled() and tab.train_action.text() == "Train on these 40 photos"
    # every photo is in the grid (the unreadable ones under Skipped); thumbnails arrive in the
    # background for the cells on screen, aspect ratio kept
    m = tab.grid.model
    assert m.rowCount() == 42 and tab.grid.count_label.text() == "42 photos"
    tab.grid.set_filter(None, "skipped")
    assert sorted(m.photo(r).path.name for r in range(m.rowCount())) == ["broken.jpg", "notes.jpg"]
    tab.grid.set_filter(None, None)
    tab.show()
    qtbot.waitExposed(tab)
    qtbot.waitUntil(lambda: isinstance(m.cache.get(str(m.photo(0).path)), QPixmap), timeout=10000)
    pm = m.cache.get(str(m.photo(0).path))
    assert abs(pm.width() / pm.height() - 40 / 36) < 0.05


def test_real_photos_with_broken_files(qtbot, tab, real_data, tmp_path, gui):
    for c in ("cat", "dog"):
        for p in sorted((real_data / c).iterdir())[:15]:
            (tmp_path / "d" / c).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, tmp_path / "d" / c / p.name)
    gui.add_bad_files(tmp_path / "d" / "dog")
    ds = gui.scan(qtbot, tab, tmp_path / "d")
    assert ds is not None and ds.report.n_train + ds.report.n_val == 30
    assert len(ds.report.bad_files) == 2 and "2 files could not be read" in tab.report.bad_label.text()


@pytest.mark.parametrize("kind", ["empty", "one_class"])
def test_unusable_folder_says_why(qtbot, tab, tmp_path, gui, kind):
    folder = tmp_path / "data"
    folder.mkdir()
    if kind == "one_class":
        for i in range(5):
            gui.small_image(folder / "cat" / f"{i}.png", (i * 40, 10, 10))
    assert gui.scan(qtbot, tab, folder) is None
    assert tab.stack.currentIndex() == 0  # the empty state, with the problem on top
    assert tab.empty.error_label.isVisibleTo(tab)
    msg = tab.empty.error_label.text()
    assert ("no images found" in msg) if kind == "empty" else ("only one class" in msg)
    assert not tab.train_action.isEnabled()


def test_drop_a_folder(qtbot, tab, tiny_dataset):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tiny_dataset))])
    ev = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(tab.scan_finished, timeout=20000) as blocker:
        tab.dropEvent(ev)
    assert blocker.args[0] is not None and tab.train_dir == str(tiny_dataset)


def test_rescan_discards_the_old_scan(qtbot, tab, tiny_dataset, tmp_path, gui):
    other = tmp_path / "other"
    for ci, c in enumerate(("a", "b", "c")):
        for i in range(6):
            gui.small_image(other / c / f"{i}.png", (i * 40, 60 * ci, 100))
    results = []
    tab.scan_finished.connect(results.append)
    tab.set_folders(str(tiny_dataset))
    first = tab.data.scan_task()
    with qtbot.waitSignal(tab.scan_finished, timeout=20000):
        tab.set_folders(str(other))
    first.wait()
    qtbot.waitUntil(lambda: not first.is_running())
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()  # any late signal of the first scan would arrive now (it must not)
    assert len(results) == 1 and results[0].classes == ["a", "b", "c"]
    assert tab.dataset.classes == ["a", "b", "c"]


def test_augmentation_checkbox_is_shared_between_tabs(window):
    d, t = window.dataset_tab.augment_panel.augment_check, window.training_tab.form.augment_check
    assert not d.isChecked() and not t.isChecked()
    d.click()
    assert t.isChecked() and window.augment.enabled
    t.click()
    assert not d.isChecked() and not window.augment.enabled


def test_preview_follows_settings_and_shuffle(qtbot, tab, tiny_dataset, gui):
    gui.scan(qtbot, tab, tiny_dataset)
    qtbot.waitUntil(lambda: len(tab.augment_panel.preview_images) == 9, timeout=20000)
    first = [im.bits().tobytes() for im in tab.augment_panel.preview_images[1:]]
    assert len(set(first)) > 1  # different random versions
    tab.augment.set_enabled(True)
    old = tab.augment_panel.preview_images
    tab.augment_panel.aug_controls["rotation"].setValue(90.0)
    qtbot.waitUntil(lambda: tab.augment_panel.preview_images is not old, timeout=20000)
    rotated = [im.bits().tobytes() for im in tab.augment_panel.preview_images[1:]]
    assert rotated != first
    old = tab.augment_panel.preview_images
    tab.augment_panel.shuffle_button.click()
    qtbot.waitUntil(lambda: tab.augment_panel.preview_images is not old, timeout=20000)
    assert [im.bits().tobytes() for im in tab.augment_panel.preview_images[1:]] != rotated
    # same settings and seed: same pictures (deterministic)
    tab.augment_panel.preview_seed -= 1
    old = tab.augment_panel.preview_images
    tab.augment_panel.schedule_preview()
    qtbot.waitUntil(lambda: tab.augment_panel.preview_images is not old, timeout=20000)
    assert [im.bits().tobytes() for im in tab.augment_panel.preview_images[1:]] == rotated
    # clicking a photo in the grid picks the photo to preview
    tab.show()
    qtbot.waitExposed(tab)
    m, view = tab.grid.model, tab.grid.view
    row = next(r for r in range(m.rowCount() - 1, -1, -1) if str(m.photo(r).path) != tab.augment_panel.preview_path)
    view.scrollTo(m.index(row))
    old = tab.augment_panel.preview_images
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(m.index(row)).center())
    assert tab.augment_panel.preview_path == str(m.photo(row).path)
    qtbot.waitUntil(lambda: tab.augment_panel.preview_images is not old, timeout=20000)
    assert view.currentIndex().row() == row


def test_train_button_switches_to_training(qtbot, window, tiny_dataset, gui):
    gui.scan(qtbot, window.dataset_tab, tiny_dataset)
    window.dataset_tab.train_action.click()
    assert window.tabs.currentWidget() is window.training_tab
    assert window.training_tab.train_button.isEnabled()
    assert f"dataset {tiny_dataset.name}" in window.windowTitle()


# ------------------------------------------------------------------------------------------------
# exclude from training


def test_excluded_photos_never_train(qtbot, window, tiny_dataset, gui, tmp_path):
    d, t = window.dataset_tab, window.training_tab
    ds = gui.scan(qtbot, d, tiny_dataset)
    victim = ds.train[0].path
    assert ds.classes[ds.train[0].label] == "cat"
    d.grid.set_filter("cat", None)
    m = d.grid.model
    row = m.row_of(victim)
    menu = d.grid.context_menu_for(m.index(row))
    (act,) = [a for a in menu.actions() if a.text() == "Exclude from training"]
    with qtbot.waitSignal(d.scan_finished, timeout=20000) as rescanned:
        act.trigger()
        assert d.stack.currentIndex() == 2  # the report stays on screen while the folder is scanned again
    new = rescanned.args[0]
    assert d.stack.currentIndex() == 2 and d.grid.class_combo.currentData() == "cat"  # the view is kept
    d.grid.set_filter(None, None)
    assert victim not in {s.path for s in new.train + new.val} and new.report.excluded == [victim]
    assert t.dataset is new  # what the Training tab trains on
    assert new.report.n_train + new.report.n_val == 39
    assert d.report.excluded_label.isVisibleTo(d) and "1 photo excluded" in d.report.excluded_label.text()
    # shown under Skipped, and it can be included again from there
    d.grid.set_filter(None, "skipped")
    assert [m.photo(r).path for r in range(m.rowCount())] == [victim] and m.photo(0).excluded
    # kept for this folder: a new window leaves it out too
    w2 = window.__class__(window.settings, models_folder=str(tmp_path / "models2"))
    qtbot.addWidget(w2)
    ds2 = gui.scan(qtbot, w2.dataset_tab, tiny_dataset)
    assert victim not in {s.path for s in ds2.train + ds2.val}
    w2.dataset_tab.shutdown()
    menu = d.grid.context_menu_for(m.index(0))
    (act,) = [a for a in menu.actions() if a.text() == "Include in training again"]
    with qtbot.waitSignal(d.scan_finished, timeout=20000) as back:
        act.trigger()
    assert victim in {s.path for s in back.args[0].train + back.args[0].val} and t.dataset is back.args[0]
    assert not d.report.excluded_label.isVisibleTo(d)


def test_excluding_too_much_can_be_undone_from_the_empty_state(qtbot, tab, tmp_path, gui):
    folder = tmp_path / "few"
    for c in ("cat", "dog"):
        for i in range(3):
            gui.small_image(folder / c / f"{i}.png", (i * 40, 90 if c == "cat" else 10, 100))
    ds = gui.scan(qtbot, tab, folder)
    dogs = [s.path for s in ds.train + ds.val if ds.classes[s.label] == "dog"]
    with qtbot.waitSignal(tab.scan_finished, timeout=20000) as b:
        tab.set_excluded(dogs, True)
    assert b.args[0] is None and tab.stack.currentIndex() == 0
    assert "only one class" in tab.empty.error_label.text() and "3 photos of it are excluded" in tab.empty.error_label.text()
    assert tab.empty.empty_include.isVisibleTo(tab)
    with qtbot.waitSignal(tab.scan_finished, timeout=20000) as b:
        tab.empty.empty_include.click()
    assert b.args[0] is not None and b.args[0].classes == ["cat", "dog"]


# ------------------------------------------------------------------------------------------------
# get sample photos


@pytest.fixture
def server(monkeypatch):
    from tests.archive_server import ArchiveServer

    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)
    with ArchiveServer(lifetime=120) as s:
        yield s


def test_empty_state_offers_sample_photos(tab):
    assert tab.empty.samples_button.isVisibleTo(tab) and tab.stack.currentIndex() == 0
    assert "68.6 MB" in tab.empty.samples_button.toolTip() and tab.empty.samples_button.accessibleName()


def test_sample_photos_from_the_empty_state_then_one_epoch(qtbot, window, server):
    from tests.archive_server import sample_zip

    from catdog_gui.core.data import sample_photos as samples

    url = server.add("/cats_and_dogs_filtered.zip", sample_zip(n_train=6, n_val=3))
    window.settings.set("samples/url_small", url)  # the mirror setting
    d, t = window.dataset_tab, window.training_tab
    window.show()
    qtbot.waitExposed(window)
    d.empty.samples_button.click()
    dlg = d.samples_dialog
    assert dlg.isVisible() and dlg.url_edit.text() == url and dlg.set_key() == "small"
    with qtbot.waitSignal(d.scan_finished, timeout=30000) as scanned:
        dlg.download_button.click()
    ds = scanned.args[0]
    assert ds is not None and ds.classes == ["cats", "dogs"]
    assert ds.report.val_source == "folder" and ds.report.val_root.name == "validation"  # opened as it is
    assert ds.report.root == samples.samples_dir() / "cats_and_dogs_filtered" / "train"
    assert ds.report.n_train == 12 and ds.report.n_val == 6
    assert not dlg.isVisible() and d.stack.currentIndex() == 2
    assert server.routes["/cats_and_dogs_filtered.zip"].requests == [""]
    # the second time: opened straight away, nothing downloaded
    d.set_folders(None)
    with qtbot.waitSignal(d.scan_finished, timeout=30000):
        d.empty.samples_button.click()
    assert len(server.routes["/cats_and_dogs_filtered.zip"].requests) == 1
    # and it trains
    d.train_action.click()
    assert window.tabs.currentWidget() is t and t.dataset is d.dataset
    t.select_model("lenet5")
    t.form.hyper["epochs"].setValue(1)
    t.form.hyper["batch_size"].setValue(8)
    t.form.hyper["patience"].setValue(0)
    with qtbot.waitSignal(t.run_finished, timeout=60000) as done:
        t.train_button.click()
    fin = done.args[0]
    assert fin.status == "completed", fin.reason
    assert fin.metrics is not None and fin.metrics.n == 6  # measured on validation/


def test_sample_download_cancel_then_continue(qtbot, tab, server, monkeypatch):
    import threading

    import numpy as np

    from tests.archive_server import sample_zip

    noise = np.random.default_rng(1).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    body = sample_zip(extra=[("cats_and_dogs_filtered/noise.bin", noise)])
    gate = threading.Event()
    url = server.add("/s.zip", body, gate=gate, gate_after=100_000)
    tab.empty.samples_button.click()
    dlg = tab.samples_dialog
    dlg.url_edit.setText(url)  # a mirror address typed in
    dlg.download_button.click()
    assert dlg.cancel_button.text() == "Cancel" and not dlg.download_button.isEnabled()
    qtbot.waitUntil(lambda: dlg.last_progress is not None and dlg.last_progress.done > 0, timeout=10000)
    assert dlg.last_progress.total == len(body) and "Downloading" in dlg.status.text() and " of " in dlg.status.text()
    with qtbot.waitSignal(dlg.task.finished, timeout=5000):  # the server is stalled: Cancel must not wait for it
        dlg.cancel_button.click()
        assert dlg.status.text() == "Stopping…"
    gate.set()
    assert dlg.status.text().startswith("Cancelled: the ") and "kept" in dlg.status.text()
    assert dlg.download_button.isEnabled() and dlg.cancel_button.text() == "Close"
    with qtbot.waitSignal(tab.scan_finished, timeout=30000) as scanned:
        dlg.download_button.click()
    assert scanned.args[0] is not None
    reqs = server.routes["/s.zip"].requests
    assert len(reqs) == 2 and reqs[1].startswith("bytes=") and int(reqs[1][6:-1]) >= 100_000


def test_sample_download_offline_says_what_to_do(qtbot, tab, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    from catdog_gui.core.data import sample_photos as samples

    real = samples.download
    monkeypatch.setattr(samples, "download", lambda *a, **k: real(*a, **{**k, "retry_delay": 0.01}))
    tab.empty.samples_button.click()
    dlg = tab.samples_dialog
    dlg.url_edit.setText(f"http://127.0.0.1:{port}/x.zip")
    dlg.download_button.click()
    qtbot.waitUntil(lambda: not dlg.is_running(), timeout=20000)
    msg = dlg.status.text()
    assert "Could not download the sample photos" in msg and "browser" in msg and "Download from" in msg
    assert dlg.download_button.text() == "Try again" and dlg.isVisible()
    assert tab.stack.currentIndex() == 0


def test_a_sample_set_got_before_opens_without_downloading(qtbot, tab, gui):
    from catdog_gui.core.data import sample_photos as samples

    folder = samples.samples_dir() / samples.SAMPLE_SETS["large"].folder
    for c in ("Cat", "Dog"):
        for i in range(4):
            gui.small_image(folder / c / f"{i}.jpg", (i * 50, 80 if c == "Cat" else 10, 90))
    tab.empty.samples_button.click()  # the small set is not there: the dialog
    dlg = tab.samples_dialog
    dlg.set_buttons["large"].setChecked(True)
    with qtbot.waitSignal(tab.scan_finished, timeout=20000) as scanned:
        dlg.download_button.click()
    assert dlg.task is None and not dlg.isVisible()  # nothing downloaded
    assert scanned.args[0].classes == ["Cat", "Dog"] and tab.train_dir == str(folder)


def test_counts_are_written_in_words_that_agree_with_them():
    from catdog_gui.core.text import plural

    assert [plural(1, "photo"), plural(1802, "photo"), plural(0, "epoch"), plural(3, "class", "classes")] == \
        ["1 photo", "1,802 photos", "0 epochs", "3 classes"]
