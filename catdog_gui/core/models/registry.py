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
from ..events import CountProgress

#: modules that register models when imported
_MODULES = ("catdog_gui.core.models.lenet", "catdog_gui.core.models.backbones")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: inputs scaled to [-1, 1]: what LeNet-5 and EfficientNet-Lite expect
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)



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
    progress: Optional[CountProgress] = None,
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


@dataclass
class TrainPhase:
    """One phase of training, as the model describes it (after minGPT's ``configure_optimizers``).

    The trainer knows nothing about model classes: it asks :func:`training_phases` and runs each
    phase in turn. ``params`` are what the phase's optimizer updates (every other parameter is
    frozen); ``learning`` is the module that switches between train and eval mode (the whole model,
    or only a new head, so a pretrained backbone keeps its BatchNorm statistics). With ``frozen``
    set, the phase's inputs go through that fixed feature extractor and then ``head``: the trainer
    may compute the features once and train ``head`` on them.
    """

    name: str  # "train", or "finetune" for a second, gentler phase
    epochs: int
    lr: float
    params: list
    learning: nn.Module
    frozen: Optional[nn.Module] = None
    head: Optional[nn.Module] = None


def training_phases(model: nn.Module, config) -> list[TrainPhase]:
    """The phases ``model`` trains in under ``config`` (a TrainConfig): the model's own
    ``training_phases(config)`` if it has one, else one phase in which every weight learns."""
    hook = getattr(model, "training_phases", None)
    if callable(hook):
        return hook(config)
    return [TrainPhase("train", config.epochs, config.lr, list(model.parameters()), model)]


def feature_parts(model: nn.Module) -> Optional[tuple[nn.Module, nn.Module]]:
    """(feature extractor, head) with ``model(x) == head(extractor(x))``, from the model's own
    ``feature_parts()`` if it has one; None for a model that does not split so (LeNet-5). The
    predictor may run the extractor elsewhere (onnxruntime) and the head in PyTorch."""
    hook = getattr(model, "feature_parts", None)
    return hook() if callable(hook) else None


def prefers_channels_last(model: nn.Module) -> bool:
    """Whether ``model`` runs faster with NHWC (channels_last) inputs on CPU (its ``channels_last`` flag)."""
    return bool(getattr(model, "channels_last", False))


class ModelInput:
    """Images as the model sees them, for training, validation and prediction alike: uint8
    (N, 3, S, S) -> float in [0, 1] on the device (:meth:`to_unit`) -> normalised with the model's
    mean and std, in the model's preferred memory layout (:meth:`normalize`). Augmentation runs
    between the two steps."""

    def __init__(self, mean, std, device: torch.device, channels_last: bool = False):
        self.mean = torch.tensor(list(mean), dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.device = device
        self.channels_last = channels_last

    def to_unit(self, x) -> torch.Tensor:
        x = torch.as_tensor(x).to(self.device, non_blocking=True).float().div_(255.0)
        return x.unsqueeze(0) if x.dim() == 3 else x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __call__(self, x) -> torch.Tensor:
        return self.normalize(self.to_unit(x))


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

    #: deep convolutional backbones run 1.5-1.9x faster on CPU in channels_last (NHWC) layout
    #: (bench: EfficientNet-Lite0 1.49x, ResNet-18 1.89x, MobileNetV3-Large 1.50x)
    channels_last = True

    def training_phases(self, config) -> list[TrainPhase]:
        """From scratch: every weight learns. Pretrained: the new head learns on the frozen
        backbone's features; with ``transfer_mode="finetune"`` a second phase then lets the later
        blocks learn too, at ``lr * finetune_lr_factor``."""
        if not config.pretrained:
            return [TrainPhase("train", config.epochs, config.lr, list(self.parameters()), self)]
        head = list(self.head.parameters())
        phases = [TrainPhase("train", config.epochs, config.lr, head, self.head, frozen=self.backbone,
                             head=self.head)]
        if config.transfer_mode == "finetune" and config.finetune_epochs > 0:
            # a backbone that can split where fine-tuning starts has its frozen lower part's output
            # computed once per photo (like features), and only the upper part runs each step
            split = getattr(self.backbone, "finetune_split", None)
            below, above = split(self.head) if callable(split) else (None, self.head)
            phases.append(TrainPhase("finetune", config.finetune_epochs, config.lr * config.finetune_lr_factor,
                                     head + self.finetune_parameters(), self.head, frozen=below, head=above))
        return phases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def feature_parts(self) -> tuple[nn.Module, nn.Module]:
        return self.backbone, self.head

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
