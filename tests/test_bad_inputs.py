"""Bad inputs, hostile files and faults (issue 10): each gives a clear message or a listed skip,
and the scan, the trainer, the predictor and the CLI keep working.

Every bad file is built here in tmp_path. Items already covered elsewhere are not repeated:
test_imageio (every pixel mode, EXIF transpose, GIF first frame, 1x1/extreme aspect decode, bomb limit,
garbage bytes), test_data (zero-byte/HTML/truncated/PNG-as-.jpg in a scan, nested subfolders, a
class-folder symlink loop, empty folder, one class, a class with no readable image), test_modelfile
(text, empty, state_dict, future version, truncated, hostile pickle in the metadata, atomic write),
test_training (NaN loss, exception in a callback, resume with other classes), tests/gui
(corrupt and out-of-range settings, window closed mid-run).
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from catdog_gui.cli import main as cli
from catdog_gui.core.data.layouts import Sample
from catdog_gui.core.data.decode_cache import build_cache
from catdog_gui.core.data.scan import scan_dataset
from catdog_gui.core.errors import DatasetError, ImageError, ModelFileError
from catdog_gui.core.events import DatasetScanned, Finished
from catdog_gui.core.data.imageio import check_header, load_rgb
from catdog_gui.core.inference.predictor import Predictor
from catdog_gui.core.storage.modelfile import FORMAT, VERSION, load_model, read_model_file, save_model
from catdog_gui.core.models import create_model
from catdog_gui.core.config import TrainConfig
from catdog_gui.core.training.trainer import Trainer

from helpers import make_dataset, make_image

# ------------------------------------------------------------------------------------------------
# building bad files


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` pixels (10 gigapixels), a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _save(path: Path, im: Image.Image, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


def _photo(size=(40, 36), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


#: files that must be skipped with a reason -> a word the reason contains
BAD = {
    "zero.jpg": "empty",
    "truncated.jpg": "truncated",
    "corrupt.png": "not a readable image",
    "text.jpg": "not a readable image",
    "page.jpg": "not a readable image",
    "bomb.png": "decompression bomb",
}
#: bad files whose header is intact: the scan's cheap check passes them, decoding skips them
DECODE_TIME = {"truncated.jpg", "corrupt.png"}
#: odd but valid images that must be accepted and decoded
ODD = ["png_named.jpg", "cmyk.jpg", "deep16.png", "palette_alpha.png", "gray.jpg", "one.png", "strip.png",
       "anim.gif", "exif_rotated.jpg"]


def make_zoo(folder: Path) -> Path:
    """Every bad and odd image kind from the issue, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.jpg").write_bytes(b"")
    good = io.BytesIO()
    _photo((300, 300)).save(good, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 3])  # header intact
    png = io.BytesIO()
    _photo((30, 30), 1).save(png, "PNG")
    data = bytearray(png.getvalue())
    data[60:] = bytes(len(data) - 60)  # valid signature and IHDR, pixel data destroyed
    (folder / "corrupt.png").write_bytes(bytes(data))
    (folder / "text.jpg").write_text("just some notes, not a photo\n")
    (folder / "page.jpg").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    (folder / "bomb.png").write_bytes(bomb_png())
    _save(folder / "png_named.jpg", _photo(seed=2), format="PNG")
    _save(folder / "cmyk.jpg", _photo(seed=3).convert("CMYK"), format="JPEG")
    _save(folder / "deep16.png", Image.fromarray(np.linspace(0, 65535, 40 * 30, dtype=np.uint16).reshape(30, 40)))
    pal = _photo(seed=4).convert("P")
    _save(folder / "palette_alpha.png", pal, transparency=0)
    _save(folder / "gray.jpg", _photo(seed=5).convert("L"))
    _save(folder / "one.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    _save(folder / "strip.png", Image.new("RGB", (3000, 2), (10, 10, 200)))
    frames = [Image.new("RGB", (20, 20), c) for c in ((250, 0, 0), (0, 0, 250), (0, 250, 0))]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=40, loop=0)
    im = _photo((48, 32), 6)
    exif = im.getexif()
    exif[0x0112] = 8
    _save(folder / "exif_rotated.jpg", im, exif=exif.tobytes())
    return folder


# ------------------------------------------------------------------------------------------------
# images


def test_image_zoo_is_scanned_decoded_and_predicted(tmp_path, tiny_model):
    root = make_dataset(tmp_path / "data", 8)
    make_zoo(root / "cat")
    ds = scan_dataset(root)
    bad = {b.path.name: b.reason for b in ds.report.bad_files}
    for name, word in BAD.items():
        if name in DECODE_TIME:
            continue  # their headers are fine: caught when decoding (below)
        assert word in bad.get(name, ""), (name, bad.get(name))
    usable = {s.path.name for s in ds.train + ds.val}
    assert set(ODD) <= usable, set(ODD) - usable
    text = "\n".join(ds.report.lines())
    assert "too large" in text and "empty" in text

    cache = build_cache(ds.train + ds.val, 32)
    decoded = {p.name for p in cache.paths}
    assert set(ODD) <= decoded
    decode_bad = {b.path.name: b.reason for b in cache.bad}
    assert set(decode_bad) == DECODE_TIME
    for name in DECODE_TIME:
        assert BAD[name] in decode_bad[name]
    assert cache.array.shape[1:] == (3, 32, 32)

    preds = Predictor(tiny_model, "cpu").predict_many([root / "cat" / n for n in [*BAD, *ODD]])
    by_name = {Path(p.source).name: p for p in preds}
    for name, word in BAD.items():
        assert not by_name[name].ok and word in by_name[name].error
    for name in ODD:
        assert by_name[name].ok and abs(sum(v for _, v in by_name[name].probabilities) - 1) < 1e-4


def test_crafted_bomb_header_is_refused_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(bomb_png())
    for fn in (check_header, load_rgb):
        with pytest.raises(ImageError, match="decompression bomb"):
            fn(p)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_rgb(bomb_png(20_000, 20_000))  # bytes too, and under PIL's own 2x hard limit


def test_exif_rotated_photo_is_classified_upright(tmp_path, tiny_model):
    arr = np.zeros((64, 48, 3), np.uint8)  # upright portrait: red top, blue bottom
    arr[:32] = (220, 20, 20)
    arr[32:] = (20, 20, 220)
    upright = _save(tmp_path / "upright.png", Image.fromarray(arr))
    stored = Image.fromarray(arr).transpose(Image.Transpose.ROTATE_90)  # as the camera wrote it
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    rotated = _save(tmp_path / "rotated.png", stored, exif=exif.tobytes())
    p = Predictor(tiny_model, "cpu")
    seen_upright, seen_rotated = p.preprocess(upright), p.preprocess(rotated)
    assert np.abs(seen_upright.astype(int) - seen_rotated.astype(int)).max() <= 2
    assert seen_rotated[0, :4].mean() > 150 and seen_rotated[2, -4:].mean() > 150  # red on top, blue below
    a, b = p.predict(upright), p.predict(rotated)
    assert a.label == b.label and abs(a.confidence - b.confidence) < 1e-3


def test_float_image_with_nan_and_infinity_decodes_cleanly():
    """Found by the property tests: a 32-bit float TIFF holding NaN/inf gave a RuntimeWarning and noise."""
    arr = np.array([[np.nan, 0.0, 1.0], [np.inf, -np.inf, 0.5]], np.float32)
    buf = io.BytesIO()
    Image.fromarray(arr, "F").save(buf, "TIFF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = np.asarray(load_rgb(buf.getvalue()))[..., 0]
    assert out[0].tolist() == [0, 0, 255] and out[1, :2].tolist() == [0, 0] and abs(int(out[1, 2]) - 128) <= 1


def test_permission_denied_is_a_listed_skip_even_as_root(tmp_path, monkeypatch):
    """A photo the OS refuses to open (simulated: chmod blocks nothing for root, nor on Windows)."""
    root = make_dataset(tmp_path, 5)
    locked = make_image(root / "dog" / "locked.jpg", (1, 2, 3))
    import builtins

    real_open = builtins.open

    def guarded(fp, *a, **k):  # the OS refuses: both the JPEG header probe and PIL see it
        if isinstance(fp, (str, os.PathLike)) and Path(fp) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(fp))
        return real_open(fp, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)
    ds = scan_dataset(root)
    assert {b.path.name: b.reason for b in ds.report.bad_files} == {"locked.jpg": "locked.jpg: permission denied"}


def test_file_deleted_between_scan_and_training_is_reported_and_training_finishes(tmp_path):
    root = make_dataset(tmp_path / "data", 12)
    ds = scan_dataset(root)
    gone = ds.train[0].path
    gone.unlink()
    events = []
    result = Trainer(TrainConfig(epochs=1, patience=0), [events.append]).fit(ds, out_path=tmp_path / "m.pt")
    assert result.status == "completed", result.reason
    reports = [e.report for e in events if isinstance(e, DatasetScanned)]
    assert any(b.path == gone and "not found" in b.reason for b in reports[-1].bad_files)
    assert "1 missing" in "\n".join(reports[-1].lines())
    assert (tmp_path / "m.pt").exists()


def _strict_stdout(monkeypatch):
    """A console that cannot print every character (as on a non-UTF-8 or strict terminal)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    return lambda: (out.buffer.getvalue().decode("utf-8", "replace"), err.buffer.getvalue().decode("utf-8", "replace"))


@pytest.mark.skipif(os.name != "posix", reason="non-UTF-8 names exist on POSIX file systems")
def test_non_utf8_and_very_long_file_names(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "data", 6)
    raw = os.fsencode(root / "cat") + b"/\xff\xfe-chat.jpg"
    make_image(Path(os.fsdecode(raw)), (170, 60, 60), seed=77)
    long_name = root / "dog" / ("d" * 250 + ".jpg")  # 254 bytes: at the file system's limit
    make_image(long_name, (60, 60, 170), seed=78)
    bad_raw = os.fsencode(root / "dog") + b"/\xe9t\xe9.jpg"  # latin-1 name, not an image
    Path(os.fsdecode(bad_raw)).write_text("no")
    ds = scan_dataset(root)
    names = {os.fsencode(s.path) for s in ds.train + ds.val}
    assert raw in names and os.fsencode(long_name) in names
    assert [os.fsencode(b.path) for b in ds.report.bad_files] == [bad_raw]

    result = Trainer(TrainConfig(epochs=1, patience=0)).fit(ds, out_path=tmp_path / "m.pt")
    assert result.status == "completed", result.reason
    _model, info = load_model(tmp_path / "m.pt")
    assert info.classes == ["cat", "dog"]

    read = _strict_stdout(monkeypatch)
    assert cli(["scan", str(root)]) == 0
    assert cli(["predict", str(tmp_path / "m.pt"), os.fsdecode(raw), str(long_name), os.fsdecode(bad_raw)]) == 2
    out, err = read()
    assert "Skipped 1 unreadable" in out and "-chat.jpg: " in out and "d" * 250 in out
    assert ".jpg: error: " in err and "Traceback" not in err


def test_symlink_loops_and_broken_links_in_a_dataset(tmp_path):
    root = make_dataset(tmp_path / "data", 6)
    os.symlink(root, root / "loop")  # the dataset inside itself
    os.symlink(root / "cat", root / "dog" / "up")  # a class folder inside another class
    os.symlink(root / "cat" / "self.jpg", root / "cat" / "self.jpg")  # a link to itself (ELOOP)
    os.symlink(tmp_path / "nowhere.jpg", root / "dog" / "broken.jpg")
    ds = scan_dataset(root)
    assert ds.classes == ["cat", "dog"]
    assert ds.report.n_train + ds.report.n_val == 12
    assert {b.path.name for b in ds.report.bad_files} == {"self.jpg", "broken.jpg"}


# ------------------------------------------------------------------------------------------------
# folders


def test_class_with_no_readable_image_is_left_out_and_training_goes_on(tmp_path):
    root = make_dataset(tmp_path / "data", 6)
    (root / "fox").mkdir()
    (root / "fox" / "a.jpg").write_text("not a photo")
    (root / "fox" / "b.jpg").write_bytes(b"")
    result = Trainer(TrainConfig(epochs=1, patience=0)).fit(root)
    assert result.status == "completed", result.reason
    ds = scan_dataset(root)
    assert ds.classes == ["cat", "dog"]
    assert any("'fox' has no readable image" in w for w in ds.report.warnings)


def test_folder_vanishing_mid_scan_is_a_clear_error(tmp_path):
    root = make_dataset(tmp_path / "data", 6)

    def unplug(done, total):
        shutil.rmtree(root, ignore_errors=True)

    with pytest.raises(DatasetError, match="does not exist"):
        scan_dataset(root, progress=unplug)
    # and the trainer turns it into a failed run with the same message
    make_dataset(root, 6)
    result = Trainer(TrainConfig(epochs=1), [lambda e: getattr(e, "stage", None) == "scan" and unplug(0, 0)]).fit(root)
    assert result.status == "failed" and result.user_error and "does not exist" in result.reason


def test_thousands_of_files(tmp_path):
    """4,000 photos (25,000 with CATDOG_SLOW_TESTS=1): every one scanned, none lost or flagged."""
    n = 12_500 if os.environ.get("CATDOG_SLOW_TESTS") else 2_000
    for ci, c in enumerate(("cat", "dog")):
        (tmp_path / c).mkdir()
        for i in range(n):  # distinct 1x1 images: no duplicate groups
            (tmp_path / c / f"{c}.{i}.ppm").write_bytes(b"P6 1 1 255\n" + (ci * n + i).to_bytes(3, "big"))
    ds = scan_dataset(tmp_path)
    assert ds.report.n_train + ds.report.n_val == 2 * n and not ds.report.bad_files and not ds.report.duplicate_groups
    assert ds.report.train_counts == {"cat": ds.report.train_counts["cat"], "dog": ds.report.train_counts["dog"]}
    assert abs(ds.report.n_val - 0.2 * 2 * n) <= 2


# ------------------------------------------------------------------------------------------------
# model files


def _evil_pickle(marker: Path) -> bytes:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return pickle.dumps({"format": FORMAT, "version": VERSION, "meta": {}, "state_dict": {"w": Evil()}}, protocol=2)


def test_hostile_pickles_are_refused_without_side_effect(tmp_path, tiny_model, capsys):
    marker = tmp_path / "pwned"
    legacy = tmp_path / "legacy.pt"  # a bare pickle (torch's pre-1.6 format), code in the weights
    legacy.write_bytes(_evil_pickle(marker))
    zipped = tmp_path / "zipped.pt"  # a real model file whose data.pkl was replaced by a hostile one
    with torch.serialization._open_zipfile_writer(str(zipped)) as zf:
        evil = _evil_pickle(marker)
        zf.write_record("data.pkl", evil, len(evil))
    whole = tmp_path / "whole.pt"  # another program's checkpoint: a whole pickled module
    torch.save(create_model("lenet5", 2), whole)
    for path in (legacy, zipped, whole):
        with pytest.raises(ModelFileError, match="refused|not a catdog-gui model"):
            read_model_file(path)
        assert cli(["info", str(path)]) == 2
        assert cli(["predict", str(path), str(tiny_model)]) == 2
        with pytest.raises(ModelFileError):
            Predictor(path, "cpu")
        assert not marker.exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("catdog: error:") == 6


@pytest.mark.parametrize("patch", [
    {"image_size": "abc"}, {"classes": 2}, {"classes": "ab"}, {"classes": [1, None]}, {"classes": ["a", "a"]},
    {"mean": [0.5]}, {"std": "abc"}, {"model": ["lenet5"]}, {"image_size": 32.5},
], ids=lambda p: "-".join(f"{k}={v!r}" for k, v in p.items()))
def test_damaged_description_is_a_model_file_error(tmp_path, patch):
    meta = {"model": "lenet5", "classes": ["a", "b"], "image_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}
    meta.update(patch)
    path = tmp_path / "m.pt"
    torch.save({"format": FORMAT, "version": VERSION, "meta": meta,
                "state_dict": create_model("lenet5", 2).state_dict()}, path)
    with pytest.raises(ModelFileError, match="damaged"):
        Predictor(path, "cpu")


def test_other_programs_checkpoints(tmp_path):
    lightning = tmp_path / "lightning.ckpt"
    torch.save({"epoch": 3, "global_step": 10, "state_dict": create_model("lenet5", 2).state_dict(),
                "optimizer_states": []}, lightning)
    scripted = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, its files still exist
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
    plain_zip = tmp_path / "photos.pt"
    with __import__("zipfile").ZipFile(plain_zip, "w") as z:
        z.writestr("cat.jpg", b"not really")
    for p in (lightning, scripted, plain_zip):
        with pytest.raises(ModelFileError, match="not a catdog-gui model|damaged|refused"):
            load_model(p)


def test_model_for_different_classes(tmp_path, tiny_model, capsys):
    other = make_dataset(tmp_path / "other", 4, classes=("fox", "owl"))
    # predict: the model's own classes, whatever the photo
    pred = Predictor(tiny_model, "cpu").predict(other / "fox" / "fox_000.jpg")
    assert pred.label in ("cat", "dog")
    # evaluate: refused, saying which classes differ
    assert cli(["evaluate", str(tiny_model), str(other)]) == 2
    assert "classes the model does not know: fox, owl" in capsys.readouterr().err
    # continue training: refused before any epoch, the model file untouched
    before = tiny_model.read_bytes()
    assert cli(["train", str(other), "--resume", str(tiny_model), "--out", str(tiny_model), "--quiet"]) == 2
    assert "continue training needs the same classes" in capsys.readouterr().err
    assert tiny_model.read_bytes() == before


# ------------------------------------------------------------------------------------------------
# faults


def test_disk_full_while_saving_keeps_previous_model(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "data", 8)
    out = tmp_path / "model.pt"
    first = Trainer(TrainConfig(epochs=1, patience=0)).fit(root, out_path=out)
    assert first.status == "completed"
    before = out.read_bytes()

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("catdog_gui.core.storage.files.os.fsync", full)
    events = []
    result = Trainer(TrainConfig(epochs=1, patience=0, seed=1), [events.append]).fit(root, out_path=out)
    assert result.status == "failed" and result.user_error
    assert "No space left on device" in result.reason and str(out) in result.reason
    assert result.history  # the epochs ran; only the save failed
    assert isinstance(events[-1], Finished)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "model.pt"]  # no temp file left
    load_model(out)


def test_disk_full_while_caching_decoded_images_leaves_no_partial_file(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "data", 4)
    samples = [Sample(p, 0) for p in sorted(root.rglob("*.jpg"))]
    real_replace = os.replace

    def full(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr("catdog_gui.core.storage.files.os.replace", full)
    cache = build_cache(samples, 32, disk_cache=tmp_path / "cache")  # the cache is optional: no error
    assert len(cache) == 8
    assert list((tmp_path / "cache").iterdir()) == []  # and no half-written (possibly huge) temp file


def test_killed_mid_save_leaves_no_partial_model(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    args = dict(model_name="lenet5", classes=["a", "b"], image_size=32, mean=[0.5] * 3, std=[0.5] * 3)
    save_model(path, create_model("lenet5", 2), **args)
    before = path.read_bytes()

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM turned into an exception) in the middle of writing

    monkeypatch.setattr("catdog_gui.core.storage.modelfile.torch.save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, create_model("lenet5", 2), **args)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


@pytest.mark.parametrize("when", ["scan", "decode", "RunStarted", "BatchEnd", "EpochEnd"])
def test_cancel_at_any_moment_finishes_cleanly(tmp_path, when):
    root = make_dataset(tmp_path / "data", 8)
    holder = {}

    def cb(e):
        if getattr(e, "stage", None) == when or type(e).__name__ == when:
            holder["t"].cancel()

    trainer = holder["t"] = Trainer(TrainConfig(epochs=3, patience=0), [cb])
    result = trainer.fit(root, out_path=tmp_path / "m.pt")
    assert result.status == "cancelled", result.reason
    assert (tmp_path / "m.pt").exists() == (when == "EpochEnd")  # a model only once an epoch finished


def test_out_of_memory_is_a_user_error_with_advice(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "data", 6)
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

    def no_memory(*_a, **_k):
        raise oom("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "_logits", no_memory)
    result = Trainer(TrainConfig(epochs=1, batch_size=64)).fit(root)
    assert result.status == "failed" and result.user_error
    assert "out of memory" in result.reason and "batch size" in result.reason and "64" in result.reason


# ------------------------------------------------------------------------------------------------
# settings


def test_settings_write_failure_never_raises(tmp_path):
    pytest.importorskip("PySide6")
    from catdog_gui.gui.settings import Settings

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the settings folder should be")
    s = Settings(blocker / "settings.ini")
    s.set("train/epochs", 5)
    s.sync()  # cannot be written: no exception, the value still reads back in this session
    assert s.get_int("train/epochs", 30, 1, 1000) == 5
    assert not (blocker / "settings.ini").exists()


def test_settings_of_the_wrong_type_fall_back(tmp_path):
    pytest.importorskip("PySide6")
    from catdog_gui.gui.settings import Settings

    s = Settings(tmp_path / "s.ini")
    s.set("train/epochs", ["a", "b"])
    s.set("train/lr", {"x": 1})
    s.set("recent/datasets", 17)
    s.set("augment/rotation", "inf")
    s.sync()
    s2 = Settings(tmp_path / "s.ini")
    assert s2.train_values().get("epochs") is None and s2.train_values().get("lr") is None
    assert s2.recent("datasets") == []
    from catdog_gui.core.data.augment import AugmentSettings

    assert s2.augment_settings().rotation == AugmentSettings().rotation
