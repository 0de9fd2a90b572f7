"""The explainer's simpler view of a pretrained backbone: blocks with their volumes, the head's arithmetic
per class (checked against the forward pass), the softmax, Grad-CAM, and `catdog explain` on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_image

from catdog_gui.cli import main
from catdog_gui.core.inference.backbone_view import backbone_html, explain_backbone
from catdog_gui.core.inference.predictor import Predictor
from catdog_gui.core.models import create_model, get_spec
from catdog_gui.core.storage.modelfile import save_model


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    """An EfficientNet-Lite0 model file (random weights: the arithmetic does not care) and a photo."""
    root = tmp_path_factory.mktemp("lite")
    torch.manual_seed(0)
    spec = get_spec("efficientnet_lite0")
    model = create_model("efficientnet_lite0", 2, 224, pretrained=False)
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([0.3, -0.2]))
    path = save_model(root / "lite.pt", model, model_name="efficientnet_lite0", classes=["cat", "dog"],
                      image_size=224, mean=spec.mean, std=spec.std)
    photo = make_image(root / "pet.png", (170, 120, 80), size=(240, 200), seed=5)
    predictor = Predictor(path, "cpu")
    return predictor, photo, explain_backbone(predictor, predictor.preprocess(photo), photo.name)


def test_head_arithmetic_and_softmax_match_the_forward_pass(lite):
    predictor, photo, bx = lite
    x = predictor.to_input(predictor.preprocess(photo)[None])
    with torch.no_grad():
        feats = predictor.model.backbone(x)[0].double().numpy()
        logits = predictor.model(x)[0].double().numpy()
    assert np.abs(bx.features - feats).max() < 1e-5
    for k, u in enumerate(bx.heads):
        shown = sum(c.product for c in u.top) + u.rest_sum + u.bias
        assert abs(shown - logits[k]) < 1e-5 and abs(u.value - logits[k]) < 1e-5
        assert len(u.top) + u.rest_count == 1280
    assert abs(bx.heads[0].bias - 0.3) < 1e-7
    assert np.abs(bx.softmax.probabilities - predictor.probabilities(predictor.preprocess(photo)[None])[0]).max() < 1e-5
    # the blocks as volumes: the stem halves 224, the head's 1x1 convolution gives 1280 maps of 7x7
    shapes = {n: s for n, _k, s in bx.blocks}
    assert shapes["_conv_stem"] == (32, 112, 112) and shapes["_conv_head"] == (1280, 7, 7)
    assert bx.cam.shape == (224, 224) and 0 <= bx.cam.min() and bx.cam.max() <= 1


def test_page_and_cli(lite, tmp_path, capsys):
    predictor, photo, bx = lite
    text = backbone_html(bx)
    assert "score of cat" in text and "score of dog" in text and "data:image/png;base64," in text
    out = tmp_path / "lite.html"
    assert main(["explain", str(predictor.path), str(photo), "--out", str(out)]) == 0
    assert predictor.predict(photo).describe() in capsys.readouterr().out
    page = out.read_text("utf-8")
    assert "A pretrained backbone, shown by its blocks" in page and "_conv_head" in page
    assert main(["explain", str(predictor.path), str(photo), "--out", str(out), "--unit", "c1:1"]) == 2
    assert "--unit is for LeNet-5" in capsys.readouterr().err


def test_the_window_shows_the_simpler_view(qtbot, lite, tmp_path):
    from catdog_gui.core.text import probability_text
    from catdog_gui.gui.network.explainer_view import ExplainerView

    predictor, photo, _bx = lite
    view = ExplainerView()
    qtbot.addWidget(view)
    view.set_predictor(predictor)
    assert not view.overview.isVisibleTo(view)
    with qtbot.waitSignal(view.explained, timeout=60000):
        view.set_photo(predictor.preprocess(photo), photo.name)
    text = view.detail.shown_text()
    assert "A pretrained backbone" in text and "Grad-CAM" in text
    assert all(probability_text(p) in text for _c, p in predictor.predict(photo).probabilities)
    assert not view.animation.play_button.isEnabled() and not view.softmax_button.isEnabled()
    page = view.export_html(tmp_path / "p.html").read_text("utf-8")
    assert "score of dog" in page
    view.shutdown()
