"""Explain a network: what each layer computes, what it sees, and LeNet-5 drawn as in the paper.

No Qt here (the Network tab and notebooks use it alike):

* :func:`feature_maps` - the output volume of chosen layers for one image, through forward hooks;
* :func:`first_layer_filters` - the first convolution's learned filters as small colour patches;
* :data:`CAPTIONS` / :func:`caption_for` - one or two plain sentences per kind of layer;
* :func:`lenet_diagram_spec` - the boxes of the 1998 paper's Figure 2 (INPUT, C1, S2, C3, S4, C5,
  F6, OUTPUT), computed from :func:`~catdog_gui.core.models.registry.summary` of the model itself.

The layer table is :func:`catdog_gui.core.models.summary` (the same one ``catdog info`` prints).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..models.registry import LayerInfo

#: forward hooks are registered on the model itself: one feature-map pass per model at a time
_HOOK_LOCK = threading.Lock()

# ------------------------------------------------------------------------------------------------
# captions: written for this app, one or two sentences, keyed by the layer's type name

_CONV = ("Convolution: each output map slides one small learned filter (the kernel) over all the input maps "
         "and records how strongly every spot matches it, so each map lights up where its pattern occurs "
         "(edges and colour blobs early on, parts of animals later).")
_POOL = ("Pooling: shrinks every map by summarising each small window ({how}), so the next layer sees a "
         "coarser picture that barely changes when the photo moves by a pixel or two.")
_ACT = ("Activation: a fixed, non-linear function applied to every value on its own ({how}); without it a stack "
        "of layers could only compute one big linear function.")

CAPTIONS: dict[str, str] = {
    "Conv2d": _CONV,
    "SameConv2d": _CONV + " Here padded like TensorFlow's \"SAME\", so with stride 1 the maps keep their size.",
    "SparseConv2d": ("Convolution with a connection table (LeNet-5's C3): each of the 16 output maps looks at only "
                     "3, 4 or all 6 of the previous maps, as listed in the paper's Table I, which saves weights and "
                     "makes the maps learn different features."),
    "Subsampling": ("Subsampling (LeNet-5's S2 and S4): each 2x2 window is added up, multiplied by a learned "
                    "factor and shifted by a learned bias, one pair per map; the maps get half as wide and tall."),
    "AvgPool2d": _POOL.format(how="its average"),
    "MaxPool2d": _POOL.format(how="its largest value"),
    "AdaptiveAvgPool2d": ("Global average pooling: each map is reduced to one number, its average, turning "
                          "'where' information into a list of 'how much of each feature' the classifier can use."),
    "ScaledTanh": _ACT.format(how="LeNet-5's scaled tanh, 1.7159 tanh(2x/3), squashes values into -1.7..1.7"),
    "Tanh": _ACT.format(how="tanh squashes values into -1..1"),
    "ReLU": _ACT.format(how="ReLU keeps positive values and sets negative ones to zero"),
    "ReLU6": _ACT.format(how="ReLU6 keeps values between 0 and 6, clipping the rest"),
    "SiLU": _ACT.format(how="SiLU, x times sigmoid(x), a smooth ReLU"),
    "Hardswish": _ACT.format(how="hard swish, a cheap smooth ReLU used by MobileNet"),
    "Hardsigmoid": _ACT.format(how="hard sigmoid, a cheap 0..1 gate"),
    "Sigmoid": _ACT.format(how="sigmoid squashes values into 0..1"),
    "GELU": _ACT.format(how="GELU, a smooth ReLU"),
    "BatchNorm2d": ("Batch normalisation: rescales each map to a steady average and spread (learned during "
                    "training, fixed when predicting), which makes deep networks train faster and more reliably."),
    "Linear": ("Fully connected: every output unit adds up all the inputs, each times its own learned weight, "
               "plus a bias; this is where the network combines the detected features into a decision."),
    "Flatten": "Flatten: lays the maps out as one long list of numbers so fully connected layers can read them.",
    "Dropout": ("Dropout: while training, randomly silences some values so the network cannot rely on any single "
                "one; when predicting it does nothing."),
    "Identity": "Identity: passes its input through unchanged (a placeholder where a layer was removed).",
    "depthwise": ("Depthwise convolution: each map gets its own small filter and is filtered on its own, without "
                  "mixing maps; a cheap way to find spatial patterns, used by mobile networks such as EfficientNet."),
    "pointwise": ("1x1 convolution: at every pixel, each output map is a learned mix of all the input maps; it changes "
                  "the number of maps without looking at neighbouring pixels."),
    "output": ("Output: one score per class from a fully connected layer; softmax turns the scores into "
               "probabilities that add up to 100%, and the largest one is the answer."),
}

_GENERIC = "A {kind} layer: it transforms the volume it receives into the volume shown in the table."


def caption_for(layer: LayerInfo | str, is_output: bool = False, module: Optional[nn.Module] = None) -> str:
    """The caption of a layer (a :class:`LayerInfo` or a type name); ``is_output`` for the last layer;
    with ``module``, depthwise and 1x1 convolutions get their own caption."""
    if is_output or (isinstance(layer, LayerInfo) and layer.name == "output"):
        return CAPTIONS["output"]
    if isinstance(module, nn.Conv2d) and not hasattr(module, "mask"):
        if module.groups > 1 and module.groups == module.in_channels:
            return CAPTIONS["depthwise"]
        if tuple(module.kernel_size) == (1, 1):
            return CAPTIONS["pointwise"]
    kind = layer.kind if isinstance(layer, LayerInfo) else str(layer)
    if kind in CAPTIONS:
        return CAPTIONS[kind]
    for key, cap in (("Conv", CAPTIONS["Conv2d"]), ("MaxPool", CAPTIONS["MaxPool2d"]),
                     ("AvgPool", CAPTIONS["AvgPool2d"]), ("Norm", CAPTIONS["BatchNorm2d"])):
        if key in kind:
            return cap
    return _GENERIC.format(kind=kind)


# ------------------------------------------------------------------------------------------------
# what the layers see


def feature_maps(model: nn.Module, x: torch.Tensor, layer_names: Iterable[str]) -> dict[str, np.ndarray]:
    """Outputs of the named layers (names of ``model.named_modules()``) for one input image.

    ``x`` is one normalised image (3, S, S) or a batch of one (1, 3, S, S). Returns name -> float32
    array (C, H, W); a flat output (F,) comes back as (F, 1, 1). Layers that never ran are left out.
    """
    names = list(dict.fromkeys(layer_names))
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"no layer named {', '.join(missing)}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    out: dict[str, np.ndarray] = {}

    def make_hook(name):
        def hook(_m, _inp, y):
            if isinstance(y, torch.Tensor) and name not in out:
                a = y[0].detach().float().cpu().numpy()
                if a.ndim == 1:
                    a = a.reshape(-1, 1, 1)
                elif a.ndim == 2:
                    a = a.reshape(a.shape[0], a.shape[1], 1)
                elif a.ndim > 3:
                    a = a.reshape(a.shape[0], -1, a.shape[-1])
                out[name] = a
        return hook

    with _HOOK_LOCK:
        hooks = [modules[n].register_forward_hook(make_hook(n)) for n in names]
        was_training = model.training
        model.eval()
        try:
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            with torch.no_grad():
                model(x.to(device))
        finally:
            for h in hooks:
                h.remove()
            model.train(was_training)
    return {n: out[n] for n in names if n in out}


def first_conv(model: nn.Module) -> Optional[tuple[str, nn.Conv2d]]:
    """(name, module) of the first convolution that reads the image, or None."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.groups == 1:
            return name, m
    return None


def first_layer_filters(model: nn.Module) -> np.ndarray:
    """The first convolution's filters as RGB patches (N, kh, kw, 3), float32 in 0..1.

    Each filter is scaled on its own so that 0 is mid-grey and its largest weight (either sign) reaches
    0 or 1: a red patch prefers red light there, a dark one penalises it. Grey-input filters are
    repeated on the three channels; for other channel counts the first three are shown.
    """
    found = first_conv(model)
    if found is None:
        return np.zeros((0, 1, 1, 3), np.float32)
    w = found[1].weight.detach().float().cpu().numpy()  # (N, C, kh, kw)
    if w.shape[1] == 1:
        w = np.repeat(w, 3, axis=1)
    elif w.shape[1] != 3:
        w = w[:, :3] if w.shape[1] > 3 else np.concatenate([w, np.zeros_like(w[:, :3 - w.shape[1]])], 1)
    w = w.transpose(0, 2, 3, 1)
    scale = np.abs(w).reshape(len(w), -1).max(axis=1).reshape(-1, 1, 1, 1)
    return (0.5 + 0.5 * w / np.maximum(scale, 1e-12)).astype(np.float32)


def to_uint8_maps(maps: np.ndarray) -> np.ndarray:
    """(C, H, W) floats -> uint8, each map stretched to 0..255 on its own (a flat map is mid-grey)."""
    maps = np.asarray(maps, np.float32)
    lo = maps.reshape(len(maps), -1).min(axis=1).reshape(-1, 1, 1)
    hi = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    span = hi - lo
    out = np.where(span > 1e-12, (maps - lo) / np.where(span > 1e-12, span, 1.0), 0.5)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def has_maps(layer: LayerInfo) -> bool:
    """Whether a layer's output is a volume of maps (C, H, W) worth showing as pictures."""
    return len(layer.out_shape) == 3


# ------------------------------------------------------------------------------------------------
# the 1998 paper's Figure 2, from the model itself

#: LeNet's summary layer names -> the paper's labels
PAPER_LABELS = {"c1": "C1", "s2": "S2", "c3": "C3", "s4": "S4", "c5": "C5", "f6": "F6", "output": "OUTPUT"}


@dataclass(frozen=True)
class DiagramBox:
    label: str  # INPUT, C1, S2, ... OUTPUT
    channels: int  # C (maps, or units of a flat layer)
    height: int  # H (1 for a flat layer)
    width: int  # W
    layer: str  # the summary layer name ("" for the input)
    connection: str  # how it is computed from the box before ("" for the input)
    title: str  # the paper's caption: "C1: feature maps 6@28x28", "F6: layer 84"

    @property
    def flat(self) -> bool:
        return self.height == 1 and self.width == 1


def is_lenet(layers: Sequence[LayerInfo]) -> bool:
    return [l.name for l in layers] == list(PAPER_LABELS)


def _connection(layer: LayerInfo) -> str:
    k = layer.kind
    if layer.name == "output":
        return "Full connection + softmax"
    if "Conv" in k:
        return "Full connection" if layer.out_shape[1:] in ((1, 1), ()) else "Convolutions"
    if k == "Subsampling" or "Pool" in k:
        return "Subsampling"
    if k == "Linear":
        return "Full connection"
    return k


def lenet_diagram_spec(layers: Sequence[LayerInfo], image_size: int = 32, in_channels: int = 3) -> list[DiagramBox]:
    """The boxes of LeNet-5's Figure 2 in order: INPUT then one per layer of ``summary()``.

    Works for any model whose summary layers are c1, s2, c3, s4, c5, f6, output (LeNet-5 and its
    modern variant); raises ValueError for other models.
    """
    if not is_lenet(layers):
        raise ValueError("the Figure 2 diagram is drawn for LeNet-5 models (layers c1, s2, c3, s4, c5, f6, output)")
    boxes = [DiagramBox("INPUT", in_channels, image_size, image_size, "", "",
                        f"INPUT {image_size}x{image_size}" + (f"x{in_channels}" if in_channels != 1 else ""))]
    for l in layers:
        label = PAPER_LABELS[l.name]
        shape = tuple(l.out_shape)
        c, h, w = (shape + (1, 1))[:3] if len(shape) < 3 else shape
        if h == 1 and w == 1:
            title = f"{label} {c}" if label == "OUTPUT" else f"{label}: layer {c}"
        else:
            title = f"{label}: feature maps {c}@{h}x{w}"
        boxes.append(DiagramBox(label, int(c), int(h), int(w), l.name, _connection(l), title))
    return boxes
