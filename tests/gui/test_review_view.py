"""The Review view: a review on a Task, one action (accept the suggestion) through the view, undo."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.helpers import make_dataset, make_image
from tests.test_review import colour_features


def test_accept_suggestion_then_undo(qtbot, tmp_path):
    from catdog_gui.gui.dataset.review_view import ReviewView

    root = make_dataset(tmp_path / "d", n_per_class=25)
    wrong = make_image(root / "dog" / "wrong.jpg", (170, 60, 60), seed=901)
    view = ReviewView(str(root), features=colour_features)
    qtbot.addWidget(view)
    view.start()
    with qtbot.waitSignal(view._task.finished, timeout=30000):
        pass
    first = view.tree.topLevelItem(0)
    assert first.text(1) == "dog/wrong.jpg" and first.text(2) == "dog" and first.text(3) == "cat"
    assert not first.icon(1).isNull()  # the thumbnail
    first.setSelected(True)
    with qtbot.waitSignal(view.dataset_changed, timeout=2000):
        qtbot.mouseClick(view.suggested_button, Qt.MouseButton.LeftButton)
    assert (root / "cat" / "wrong.jpg").exists() and not wrong.exists()
    assert all(view.tree.topLevelItem(i).text(1) != "dog/wrong.jpg" for i in range(view.tree.topLevelItemCount()))
    assert view.undo_button.isEnabled()
    qtbot.mouseClick(view.undo_button, Qt.MouseButton.LeftButton)
    assert wrong.exists() and not (root / "cat" / "wrong.jpg").exists()
    assert not view.undo_button.isEnabled()


def test_dataset_tab_opens_the_review_view(qtbot, tmp_path):
    from catdog_gui.gui.dataset.tab import DatasetTab
    from catdog_gui.gui.models.augment_model import AugmentModel
    from catdog_gui.gui.models.dataset_model import DatasetModel

    root = make_dataset(tmp_path / "d", n_per_class=5)
    data = DatasetModel()
    tab = DatasetTab(data, AugmentModel())
    qtbot.addWidget(tab)
    assert not tab.review_button.isEnabled()
    with qtbot.waitSignal(tab.scan_finished, timeout=20000):
        tab.set_folders(str(root))
    assert tab.review_button.isEnabled()
    qtbot.mouseClick(tab.review_button, Qt.MouseButton.LeftButton)
    assert tab.review_view.isVisible() and tab.review_view.root == str(root)
    # after a review, the tab scans again with its near-duplicate groups kept on one side
    from catdog_gui.core.inference.review import Review

    from catdog_gui.core.storage.dataset_memory import Memory, save_memory

    group = [str(root / "cat" / f"cat_{i:03d}.jpg") for i in range(4)]
    tab.review_view.review = Review(str(root), ["cat", "dog"], [], [], [group])
    save_memory(root, Memory(near_duplicates=[[f"cat/cat_{i:03d}.jpg" for i in range(4)]]))  # as the review does
    with qtbot.waitSignal(tab.scan_finished, timeout=20000) as blocker:
        tab.review_view.reviewed.emit()
    train = {str(s.path) for s in blocker.args[0].train}
    assert len({p in train for p in group}) == 1
    tab.shutdown()
    data.shutdown()


def test_a_runs_confident_mistakes_are_listed(qtbot, tmp_path):
    from catdog_gui.core.inference.evaluation import compute_metrics
    from catdog_gui.gui.dataset.review_view import ReviewView

    root = make_dataset(tmp_path / "d", n_per_class=3)
    paths = [root / "cat" / "cat_000.jpg", root / "cat" / "cat_001.jpg", root / "dog" / "dog_000.jpg"]
    m = compute_metrics([0, 0, 1], [1, 1, 1], ["cat", "dog"], confidence=[0.6, 0.9, 0.8], paths=paths)
    view = ReviewView(str(root))
    qtbot.addWidget(view)
    view.set_metrics(m)
    rows = [(view.tree.topLevelItem(i).text(1), view.tree.topLevelItem(i).text(3))
            for i in range(view.tree.topLevelItemCount())]
    assert rows == [("cat/cat_001.jpg", "dog"), ("cat/cat_000.jpg", "dog")]
    assert "cat taken for dog (2)" in view.summary.text()
    view.tree.topLevelItem(0).setSelected(True)
    view.relabel_selected(suggested=True)
    assert (root / "dog" / "cat_001.jpg").exists()


def test_a_photo_replaced_after_the_review_is_not_moved(qtbot, tmp_path):
    """The view's actions check each file against what the review saw (size, time and content): a photo
    replaced since (here with the same size and time, other bytes) is refused, named, and stays put."""
    import os

    from catdog_gui.gui.dataset.review_view import ReviewView

    root = make_dataset(tmp_path / "d", n_per_class=25)
    wrong = make_image(root / "dog" / "wrong.jpg", (170, 60, 60), seed=901)
    view = ReviewView(str(root), features=colour_features)
    qtbot.addWidget(view)
    view.start()
    with qtbot.waitSignal(view._task.finished, timeout=30000):
        pass
    first = view.tree.topLevelItem(0)
    assert first.text(1) == "dog/wrong.jpg"
    st = wrong.stat()
    data = bytearray(wrong.read_bytes())
    data[-3] ^= 0xFF  # another photo now, of the same size
    wrong.write_bytes(bytes(data))
    os.utime(wrong, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same modification time
    said = []
    view.status_message.connect(said.append)
    first.setSelected(True)
    qtbot.mouseClick(view.suggested_button, Qt.MouseButton.LeftButton)
    assert wrong.exists() and not (root / "cat" / "wrong.jpg").exists()
    assert said and "dog/wrong.jpg" in said[-1] and "changed since" in said[-1]


def test_keep_on_a_near_duplicate_group_keeps_it_out_of_the_next_review(qtbot, tmp_path):
    import shutil

    from catdog_gui.gui.dataset.review_view import ReviewView

    root = make_dataset(tmp_path / "d", n_per_class=25)
    shutil.copy(root / "cat" / "cat_003.jpg", root / "cat" / "cat_003 copy.jpg")
    view = ReviewView(str(root), features=colour_features)
    qtbot.addWidget(view)

    def review():
        view.start()
        with qtbot.waitSignal(view._task.finished, timeout=30000):
            pass
        items = [view.tree.topLevelItem(i) for i in range(view.tree.topLevelItemCount())]
        return [it for it in items if it.data(0, Qt.ItemDataRole.UserRole)[0] != "photo"
                and "cat_003" in " ".join(map(str, it.data(0, Qt.ItemDataRole.UserRole)[1]))]

    groups = review()
    assert len(groups) == 1
    groups[0].setSelected(True)
    qtbot.mouseClick(view.keep_button, Qt.MouseButton.LeftButton)
    assert review() == []  # the whole group is kept, not one photo of it


def test_a_separate_validation_folder_is_checked_for_near_copies_of_training_photos(qtbot, tmp_path):
    """The window's review with a separate validation folder lists a validation photo that is a near-copy
    (resized, re-encoded) of a training photo under its real class, and the scan that follows leaves it
    out of validation, saying why; the validation folder's other photos stay."""
    from PIL import Image

    from catdog_gui.gui.dataset.tab import DatasetTab
    from catdog_gui.gui.models.augment_model import AugmentModel
    from catdog_gui.gui.models.dataset_model import DatasetModel
    from tests.test_review import pattern_features

    root = make_dataset(tmp_path / "d", n_per_class=8)
    val = make_dataset(tmp_path / "val", n_per_class=3, seed=50)
    copy = val / "dog" / "copy.jpg"
    Image.open(root / "dog" / "dog_002.jpg").resize((80, 72)).save(copy, quality=80)
    data = DatasetModel()
    tab = DatasetTab(data, AugmentModel())
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.scan_finished, timeout=20000) as first:
        tab.set_folders(str(root), str(val))
    assert copy in {s.path for s in first.args[0].val}  # not identical: the scan alone cannot tell
    qtbot.mouseClick(tab.review_button, Qt.MouseButton.LeftButton)
    view = tab.review_view
    assert view.val_dir == str(val)
    view.features = pattern_features
    scans = []
    tab.scan_finished.connect(scans.append)
    with qtbot.waitSignal(view.reviewed, timeout=60000):
        view.start()
    qtbot.waitUntil(lambda: bool(scans), timeout=60000)  # the scan the review starts
    r = view.review
    assert r.leaks == [[str(root / "dog" / "dog_002.jpg"), str(copy)]]
    heads = [view.tree.topLevelItem(i) for i in range(view.tree.topLevelItemCount())]
    leak = next(h for h in heads if h.text(0) == "Also in validation folder")
    assert [leak.child(i).text(2) for i in range(leak.childCount())] == ["dog", "dog"]  # the real class
    assert "near-copies in the validation folder" in view.summary.text()
    ds = scans[-1]
    assert copy not in {s.path for s in ds.val} and len(ds.val) == 6
    assert ds.report.removed_from_val == 1 and any("near-copy" in line for line in ds.report.lines())
    tab.shutdown()
    data.shutdown()


def test_a_fresh_sample_folder_relabelled_and_undone_in_the_cli_and_the_window_is_byte_identical(
        qtbot, tmp_path, monkeypatch):
    """`catdog get-samples` (from a local server) unpacks train/ and validation/ folders; a validation photo
    relabelled through `catdog review --apply` and through the window's "Move to class" lands in the other
    class of the validation part, the scan counts it there, and undo (`--undo`, the Undo button) gives back
    the folder byte for byte."""
    import json

    from catdog_gui.cli import main
    from catdog_gui.core.data.scan import scan_dataset
    from catdog_gui.core.inference import review as rv
    from catdog_gui.core.inference.evaluation import compute_metrics
    from catdog_gui.core.inference.review_plan import make_plan
    from catdog_gui.gui.dataset.review_view import ReviewView
    from tests.archive_server import ArchiveServer, sample_zip
    from tests.test_review import pattern_features

    for k in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)
    root = tmp_path / "pets"
    with ArchiveServer(lifetime=60) as server:
        assert main(["get-samples", str(root), "--url", server.add("/s.zip", sample_zip(n_train=8, n_val=3))]) == 0

    def snapshot():
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and p.name != ".catdog-review.json"}

    before = snapshot()
    photo = root / "validation" / "dogs" / "dog.1.jpg"
    moved = root / "validation" / "cats" / "dog.1.jpg"
    assert photo.is_file()

    def where():
        ds = scan_dataset(root)
        return {ds.classes[s.label] for s in ds.val if s.path == moved}, any(s.path == moved for s in ds.train)

    # the CLI: review, plan a relabel of the validation photo, apply, undo
    monkeypatch.setattr(rv, "pretrained_features", lambda *a, **k: pattern_features)
    plan_file = tmp_path / "plan.json"
    assert main(["review", str(root), "--write-plan", str(plan_file)]) == 0
    review = rv.review_dataset(root, pattern_features)
    assert review.classes == ["cats", "dogs"]
    plan_file.write_text(json.dumps(make_plan(review, [("relabel", str(photo), "cats")])))
    assert main(["review", str(root), "--apply", str(plan_file)]) == 0
    assert moved.is_file() and not photo.exists() and where() == ({"cats"}, False)
    assert main(["review", str(root), "--undo"]) == 0
    assert snapshot() == before

    # the window: the photo listed as a run's mistake, moved with "Move to class", then Undo
    m = compute_metrics([1], [0], ["cats", "dogs"], confidence=[0.9], paths=[photo])
    view = ReviewView(str(root))
    qtbot.addWidget(view)
    view.set_metrics(m)
    view.tree.topLevelItem(0).setSelected(True)
    view.relabel_combo.setCurrentText("cats")
    with qtbot.waitSignal(view.dataset_changed, timeout=5000):
        qtbot.mouseClick(view.relabel_button, Qt.MouseButton.LeftButton)
    assert moved.is_file() and not photo.exists() and where() == ({"cats"}, False)
    qtbot.mouseClick(view.undo_button, Qt.MouseButton.LeftButton)
    assert snapshot() == before
