"""The model registry: every architecture the app can train, by name.

A :class:`ModelSpec` says how to build a model and what it expects as input (size and
normalisation). The trainer, the model file and the predictor only ever go through this registry,
so a new architecture plugs in by calling :func:`register` in its module and listing that module in
``_MODULES``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from ..errors import CatdogError

#: modules that register models when imported
_MODULES = ("catdog_gui.core.models.lenet", "catdog_gui.core.models.backbones")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: inputs scaled to [-1, 1]: what LeNet-5 and EfficientNet-Lite expect
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)

ProgressFn = Callable[[int, int], None]  # (bytes_done, bytes_total); total 0 when unknown


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    #: build(num_classes, image_size, pretrained, weights_path, progress) -> nn.Module
    build: Callable[..., nn.Module]
    default_image_size: int
    #: True when the input size cannot be changed (a pretrained backbone's own size)
    fixed_image_size: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: "none" (always trained from scratch), "bundled" (weights ship with a dependency),
    #: "download" (torchvision weights: downloaded once, or a local file)
    pretrained: str = "none"
    description: str = ""
    #: default hyper-parameters that fit this model (keys of TrainConfig)
    defaults: dict = field(default_factory=dict)

    @property
    def is_backbone(self) -> bool:
        return self.pretrained != "none"


_REGISTRY: dict[str, ModelSpec] = {}
_loaded = False


def register(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    return spec


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _MODULES:
            importlib.import_module(mod)


def list_specs() -> list[ModelSpec]:
    _load()
    return list(_REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise CatdogError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}"
        ) from None


def title_of(name: str) -> str:
    """The human title of a registered model, or the name itself for an unknown one."""
    try:
        return get_spec(name).title
    except CatdogError:
        return name


def create_model(
    name: str,
    num_classes: int,
    image_size: Optional[int] = None,
    pretrained: bool = False,
    weights_path: Optional[str] = None,
    progress: Optional[ProgressFn] = None,
) -> nn.Module:
    """Build model ``name`` with a ``num_classes``-way output."""
    spec = get_spec(name)
    if num_classes < 2:
        raise CatdogError("a classifier needs at least 2 classes")
    size = image_size or spec.default_image_size
    if spec.fixed_image_size and size != spec.default_image_size:
        raise CatdogError(f"{spec.title} takes {spec.default_image_size}x{spec.default_image_size} images only")
    if pretrained and not spec.is_backbone:
        raise CatdogError(f"{spec.title} has no pretrained weights; pick a pretrained backbone for transfer learning")
    return spec.build(
        num_classes=num_classes, image_size=size, pretrained=pretrained, weights_path=weights_path, progress=progress
    )


class BackboneClassifier(nn.Module):
    """A pretrained feature extractor followed by a new K-way linear head.

    ``backbone`` maps normalised images (N, 3, H, W) to pooled features (N, feature_dim).
    ``finetune_modules`` names the backbone's later blocks that fine-tuning unfreezes.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int, finetune_modules: list[nn.Module]):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.head = nn.Linear(feature_dim, num_classes)
        self._finetune = finetune_modules  # plain list: not registered twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def finetune_parameters(self) -> list[nn.Parameter]:
        return [p for m in self._finetune for p in m.parameters()]

    def set_backbone_trainable(self, mode: str) -> None:
        """``"frozen"``: only the head learns; ``"finetune"``: the later blocks learn too."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        if mode == "finetune":
            for p in self.finetune_parameters():
                p.requires_grad_(True)


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str
    kernel: str
    stride: str
    out_shape: tuple[int, ...]  # (C, H, W) or (F,)
    params: int


def summary(model: nn.Module, image_size: int) -> list[LayerInfo]:
    """Each layer's output volume and parameter count, from a forward pass with hooks.

    Reports the model's own layers (LeNet's C1..output) or, for deep models, the leaf modules.
    """
    records: list[LayerInfo] = []
    hooks = []
    named = getattr(model, "summary_layers", None)
    layers = named() if callable(named) else [(n, m) for n, m in model.named_modules() if n and not list(m.children())]

    def make_hook(name, module):
        def hook(_m, _inp, out):
            if isinstance(out, torch.Tensor):
                k = getattr(module, "kernel_size", "")
                s = getattr(module, "stride", "")
                k = "x".join(map(str, k)) if isinstance(k, tuple) else (str(k) if k != "" else "")
                s = "x".join(map(str, s)) if isinstance(s, tuple) else (str(s) if s != "" else "")
                eff = getattr(module, "effective_params", None)
                own = eff() if callable(eff) else sum(p.numel() for p in module.parameters())
                records.append(LayerInfo(name, type(module).__name__, k, s, tuple(out.shape[1:]), own))
        return hook

    for name, m in layers:
        hooks.append(m.register_forward_hook(make_hook(name, m)))
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return records
