"""Files the disk or a person can damage, mutated by hypothesis, for every reader not covered elsewhere
(run files: test_run_files_fuzz.py; images and model files: test_properties.py; review plans:
test_review.py): the review memory kept in a dataset folder, the exclusions, the settings, backbone
weights files, feature and decoded-image cache entries, and sample-photo zips.

Each mutated input gives a clear one-line message, or is ignored (a cache miss), never a traceback;
no user photo is changed or lost, nothing outside the dataset is touched. ``pytest
--hypothesis-show-statistics tests/test_readers_fuzz.py`` prints the number of cases per reader.
"""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.helpers import make_dataset  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

CASE = itertools.count()  # a fresh folder per generated case

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def _mutate(d, path: tuple, value):
    """A copy of the JSON value ``d`` with ``value`` at ``path`` ("<delete>": the key removed)."""
    d = json.loads(json.dumps(d))
    node = d
    for key in path[:-1]:
        node = node[key]
    if value == "<delete>":
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    return d


def _bytes_mutation(data: bytes, draw_ops) -> bytes:
    """``data`` truncated, with bytes overwritten, or with bytes inserted (a damaged disk or download)."""
    out = bytearray(data)
    for op, pos, value in draw_ops:
        if not out:
            break
        i = pos % len(out)
        if op == "truncate":
            del out[i:]
        elif op == "flip":
            out[i] ^= value or 0xFF
        else:
            out[i:i] = bytes([value])
    return bytes(out)


byte_ops = st.lists(st.tuples(st.sampled_from(["truncate", "flip", "insert"]), st.integers(0, 10**9),
                              st.integers(0, 255)), min_size=1, max_size=4)


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".catdog-review.json"}


def _one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message


# ------------------------------------------------------------------------------------------------ review memory

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small dataset (folders layout) beside a file outside it that nothing may touch."""
    base = tmp_path_factory.mktemp("memory")
    root = make_dataset(base / "d", n_per_class=4)
    (base / "outside.jpg").write_bytes(b"not in the dataset")
    return root


GOOD_MEMORY = {
    "version": 1, "keep": ["cat/cat_000.jpg"],
    "near_duplicates": [["cat/cat_001.jpg", "dog/dog_001.jpg"], ["dog/dog_002.jpg", "dog/dog_003.jpg"]],
    "log": [{"time": 1.0, "entries": [{"action": "relabel", "path": "cat/cat_009.jpg", "to": "dog/cat_002.jpg"},
                                      {"action": "keep", "path": "cat/cat_003.jpg"}]}],
}
MEMORY_PATHS = [("version",), ("keep",), ("keep", 0), ("near_duplicates",), ("near_duplicates", 0),
                ("near_duplicates", 0, 1), ("log",), ("log", 0), ("log", 0, "entries"), ("log", 0, "entries", 0),
                ("log", 0, "entries", 0, "to"), ("log", 0, "entries", 0, "path"),
                ("log", 0, "entries", 0, "action"), ("log", 0, "entries", 1)]
ESCAPES = ["../outside.jpg", "/etc/hostname", "../d/../outside.jpg", "dog/dog_000.jpg", "cat", ""]
memory_inputs = (
    st.tuples(st.sampled_from(MEMORY_PATHS), json_values | st.just("<delete>")).map(
        lambda pv: json.dumps(_mutate(GOOD_MEMORY, *pv), allow_nan=True).encode())
    | st.tuples(st.sampled_from([("log", 0, "entries", 0, "to"), ("log", 0, "entries", 0, "path")]),
                st.sampled_from(ESCAPES)).map(  # a log that points outside the dataset
        lambda pv: json.dumps(_mutate(GOOD_MEMORY, *pv)).encode())
    | byte_ops.map(lambda ops: _bytes_mutation(json.dumps(GOOD_MEMORY).encode(), ops)))


@FUZZ
@given(data=memory_inputs)
def test_a_damaged_review_memory_is_said_and_ignored_and_moves_nothing_outside(dataset, data):
    """Every scan reads the memory and undo follows its log: a damaged file is named in one line and
    ignored; a well-formed one never makes the scan fail, and undo only moves photos within the
    dataset (every photo's bytes are still there, under some name)."""
    from catdog_gui.core.data.scan import scan_dataset
    from catdog_gui.core.errors import CatdogError
    from catdog_gui.core.inference.review_plan import undo_last
    from catdog_gui.core.storage.dataset_memory import FILE, load_memory

    outside = (dataset.parent / "outside.jpg").read_bytes()
    before = _snapshot(dataset)
    (dataset / FILE).write_bytes(data)
    memory = load_memory(dataset)
    ds = scan_dataset(dataset)
    assert len(ds.train) + len(ds.val) == 8
    if memory.problem:
        _one_line(memory.problem)
        assert FILE in memory.problem and memory.problem in ds.report.warnings
        assert (dataset / FILE).read_bytes() == data  # a read never rewrites it
    try:
        undo_last(dataset)
    except CatdogError as e:
        _one_line(str(e))
    after = _snapshot(dataset)
    assert sorted(after.values()) == sorted(before.values())  # moved at most, never lost or changed
    assert (dataset.parent / "outside.jpg").read_bytes() == outside
    for rel in set(after) - set(before):  # put moved photos back for the next case
        (dataset / rel).unlink()
    for rel, b in before.items():
        (dataset / rel).parent.mkdir(parents=True, exist_ok=True)
        (dataset / rel).write_bytes(b)
    for d in sorted((p for p in dataset.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()


# ------------------------------------------------------------------------------------------------ exclusions

GOOD_EXCLUSIONS = {"version": 1, "folders": {"/data/pets": ["cat/blurry.jpg", "/elsewhere/val/dog/x.jpg"],
                                             "/data/other": ["a.jpg"]}}
EXCLUSION_PATHS = [("version",), ("folders",), ("folders", "/data/pets"), ("folders", "/data/pets", 0),
                   ("folders", "/data/other")]
exclusion_inputs = (
    st.tuples(st.sampled_from(EXCLUSION_PATHS), json_values | st.just("<delete>")).map(
        lambda pv: json.dumps(_mutate(GOOD_EXCLUSIONS, *pv), allow_nan=True).encode())
    | byte_ops.map(lambda ops: _bytes_mutation(json.dumps(GOOD_EXCLUSIONS).encode(), ops)))


@FUZZ
@given(data=exclusion_inputs)
def test_damaged_exclusions_read_as_what_is_readable_and_are_kept_before_a_rewrite(tmp_path, data):
    from catdog_gui.core.storage.exclusions import Exclusions

    folder = tmp_path / f"case{next(CASE)}"
    folder.mkdir()
    path = folder / "exclusions.json"
    path.write_bytes(data)
    ex = Exclusions(path)
    got = ex.paths("/data/pets")
    assert all(isinstance(p, Path) and p.is_absolute() for p in got)
    damaged = ex._damaged()
    ex.set_excluded("/data/new", ["/data/new/cat/x.jpg"])
    assert Exclusions(path).paths("/data/new") == {Path("/data/new/cat/x.jpg")}
    assert not Exclusions(path)._damaged()
    kept = list(folder.glob("exclusions.damaged-*.json"))
    assert (len(kept) == 1 and kept[0].read_bytes() == data) if damaged else not kept


# ------------------------------------------------------------------------------------------------ settings

settings_lines = st.lists(
    st.sampled_from(["[General]", "[train]", "epochs=", "lr=", "batch_size=", "model=", "augment=",
                     "val_fraction=", "recent_models=", "geometry=", "@ByteArray(", "@Variant(", "\\x00", "=",
                     "[", "]", "\"", ",", "-1", "1e309", "nan", "true", "lenet5", "\n", "\\"])
    | st.text(max_size=10), min_size=1, max_size=25).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass"))


@FUZZ
@given(data=settings_lines | st.binary(max_size=200))
def test_a_damaged_settings_file_gives_defaults_in_range(tmp_path, data):
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.gui.settings import Settings

    path = tmp_path / f"s{next(CASE)}.ini"
    path.write_bytes(data)
    s = Settings(path)
    values = s.train_values()
    known = {st.name: st for st in TrainConfig.settings()}
    for k, v in values.items():  # each stored setting read back is one TrainConfig accepts
        assert k == "tensorboard" or known[k].check(v) is None
    s.augment_settings()
    for kind in ("models", "data"):
        assert all(isinstance(p, str) for p in s.recent(kind))
    assert isinstance(s.get_int("epochs", 5, 1, 500), int) and 1 <= s.get_int("epochs", 5, 1, 500) <= 500
    f = s.get_float("lr", 1e-3, 1e-6, 1.0)
    assert 1e-6 <= f <= 1.0
    assert isinstance(s.get_bool("augment", False), bool)


# ------------------------------------------------------------------------------------------------ weights files

@pytest.fixture(scope="module")
def good_weights(tmp_path_factory) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"conv.weight": torch.ones(2, 1, 3, 3), "conv.bias": torch.zeros(2)}, buf)
    return buf.getvalue()


def _saved(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


weights_objects = st.sampled_from([
    [1, 2], {"a": 1}, {}, {"state_dict": {"w": "x"}}, {"model": [1]}, "text", 3.5, None, {1: 2}])


@FUZZ
@given(kind=st.sampled_from(["bytes", "object", "random"]), ops=byte_ops, obj=weights_objects,
       raw=st.binary(max_size=300))
def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, good_weights, kind, ops, obj, raw):
    """``--weights`` files: truncated or flipped torch files, torch files of other things, random bytes."""
    import torch

    from catdog_gui.core.errors import CatdogError
    from catdog_gui.core.models.weights import load_state_dict_file

    data = {"bytes": lambda: _bytes_mutation(good_weights, ops), "object": lambda: _saved(obj),
            "random": lambda: raw}[kind]()
    path = tmp_path / f"w{next(CASE)}.pth"
    path.write_bytes(data)
    try:
        sd = load_state_dict_file(path, "EfficientNet-Lite0")
    except CatdogError as e:
        _one_line(str(e))
        assert path.name in str(e)
    else:
        assert sd and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items())
    assert path.read_bytes() == data


# ------------------------------------------------------------------------------------------------ feature cache

@FUZZ
@given(target=st.sampled_from(["json", "f32"]), ops=byte_ops,
       json_case=st.tuples(st.sampled_from([("dim",), ("ids",), ("ids", 0)]), json_values | st.just("<delete>")),
       as_json=st.booleans())
def test_a_damaged_feature_cache_entry_is_a_miss_never_an_error(tmp_path, target, ops, json_case, as_json):
    from catdog_gui.core.inference.features import FeatureStore

    store = FeatureStore("k", folder=tmp_path / f"f{next(CASE)}")
    ids = [["/d/a.jpg", 10, 1], ["/d/b.jpg", 11, 2], ["/d/c.jpg", 12, 3]]
    feats = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert store.save(ids, feats)
    meta = next(store.dir.glob("*.json"))
    if target == "json":
        if as_json:
            meta.write_text(json.dumps(_mutate(json.loads(meta.read_text()), *json_case), allow_nan=True))
        else:
            meta.write_bytes(_bytes_mutation(meta.read_bytes(), ops))
    else:
        data = meta.with_suffix(".f32")
        data.write_bytes(_bytes_mutation(data.read_bytes(), ops))
    got, found = store.lookup(ids)
    assert found.shape == (3,) and found.dtype == bool
    if found.any():
        assert got is not None and got.shape[0] == 3
    store.save(ids, feats)  # a good entry again: found whole
    got, found = store.lookup(ids)
    assert found.all() and np.array_equal(got, feats)


# ------------------------------------------------------------------------------------------------ decoded images

@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    """A dataset and its decoded-image cache on disk (the files of one entry)."""
    from catdog_gui.core.data.decode_cache import build_cache
    from catdog_gui.core.data.scan import scan_dataset

    base = tmp_path_factory.mktemp("decoded")
    ds = scan_dataset(make_dataset(base / "d", n_per_class=3))
    cache_dir = base / "cache"
    build_cache(ds.train, 32, disk_cache=cache_dir).close()
    meta = next(cache_dir.glob("*.json"))
    return ds.train, cache_dir, meta.read_bytes(), meta.with_suffix(".u8").read_bytes()


@FUZZ
@given(target=st.sampled_from(["json", "u8"]), ops=byte_ops,
       json_case=st.tuples(st.sampled_from([("keep",), ("keep", 0), ("bad",)]),
                           json_values | st.integers(-5, 50) | st.just("<delete>")),
       as_json=st.booleans())
def test_a_damaged_decoded_image_cache_entry_is_decoded_again(decoded, target, ops, json_case, as_json):
    from catdog_gui.core.data.decode_cache import build_cache

    samples, cache_dir, meta_bytes, data_bytes = decoded
    meta = next(cache_dir.glob("*.json"))
    data = meta.with_suffix(".u8")
    if target == "json":
        meta.write_bytes(json.dumps(_mutate(json.loads(meta_bytes), *json_case), allow_nan=True).encode()
                         if as_json else _bytes_mutation(meta_bytes, ops))
        data.write_bytes(data_bytes)
    else:
        meta.write_bytes(meta_bytes)
        data.write_bytes(_bytes_mutation(data_bytes, ops))
    cache = build_cache(samples, 32, disk_cache=cache_dir)
    try:
        assert len(cache) == len(samples) and list(cache.paths) == [s.path for s in samples]
        assert list(cache.labels) == [s.label for s in samples]
    finally:
        cache.close()
    meta.write_bytes(meta_bytes)
    data.write_bytes(data_bytes)


# ------------------------------------------------------------------------------------------------ sample zips

def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pets/train/cats/cat.1.jpg", b"\xff\xd8" + bytes(range(200)) * 3)
        zf.writestr("pets/train/dogs/dog.1.jpg", b"\xff\xd8" + bytes(range(100)) * 5)
        zf.writestr("pets/validation/cats/cat.2.jpg", b"\xff\xd8" + b"x" * 300)
    return buf.getvalue()


ZIP = _zip_bytes()


@FUZZ
@given(ops=byte_ops)
@example(ops=[("flip", 19898, 0)])  # an entry's "version needed" byte: zipfile raised NotImplementedError
def test_a_damaged_sample_zip_unpacks_whole_or_not_at_all(tmp_path, ops):
    from catdog_gui.core.errors import DownloadError
    from catdog_gui.core.storage.unzip import extract_zip

    case = tmp_path / f"z{next(CASE)}"
    case.mkdir()
    archive = case / "samples.zip"
    archive.write_bytes(_bytes_mutation(ZIP, ops))
    dest = case / "out" / "pets"
    try:
        extract_zip(archive, dest)
    except DownloadError as e:
        _one_line(str(e))
        assert not dest.exists()
        assert not [p for p in (case / "out").iterdir()]  # no half-unpacked folder left
    else:
        assert dest.is_dir()
    assert {p.name for p in case.iterdir()} == {"samples.zip", "out"}  # nothing written beside it
