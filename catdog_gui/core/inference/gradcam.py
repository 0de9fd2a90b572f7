"""Grad-CAM (Selvaraju et al., 2017): where in the picture the network looked for its answer.

The gradient of the chosen class score with respect to a convolutional feature map A (C x h x w)
is averaged over the map to give one weight per channel; the weighted sum of the channels, passed
through a ReLU, is the class-activation map. It is upsampled to the input size and scaled to [0, 1].

Which feature map: the last one that still has a spatial extent (more than 1 x 1):

* LeNet-5 and other plain networks: the last ``Conv2d`` whose output is larger than 1 x 1
  (LeNet-5 at 32 x 32: C3, 16 x 10 x 10; C5 is 1 x 1 and would say nothing about *where*);
* a :class:`~.models.registry.BackboneClassifier`: the backbone's last spatial feature map
  (ResNet-18: ``layer4``, 7 x 7; MobileNetV3: ``features``; EfficientNet-Lite0: its head).

No Qt here: the GUI turns the arrays into pictures.
"""

from __future__ import annotations

import weakref
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..errors import CatdogError

__all__ = ["grad_cam", "find_target_layer", "overlay", "heat_colors"]


def _probe(model: nn.Module, x: torch.Tensor, within: nn.Module) -> list[tuple[str, nn.Module, tuple]]:
    """Run the model once and list (name, module, output shape) of ``within``'s submodules in the
    order their forward passes ended."""
    seen: list[tuple[str, nn.Module, tuple]] = []
    hooks = []
    for name, m in within.named_modules():
        if m is within:
            continue

        def hook(mod, _inp, out, name=name):
            if isinstance(out, torch.Tensor):
                seen.append((name, mod, tuple(out.shape)))

        hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


#: model -> {input shape: chosen layer}: the probe pass runs once per model and input size
_LAYER_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def _spatial(shape: tuple) -> bool:
    return len(shape) == 4 and shape[2] * shape[3] > 1


def find_target_layer(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """The feature map Grad-CAM looks at (see the module docstring)."""
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, nn.Module):
        seen = _probe(model, x, backbone)
        spatial = [m for _n, m, s in seen if _spatial(s)]
    else:
        seen = _probe(model, x, model)
        spatial = [m for _n, m, s in seen if _spatial(s) and isinstance(m, nn.Conv2d)]
        if not spatial:
            spatial = [m for _n, m, s in seen if _spatial(s)]
    if not spatial:
        raise CatdogError("this model has no spatial feature map, so it cannot show where it looked")
    return spatial[-1]


def _resolve_layer(model: nn.Module, layer: Union[str, nn.Module, None], x: torch.Tensor) -> nn.Module:
    if layer is None:
        per_model = _LAYER_CACHE.setdefault(model, {})
        key = tuple(x.shape[1:])
        if key not in per_model:
            per_model[key] = find_target_layer(model, x)
        return per_model[key]
    if isinstance(layer, nn.Module):
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError:
        raise CatdogError(f"the model has no layer named {layer!r}") from None


def grad_cam(
    model: nn.Module,
    x_normalised: torch.Tensor,
    target_class: Optional[int] = None,
    layer: Union[str, nn.Module, None] = None,
) -> np.ndarray:
    """Class-activation map for one image: float32 array (H, W) in [0, 1], H x W the input size.

    ``x_normalised``: the model's input, (1, 3, H, W) or (3, H, W), already normalised (what
    :meth:`Predictor.to_input` returns). ``target_class``: the class index to explain; default the
    predicted class. ``layer``: a module or its dotted name; default chosen automatically.
    The model's weights and gradients are left untouched.
    """
    x = x_normalised
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError("grad_cam explains one image: give a (1, 3, H, W) or (3, H, W) tensor")
    x = x.detach().float()
    target = _resolve_layer(model, layer, x)
    captured: list[torch.Tensor] = []

    def hook(_m, _inp, out):
        # grad mode is per thread: predictions running elsewhere (under no_grad) are not captured
        if torch.is_grad_enabled() and isinstance(out, torch.Tensor):
            captured.append(out)

    handle = target.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            xg = x.clone().requires_grad_(True)  # makes the graph exist even with frozen weights
            logits = model(xg)
            if not captured:
                raise CatdogError("the chosen layer was not used by the model's forward pass")
            acts = captured[-1]
            cls = int(logits[0].argmax()) if target_class is None else int(target_class)
            if not 0 <= cls < logits.shape[1]:
                raise ValueError(f"target_class {cls} is out of range (the model has {logits.shape[1]} classes)")
            (grads,) = torch.autograd.grad(logits[0, cls], acts)
    finally:
        handle.remove()
    acts, grads = acts.detach()[0].float(), grads.detach()[0].float()  # (C, h, w)
    weights = grads.mean(dim=(1, 2))
    raw = (weights[:, None, None] * acts).sum(0)
    cam = F.relu(raw)
    if float(cam.max()) <= 1e-12:
        # nothing argues *for* the class (it happens with tiny, barely trained models): show the
        # relative evidence instead of a blank map
        cam = raw - raw.min()
    cam = F.interpolate(cam[None, None], size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)[0, 0]
    cam = cam - cam.min()
    top = float(cam.max())
    if top > 1e-12:
        cam = cam / top
    return cam.clamp_(0, 1).cpu().numpy().astype(np.float32)


def heat_colors(cam: np.ndarray) -> np.ndarray:
    """A perceptual blue -> cyan -> yellow -> red ramp ("turbo"-like) for values in [0, 1]: uint8 (..., 3)."""
    # Anchor colours of Google's Turbo colormap, linearly interpolated
    anchors = np.array([
        [48, 18, 59], [70, 107, 227], [40, 188, 235], [50, 241, 151],
        [164, 252, 60], [237, 208, 58], [251, 128, 34], [214, 53, 6], [122, 4, 3],
    ], dtype=np.float32)
    v = np.clip(np.asarray(cam, dtype=np.float32), 0, 1) * (len(anchors) - 1)
    lo = np.floor(v).astype(int)
    hi = np.minimum(lo + 1, len(anchors) - 1)
    t = (v - lo)[..., None]
    return (anchors[lo] * (1 - t) + anchors[hi] * t + 0.5).astype(np.uint8)


def overlay(rgb_uint8: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a heat map of ``cam`` (any size, values in [0, 1]) over an RGB picture (H, W, 3) uint8.

    The map is resized to the picture; hot regions get up to ``alpha`` of the colour, cold ones
    less, so the photo stays recognisable. Returns a new uint8 (H, W, 3) array.
    """
    rgb = np.asarray(rgb_uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("overlay expects an RGB picture of shape (H, W, 3)")
    h, w = rgb.shape[:2]
    cam = np.clip(np.asarray(cam, dtype=np.float32), 0, 1)
    if cam.shape != (h, w):
        cam = np.asarray(Image.fromarray(np.ascontiguousarray(cam)).resize((w, h), Image.BILINEAR), dtype=np.float32)
        cam = np.clip(cam, 0, 1)
    heat = heat_colors(cam).astype(np.float32)
    a = (alpha * (0.35 + 0.65 * cam))[..., None]
    out = rgb.astype(np.float32) * (1 - a) + heat * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
