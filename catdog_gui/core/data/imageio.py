"""Decoding one image the same way everywhere: training cache, validation, prediction, previews.

``load_rgb`` opens a file (or bytes), refuses decompression bombs, applies the EXIF orientation,
takes the first frame of animations and converts every mode (L, P, RGBA, CMYK, I;16, ...) to RGB.
``to_square`` resizes the shorter side to ``size`` and crops the centre square: that is the one
geometry the models see, so a prediction sees a photo exactly as validation did.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

#: File extensions we look at when scanning folders (content decides whether it really is an image).
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})

#: Larger images are refused as decompression bombs (PIL's own default limit, applied as an error).
MAX_PIXELS = 89_478_485

Source = Union[str, os.PathLike, bytes, Image.Image]


def is_image_name(path: Union[str, os.PathLike]) -> bool:
    # os.path, not Path(path).suffix: a scan of 25,000 files asks this 50,000 times, and building a
    # Path for each cost ~0.4 s of it; splitext gives the same suffix (dot files have none)
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTS


def _open(source: Source) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    try:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                raise ImageError("the data is empty (0 bytes)")
            return Image.open(io.BytesIO(source))
        path = Path(source)
        if path.stat().st_size == 0:
            raise ImageError(f"{path.name}: empty file (0 bytes)")
        return Image.open(path)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{Path(source).name}: file not found (was it moved or deleted?)") from None
    except PermissionError:
        raise ImageError(f"{Path(source).name}: permission denied") from None
    except IsADirectoryError:
        raise ImageError(f"{Path(source).name}: is a folder, not an image") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
        name = Path(source).name if not isinstance(source, (bytes, bytearray)) else "data"
        raise ImageError(f"{name}: not a readable image ({_why(e)})") from None


def _why(e: Exception) -> str:
    if isinstance(e, UnidentifiedImageError):
        return "unknown format or not an image"
    if isinstance(e, Image.DecompressionBombError):
        return "too many pixels; refused as a possible decompression bomb"
    msg = str(e).split("\n")[0]
    if "truncated" in msg:
        return "file is truncated"
    return msg or type(e).__name__


def check_header(source: Source) -> tuple[int, int]:
    """Cheap validity check (header only): returns (width, height) or raises ImageError."""
    size = _jpeg_size(source) if isinstance(source, (str, os.PathLike)) else None
    if size is not None:
        _check_size(*size, source)
        return size
    im = _open(source)
    try:
        w, h = im.size
        _check_size(w, h, source)
        return w, h
    finally:
        if im is not source:
            im.close()


#: JPEG markers a well-formed header holds before its first scan: SOFn, DHT, DAC, DQT, DRI, APPn, COM
_JPEG_HEADER_MARKERS = frozenset([*range(0xC0, 0xD0), 0xDB, 0xDD, *range(0xE0, 0xF0), 0xFE])
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(path) -> tuple[int, int] | None:
    """(width, height) of an ordinary 8-bit JPEG read from its markers, or None: "let PIL decide".

    Scanning 25,000 photos spent ~90% of its time in ``Image.open`` parsing JPEG headers in Python
    (~0.6 ms a file on 2 busy cores); walking the markers of the first 64 KB is ~20x cheaper. Only a
    header PIL would accept in the same way passes (SOI, known markers with sane lengths, one 8-bit
    frame of 1, 3 or 4 components, then a scan); anything else, including an empty or odd file, goes
    to PIL, so every error message stays PIL's. Damaged pixel data is found when decoding, as before.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(65536)
    except OSError:
        return None
    if data[:3] != b"\xff\xd8\xff":
        return None
    i, n, size = 2, len(data), None
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan: the header is complete
            return size
        if marker not in _JPEG_HEADER_MARKERS:
            return None
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if size is not None or i + 10 > n:
                return None
            bits, comps = data[i + 4], data[i + 9]
            h, w = (data[i + 5] << 8) | data[i + 6], (data[i + 7] << 8) | data[i + 8]
            if bits != 8 or comps not in (1, 3, 4) or length != 8 + 3 * comps:
                return None
            size = (w, h)
        i += 2 + length
    return None


def _check_size(w: int, h: int, source: Source) -> None:
    name = Path(source).name if isinstance(source, (str, os.PathLike)) else "image"
    if w <= 0 or h <= 0:
        raise ImageError(f"{name}: image has no pixels")
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{name}: {w}x{h} pixels is too large; refused as a possible decompression bomb "
            f"(limit {MAX_PIXELS:,} pixels)"
        )


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        hi = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        finite = np.isfinite(arr)  # NaN and infinity (scientific TIFFs) become the darkest value
        lo, hi = (float(arr[finite].min()), float(arr[finite].max())) if finite.any() else (0.0, 0.0)
        arr = np.where(finite, arr, lo)
        arr = np.clip((arr - lo) / max(hi - lo, 1e-12) * 255, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def load_rgb(source: Source, draft_size: int | None = None) -> Image.Image:
    """Decode ``source`` fully into an upright RGB image, or raise :class:`ImageError`.

    ``draft_size`` lets JPEG decoding skip detail that a later resize to that size would drop
    (DCT scaling), which makes building a small cache several times faster.
    """
    opened = im = _open(source)
    try:
        _check_size(im.width, im.height, source)
        if getattr(im, "is_animated", False):
            im.seek(0)
        if draft_size and im.format == "JPEG" and im.mode in ("RGB", "L", "CMYK"):
            # keep at least draft_size on the shorter side (after a possible 90 degree EXIF turn)
            im.draft("RGB" if im.mode != "L" else "L", (draft_size, draft_size))
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
            im = ImageOps.exif_transpose(im)
        out = _to_rgb(im)
        return out.copy() if out is opened and opened is not source else out
    except ImageError:
        raise
    except Exception as e:  # PIL raises many types for corrupt data
        name = Path(source).name if isinstance(source, (str, os.PathLike)) else "image"
        raise ImageError(f"{name}: not a readable image ({_why(e)})") from None
    finally:
        if opened is not source:  # we opened it: release the file now, not when garbage is collected
            opened.close()


#: PIL's resize ``reducing_gap`` when shrinking more than 2x (exported models record it for their recipe)
REDUCING_GAP = 3.0


def to_square(im: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` and crop the centre ``size`` x ``size`` square."""
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.BILINEAR, reducing_gap=REDUCING_GAP if scale < 0.5 else None)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def load_square_array(source: Source, size: int) -> np.ndarray:
    """Decode and return the model's view of an image: uint8 array (size, size, 3)."""
    im = to_square(load_rgb(source, draft_size=size), size)
    return np.array(im, dtype=np.uint8)  # a writable copy (torch warns on read-only arrays)
