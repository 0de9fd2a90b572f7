"""Scanning folders: layouts, bad files, duplicates, splits, errors, the decode cache."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catdog_gui.core.errors import Cancelled
from catdog_gui.core.data.decode_cache import build_cache
from catdog_gui.core.data.layouts import class_from_name, Sample
from catdog_gui.core.data.scan import scan_dataset, scan_folder
from catdog_gui.core.data.split import stratified_split
from catdog_gui.core.errors import DatasetError
from helpers import make_dataset, make_image


def test_class_per_folder_layout(tmp_path):
    make_dataset(tmp_path, 10, classes=("cat", "dog", "bird"))
    ds = scan_dataset(tmp_path, val_fraction=0.2, seed=0)
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.report.layout == "folders"
    assert ds.report.train_counts == {"bird": 8, "cat": 8, "dog": 8}
    assert ds.report.val_counts == {"bird": 2, "cat": 2, "dog": 2}
    assert not set(s.path for s in ds.train) & set(s.path for s in ds.val)


def test_flat_kaggle_names_layout(tmp_path):
    make_dataset(tmp_path, 10, layout="names")
    (tmp_path / "README.txt").write_text("not an image")
    ds = scan_dataset(tmp_path)
    assert ds.report.layout == "names"
    assert ds.classes == ["cat", "dog"]
    assert ds.report.n_train + ds.report.n_val == 20
    assert ds.report.ignored == 1


@pytest.mark.parametrize("name,label", [("cat.123.jpg", "cat"), ("dog_45.png", "dog"),
                                        ("golden_retriever_12.jpg", "golden_retriever"), ("photo.jpg", None)])
def test_class_from_name(name, label):
    assert class_from_name(name) == label


def test_separate_validation_folder_and_nested_subfolders(tmp_path):
    make_dataset(tmp_path / "train", 6)
    make_image(tmp_path / "train" / "cat" / "deeper" / "nested.jpg", (170, 60, 60), seed=99)
    make_dataset(tmp_path / "val", 3, seed=1)
    ds = scan_dataset(tmp_path / "train", tmp_path / "val")
    assert ds.report.val_source == "folder"
    assert ds.report.train_counts == {"cat": 7, "dog": 6}
    assert ds.report.val_counts == {"cat": 3, "dog": 3}


def test_train_val_subfolders_are_recognised(tmp_path):
    make_dataset(tmp_path / "train", 6)
    make_dataset(tmp_path / "val", 2, seed=1)
    ds = scan_dataset(tmp_path)
    assert ds.report.val_source == "folder"
    assert ds.report.n_val == 4 and ds.report.n_train == 12


def test_bad_files_are_listed_and_skipped(tmp_path):
    make_dataset(tmp_path, 6)
    (tmp_path / "cat" / "empty.jpg").write_bytes(b"")
    (tmp_path / "cat" / "notes.jpg").write_text("<html>this is not a photo</html>")
    good = (tmp_path / "dog" / "dog_000.jpg").read_bytes()
    (tmp_path / "dog" / "truncated.jpg").write_bytes(good[:10])
    # a PNG with a .jpg name is a fine image: accepted
    Image.new("RGB", (20, 20), (1, 2, 3)).save(tmp_path / "dog" / "really_png.jpg", format="PNG")
    ds = scan_dataset(tmp_path)
    bad = {b.path.name: b.reason for b in ds.report.bad_files}
    assert set(bad) == {"empty.jpg", "notes.jpg", "truncated.jpg"}
    assert "empty" in bad["empty.jpg"]
    paths = {s.path.name for s in ds.train + ds.val}
    assert "really_png.jpg" in paths and not paths & set(bad)
    text = "\n".join(ds.report.lines())
    assert "Skipped 3 unreadable file(s)" in text


def test_truncated_jpeg_with_valid_header_is_caught_at_decode(tmp_path):
    make_image(tmp_path / "big.jpg", (100, 100, 100), size=(300, 300))
    data = (tmp_path / "big.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    from catdog_gui.core.data.layouts import Sample

    cache = build_cache([Sample(tmp_path / "big.jpg", 0), Sample(tmp_path / "cut.jpg", 1)], 32)
    assert len(cache) == 1 and cache.labels.tolist() == [0]
    assert cache.bad and cache.bad[0].path.name == "cut.jpg" and "truncated" in cache.bad[0].reason


def test_duplicates_never_split(tmp_path):
    make_dataset(tmp_path, 30)
    # 10 exact copies of cat images under other names
    for i in range(10):
        shutil.copy(tmp_path / "cat" / f"cat_{i:03d}.jpg", tmp_path / "cat" / f"copy_{i}.jpg")
    for seed in range(5):
        ds = scan_dataset(tmp_path, val_fraction=0.3, seed=seed)
        assert len(ds.report.duplicate_groups) == 10
        val = {s.path.name for s in ds.val}
        for i in range(10):
            assert (f"cat_{i:03d}.jpg" in val) == (f"copy_{i}.jpg" in val)


def test_duplicate_in_separate_val_folder_is_dropped(tmp_path):
    make_dataset(tmp_path / "train", 6)
    make_dataset(tmp_path / "val", 2, seed=1)
    shutil.copy(tmp_path / "train" / "cat" / "cat_000.jpg", tmp_path / "val" / "cat" / "same.jpg")
    ds = scan_dataset(tmp_path / "train", tmp_path / "val")
    assert ds.report.removed_from_val == 1
    assert "same.jpg" not in {s.path.name for s in ds.val}


def test_split_is_seeded_and_stratified(tmp_path):
    make_dataset(tmp_path, 25)
    a = scan_dataset(tmp_path, seed=1)
    b = scan_dataset(tmp_path, seed=1)
    c = scan_dataset(tmp_path, seed=2)
    assert [s.path for s in a.val] == [s.path for s in b.val]
    assert [s.path for s in a.val] != [s.path for s in c.val]
    assert a.report.val_counts == {"cat": 5, "dog": 5}


def _val_names(ds) -> set[str]:
    return {s.path.name for s in ds.val}


def test_default_split_is_20_percent_of_each_class_seeded(tmp_path):
    make_dataset(tmp_path, 30, classes=("cat",))
    make_dataset(tmp_path, 17, classes=("dog",), seed=1)
    make_dataset(tmp_path, 8, classes=("fox",), seed=2)
    ds = scan_dataset(tmp_path)  # the defaults: 20%, seed 0
    assert ds.report.val_counts == {"cat": 6, "dog": 3, "fox": 2}  # round(30 * .2), round(3.4), round(1.6)
    assert ds.report.train_counts == {"cat": 24, "dog": 14, "fox": 6}
    assert [s.path for s in ds.val] == [s.path for s in scan_dataset(tmp_path, val_fraction=0.2, seed=0).val]
    for c in ds.classes:  # every class is split: validation holds each class's own share
        assert {s.path.parent.name for s in ds.val if ds.classes[s.label] == c} == {c}
    other = scan_dataset(tmp_path, val_fraction=0.5, seed=3)
    assert other.report.val_counts == {"cat": 15, "dog": 8, "fox": 4}  # round() rounds half to even: 8.5 -> 8
    assert sorted(s.path for s in other.train + other.val) == sorted(s.path for s in ds.train + ds.val)
    assert not {s.path for s in other.train} & {s.path for s in other.val}


def test_split_is_stable_as_one_class_grows(tmp_path):
    """A camera burst adds photos to one class: every other class's validation set stays exactly
    as it was, and that class's validation photos stay in validation except those the added ones
    displace (at most as many as were added)."""
    make_dataset(tmp_path, 40, classes=("cat", "dog", "fox"))
    for seed in range(4):
        before = scan_dataset(tmp_path, seed=seed)
        by_class = lambda ds, c: {s.path.name for s in ds.val if ds.classes[s.label] == c}  # noqa: E731
        old = {c: by_class(before, c) for c in before.classes}
        added = 7
        for i in range(added):
            make_image(tmp_path / "cat" / f"burst-{seed}-{i}.jpg", (200, 120, 60), seed=100 + 10 * seed + i)
        after = scan_dataset(tmp_path, seed=seed)
        assert by_class(after, "dog") == old["dog"] and by_class(after, "fox") == old["fox"], seed
        assert len(old["cat"] - by_class(after, "cat")) <= added, seed
        assert after.report.val_counts["cat"] == round((40 + added * (seed + 1)) * 0.2), seed


def test_duplicate_groups_move_together_and_split_sizes_hold(tmp_path):
    """Copies move as one unit: validation still gets its 20% share of each class, and no copy of a
    validation photo is left in training (moving copies afterwards would shrink validation)."""
    make_dataset(tmp_path, 40)
    for i in range(12):  # 12 cat photos with one extra copy each, 4 dog photos with two extra copies
        shutil.copy(tmp_path / "cat" / f"cat_{i:03d}.jpg", tmp_path / "cat" / f"copy_{i}.jpg")
    for i in range(4):
        for k in range(2):
            shutil.copy(tmp_path / "dog" / f"dog_{i:03d}.jpg", tmp_path / "dog" / f"copy_{i}_{k}.jpg")
    groups_in_val = 0
    for seed in range(8):
        ds = scan_dataset(tmp_path, seed=seed)
        assert len(ds.report.duplicate_groups) == 16
        # 52 cats -> round(10.4) = 10 in validation, 48 dogs -> round(9.6) = 10
        assert ds.report.val_counts == {"cat": 10, "dog": 10}, seed
        val = _val_names(ds)
        for g in ds.report.duplicate_groups:
            sides = {p.name in val for p in g}
            assert len(sides) == 1, (seed, [p.name for p in g])
            groups_in_val += sides == {True}
    assert groups_in_val >= 8  # groups do reach validation (not all parked in training)


def test_same_photo_under_two_classes_stays_on_one_side(tmp_path):
    make_dataset(tmp_path, 25)
    for i in range(6):  # six photos filed as a cat and, again, as a dog
        shutil.copy(tmp_path / "cat" / f"cat_{i:03d}.jpg", tmp_path / "dog" / f"also_a_dog_{i}.jpg")
    for seed in range(10):
        ds = scan_dataset(tmp_path, seed=seed)
        assert len(ds.report.duplicate_groups) == 6
        assert sum("filed under different classes (cat, dog)" in w for w in ds.report.warnings) == 6
        val = _val_names(ds)
        train = {s.path.name for s in ds.train}
        for i in range(6):
            names = {f"cat_{i:03d}.jpg", f"also_a_dog_{i}.jpg"}
            assert names <= train | val
            assert names <= train or names <= val, (seed, i)  # never one copy on each side
        assert len(ds.train) + len(ds.val) == 56


def _unreadable_class(p):
    (p / "cat").mkdir()
    (p / "cat" / "x.jpg").write_text("nope")
    make_dataset(p, 3, classes=("dog",))


@pytest.mark.parametrize("setup,message", [
    (lambda p: None, "no images found"),
    (lambda p: make_dataset(p, 5, classes=("cat",)), "only one class"),
    (lambda p: _unreadable_class(p), "only one class"),
])
def test_unusable_folders_raise_clear_errors(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(DatasetError, match=message):
        scan_dataset(tmp_path)


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        scan_dataset(tmp_path / "gone")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        scan_dataset(tmp_path / "f.txt")


def test_imbalance_and_small_class_warnings(tmp_path):
    make_dataset(tmp_path, 5, classes=("cat",))
    make_dataset(tmp_path, 40, classes=("dog",), seed=1)
    ds = scan_dataset(tmp_path)
    text = " ".join(ds.report.warnings)
    assert "imbalanced" in text and "only 4 training images" in text


def test_symlink_loop_does_not_hang(tmp_path):
    make_dataset(tmp_path, 5)
    os.symlink(tmp_path / "cat", tmp_path / "cat" / "loop")
    ds = scan_dataset(tmp_path)
    assert ds.report.n_train + ds.report.n_val == 10


def test_scan_can_be_cancelled(tmp_path):
    make_dataset(tmp_path, 10)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        scan_dataset(tmp_path, cancel=cancel)


def test_scan_reports_progress(tmp_path):
    make_dataset(tmp_path, 10)
    seen = []
    scan_dataset(tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (20, 20)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_cache_is_uint8_channels_first_at_size(tmp_path):
    make_dataset(tmp_path, 4)
    classes, samples, _ = scan_folder(tmp_path)
    cache = build_cache(samples, 24)
    assert cache.array.shape == (8, 3, 24, 24) and cache.array.dtype == np.uint8
    assert cache.labels.tolist() == [s.label for s in samples]
    # reddish cats: red channel above blue on average
    cat = cache.array[cache.labels == classes.index("cat")]
    assert cat[:, 0].mean() > cat[:, 2].mean() + 40


def test_cache_spills_to_disk_beyond_budget(tmp_path, monkeypatch):
    import catdog_gui.core.data.decode_cache as data

    make_dataset(tmp_path, 4)
    _, samples, _ = scan_folder(tmp_path)
    in_ram = build_cache(samples, 16)
    monkeypatch.setattr(data, "CACHE_RAM_BUDGET", 100)
    (tmp_path / "dog" / "dog_003.jpg").write_bytes(b"broken")
    mapped = build_cache(samples, 16)
    assert isinstance(mapped.array, np.memmap)
    assert len(mapped) == 7 and len(mapped.bad) == 1
    keep = [i for i, s in enumerate(samples) if s.path.name != "dog_003.jpg"]
    assert np.array_equal(np.asarray(mapped.array), in_ram.array[keep])
    mapped.close()


def test_stratified_split_keeps_groups_together():
    from pathlib import Path

    samples = [Sample(Path(f"/x/{i}.jpg"), i % 2) for i in range(40)]
    groups = {Path("/x/0.jpg"): 0, Path("/x/2.jpg"): 0, Path("/x/4.jpg"): 0}
    for seed in range(10):
        train, val = stratified_split(samples, 0.25, seed, groups)
        sides = {s.path in {v.path for v in val} for s in samples if s.path in groups}
        assert len(sides) == 1
        assert len(train) + len(val) == 40


def test_disk_cache_reused_until_a_file_changes(tmp_path, monkeypatch):
    import catdog_gui.core.data.decode_cache as data

    make_dataset(tmp_path / "d", 4)
    _, samples, _ = scan_folder(tmp_path / "d")
    (tmp_path / "d" / "dog" / "dog_001.jpg").write_bytes(b"broken")
    first = build_cache(samples, 16, disk_cache=tmp_path / "cache")
    decoded = []
    real = data.load_square_array
    monkeypatch.setattr(data, "load_square_array", lambda *a: decoded.append(a) or real(*a))
    second = build_cache(samples, 16, disk_cache=tmp_path / "cache")
    assert decoded == []  # nothing decoded again
    assert np.array_equal(np.asarray(second.array), first.array) and second.paths == first.paths
    assert [b.path for b in second.bad] == [b.path for b in first.bad]
    make_image(samples[0].path, (0, 255, 0), seed=5)  # an edited photo invalidates the cache
    os.utime(samples[0].path, ns=(1, 1))
    third = build_cache(samples, 16, disk_cache=tmp_path / "cache")
    assert len(decoded) == len(samples) and not np.array_equal(np.asarray(third.array[0]), first.array[0])


def test_disk_cache_trimmed_to_limit(tmp_path, monkeypatch):
    import catdog_gui.core.data.decode_cache as data

    make_dataset(tmp_path / "d", 3)
    _, samples, _ = scan_folder(tmp_path / "d")
    monkeypatch.setattr(data, "DISK_CACHE_LIMIT", 8000)  # room for the newest entry only
    build_cache(samples, 16, disk_cache=tmp_path / "c")
    build_cache(samples, 20, disk_cache=tmp_path / "c")
    assert [p.stat().st_size for p in (tmp_path / "c").glob("*.u8")] == [6 * 3 * 20 * 20]


def test_a_rescan_reads_only_the_files_that_are_new_or_changed(tmp_path, monkeypatch):
    """After a camera burst the Dataset tab rescans: unchanged photos are not read again (their
    header check and hash are remembered by size, times and inode), changed ones are."""
    import catdog_gui.core.data.scan as data

    make_dataset(tmp_path, 12)
    shutil.copy(tmp_path / "dog" / "dog_000.jpg", tmp_path / "dog" / "copy.jpg")  # a duplicate: hashed
    scan_dataset(tmp_path)
    checked, hashed = [], []  # header checks; files opened for reading (headers, hashes)
    real_check, real_open = data.check_header, open
    monkeypatch.setattr(data, "check_header", lambda p: checked.append(p.name) or real_check(p))
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: (hashed.append(Path(p).name) if "rb" in a else None)
                        or real_open(p, *a, **k))
    for i in range(3):
        make_image(tmp_path / "cat" / f"burst_{i}.jpg", (200, 120, 60), seed=40 + i)
    ds = scan_dataset(tmp_path)
    assert sorted(checked) == ["burst_0.jpg", "burst_1.jpg", "burst_2.jpg"]
    assert len(ds.report.duplicate_groups) == 1
    assert set(hashed) <= {"burst_0.jpg", "burst_1.jpg", "burst_2.jpg"}  # no old photo opened, copies included
    checked.clear()
    (tmp_path / "cat" / "cat_003.jpg").write_bytes(b"not a jpeg any more")  # changed: read, and now bad
    ds = scan_dataset(tmp_path)
    assert checked == ["cat_003.jpg"]
    assert [b.path.name for b in ds.report.bad_files] == ["cat_003.jpg"]


def test_the_split_stays_when_the_dataset_folder_is_moved(tmp_path):
    """Each photo's side depends on the seed and its own folder/name, not where the dataset lives: the
    same folder moved (renamed, elsewhere) splits the same way."""
    make_dataset(tmp_path / "here" / "pets", 15)
    first = scan_dataset(tmp_path / "here" / "pets")
    shutil.move(str(tmp_path / "here" / "pets"), str(tmp_path / "photos-moved"))
    second = scan_dataset(tmp_path / "photos-moved")

    def names(samples):
        return sorted(f"{s.path.parent.name}/{s.path.name}" for s in samples)

    assert names(first.val) == names(second.val) and names(first.train) == names(second.train)
    assert len(first.val) >= 4
