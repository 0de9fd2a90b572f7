"""core.explain: feature maps, first-layer filters, captions, LeNet-5's Figure 2 boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from catdog_gui.core.inference.explain import (
    CAPTIONS,
    caption_for,
    feature_maps,
    first_layer_filters,
    has_maps,
    lenet_diagram_spec,
    to_uint8_maps,
)
from catdog_gui.core.models import create_model, summary


@pytest.mark.parametrize("name,size", [("lenet5", 32), ("lenet5_modern", 64)])
def test_feature_maps_match_the_summary(name, size):
    torch.manual_seed(0)
    model = create_model(name, 2, size)
    layers = summary(model, size)
    maps = feature_maps(model, torch.randn(3, size, size), [l.name for l in layers])
    assert list(maps) == [l.name for l in layers]
    for l in layers:
        shape = tuple(l.out_shape) if len(l.out_shape) == 3 else (l.out_shape[0], 1, 1)
        assert maps[l.name].shape == shape, l.name
        assert maps[l.name].dtype == np.float32
    # the hooks are gone: a second pass still works and the model is left as it was
    assert not any(m._forward_hooks for m in model.modules())
    assert model.training


def test_feature_maps_unknown_layer():
    with pytest.raises(KeyError):
        feature_maps(create_model("lenet5", 2), torch.zeros(3, 32, 32), ["nope"])


def test_lenet5_parameter_counts_and_filters():
    model = create_model("lenet5", 2)
    layers = summary(model, 32)
    # the paper's connections (C3 per Table I): 60,470 for 3-channel 32x32 input and 2 classes
    assert sum(l.params for l in layers) == 60_470
    # stored: 900 more, C3's masked weights (always zero)
    assert sum(p.numel() for p in model.parameters()) == 61_370
    f = first_layer_filters(model)
    assert f.shape == (6, 5, 5, 3)
    assert f.min() >= 0.0 and f.max() <= 1.0
    # each filter reaches 0 or 1 with its largest weight; zero weights are mid-grey
    assert np.allclose(np.minimum(1 - f.reshape(6, -1).max(1), f.reshape(6, -1).min(1)), 0, atol=1e-6)


def test_to_uint8_maps():
    m = np.stack([np.linspace(-2, 3, 16).reshape(4, 4), np.full((4, 4), 7.0)]).astype(np.float32)
    u = to_uint8_maps(m)
    assert u.dtype == np.uint8 and u.shape == (2, 4, 4)
    assert u[0].min() == 0 and u[0].max() == 255
    assert (u[1] == 128).all()


@pytest.mark.parametrize("name,size", [("lenet5", 32), ("lenet5_modern", 64), ("efficientnet_lite0", 224)])
def test_every_layer_kind_has_a_caption(name, size):
    model = create_model(name, 2, size)
    layers = summary(model, size)
    if name == "efficientnet_lite0":  # the table covers every parameter
        assert sum(l.params for l in layers) == sum(p.numel() for p in model.parameters())
    for l in layers:
        assert l.kind in CAPTIONS, l.kind
        text = caption_for(l)
        assert 40 < len(text) < 400
        assert text.count(". ") + text.count("; ") <= 3  # one or two sentences
    assert caption_for(layers[-1], is_output=True) == CAPTIONS["output"]
    assert "softmax" in CAPTIONS["output"]
    for kind in ("ReLU", "ReLU6", "ScaledTanh", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "Subsampling"):
        assert kind in CAPTIONS


def test_depthwise_and_pointwise_captions():
    from torch import nn

    assert caption_for("Conv2d", module=nn.Conv2d(8, 8, 3, groups=8)) == CAPTIONS["depthwise"]
    assert caption_for("Conv2d", module=nn.Conv2d(8, 16, 1)) == CAPTIONS["pointwise"]
    assert caption_for("Conv2d", module=nn.Conv2d(3, 16, 3)) == CAPTIONS["Conv2d"]


def test_unknown_kinds_get_a_sensible_caption():
    assert caption_for("DepthwiseConv3d") == CAPTIONS["Conv2d"]
    assert "Frobnicate" in caption_for("Frobnicate")


@pytest.mark.parametrize("name,size", [("lenet5", 32), ("lenet5_modern", 48)])
def test_lenet_diagram_follows_the_paper(name, size):
    model = create_model(name, 10, size)
    layers = summary(model, size)
    boxes = lenet_diagram_spec(layers, size)
    assert [b.label for b in boxes] == ["INPUT", "C1", "S2", "C3", "S4", "C5", "F6", "OUTPUT"]
    assert (boxes[0].channels, boxes[0].height, boxes[0].width) == (3, size, size)
    for b, l in zip(boxes[1:], layers):
        assert b.layer == l.name
        assert (b.channels, b.height, b.width)[:len(l.out_shape)] == tuple(l.out_shape)[:3] or b.flat
    if name == "lenet5":
        assert [b.title for b in boxes] == [
            "INPUT 32x32x3", "C1: feature maps 6@28x28", "S2: feature maps 6@14x14", "C3: feature maps 16@10x10",
            "S4: feature maps 16@5x5", "C5: layer 120", "F6: layer 84", "OUTPUT 10"]
        assert [b.connection for b in boxes[1:]] == [
            "Convolutions", "Subsampling", "Convolutions", "Subsampling", "Full connection", "Full connection",
            "Full connection + softmax"]
    assert [has_maps(l) for l in layers][:4] == [True] * 4


def test_diagram_refuses_other_models():
    from catdog_gui.core.models.registry import LayerInfo

    with pytest.raises(ValueError):
        lenet_diagram_spec([LayerInfo("conv1", "Conv2d", "3x3", "1x1", (8, 32, 32), 224)])
