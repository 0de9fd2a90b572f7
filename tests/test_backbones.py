"""Pretrained backbones: EfficientNet-Lite0 (bundled weights), torchvision downloads, local files.

No test touches the network: "offline" is a urlopen that raises, downloads come from file:// URLs,
and torch's hub directory points into tmp_path.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from catdog_gui.core.data import imageio
from catdog_gui.core.errors import CatdogError, WeightsUnavailableError
from catdog_gui.core.models import backbones as B
from catdog_gui.core.models import weights as W
from catdog_gui.core.models.registry import IMAGENET_MEAN, IMAGENET_STD, create_model, get_spec


@pytest.fixture
def hub_dir(tmp_path):
    """torch.hub's directory inside tmp_path; the previous one is restored afterwards."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        yield tmp_path / "hub" / "checkpoints"
    finally:
        torch.hub.set_dir(old)


@pytest.fixture
def offline(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    """A random-init torchvision ResNet-18 state dict, saved as torchvision's weights are."""
    import torchvision

    torch.manual_seed(0)
    sd = torchvision.models.resnet18(weights=None).state_dict()
    data = io.BytesIO()
    torch.save(sd, data)
    raw = data.getvalue()
    folder = tmp_path_factory.mktemp("weights")
    # named like torchvision's files: <name>-<first 8 hex digits of the SHA-256>.pth
    path = folder / f"resnet18-{hashlib.sha256(raw).hexdigest()[:8]}.pth"
    path.write_bytes(raw)
    return path, sd


# --- EfficientNet-Lite0 ------------------------------------------------------------------------------


def test_lite0_bundled_weights_load_strictly():
    path = B.bundled_lite0_path()
    file_sd = torch.load(path, map_location="cpu", weights_only=True)
    model = B.load_imagenet_lite0()
    own = model.state_dict()
    assert set(own) == set(file_sd)
    assert len(own) == 296
    for key in ("_blocks.15._project_conv.weight", "_bn1.running_var", "_fc.weight"):
        assert torch.equal(own[key], file_sd[key])

    clf = create_model("efficientnet_lite0", 3, pretrained=True)
    feats = clf.backbone.state_dict()
    assert set(feats) == {k for k in file_sd if not k.startswith("_fc.")}
    assert torch.equal(feats["_blocks.7._depthwise_conv.weight"], file_sd["_blocks.7._depthwise_conv.weight"])
    assert clf.head.out_features == 3 and clf.feature_dim == 1280


@pytest.mark.parametrize("name, size, blocks, head_in", [("efficientnet_lite1", 240, 21, 320),
                                                         ("efficientnet_lite2", 260, 21, 352)])
def test_lite1_lite2_bundled_weights_load_strictly(name, size, blocks, head_in):
    path = B.bundled_lite_path(name)
    file_sd = torch.load(path, map_location="cpu", weights_only=True)
    model = B.load_imagenet_lite(name)
    own = model.state_dict()
    assert set(own) == set(file_sd) and len(own) == 386  # every tensor of the file, nothing else
    assert all(own[k].shape == file_sd[k].shape for k in own)
    last = f"_blocks.{blocks - 1}._project_conv.weight"
    for key in (last, "_blocks.7._depthwise_conv.weight", "_bn1.running_var", "_fc.weight"):
        assert torch.equal(own[key], file_sd[key])
    assert own["_conv_head.weight"].shape == (1280, head_in, 1, 1)

    clf = create_model(name, 2, pretrained=True)
    assert set(clf.backbone.state_dict()) == {k for k in file_sd if not k.startswith("_fc.")}
    assert clf.feature_dim == 1280 and clf.head.out_features == 2
    # strict: a file with one tensor missing, or one extra, is refused with a readable error
    for broken in ({k: v for k, v in file_sd.items() if k != last}, {**file_sd, "_blocks.99.x": torch.zeros(1)}):
        with pytest.raises(CatdogError, match="is not EfficientNet-Lite"):
            W.load_into(B.EfficientNetLite(name, 1000), broken, B.LITE_VARIANTS[name].title, path.name)
    spec = get_spec(name)
    assert spec.pretrained == "bundled" and spec.fixed_image_size and spec.default_image_size == size
    assert f"{size}x{size}" in spec.description and "multiply-adds" in spec.description
    assert spec.defaults == get_spec("efficientnet_lite0").defaults
    with pytest.raises(CatdogError, match=f"{size}x{size}"):
        create_model(name, 2, image_size=224)


def test_lite_scaling_rules():
    # EfficientNet's rounding: to a multiple of 8, never more than 10% below width x filters
    assert [B.round_filters(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 48, 88, 120, 208, 352]
    assert [B.round_filters(c, 1.0) for c in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 40, 80, 112, 192, 320]
    assert B.round_filters(32, 0.5) == 16 and B.round_filters(11, 1.0) == 16  # 11 -> 8 would be < 90%: 16
    assert [B.round_repeats(r, 1.2) for r in (1, 2, 3, 4)] == [2, 3, 4, 5]
    # the Lite family keeps the first and last stages' repeats
    assert [s[4] for s in B.LITE_VARIANTS["efficientnet_lite2"].stages()] == [1, 3, 3, 4, 4, 5, 1]
    assert [s[4] for s in B.LITE_VARIANTS["efficientnet_lite0"].stages()] == [1, 2, 2, 3, 3, 4, 1]
    # fine-tuning opens the same part of each network: from the second block of the 192/208-channel stage
    assert [B.LITE_VARIANTS[n].finetune_from() for n in B.LITE_VARIANTS] == [12, 16, 16]


def test_lite0_without_pretrained_never_reads_the_bundled_file(monkeypatch):
    pretrained_keys = set(create_model("efficientnet_lite0", 2, pretrained=True).state_dict())

    def boom():
        raise AssertionError("bundled weights read for pretrained=False")

    monkeypatch.setattr(B, "bundled_lite0_path", boom)
    model = create_model("efficientnet_lite0", 2, pretrained=False)
    assert set(model.state_dict()) == pretrained_keys
    with torch.no_grad():
        # (a small input keeps the test fast; the pooled features do not depend on the size)
        assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def test_same_padding_is_tensorflow_style():
    torch.manual_seed(0)
    conv = B.SameConv2d(3, 4, 3, stride=2)
    x = torch.randn(1, 3, 224, 224)
    # TF "SAME" for an even input and stride 2 pads 0 before and 1 after on each axis
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    conv5 = B.SameConv2d(3, 4, 5, stride=2)
    expected5 = F.conv2d(F.pad(x, (1, 2, 1, 2)), conv5.weight, stride=2)
    assert torch.allclose(conv5(x), expected5, atol=1e-6)
    assert B.SameConv2d(3, 4, 5)(x).shape[-2:] == (224, 224)


def _photos(per_class: int) -> list[tuple[Path, str]]:
    root = os.environ.get("CATDOG_TEST_DATA")
    if not root or not (Path(root) / "cat").is_dir() or not (Path(root) / "dog").is_dir():
        pytest.skip("CATDOG_TEST_DATA not set: point it at a folder with cat/ and dog/ subfolders of photos")
    out = []
    for label in ("cat", "dog"):
        files = sorted(p for p in (Path(root) / label).iterdir() if imageio.is_image_name(p))[:per_class]
        out += [(p, label) for p in files]
    return out


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_lite_imagenet_predictions_on_real_photos(name):
    photos = _photos(6)
    spec = get_spec(name)
    size = spec.default_image_size
    assert spec.mean == B.LITE_MEAN and spec.std == B.LITE_STD
    x = np.stack([imageio.load_square_array(p, size) for p, _ in photos]).astype(np.float32) / 255.0
    x = torch.from_numpy(x).permute(0, 3, 1, 2)
    x = (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        top1 = B.load_imagenet_lite(name)(x).argmax(1).tolist()
    right = [
        (281 <= c <= 285) if label == "cat" else (151 <= c <= 268)
        for c, (_, label) in zip(top1, photos)
    ]
    assert sum(right) >= 0.75 * len(photos), list(zip([p.name for p, _ in photos], top1))


def test_backbone_trainable_modes():
    model = create_model("efficientnet_lite0", 2, pretrained=False)
    model.set_backbone_trainable("frozen")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}

    model.set_backbone_trainable("finetune")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"head.weight", "backbone._conv_head.weight", "backbone._bn1.weight",
            "backbone._blocks.15._project_conv.weight", "backbone._blocks.12._expand_conv.weight"} <= trainable
    assert not any(n.startswith(("backbone._conv_stem", "backbone._bn0", "backbone._blocks.11.")) for n in trainable)

    resnet = create_model("resnet18", 2, pretrained=False)
    resnet.set_backbone_trainable("finetune")
    trainable = {n.split(".")[1] for n, p in resnet.named_parameters() if p.requires_grad and n.startswith("backbone.")}
    assert trainable == {"layer4"}


def test_feature_dims_and_specs():
    x = torch.zeros(1, 3, 64, 64)  # pooled: the feature size does not depend on the input size
    for name, dim in (("resnet18", 512), ("mobilenet_v3_large", 960)):
        model = create_model(name, 2, pretrained=False).eval()
        with torch.no_grad():
            assert model.backbone(x).shape == (1, dim)
        assert model.feature_dim == dim
        spec = get_spec(name)
        assert spec.pretrained == "download" and spec.mean == IMAGENET_MEAN and spec.std == IMAGENET_STD
        assert spec.fixed_image_size and spec.default_image_size == 224
    with pytest.raises(CatdogError, match="224x224"):
        create_model("resnet18", 2, image_size=128)


# --- torchvision weights: local files, cache, downloads ----------------------------------------------


def test_local_weights_file_is_loaded(resnet_file, hub_dir, offline):
    path, sd = resnet_file
    model = create_model("resnet18", 2, pretrained=True, weights_path=str(path))
    got = model.backbone.state_dict()
    for key in ("conv1.weight", "layer4.1.bn2.running_mean", "layer2.0.downsample.0.weight"):
        assert torch.equal(got[key], sd[key])
    assert not offline  # a local file needs no network

    wrapped = path.parent / "wrapped.pt"
    torch.save({"state_dict": sd, "epoch": 3}, wrapped)
    model = create_model("resnet18", 2, pretrained=True, weights_path=str(wrapped))
    assert torch.equal(model.backbone.state_dict()["layer3.0.conv1.weight"], sd["layer3.0.conv1.weight"])


def test_wrong_weights_file_is_a_user_error(tmp_path, hub_dir, offline):
    import torchvision

    other = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), other)
    with pytest.raises(CatdogError, match=r"mobilenet\.pth is not ResNet-18 weights"):
        create_model("resnet18", 2, pretrained=True, weights_path=str(other))

    junk = tmp_path / "notes.pth"
    junk.write_bytes(b"certainly not a torch file")
    with pytest.raises(CatdogError, match=r"notes\.pth is not a ResNet-18 weights file"):
        create_model("resnet18", 2, pretrained=True, weights_path=str(junk))

    with pytest.raises(CatdogError, match="not found"):
        create_model("resnet18", 2, pretrained=True, weights_path=str(tmp_path / "missing.pth"))


def test_offline_and_not_cached_says_what_to_do(hub_dir, offline):
    info = B.torchvision_weights_info("resnet18")
    with pytest.raises(WeightsUnavailableError) as caught:
        create_model("resnet18", 2, pretrained=True)
    msg = str(caught.value)
    assert info.file_name in msg and info.file_name.startswith("resnet18-")
    assert str(hub_dir) in msg
    assert info.url in msg
    assert offline, "a download was tried"
    assert not hub_dir.exists() or not any(hub_dir.iterdir())  # no partial file left


def test_cached_weights_are_used_without_network(resnet_file, hub_dir, offline, monkeypatch):
    path, sd = resnet_file
    monkeypatch.setattr(B, "_tv_weights", lambda name: SimpleNamespace(url=f"https://example.invalid/{path.name}"))
    hub_dir.mkdir(parents=True)
    (hub_dir / path.name).write_bytes(path.read_bytes())
    model = create_model("resnet18", 2, pretrained=True)
    assert torch.equal(model.backbone.state_dict()["layer1.0.conv2.weight"], sd["layer1.0.conv2.weight"])
    assert not offline


def test_download_reports_progress_and_lands_in_the_cache(resnet_file, hub_dir, monkeypatch):
    path, sd = resnet_file
    monkeypatch.setattr(B, "_tv_weights", lambda name: SimpleNamespace(url=path.as_uri()))
    calls = []
    model = create_model("resnet18", 2, pretrained=True, progress=lambda done, total: calls.append((done, total)))
    size = path.stat().st_size
    done = [d for d, _ in calls]
    assert len(calls) > 2 and done == sorted(done) and done[0] == 0 and done[-1] == size
    assert all(t == size for _, t in calls)
    assert [p.name for p in hub_dir.iterdir()] == [path.name]  # the cache holds the file, no leftovers
    assert torch.equal(model.backbone.state_dict()["layer4.0.conv1.weight"], sd["layer4.0.conv1.weight"])


def test_corrupt_or_broken_download_leaves_nothing(tmp_path, hub_dir, monkeypatch):
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(300_000))
    with pytest.raises(CatdogError, match="corrupt"):
        W.download(src.as_uri(), hub_dir / "thing-0123abcd.pth")
    assert not any(hub_dir.iterdir())

    class Broken:
        headers = {"Content-Length": "300000"}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __init__(self):
            self.sent = False

        def read(self, n):
            if self.sent:
                raise ConnectionResetError("connection reset by peer")
            self.sent = True
            return b"x" * 1000

    monkeypatch.setattr(W, "_open_url", lambda url, timeout: Broken())
    with pytest.raises(WeightsUnavailableError, match="broke off"):
        W.fetch("https://example.invalid/thing-0123abcd.pth", "Thing")
    assert not any(hub_dir.iterdir())


class _RunsCode:
    """A pickle that runs code when it is loaded: writes a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_weights_file_with_code_in_it_is_refused_and_its_code_never_runs(tmp_path):
    """``--weights FILE`` is read with ``weights_only=True``: a file whose unpickling would run code is a
    user error, and the code does not run."""
    import torch

    from catdog_gui.core.errors import CatdogError
    from catdog_gui.core.models.weights import load_state_dict_file

    marker = tmp_path / "the-code-ran"
    bad = tmp_path / "weights.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(1)}, "extra": _RunsCode(marker)}, bad)
    with pytest.raises(CatdogError, match="could not read it safely"):
        load_state_dict_file(bad, "ResNet-18")
    assert not marker.exists()
