"""What the Network tab reads from a model, on worker threads (no widgets).

:func:`analyse` gives the layer table (:func:`catdog_gui.core.models.summary`, the same one
``catdog info`` prints), the first-layer filters and, for LeNet-5, the boxes of the Figure 2
diagram; :func:`feature_maps` gives what the chosen layers make of one photo. Both hold the model's
:func:`~catdog_gui.gui.models.current_model.model_lock` while they run it: every GUI job shares the
one model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...core.inference import explain
from ..common.workers import TaskState
from ..models.current_model import model_lock


@dataclass(frozen=True)
class Analysis:
    """What the layer-reading task hands to the GUI thread."""

    predictor: object
    layers: list  # LayerInfo
    stored: int  # sum(p.numel()) over the model's parameters
    filters: np.ndarray  # (N, kh, kw, 3) in 0..1
    filters_layer: str
    boxes: Optional[list]  # DiagramBox list for LeNet-5 models, else None


def analyse(predictor, state: Optional[TaskState] = None) -> Analysis:
    """The layer table, the first-layer filters and (for LeNet-5) the diagram of a model."""
    from ...core.models import summary

    model, info = predictor.model, predictor.info
    with model_lock(predictor):  # summary runs the model with hooks
        layers = summary(model, info.image_size)
    stored = sum(p.numel() for p in model.parameters())
    filters = explain.first_layer_filters(model)
    first = explain.first_conv(model)
    boxes = explain.lenet_diagram_spec(layers, info.image_size) if explain.is_lenet(layers) else None
    return Analysis(predictor, layers, stored, filters, first[0] if first else "", boxes)


def kernel_sizes(layers) -> dict[str, int]:
    """Each layer's window side (``"5x5"`` -> 5; 0 for none), as the diagram draws it."""
    kernels = {}
    for l in layers:
        try:
            kernels[l.name] = int(str(l.kernel).split("x")[0]) if l.kernel else 0
        except ValueError:
            kernels[l.name] = 0
    return kernels


def feature_maps(predictor, source, array: Optional[np.ndarray], names: list[str],
                 state: Optional[TaskState] = None):
    """(the uint8 (3, S, S) model input, {layer: uint8 (C, H, W) maps}) for one photo: ``source``
    (a path or bytes) is decoded unless ``array``, the model input already decoded, is given."""
    arr = predictor.preprocess(source) if array is None else np.array(array)  # a writable copy for torch
    if state is not None:
        state.check()
    with model_lock(predictor):  # forward hooks on the one shared model
        maps = explain.feature_maps(predictor.model, predictor.to_input(arr), names)
    return arr, {k: explain.to_uint8_maps(v) for k, v in maps.items()}


def shape_text(shape) -> str:
    """``(6, 28, 28)`` -> ``6 x 28 x 28``."""
    return " x ".join(str(s) for s in shape)
