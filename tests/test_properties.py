"""Property tests (hypothesis): whatever bytes or small images reach the image loader or the
model-file loader, the answer is a result or one of our own errors (ImageError, ModelFileError),
never another exception. Kept small (a few hundred examples in all) so the file runs in seconds."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from catdog_gui.core.errors import ImageError, ModelFileError  # noqa: E402
from catdog_gui.core.data.imageio import load_rgb, load_square_array  # noqa: E402
from catdog_gui.core.storage.modelfile import FORMAT, VERSION, read_model_file  # noqa: E402
from catdog_gui.core.models import create_model  # noqa: E402

# CATDOG_PROPERTY_EXAMPLES=2000 for a long random hunt; by default a fixed, quick set
_N = os.environ.get("CATDOG_PROPERTY_EXAMPLES")
FAST = settings(max_examples=int(_N or 60), deadline=None, derandomize=not _N, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

ALL = ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I;16", "I", "F"]
#: the modes Pillow can write in each format
FORMATS = {"PNG": ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"], "JPEG": ["RGB", "L", "1", "CMYK"],
           "GIF": ALL, "BMP": ["RGB", "RGBA", "L", "P", "1"], "TIFF": ALL, "WEBP": ALL,
           "PPM": ["RGB", "RGBA", "L", "1", "I;16", "I", "F"]}


def _encoded(fmt: str, mode: str, w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    try:
        im.save(buf, fmt)
    except (OSError, ValueError):  # a combination this Pillow cannot write: plain RGB then
        buf = io.BytesIO()
        im.convert("RGB").save(buf, fmt)
    return buf.getvalue()


@st.composite
def images(draw) -> bytes:
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[fmt]))
    return _encoded(fmt, mode, draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**16)))


@st.composite
def damaged_images(draw) -> bytes:
    """A valid small image, then cut, overwritten or extended: the realistic kind of corruption."""
    data = bytearray(draw(images()))
    how = draw(st.sampled_from(["cut", "flip", "splice", "append"]))
    if how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif how == "splice":
        i = draw(st.integers(0, len(data)))
        data[i:i + draw(st.integers(0, 32))] = draw(st.binary(max_size=32))
    else:
        data += draw(st.binary(max_size=64))
    return bytes(data)


def _image_result_or_our_error(data: bytes, size: int) -> bool:
    """True when the data decoded (and the result is sound), False for an ImageError."""
    try:
        im = load_rgb(data)
    except ImageError:
        return False
    assert im.mode == "RGB" and im.width >= 1 and im.height >= 1
    arr = load_square_array(data, size)
    assert arr.shape == (size, size, 3) and arr.dtype == np.uint8
    return True


@FAST
@given(st.binary(max_size=512))
def test_random_bytes_to_the_image_loader(data):
    _image_result_or_our_error(data, 16)


@FAST
@given(images(), st.sampled_from([16, 32, 33]))
def test_random_small_images_always_decode(data, size):
    arr = load_square_array(data, size)
    assert arr.shape == (size, size, 3) and arr.dtype == np.uint8


@FAST
@given(damaged_images())
def test_damaged_images_give_a_result_or_an_image_error(data):
    _image_result_or_our_error(data, 16)


@FAST
@given(damaged_images())
def test_damaged_image_files_on_disk(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("img") / "photo.jpg"
    path.write_bytes(data)
    _image_result_or_our_error(path, 16)


# ------------------------------------------------------------------------------------------------
# model files

_MODEL_BYTES = None


def _model_bytes() -> bytes:
    """A genuine (tiny) model file's bytes, made once."""
    global _MODEL_BYTES
    if _MODEL_BYTES is None:
        buf = io.BytesIO()
        meta = {"model": "lenet5", "classes": ["cat", "dog"], "image_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}
        torch.save({"format": FORMAT, "version": VERSION, "meta": meta,
                    "state_dict": create_model("lenet5", 2).state_dict()}, buf)
        _MODEL_BYTES = buf.getvalue()
    return _MODEL_BYTES


def _model_result_or_our_error(tmp_path_factory, data: bytes) -> bool:
    """True when the file loaded (and the result is sound), False for a ModelFileError."""
    path = tmp_path_factory.mktemp("model") / "m.pt"
    path.write_bytes(data)
    try:
        info, state = read_model_file(path)
    except ModelFileError:
        return False
    assert isinstance(state, dict) and len(info.classes) >= 2
    return True


@FAST
@given(st.binary(max_size=1024))
def test_random_bytes_to_the_model_file_loader(tmp_path_factory, data):
    _model_result_or_our_error(tmp_path_factory, data)


@FAST
@given(st.data())
def test_damaged_model_files(tmp_path_factory, data):
    raw = bytearray(_model_bytes())
    how = data.draw(st.sampled_from(["cut", "flip", "splice"]))
    if how == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 16))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    else:
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i + data.draw(st.integers(0, 64))] = data.draw(st.binary(max_size=64))
    _model_result_or_our_error(tmp_path_factory, bytes(raw))


@FAST
@given(st.binary(max_size=2048))
def test_random_pickle_inside_a_model_archive(tmp_path_factory, pickled):
    """A well-formed torch zip whose data.pkl is junk: past the zip checks, into the unpickler."""
    path = tmp_path_factory.mktemp("model") / "m.pt"
    with torch.serialization._open_zipfile_writer(str(path)) as zf:
        zf.write_record("data.pkl", pickled, len(pickled))
    assert zipfile.is_zipfile(path)
    with pytest.raises(ModelFileError):  # junk is never a model: refused with our own error
        read_model_file(path)


def test_both_outcomes_are_reachable(tmp_path_factory):
    """The properties above are not met by refusing everything: sound inputs (even with junk after
    their end) give results, broken ones our own errors."""
    png = _encoded("PNG", "RGB", 8, 8, 0)
    assert _image_result_or_our_error(png, 16) and _image_result_or_our_error(png + b"trailing junk", 16)
    assert not _image_result_or_our_error(_encoded("JPEG", "RGB", 30, 30, 0)[:40], 16)
    assert _model_result_or_our_error(tmp_path_factory, _model_bytes())
    assert not _model_result_or_our_error(tmp_path_factory, _model_bytes()[:200])
