"""The explainer's simpler view of a pretrained backbone model: blocks, feature vector, head, Grad-CAM.

A backbone of millions of units gets no pretend unit-by-unit arithmetic. What is shown is what is true
and checkable: the backbone's blocks as volumes with their output shapes (from forward hooks), the
feature vector it hands to the head, for each class the head's largest weight x feature contributions
with the rest summed and the bias (the same :class:`~.unit_arithmetic.FullUnit` as LeNet-5's full
connections), the softmax of those scores, and Grad-CAM's map of where the network looked. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import explain_html
from .gradcam import grad_cam, overlay
from .unit_arithmetic import FullUnit, SoftmaxUnit, Stage, full_unit

_SKIP = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Dropout, nn.Identity, nn.Flatten)


@dataclass(frozen=True)
class BackboneExplanation:
    blocks: tuple[tuple[str, str, tuple[int, ...]], ...]  # (module name, type, output shape (C, H, W))
    features: np.ndarray  # (D,) what the head reads
    heads: tuple[FullUnit, ...]  # one per class
    softmax: SoftmaxUnit
    cam: np.ndarray  # (S, S) in [0, 1], for the predicted class
    photo: np.ndarray  # uint8 (S, S, 3): what the network saw
    photo_name: str


def _block_modules(backbone: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's blocks: children of its containers (ModuleList, Sequential) and its own direct
    children, less normalisations, activations and other shape-keeping helpers."""
    out = []
    for name, m in backbone.named_modules():
        if not name or isinstance(m, (*_SKIP, nn.ModuleList, nn.Sequential)):
            continue
        depth = name.count(".")
        parent = backbone.get_submodule(name.rsplit(".", 1)[0]) if depth else backbone
        if parent is backbone or (isinstance(parent, (nn.ModuleList, nn.Sequential)) and depth <= 2):
            out.append((name, m))
    return out


def explain_backbone(predictor, array: np.ndarray, photo_name: str, top: int = 10) -> BackboneExplanation:
    """The simpler view for a model with ``feature_parts`` (a backbone and a linear head)."""
    model = predictor.model
    parts = getattr(model, "feature_parts", None)
    if not callable(parts):
        raise TypeError("this model has no backbone and head to show")
    backbone, head = parts()
    x = predictor.to_input(np.ascontiguousarray(array)[None])
    shapes: dict[str, tuple] = {}
    hooks = []
    for name, m in _block_modules(backbone):
        def hook(_m, _i, y, name=name):
            if isinstance(y, torch.Tensor) and y.dim() == 4 and name not in shapes:
                shapes[name] = tuple(y.shape[1:])
        hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            feats = backbone(x)
    finally:
        for h in hooks:
            h.remove()
    blocks = tuple((n, type(m).__name__, shapes[n]) for n, m in _block_modules(backbone) if n in shapes)
    f = feats[0].detach().double().cpu().numpy().reshape(-1)
    w = head.weight.detach().double().cpu().numpy()
    b = head.bias.detach().double().cpu().numpy()
    src = Stage("features", "FEATURES", "full", "none", f.reshape(-1, 1, 1), f.reshape(-1, 1, 1))
    logits = w @ f + b
    out = Stage("output", "OUTPUT", "full", "none", logits.reshape(-1, 1, 1), logits.reshape(-1, 1, 1))
    heads = tuple(full_unit(out, src, w[k], float(b[k]), k, top) for k in range(len(b)))
    shift = float(logits.max()) if logits.max() > 700 else 0.0
    e = np.exp(logits - shift)
    softmax = SoftmaxUnit(tuple(predictor.info.classes), logits, shift, e, float(e.sum()), e / e.sum())
    cam = grad_cam(model, x, int(np.argmax(logits)))
    return BackboneExplanation(blocks, f, heads, softmax, cam, np.asarray(array).transpose(1, 2, 0), photo_name)


def backbone_html(bx: BackboneExplanation, cam_src: str = "") -> str:
    """The simpler view as HTML; ``cam_src`` is the Grad-CAM picture's address (default: inline PNG data)."""
    import html

    if not cam_src:
        cam_src = explain_html.png_data(overlay(bx.photo, bx.cam), 1)
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{html.escape(k)}</td><td>{' × '.join(map(str, s))}</td></tr>"
                   for n, k, s in bx.blocks)
    classes = bx.softmax.classes
    heads = "".join(explain_html.unit_html(u).replace(f"OUTPUT unit {u.channel + 1}",
                                                       f"score of {html.escape(classes[u.channel])}", 1)
                    for u in bx.heads)
    f = bx.features
    return ('<div class="backbone"><h3>A pretrained backbone, shown by its blocks</h3>'
            "<p>This network has millions of units, so it is shown as what can be checked: its blocks as "
            "volumes (channels × height × width), the feature vector it gives the head, the head's arithmetic "
            "for each class, the softmax and Grad-CAM.</p>"
            f'<table cellspacing="4"><tr><th>block</th><th>type</th><th>output volume</th></tr>{rows}</table>'
            f"<p>Feature vector: {f.size:,} numbers, from {explain_html.num(float(f.min()))} to "
            f"{explain_html.num(float(f.max()))}, mean {explain_html.num(float(f.mean()))}.</p>"
            f"{heads}{explain_html.softmax_html(bx.softmax)}"
            f"<h3>Grad-CAM: where it looked for {html.escape(classes[int(np.argmax(bx.softmax.logits))])}</h3>"
            f'<img src="{cam_src}" width="224" height="224" alt="Grad-CAM"></div>')
