"""The Dataset tab: background scan with counts and health report, empty and unusable folders,
drag and drop, the shared augmentation setting and its live preview."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from catdog_gui.gui.dataset_tab import DatasetTab


@pytest.fixture
def tab(qtbot):
    t = DatasetTab()
    qtbot.addWidget(t)
    t.resize(1200, 700)
    yield t
    t.shutdown()


def test_empty_state_teaches_the_layout(tab):
    assert tab.stack.currentIndex() == 0
    assert not tab.train_action.isEnabled()
    text = " ".join(w.text() for w in tab.stack.widget(0).findChildren(type(tab.error_label)))
    assert "cat/" in text and "dog/" in text and "drop" in text


def test_scan_shows_counts_and_unreadable_files(qtbot, tab, tiny_dataset, gui):
    gui.add_bad_files(tiny_dataset / "cat")
    ds = gui.scan(qtbot, tab, tiny_dataset)
    assert ds is not None and ds.classes == ["cat", "dog"]
    r = ds.report
    assert r.n_train + r.n_val == 40
    assert tab.stack.currentIndex() == 2
    assert "40 photos in 2 classes" in tab.report_title.text()
    assert tab.count_bars._rows == [("cat", r.train_counts["cat"], r.val_counts["cat"]),
                                    ("dog", r.train_counts["dog"], r.val_counts["dog"])]
    assert tab.bad_label.isVisibleTo(tab) and "2 files could not be read" in tab.bad_label.text()
    files = sorted(tab.bad_list.topLevelItem(i).text(0) for i in range(tab.bad_list.topLevelItemCount()))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["broken.jpg", "notes.jpg"]
    assert all(tab.bad_list.topLevelItem(i).text(1) for i in range(2))  # a reason for each
    assert tab.train_action.isEnabled() and tab.train_action.text() == "Train on these 40 photos"
    # thumbnails arrive in the background, aspect ratio kept
    qtbot.waitUntil(lambda: tab._thumbs and all(t.pixmap() is not None and not t.pixmap().isNull()
                                                for t in tab._thumbs.values()), timeout=10000)
    pm = next(iter(tab._thumbs.values())).pixmap()
    assert abs(pm.width() / pm.height() - 40 / 36) < 0.05


def test_real_photos_with_broken_files(qtbot, tab, real_data, tmp_path, gui):
    for c in ("cat", "dog"):
        for p in sorted((real_data / c).iterdir())[:15]:
            (tmp_path / "d" / c).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, tmp_path / "d" / c / p.name)
    gui.add_bad_files(tmp_path / "d" / "dog")
    ds = gui.scan(qtbot, tab, tmp_path / "d")
    assert ds is not None and ds.report.n_train + ds.report.n_val == 30
    assert len(ds.report.bad_files) == 2 and "2 files could not be read" in tab.bad_label.text()


@pytest.mark.parametrize("kind", ["empty", "one_class"])
def test_unusable_folder_says_why(qtbot, tab, tmp_path, gui, kind):
    folder = tmp_path / "data"
    folder.mkdir()
    if kind == "one_class":
        for i in range(5):
            gui.small_image(folder / "cat" / f"{i}.png", (i * 40, 10, 10))
    assert gui.scan(qtbot, tab, folder) is None
    assert tab.stack.currentIndex() == 0  # the empty state, with the problem on top
    assert tab.error_label.isVisibleTo(tab)
    msg = tab.error_label.text()
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
    first = tab._scan_task
    with qtbot.waitSignal(tab.scan_finished, timeout=20000):
        tab.set_folders(str(other))
    first.wait()
    qtbot.waitUntil(lambda: not first.is_running())
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()  # any late signal of the first scan would arrive now (it must not)
    assert len(results) == 1 and results[0].classes == ["a", "b", "c"]
    assert tab.dataset.classes == ["a", "b", "c"]


def test_augmentation_checkbox_is_shared_between_tabs(window):
    d, t = window.dataset_tab.augment_check, window.training_tab.augment_check
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
    # clicking a thumbnail picks the photo to preview
    other = list(tab._thumbs.values())[-1]
    old = tab.augment_panel.preview_images
    qtbot.mouseClick(other, Qt.MouseButton.LeftButton)
    assert tab.augment_panel.preview_path == other.payload
    qtbot.waitUntil(lambda: tab.augment_panel.preview_images is not old, timeout=20000)


def test_train_button_switches_to_training(qtbot, window, tiny_dataset, gui):
    gui.scan(qtbot, window.dataset_tab, tiny_dataset)
    window.dataset_tab.train_action.click()
    assert window.tabs.currentWidget() is window.training_tab
    assert window.training_tab.train_button.isEnabled()
    assert "tiny" in window.windowTitle() or "data" in window.windowTitle()
