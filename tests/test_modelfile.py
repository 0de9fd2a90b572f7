"""Model files: round trip, atomic writes, and refusing what is not ours or not safe."""

from __future__ import annotations

import os

import pytest
import torch

from catdog_gui.core.errors import CatdogError, ModelFileError
from catdog_gui.core.storage.modelfile import (
    FORMAT,
    VERSION,
    atomic_write,
    load_model,
    read_model_file,
    save_model,
)
from catdog_gui.core.models import create_model


def _save(path, model=None, **kw):
    model = model or create_model("lenet5", 3)
    args = dict(model_name="lenet5", classes=["a", "b", "c"], image_size=32, mean=[0.5] * 3, std=[0.5] * 3,
                config={"epochs": 2}, metrics={"val_accuracy": 0.75})
    args.update(kw)
    return save_model(path, model, **args)


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    model = create_model("lenet5", 3)
    _save(tmp_path / "m.pt", model)
    loaded, info = load_model(tmp_path / "m.pt")
    assert info.classes == ["a", "b", "c"] and info.image_size == 32 and info.metrics["val_accuracy"] == 0.75
    assert info.meta["versions"]["torch"] == torch.__version__
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert not loaded.training


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    _Evil.marker = marker
    payload = {"format": FORMAT, "version": VERSION, "meta": {"x": evil}, "state_dict": {}}
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(ModelFileError, match="refused"):
        read_model_file(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize("make,msg", [
    (lambda p: p.write_text("just text"), "not a catdog-gui model"),
    (lambda p: p.write_bytes(b""), "not a catdog-gui model|damaged"),
    (lambda p: torch.save(create_model("lenet5", 2).state_dict(), p), "another program"),
    (lambda p: torch.save({"format": FORMAT, "version": VERSION + 1, "meta": {}, "state_dict": {}}, p), "newer"),
])
def test_foreign_files_are_clear_errors(tmp_path, make, msg):
    p = tmp_path / "x.pt"
    make(p)
    with pytest.raises(ModelFileError, match=msg):
        load_model(p)


def test_truncated_file(tmp_path):
    _save(tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="damaged|incomplete|not a catdog"):
        load_model(tmp_path / "cut.pt")


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    _save(tmp_path / "m.pt", create_model("lenet5", 2))  # 2-way weights, 3 classes in meta
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(tmp_path / "m.pt")


def test_unknown_architecture(tmp_path):
    _save(tmp_path / "m.pt", model_name="resnet9000")
    with pytest.raises(ModelFileError, match="unknown model"):
        load_model(tmp_path / "m.pt")


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "none.pt")


def test_atomic_write_keeps_previous_file_on_failure(tmp_path):
    target = tmp_path / "m.pt"
    _save(target)
    before = target.read_bytes()

    def explode(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_save_into_missing_folder_is_user_error(tmp_path):
    with pytest.raises(CatdogError, match="does not exist"):
        _save(tmp_path / "nope" / "m.pt")


def test_saved_file_gets_normal_permissions(tmp_path):
    _save(tmp_path / "m.pt")
    from catdog_gui.core.storage.modelfile import _UMASK

    assert (tmp_path / "m.pt").stat().st_mode & 0o777 == 0o666 & ~_UMASK


@pytest.mark.parametrize("version", [0, -3, "1", True])
def test_invalid_format_versions_are_damaged(tmp_path, version):
    torch.save({"format": FORMAT, "version": version, "meta": {}, "state_dict": {}}, tmp_path / "v.pt")
    with pytest.raises(ModelFileError, match="format version"):
        read_model_file(tmp_path / "v.pt")
