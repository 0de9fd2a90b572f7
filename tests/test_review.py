"""core.inference.review and review_plan: label errors, near-duplicates, the plan (relabel / remove / keep), undo, stale plans."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from catdog_gui.core.inference import review as rv
from catdog_gui.core.inference import review_plan as rp
from catdog_gui.core.data.scan import scan_dataset
from catdog_gui.core.errors import CatdogError
from tests.helpers import make_dataset, make_image


def colour_features(paths, progress=None, cancel=None):
    """Stand-in for the backbone: mean colour (what separates the synthetic classes)."""
    out = []
    for p in paths:
        a = np.asarray(Image.open(p).convert("RGB").resize((8, 8)), dtype=np.float32) / 255.0
        out.append(a.reshape(-1, 3).mean(0))
    if progress:
        progress(len(paths), len(paths))
    return np.array(out, dtype=np.float32)


def pattern_features(paths, progress=None, cancel=None):
    """Stand-in that tells photos apart: the grey image at 40x36 minus its mean (resizing keeps it)."""
    out = []
    for p in paths:
        a = np.asarray(Image.open(p).convert("L").resize((40, 36), Image.BILINEAR), dtype=np.float32)
        out.append((a - a.mean()).ravel())
    return np.array(out, dtype=np.float32)


def test_planted_label_errors_rank_first(tmp_path):
    root = make_dataset(tmp_path / "d", n_per_class=25)
    planted = {str(make_image(root / "dog" / f"wrong_{i}.jpg", (170, 60, 60), seed=900 + i)) for i in range(3)}
    review = rv.review_dataset(root, colour_features)
    top = [s.path for s in review.label_errors[:3]]
    assert set(top) == planted
    assert all(s.suggested == "cat" and s.current == "dog" for s in review.label_errors[:3])


def test_resized_copy_is_a_near_duplicate_group(tmp_path):
    root = make_dataset(tmp_path / "d", n_per_class=10)
    src = root / "cat" / "cat_003.jpg"
    img = Image.open(src)
    img.resize((int(img.width * 1.5), int(img.height * 1.5))).save(root / "cat" / "copy.jpg", quality=70)
    review = rv.review_dataset(root, pattern_features, threshold=0.9)
    assert review.duplicate_groups == [[str(src), str(root / "cat" / "copy.jpg")]]


def test_leak_between_training_and_test_folder(tmp_path):
    root = make_dataset(tmp_path / "d", n_per_class=10)
    test = make_dataset(tmp_path / "t", n_per_class=3, seed=7)
    Image.open(root / "dog" / "dog_002.jpg").resize((50, 45)).save(test / "dog" / "leak.jpg", quality=70)
    review = rv.review_dataset(root, pattern_features, threshold=0.9, test_dir=test)
    assert review.leaks == [[str(root / "dog" / "dog_002.jpg"), str(test / "dog" / "leak.jpg")]]


def test_near_duplicate_groups_stay_on_one_side_of_the_split(tmp_path):
    root = make_dataset(tmp_path / "d", n_per_class=30)
    groups = [[root / "cat" / f"cat_{i:03d}.jpg", root / "cat" / f"cat_{i + 1:03d}.jpg",
               root / "cat" / f"cat_{i + 2:03d}.jpg"] for i in range(0, 27, 3)]
    for seed in range(6):
        ds = scan_dataset(root, val_fraction=0.3, seed=seed, extra_groups=groups)
        train = {s.path for s in ds.train}
        for g in groups:
            sides = {p in train for p in g}
            assert len(sides) == 1, (seed, g)
        assert len(ds.report.near_duplicate_groups) == len(groups)
        assert any("near-duplicate" in line for line in ds.report.lines())
    # without the groups the split does separate some of them (the test can fail)
    split = [any((p in {s.path for s in scan_dataset(root, val_fraction=0.3, seed=s).train}) != (g[0] in
             {x.path for x in scan_dataset(root, val_fraction=0.3, seed=s).train}) for p in g)
             for s in range(2) for g in groups]
    assert any(split)


def _plan(root, *actions):
    review = rv.Review(str(root), ["cat", "dog"], [], [], [])
    return rp.make_plan(review, [(a, str(root / p), to) for a, p, to in actions])


def test_relabel_and_remove_are_undoable_and_never_overwrite(tmp_path):
    root = make_dataset(tmp_path / "d", n_per_class=4)
    # a photo of the same name already waits in the target folders
    make_image(root / "dog" / "cat_001.jpg", (60, 60, 170), seed=77)
    make_image(root / "_removed" / "dog" / "dog_000.jpg", (60, 60, 170), seed=78)
    before = {p: p.read_bytes() for p in root.rglob("*.jpg")}
    entries = rp.apply_plan(root, _plan(root, ("relabel", "cat/cat_001.jpg", "dog"),
                                        ("remove", "dog/dog_000.jpg", None)))
    assert [e["to"] for e in entries] == [os.path.join("dog", "cat_001_2.jpg"),
                                          os.path.join("_removed", "dog", "dog_000_2.jpg")]
    assert not (root / "cat" / "cat_001.jpg").exists() and not (root / "dog" / "dog_000.jpg").exists()
    assert (root / "dog" / "cat_001.jpg").read_bytes() == before[root / "dog" / "cat_001.jpg"]
    assert (root / "dog" / "cat_001_2.jpg").read_bytes() == before[root / "cat" / "cat_001.jpg"]
    ds = scan_dataset(root, val_fraction=0.25)
    assert "_removed" not in ds.classes and all("_removed" not in str(s.path) for s in ds.train + ds.val)
    assert rp.undo_last(root)
    after = {p: p.read_bytes() for p in root.rglob("*.jpg")}
    assert after == before
    assert rp.undo_last(root) == []


def test_undo_never_overwrites_a_new_file_in_the_old_place(tmp_path):
    root = make_dataset(tmp_path / "d", n_per_class=3)
    rp.apply_plan(root, _plan(root, ("remove", "cat/cat_000.jpg", None)))
    make_image(root / "cat" / "cat_000.jpg", (1, 2, 3), seed=5)  # someone added another photo there
    new = (root / "cat" / "cat_000.jpg").read_bytes()
    rp.undo_last(root)
    assert (root / "cat" / "cat_000.jpg").read_bytes() == new
    assert (root / "cat" / "cat_000_2.jpg").exists()


def test_keep_is_remembered(tmp_path):
    root = make_dataset(tmp_path / "d", n_per_class=25)
    wrong = make_image(root / "dog" / "wrong.jpg", (170, 60, 60), seed=901)
    assert rv.review_dataset(root, colour_features).label_errors[0].path == str(wrong)
    rp.apply_plan(root, _plan(root, ("keep", "dog/wrong.jpg", None)))
    assert str(wrong) not in [s.path for s in rv.review_dataset(root, colour_features).label_errors]
    assert json.loads((root / ".catdog-review.json").read_text())["keep"] == [os.path.join("dog", "wrong.jpg")]
    rp.undo_last(root)
    assert rv.review_dataset(root, colour_features).label_errors[0].path == str(wrong)


def test_stale_plan_is_refused_and_names_the_file(tmp_path):
    root = make_dataset(tmp_path / "d", n_per_class=3)
    plan = _plan(root, ("remove", "cat/cat_000.jpg", None), ("relabel", "cat/cat_001.jpg", "dog"))
    make_image(root / "cat" / "cat_001.jpg", (9, 9, 9), size=(50, 50), seed=3)  # changed since the review
    with pytest.raises(rp.StalePlanError, match="cat_001.jpg") as e:
        rp.apply_plan(root, plan)
    assert e.value.changed == [os.path.join("cat", "cat_001.jpg")]
    assert (root / "cat" / "cat_000.jpg").exists()  # nothing applied


def test_plan_cannot_leave_the_dataset(tmp_path):
    root = make_dataset(tmp_path / "d", n_per_class=3)
    outside = make_image(tmp_path / "elsewhere.jpg", (1, 1, 1))
    plan = _plan(root, ("remove", "cat/cat_000.jpg", None))
    plan["actions"].append(dict(plan["actions"][0], path="../elsewhere.jpg"))
    with pytest.raises(CatdogError, match="outside"):
        rp.apply_plan(root, plan)
    plan = _plan(root, ("relabel", "cat/cat_000.jpg", "../../x"))
    with pytest.raises(CatdogError, match="cannot be a class name"):
        rp.apply_plan(root, plan)
    assert outside.exists() and (root / "cat" / "cat_000.jpg").exists()


def test_cli_review_plan_apply_undo(tmp_path, monkeypatch, capsys):
    from catdog_gui import cli

    monkeypatch.setattr(rv, "pretrained_features", lambda *a, **k: colour_features)
    root = make_dataset(tmp_path / "d", n_per_class=25)
    wrong = make_image(root / "dog" / "wrong.jpg", (170, 60, 60), seed=901)
    plan = tmp_path / "plan.json"
    assert cli.main(["review", str(root), "--model", "x", "--json", "--top", "3", "--write-plan", str(plan)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label_errors"][0]["path"] == str(wrong) and len(out["label_errors"]) <= 3
    actions = json.loads(plan.read_text())["actions"]
    assert actions[0]["action"] == "relabel" and actions[0]["to"] == "cat"
    json.dump({"actions": actions[:1]}, plan.open("w"))
    assert cli.main(["review", str(root), "--apply", str(plan)]) == 0
    assert (root / "cat" / "wrong.jpg").exists() and not wrong.exists()
    assert cli.main(["review", str(root), "--apply", str(plan)]) == 2  # stale now: the file moved
    assert "dog/wrong.jpg" in capsys.readouterr().err
    assert cli.main(["review", str(root), "--undo"]) == 0
    assert wrong.exists()


def test_outlier_far_from_every_class_is_flagged():
    rng = np.random.default_rng(0)
    a, b = np.zeros(20), np.zeros(20)
    a[:5], b[5:10] = 1.0, 1.0
    feats = np.abs(np.concatenate([a + rng.normal(0, 0.1, (30, 20)), b + rng.normal(0, 0.1, (30, 20)),
                                   [np.r_[np.zeros(15), 3.0 * np.ones(5)]]]))
    labels = np.array([0] * 30 + [1] * 31)
    probs = np.full((61, 2), 0.5)
    flagged, score = rv.outliers(feats, labels, probs, 2)
    assert list(np.flatnonzero(flagged)) == [60] and score.argmax() == 60


def test_a_failure_halfway_is_logged_and_undoable(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "d", n_per_class=3)
    plan = _plan(root, ("remove", "cat/cat_000.jpg", None), ("remove", "cat/cat_001.jpg", None))
    real = os.rename
    calls = []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(rp.os, "rename", flaky)
    with pytest.raises(OSError):
        rp.apply_plan(root, plan)
    monkeypatch.setattr(rp.os, "rename", real)
    assert not (root / "cat" / "cat_000.jpg").exists()
    assert rp.undo_last(root) and (root / "cat" / "cat_000.jpg").exists()
    dup = _plan(root, ("remove", "cat/cat_000.jpg", None))
    dup["actions"] *= 2
    with pytest.raises(CatdogError, match="twice"):
        rp.apply_plan(root, dup)


def test_reviewing_a_folder_without_photos_says_so(tmp_path):
    from catdog_gui.core.errors import DatasetError

    (tmp_path / "cat").mkdir()
    with pytest.raises(DatasetError, match="needs at least two classes"):
        rv.review_dataset(tmp_path, colour_features)


def test_a_damaged_plan_file_is_refused_with_one_line_and_changes_nothing(tmp_path):
    """Plan files mutated by hypothesis: load_plan refuses each damaged one with a CatdogError (no
    KeyError or AttributeError), and applying one that loads never moves a file it does not describe."""
    pytest.importorskip("hypothesis")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from catdog_gui.core.errors import CatdogError
    from catdog_gui.core.inference.review_plan import apply_plan, load_plan

    root = make_dataset(tmp_path / "d", n_per_class=3)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    photo = root / "cat" / "cat_000.jpg"
    good = {"action": "relabel", "path": "cat/cat_000.jpg", "to": "dog", "size": photo.stat().st_size,
            "mtime_ns": photo.stat().st_mtime_ns}
    values = st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.lists(st.integers(), max_size=2)
    n = {"cases": 0}

    @settings(max_examples=200, deadline=None)
    @given(key=st.sampled_from(sorted(good) + ["<action>", "<actions>"]), value=values)
    def check(key, value):
        n["cases"] += 1
        if key == "<actions>":
            plan = {"actions": value}
        elif key == "<action>":
            plan = {"actions": [value]}
        else:
            plan = {"actions": [{**good, key: value}]}
        f = tmp_path / "plan.json"
        f.write_text(json.dumps(plan))
        try:
            loaded = load_plan(f)
        except CatdogError as e:
            assert "\n" not in str(e)
            return
        try:
            apply_plan(root, loaded)
        except CatdogError:
            pass
        after = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".catdog-review.json"
                       and "log" not in p.name)
        if after != before:  # only the described relabel may have happened: put it back
            assert loaded["actions"][0]["path"] == "cat/cat_000.jpg"
            rv_undo(root)

    def rv_undo(r):
        from catdog_gui.core.inference.review_plan import undo_last

        undo_last(r)
        assert sorted(str(p.relative_to(r)) for p in r.rglob("*") if p.is_file() and p.name != ".catdog-review.json"
                      and "log" not in p.name) == before

    check()
    assert n["cases"] >= 100


@pytest.mark.parametrize("layout", ["folders", "names", "train-val folders", "train-val names", "nested"])
def test_a_relabel_moves_the_photo_within_its_own_layout_and_undo_restores_every_byte(tmp_path, layout):
    """Every layout the scan accepts: the review's classes are the real classes, a relabel puts the photo
    where a photo of the other class belongs in the same part of the dataset (validation stays
    validation), the scan then counts it in its new class, and undo gives back the folder byte for byte."""
    from catdog_gui.core.data.layouts import labeled_photos, place_for
    from catdog_gui.core.data.scan import scan_dataset
    from catdog_gui.core.inference.review_plan import apply_plan, make_plan, undo_last

    root = tmp_path / "d"
    parts = {"train": 6, "validation": 3} if layout.startswith("train-val") else {"": 6}
    for part, n in parts.items():
        for cls, colour in (("cats", (200, 40, 40)), ("dogs", (40, 40, 200))):
            for i in range(n):
                seed = i + (100 if part == "validation" else 0) + (50 if cls == "dogs" else 0)  # all different
                if layout.endswith("names"):
                    make_image(root / part / f"{cls}.{part}{i}.jpg", colour, seed=seed)
                else:
                    sub = "sub/" if layout == "nested" else ""
                    make_image(root / part / cls / f"{sub}{part}{i}.jpg", colour, seed=seed)

    def snapshot():
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and p.name != ".catdog-review.json"}

    before = snapshot()
    assert sorted(labeled_photos(root)[1]) == ["cats", "dogs"]
    part = root / "validation" if layout.startswith("train-val") else root
    if layout.endswith("names"):
        photo = next(p for p in sorted(part.iterdir()) if p.name.startswith("cats."))
        want = part / ("dogs" + photo.name[len("cats"):])
    else:
        photo = next(p for p in sorted((part / "cats").rglob("*.jpg")))
        want = part / "dogs" / photo.relative_to(part / "cats")
    assert place_for(root, photo, "dogs") == want
    review = rv.review_dataset(root, pattern_features)  # tells photos apart: no near-duplicates here
    assert review.classes == ["cats", "dogs"]
    apply_plan(root, make_plan(review, [("relabel", str(photo), "dogs")]))
    assert want.is_file() and not photo.exists()
    ds = scan_dataset(root)
    assert ds.classes == ["cats", "dogs"]
    assert any(s.path == want for s in ds.train + ds.val)
    undo_last(root)
    assert snapshot() == before

    # a new photo ("Wrong?", the camera) goes into the training part, in the same layout, and the
    # scan counts it in its class
    from catdog_gui.core.data.layouts import place_new
    from catdog_gui.core.storage.files import add_to_dataset

    new, _msg = add_to_dataset(str(make_image(tmp_path / "added.jpg", (10, 200, 10), seed=999)), root, "dogs")
    train_part = root / "train" if layout.startswith("train-val") else root
    assert new == place_new(root, "dogs", "added.jpg")
    assert train_part in new.parents
    ds = scan_dataset(root)
    assert ds.classes == ["cats", "dogs"]
    added = [s for s in (ds.train if layout.startswith("train-val") else ds.train + ds.val) if s.path == new]
    assert len(added) == 1 and ds.classes[added[0].label] == "dogs"


def test_a_plan_refuses_a_photo_whose_bytes_changed_since_the_review(tmp_path):
    """Same size, same time, other bytes: the content hash the review recorded catches it."""
    root = make_dataset(tmp_path / "d", n_per_class=3)
    photo = root / "cat" / "cat_000.jpg"
    review = rv.Review(str(root), ["cat", "dog"], [], [], [])
    review.remember([photo])
    plan = rp.make_plan(review, [("relabel", str(photo), "dog")])
    st = photo.stat()
    data = bytearray(photo.read_bytes())
    data[-3] ^= 0xFF
    photo.write_bytes(bytes(data))
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(rp.StalePlanError, match="cat/cat_000.jpg"):
        rp.apply_plan(root, plan)
    assert photo.exists() and not (root / "dog" / "cat_000.jpg").exists()


def test_the_default_near_duplicate_threshold_groups_what_it_should():
    """The default (no threshold passed): measured resized or recompressed copies score 0.87-0.99 and
    distinct photos at most 0.86 (README), so 0.90 groups and 0.85 does not."""
    def pair(cos):
        a = np.array([1.0, 0.0])
        return np.stack([a, np.array([cos, np.sqrt(1 - cos * cos)])])

    assert rv.near_duplicate_groups(pair(0.90)) == [[0, 1]]
    assert rv.near_duplicate_groups(pair(0.85)) == []


def test_a_reviews_near_duplicates_stay_together_in_every_later_scan(tmp_path):
    """The review keeps its near-duplicate groups in the dataset folder; every scan after it (the window's,
    `catdog scan`/`train`, the API: all call scan_dataset) keeps each group on one side of the split, with
    any seed; a damaged memory file is said and ignored, and the photos stay as they are."""
    from catdog_gui.core.data.scan import scan_dataset
    from catdog_gui.core.storage.dataset_memory import FILE

    root = make_dataset(tmp_path / "d", n_per_class=20)
    group = [root / "cat" / f"cat_{i:03d}.jpg" for i in (1, 5, 9, 13)]
    for q, p in enumerate(group[1:]):  # re-encoded copies: other bytes (not exact duplicates), the same photo
        Image.open(group[0]).save(p, quality=60 + 10 * q)
    assert len({p.read_bytes() for p in group}) == len(group)
    # the stand-in features tell photos apart by colour only: make the group the only near-duplicates
    review = rv.review_dataset(root, pattern_features)
    assert any(set(map(str, group)) <= set(g) for g in review.duplicate_groups)
    sides = set()
    for seed in range(12):
        ds = scan_dataset(root, seed=seed)
        val = {s.path for s in ds.val}
        sides.add(tuple(p in val for p in group))
        assert len(set(p in val for p in group)) == 1  # all on one side
        assert ds.report.near_duplicate_groups
    assert len(sides) == 2  # the group went to validation for some seeds, to training for others
    (root / FILE).write_text('{"version": 1, "near_duplicates": "oops"}')
    ds = scan_dataset(root)
    assert any("is damaged" in w and FILE in w for w in ds.report.warnings)
    assert not ds.report.near_duplicate_groups and len(ds.train) + len(ds.val) == 40
