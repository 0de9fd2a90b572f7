"""Classifying one photo for the Prediction tab (runs on a worker thread; no widgets).

:func:`classify_item` decodes the photo once (:func:`catdog_gui.core.data.photo.decode_photo`) and
gives the answer, the picture for its card and, if asked, the Grad-CAM overlay, all from that one
decode. The :class:`ItemResult` keeps the model's view of the photo, so a heat map asked for later
(:func:`cam_for`) decodes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
from PySide6.QtGui import QImage

from ...core.errors import CatdogError, ImageError
from ...core.data.photo import DISPLAY_SIZE, decode_photo
from ..common.images import rgb_image
from ..models.current_model import model_lock

__all__ = ["DISPLAY_SIZE", "ImageItem", "ItemResult", "classify_item", "cam_for"]


@dataclass
class ImageItem:
    """One photo to classify: a file, or raw bytes (pasted or dropped from a browser)."""

    id: int
    name: str
    path: Optional[str] = None
    data: Optional[bytes] = None

    @property
    def source(self):
        return self.path if self.path is not None else self.data


@dataclass
class ItemResult:
    item_id: int
    prediction: object = None  # core.inference.Prediction
    error: Optional[str] = None
    picture: Optional[QImage] = None  # the photo, aspect kept
    cam_picture: Optional[QImage] = None  # Grad-CAM over the centre square the model saw
    cam_error: Optional[str] = None
    model_input: Optional[np.ndarray] = None  # uint8 (3, S, S): what the model saw (for Grad-CAM)
    square: Optional[np.ndarray] = None  # uint8 (h, h, 3): that square at display resolution
    predictor: object = None  # the Predictor that answered (a heat map must come from the same model)


def _cam_picture(predictor, model_input: np.ndarray, label: str, square: Optional[np.ndarray]) -> QImage:
    from ...core.inference.gradcam import grad_cam, overlay

    arr = np.array(model_input)  # a writable copy: torch warns about read-only arrays
    with model_lock(predictor):
        cam = grad_cam(predictor.model, predictor.to_input(arr), predictor.classes.index(label))
    base = square if square is not None else arr.transpose(1, 2, 0)
    return rgb_image(overlay(base, cam))


def classify_item(predictor, item: ImageItem, want_cam: bool) -> ItemResult:
    """Answer, picture and (optionally) Grad-CAM for one photo, from one decode. Never raises for
    bad photos: an unreadable one comes back with ``error`` set."""
    try:
        photo = decode_photo(item.source, predictor.info.image_size)
    except ImageError as e:
        return ItemResult(item.id, error=str(e))
    with model_lock(predictor):
        # predict_many, as `catdog predict` does: the same numbers to the last digit
        (pred,) = predictor.predict_many([photo.image], batch_size=1)
    if not pred.ok:
        return ItemResult(item.id, error=pred.error)
    pred = replace(pred, source=item.path if item.path is not None else item.name)
    res = ItemResult(item.id, prediction=pred, picture=rgb_image(np.asarray(photo.display)),
                     model_input=photo.model_input, square=photo.square, predictor=predictor)
    if want_cam:
        cam_for(predictor, res)
    return res


def cam_for(predictor, res: ItemResult) -> ItemResult:
    """Fill in ``res.cam_picture`` (or ``res.cam_error``) from the arrays kept at classification."""
    if res.prediction is None or res.model_input is None or res.predictor is not predictor:
        res.cam_error = "the heat map needs the photo classified by this model first"
        return res
    try:
        res.cam_picture = _cam_picture(predictor, res.model_input, res.prediction.label, res.square)
    except CatdogError as e:
        res.cam_error = str(e)
    return res
