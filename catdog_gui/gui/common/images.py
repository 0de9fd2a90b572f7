"""numpy arrays as QImages: what the model saw, feature maps, heat-map overlays.

Each function returns a deep copy, so the QImage owns its pixels and can be made on a worker
thread and shown on the GUI thread after the array is gone.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def rgb_image(a: np.ndarray) -> QImage:
    """uint8 (H, W, 3) -> an RGB QImage."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    h, w = a.shape[:2]
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def gray_image(a: np.ndarray) -> QImage:
    """uint8 (H, W) -> a greyscale QImage."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    h, w = a.shape
    return QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
