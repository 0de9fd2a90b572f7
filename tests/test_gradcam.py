"""Grad-CAM: a map of the input size in [0, 1], image dependent, for LeNet-5 and a backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from catdog_gui.core.errors import CatdogError
from catdog_gui.core.inference.gradcam import find_target_layer, grad_cam, heat_colors, overlay
from catdog_gui.core.models import create_model


def _images(size: int, n: int = 2, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x = torch.randn(1, 3, size, size, generator=g) * 0.3
        # a bright blob in a different place for each image
        r = size // 4
        cy, cx = (size // 4, size // 4) if i % 2 == 0 else (3 * size // 4, 3 * size // 4)
        x[:, :, cy - r // 2:cy + r // 2, cx - r // 2:cx + r // 2] += 2.0
        out.append(x)
    return out


def _check_map(cam: np.ndarray, size: int) -> None:
    assert cam.shape == (size, size)
    assert cam.dtype == np.float32
    assert np.isfinite(cam).all()
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert cam.max() > 0.0


def test_lenet5_uses_c3_and_gives_a_normalised_map():
    torch.manual_seed(0)
    model = create_model("lenet5", 2).eval()
    a, b = _images(32)
    assert find_target_layer(model, a) is model.c3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cam_a = grad_cam(model, a)
    cam_b = grad_cam(model, b[0])  # (3, H, W) works too
    _check_map(cam_a, 32)
    _check_map(cam_b, 32)
    assert not np.allclose(cam_a, cam_b)
    # explaining the other class gives another map; weights and gradients untouched
    assert not np.allclose(cam_a, grad_cam(model, a, target_class=0 if model(a).argmax() == 1 else 1))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_lenet5_modern_and_named_layer():
    torch.manual_seed(0)
    model = create_model("lenet5_modern", 3, 64).eval()
    (x,) = _images(64, 1)
    assert find_target_layer(model, x) is model.c3
    _check_map(grad_cam(model, x, layer="c1"), 64)
    with pytest.raises(CatdogError):
        grad_cam(model, x, layer="nope")


def test_frozen_weights_still_work():
    torch.manual_seed(0)
    model = create_model("lenet5", 2).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _check_map(grad_cam(model, _images(32, 1)[0]), 32)


def _backbone_model():
    # pretrained=False: torchvision's ResNet-18 layout with random weights (no download, cannot fail offline)
    return create_model("resnet18", 2, pretrained=False)


def test_backbone_classifier_uses_last_spatial_map():
    torch.manual_seed(0)
    model = _backbone_model().eval()
    size = 96  # smaller than 224 to keep the test fast; layer4 is still 3x3
    a, b = _images(size)
    assert find_target_layer(model, a) is model.backbone.layer4
    cam_a, cam_b = grad_cam(model, a), grad_cam(model, b)
    _check_map(cam_a, size)
    _check_map(cam_b, size)
    assert not np.allclose(cam_a, cam_b)


def test_model_without_spatial_map_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    with pytest.raises(CatdogError):
        grad_cam(model, torch.zeros(1, 3, 8, 8))


def test_overlay_blends_at_picture_size():
    rgb = np.full((40, 60, 3), 128, np.uint8)
    cam = np.zeros((32, 32), np.float32)
    cam[:, 16:] = 1.0
    out = overlay(rgb, cam)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    # the hot half is redder than the cold half, and both differ from the photo
    assert out[:, 50, 0].mean() > out[:, 5, 0].mean()
    assert not np.array_equal(out, rgb)
    assert heat_colors(np.array([0.0, 1.0])).shape == (2, 3)
    with pytest.raises(ValueError):
        overlay(np.zeros((4, 4), np.uint8), cam)
