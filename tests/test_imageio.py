"""Decoding any image the same way: modes, orientation, animation, bombs, garbage."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from catdog_gui.core.errors import ImageError
from catdog_gui.core.data.imageio import MAX_PIXELS, load_rgb, load_square_array, to_square


def _save(tmp_path, im, name, **kw):
    p = tmp_path / name
    im.save(p, **kw)
    return p


@pytest.mark.parametrize("mode,ext", [("L", "png"), ("CMYK", "jpg"), ("RGBA", "png"), ("LA", "png"), ("I;16", "png"),
                                      ("1", "png"), ("P", "gif")])
def test_every_mode_becomes_rgb(tmp_path, mode, ext):
    base = Image.new("RGB", (30, 20), (200, 100, 50))
    if mode == "I;16":
        im = Image.fromarray(np.full((20, 30), 40000, dtype=np.uint16))
    else:
        im = base.convert(mode)
    out = load_rgb(_save(tmp_path, im, f"x.{ext}"))
    assert out.mode == "RGB" and out.size == (30, 20)
    if mode == "I;16":
        assert abs(np.asarray(out)[0, 0, 0] - 40000 / 65535 * 255) < 2


def test_palette_transparency_composited_on_white(tmp_path):
    im = Image.new("P", (10, 10), 0)
    im.putpalette([0, 0, 0] * 256)
    im.info["transparency"] = 0
    p = _save(tmp_path, im, "t.png", transparency=0)
    assert np.asarray(load_rgb(p)).min() == 255


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white, landscape
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif.tobytes(), quality=95)
    out = load_rgb(p)
    assert out.size == (20, 40)  # shown upright: portrait
    top = np.asarray(out)[:5].mean()
    bottom = np.asarray(out)[-5:].mean()
    assert top > 200 and bottom < 50


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "a.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50, loop=0)
    r, g, b = np.asarray(load_rgb(p))[4, 4]
    assert r > 200 and b < 50


def test_tiny_and_extreme_aspect_images(tmp_path):
    one = load_square_array(_save(tmp_path, Image.new("RGB", (1, 1), (9, 9, 9)), "1.png"), 32)
    assert one.shape == (32, 32, 3)
    strip = load_square_array(_save(tmp_path, Image.new("RGB", (2000, 3), (9, 9, 9)), "s.png"), 32)
    assert strip.shape == (32, 32, 3)


def test_square_crop_is_centred():
    arr = np.zeros((10, 30, 3), np.uint8)
    arr[:, 10:20] = 255
    sq = np.asarray(to_square(Image.fromarray(arr), 10))
    assert sq.shape == (10, 10, 3) and sq.mean() > 250


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    import catdog_gui.core.data.imageio as imageio

    p = _save(tmp_path, Image.new("RGB", (100, 100)), "bomb.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 5000)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_rgb(p)
    assert MAX_PIXELS > 50_000_000


@pytest.mark.parametrize("content,msg", [(b"", "empty"), (b"hello world", "not a readable image"),
                                         (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a readable image")])
def test_garbage_raises_image_error(tmp_path, content, msg):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=msg):
        load_rgb(p)


def test_missing_file_and_bytes_source(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_rgb(tmp_path / "nope.jpg")
    p = _save(tmp_path, Image.new("RGB", (5, 5), (1, 2, 3)), "ok.png")
    assert load_rgb(p.read_bytes()).size == (5, 5)
