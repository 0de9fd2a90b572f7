"""The lazy photo grid: a model over every photo (class, split, problem) with filters, thumbnails
decoded in the background only for the cells painted, a cache bounded in bytes, a request stack
that drops what a fling left behind; double-click and the context menu; the exclusion store and
scan_dataset's ``exclude``."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices, QPixmap

from catdog_gui.core.data.scan import scan_dataset
from catdog_gui.gui.dataset import thumbnails
from catdog_gui.core.storage.exclusions import Exclusions
from catdog_gui.gui.dataset.photo_grid import PhotoGrid, PhotoRole, photos_of
from catdog_gui.gui.dataset.thumbnails import BROKEN, ThumbCache, ThumbLoader


def _folder(tmp_path, gui, n=30, bad=True):
    root = tmp_path / "pets"
    for ci, c in enumerate(("cat", "dog")):
        for i in range(n):
            gui.small_image(root / c / f"{c}_{i:03d}.png", (40 * ci + 3 * i, 90, 200 - 4 * i), size=(48, 32))
    if bad:
        gui.add_bad_files(root / "dog")
    return root


@pytest.fixture
def grid(qtbot):
    g = PhotoGrid(workers=1)
    qtbot.addWidget(g)
    g.resize(600, 400)
    yield g
    g.shutdown()


def test_every_photo_with_class_split_and_problem(tmp_path, gui):
    ds = scan_dataset(_folder(tmp_path, gui, n=10), val_fraction=0.2)
    photos = photos_of(ds)
    assert len(photos) == 22
    by_split = {s: [p for p in photos if p.split == s] for s in ("train", "validation", "skipped")}
    assert len(by_split["train"]) == len(ds.train) == 16 and len(by_split["validation"]) == 4
    skipped = by_split["skipped"]
    assert sorted(p.path.name for p in skipped) == ["broken.jpg", "notes.jpg"]
    assert all(p.cls == "dog" and p.problem for p in skipped)  # the class comes from the folder
    assert {p.path for p in by_split["validation"]} == {s.path for s in ds.val}


def test_filters_counts_and_tooltips(qtbot, grid, tmp_path, gui):
    ds = scan_dataset(_folder(tmp_path, gui, n=10))
    grid.set_dataset(ds)
    m = grid.model
    assert m.rowCount() == 22 and grid.count_label.text() == "22 photos"
    assert [grid.class_combo.itemText(i) for i in range(grid.class_combo.count())] == ["All classes", "cat", "dog"]
    grid.set_filter("dog", None)
    assert m.rowCount() == 12 and grid.count_label.text() == "12 of 22 photos"
    assert {m.photo(r).cls for r in range(m.rowCount())} == {"dog"}
    grid.set_filter(None, "skipped")
    assert m.rowCount() == 2
    tip = m.data(m.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "dog, skipped (" in tip and "not" in tip  # class, split and the problem
    grid.set_filter("cat", "validation")
    assert m.rowCount() == len([s for s in ds.val if ds.classes[s.label] == "cat"])
    assert "cat, validation" in m.data(m.index(0), Qt.ItemDataRole.ToolTipRole)
    grid.set_filter(None, None)
    assert m.rowCount() == 22


def test_thumbnails_only_for_what_is_on_screen(qtbot, grid, tmp_path, gui):
    ds = scan_dataset(_folder(tmp_path, gui, n=150, bad=False))
    grid.show()
    qtbot.waitExposed(grid)
    grid.set_dataset(ds)
    m, view = grid.model, grid.view

    def visible_rows():
        rows = set()
        for r in range(m.rowCount()):
            if view.visualRect(m.index(r)).intersects(view.viewport().rect()):
                rows.add(r)
        return rows

    first = visible_rows()
    assert 4 <= len(first) < 60
    keys = lambda rows: {str(m.photo(r).path) for r in rows}  # noqa: E731
    qtbot.waitUntil(lambda: keys(first) <= set(m.cache._items), timeout=10000)
    assert m.loader.decoded <= len(first) + 8  # the screen's worth, not the 300 photos
    pm = m.cache.get(str(m.photo(0).path))
    assert isinstance(pm, QPixmap) and abs(pm.width() / pm.height() - 48 / 32) < 0.05  # aspect ratio kept
    # scroll to the end: the last screen is decoded, the middle never was
    view.scrollToBottom()
    last = visible_rows()
    assert not last & first
    qtbot.waitUntil(lambda: keys(last) <= set(m.cache._items), timeout=10000)
    assert m.loader.decoded <= len(first) + len(last) + 16 < 300


def test_unreadable_photo_is_marked_broken(qtbot, grid, tmp_path, gui):
    ds = scan_dataset(_folder(tmp_path, gui, n=3))
    grid.show()
    qtbot.waitExposed(grid)
    grid.set_dataset(ds)
    grid.set_filter(None, "skipped")
    qtbot.waitUntil(lambda: all(grid.model.cache.get(str(grid.model.photo(r).path)) is BROKEN for r in (0, 1)),
                    timeout=10000)


def test_cache_is_bounded_in_bytes():
    c = ThumbCache(limit=3 * (96 * 96 * 4 + 64))
    pms = [QPixmap(96, 96) for _ in range(10)]
    for i, pm in enumerate(pms):
        c.put(f"p{i}", pm)
        assert c.nbytes <= c.limit
    assert len(c) == 3 and list(c._items) == ["p7", "p8", "p9"]
    c.get("p7")  # recently used: kept
    c.put("p10", QPixmap(96, 96))
    assert list(c._items) == ["p9", "p7", "p10"]


def test_request_stack_keeps_the_newest():
    loader = ThumbLoader(32)
    loader._closed = True  # no worker: look at the stack only
    for i in range(thumbnails.MAX_PENDING + 50):
        loader.request(f"k{i}")
    loader.request("k60")  # already waiting: not twice
    assert loader.pending() == thumbnails.MAX_PENDING
    assert loader._stack[-1] == f"k{thumbnails.MAX_PENDING + 49}" and "k0" not in loader._pending
    loader.clear()
    assert loader.pending() == 0


def test_newest_request_is_decoded_first(monkeypatch):
    """A fling leaves old requests behind: the cells on screen now come first."""
    loader = ThumbLoader(32)
    loader._closed = True
    for i in range(5):
        loader.request(f"k{i}")
    monkeypatch.setattr(thumbnails, "decode_thumb", lambda key, px: None)
    got = []

    class State:
        def cancelled(self):
            return not loader._stack

        def emit(self, item):
            got.append(item[0])

    loader._work(State())
    assert got == ["k4", "k3", "k2", "k1", "k0"]


def test_double_click_opens_and_the_context_menu(qtbot, grid, tmp_path, gui, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url.toLocalFile())))
    ds = scan_dataset(_folder(tmp_path, gui, n=5))
    grid.show()
    qtbot.waitExposed(grid)
    grid.set_dataset(ds)
    m, view = grid.model, grid.view
    ix = m.index(0)
    ph = ix.data(PhotoRole)
    at = view.visualRect(ix).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=at)  # a double-click starts with a press
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert opened == [str(ph.path)]
    with qtbot.waitSignal(grid.photo_clicked) as clicked:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(m.index(1)).center())
    assert clicked.args == [str(m.photo(1).path)]
    menu = grid.context_menu_for(ix)
    acts = {a.text(): a for a in menu.actions() if a.text()}
    assert set(acts) == {"Open photo", "Open containing folder", "Exclude from training"}
    acts["Open containing folder"].trigger()
    assert opened[-1] == str(ph.path.parent)
    with qtbot.waitSignal(grid.exclude_requested) as req:
        acts["Exclude from training"].trigger()
    assert req.args == [[ph.path], True]
    # several selected: one action for all of them; an unreadable photo offers no exclusion
    view.selectionModel().clearSelection()
    for r in (0, 1, 2):
        view.selectionModel().select(m.index(r), view.selectionModel().SelectionFlag.Select)
    acts = {a.text(): a for a in grid.context_menu_for(m.index(2)).actions() if a.text()}
    assert "Exclude from training (3 photos)" in acts
    grid.set_filter(None, "skipped")
    acts = {a.text() for a in grid.context_menu_for(m.index(0)).actions() if a.text()}
    assert acts == {"Open photo", "Open containing folder"}


def test_exclusions_are_kept_per_folder(tmp_path):
    store = Exclusions(tmp_path / "data" / "exclusions.json")
    a, b = tmp_path / "a", tmp_path / "b"
    assert store.paths(a) == set()
    assert store.set_excluded(a, [a / "cat" / "1.jpg", tmp_path / "val" / "x.jpg"]) == 2
    assert store.set_excluded(a, [a / "cat" / "1.jpg"]) == 0  # already
    again = Exclusions(tmp_path / "data" / "exclusions.json")  # read back from the file
    assert again.paths(a) == {a / "cat" / "1.jpg", tmp_path / "val" / "x.jpg"} and again.paths(b) == set()
    assert '"cat/1.jpg"' in (tmp_path / "data" / "exclusions.json").read_text()  # relative inside the folder
    assert again.set_excluded(a, [a / "cat" / "1.jpg"], excluded=False) == 1
    assert again.paths(a) == {tmp_path / "val" / "x.jpg"}
    again.clear(a)
    assert again.paths(a) == set()
    (tmp_path / "data" / "exclusions.json").write_text("{not json")
    assert again.paths(a) == set()  # damaged: nothing excluded, no crash


def test_scan_leaves_out_excluded_photos(tmp_path, gui):
    root = _folder(tmp_path, gui, n=10, bad=False)
    out = {root / "cat" / "cat_000.png", root / "dog" / "dog_005.png"}
    ds = scan_dataset(root, exclude=out)
    used = {s.path for s in ds.train + ds.val}
    assert not used & out and len(used) == 18
    assert set(ds.report.excluded) == out
    assert ds.report.n_train + ds.report.n_val == 18
    assert "Left out 2 photo(s)" in "\n".join(ds.report.lines())
    ex = [p for p in photos_of(ds) if p.excluded]
    assert {p.path for p in ex} == out and {p.cls for p in ex} == {"cat", "dog"} and ex[0].split == "skipped"
    # a relative spelling of the same file is excluded too
    import os

    rel = os.path.relpath(root / "cat" / "cat_001.png")
    assert Path(rel).resolve() not in {s.path.resolve() for s in scan_dataset(root, exclude={rel}).train}
