"""One photo decoded once, for everything that shows or explains it (no Qt).

The Prediction tab needs three things from a dropped photo: the answer, the picture on its card and
the Grad-CAM overlay. :func:`decode_photo` decodes the photo once for all three, the way
:meth:`catdog_gui.core.inference.predictor.Predictor.preprocess` does (``load_rgb`` with the model's size as
the JPEG draft size), so the answer is exactly the one ``catdog predict`` gives and validation
measured; the picture is made from the same decoded image. :class:`Photo` then holds the two small
arrays the overlay needs, so a heat map asked for later decodes nothing.

One exception, on purpose: a JPEG much larger than a small-input model (LeNet-5 at 32 px) is
decoded at a reduced scale (JPEG's DCT scaling: a 500 x 375 photo comes out 63 x 47), too small to
show. Only then is the photo decoded a second time, at display size, for the picture alone; the
answer still comes from the model's decode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import ImageError
from .imageio import Source, check_header, load_rgb, to_square

#: longest side of the picture shown for a photo (pixels, before high-DPI scaling)
DISPLAY_SIZE = 480

__all__ = ["DISPLAY_SIZE", "Photo", "decode_photo"]


@dataclass(frozen=True)
class Photo:
    """A decoded photo: the model's view of it and the picture to show."""

    image: Image.Image  # upright RGB, decoded as the model's preprocessing decodes it
    display: Image.Image  # aspect kept, longest side at most the display size
    model_input: np.ndarray  # uint8 (3, S, S): exactly what the model sees
    square: np.ndarray  # uint8 (h, h, 3): the same centre square at display resolution (for overlays)


def _reduced(source: Source, image: Image.Image) -> bool:
    """Whether decoding kept fewer pixels than the file has (JPEG draft scaling)."""
    if isinstance(source, Image.Image):
        return False
    try:
        w, h = check_header(source)  # the header only: no decoding
    except ImageError:
        return False
    return max(image.size) < max(w, h)


def decode_photo(source: Source, model_size: int, display_size: int = DISPLAY_SIZE) -> Photo:
    """Decode ``source`` (a path, encoded bytes or a PIL image) once; raises :class:`ImageError`."""
    image = load_rgb(source, draft_size=model_size)
    shown = image
    if max(image.size) < display_size and _reduced(source, image):
        shown = load_rgb(source, draft_size=display_size)  # see the module docstring
    display = shown.copy()
    display.thumbnail((display_size, display_size))
    model_input = np.array(to_square(image, model_size), dtype=np.uint8).transpose(2, 0, 1)
    square = np.array(to_square(display, min(display.size)), dtype=np.uint8)
    return Photo(image, display, np.ascontiguousarray(model_input), square)
