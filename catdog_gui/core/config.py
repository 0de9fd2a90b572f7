"""TrainConfig: the one description of every training setting.

Each field carries its own metadata (label, help text, range, choices, command-line flag) through
:func:`setting`. Everything else is derived from that one declaration:

* :meth:`TrainConfig.validate` checks ranges and choices;
* ``catdog train``'s flags come from :func:`add_cli_arguments` / :func:`overrides_from_cli`;
* the GUI's Advanced form builds its spin boxes and combo boxes from :meth:`TrainConfig.settings`;
* the GUI's saved settings read and write the same fields (``gui/settings.py``);
* the model file stores :meth:`TrainConfig.to_dict`.

This module imports neither torch nor Qt: the window can build its form before torch has loaded.
The model registry (which needs torch) is imported only when a model name is checked.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Optional

from .data.augment import AugmentSettings
from .errors import CatdogError

#: the model ``--pretrained`` (or ``pretrained=True``) trains when no model is named: its
#: ImageNet weights ship with a dependency, so transfer learning works offline. Chosen by measured
#: accuracy for the time (docs/performance.md, "Transfer learning"): on catdog-1800, 2 CPU cores,
#: seeds 0-2, validation accuracy Lite0 98.3/99.2/99.7%, Lite1 99.4/100/100%, Lite2 99.7/99.7/99.7%;
#: a cold `catdog train --pretrained` 23 / 27 / 33 s of training (onnxruntime features)
DEFAULT_PRETRAINED_MODEL = "efficientnet_lite1"
DEFAULT_MODEL = "lenet5"


def default_model(pretrained: bool) -> str:
    """The model to train when none is named (LeNet-5 has no pretrained weights)."""
    return DEFAULT_PRETRAINED_MODEL if pretrained else DEFAULT_MODEL


@dataclass(frozen=True)
class Setting:
    """One training setting, as the CLI, the form, the settings file and validation see it."""

    name: str
    kind: type  # int, float, bool or str
    default: Any
    label: str  # "Learning rate": the form's label; lower-cased in messages
    help: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: tuple = ()
    optional: bool = False  # None is allowed (and means "automatic")
    step: Optional[float] = None  # the form's spin-box step
    decimals: int = 0  # the form's decimals for floats
    #: command-line flag ("" = none); for bools a plain switch, for ``cli_const`` a switch that sets it
    cli: str = ""
    cli_const: Any = None
    cli_help: str = ""  # the flag's help when it differs from ``help`` (a switch that turns a default off)
    #: shown in the GUI's Advanced form
    form: bool = False

    def check(self, value: Any) -> Optional[str]:
        """A message saying what is wrong with ``value``, or None when it is allowed."""
        noun = self.label.lower()
        if value is None:
            return None if self.optional else f"{noun} must be set"
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                return f"{noun} must be a number"
            if self.kind is int and int(value) != value:
                return f"{noun} must be a whole number"
            lo, hi = self.min, self.max
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                if hi is None:
                    return f"{noun} must be at least {lo:g}"
                if lo is None:
                    return f"{noun} must be at most {hi:g}"
                return f"{noun} must be between {lo:g} and {hi:g}"
        elif self.kind is bool and not isinstance(value, bool):
            return f"{noun} must be true or false"
        if self.choices and value not in self.choices:
            return f"{noun} must be one of {', '.join(map(str, self.choices))}"
        return None

    def coerce(self, value: Any) -> Any:
        """``value`` (from a settings file: maybe text) as this setting's type, or raise ValueError."""
        if value is None or (isinstance(value, str) and value == "" and self.optional):
            if self.optional:
                return None
            raise ValueError(self.name)
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError(self.name)
        if self.kind is int:
            f = float(value)
            if f != int(f):
                raise ValueError(self.name)
            return int(f)
        if self.kind is float:
            return float(value)
        return str(value)


def setting(default: Any, label: str, help: str, **meta) -> Any:
    """A dataclass field with its :class:`Setting` metadata (name and type are filled in later)."""
    kw = {"default_factory": default} if callable(default) else {"default": default}
    return field(metadata={"setting": dict(label=label, help=help, **meta)}, **kw)


OPTIMIZERS = ("adam", "adamw", "sgd")
#: the learning-rate schedules (core/training/schedule.py, which imports torch: named here too)
SCHEDULES = ("constant", "onecycle", "cosine")
TRANSFER_MODES = ("frozen", "finetune")
_KINDS = {"int": int, "float": float, "bool": bool, "str": str,
          "Optional[int]": int, "Optional[float]": float, "Optional[str]": str}


@dataclass
class TrainConfig:
    """Every setting of a training run. The CLI flags, the GUI form and the model file all use it."""

    model: str = setting(DEFAULT_MODEL, "Model", "architecture (see `catdog models`); default lenet5, or "
                         f"{DEFAULT_PRETRAINED_MODEL} with --pretrained", cli="--model")
    epochs: int = setting(30, "Epochs", "How many times training goes through every training photo. More "
                          "epochs learn more, until the model starts memorising (early stopping ends it then).",
                          min=1, max=1000, cli="--epochs", form=True)
    batch_size: int = setting(32, "Batch size", "Photos per training step. Larger batches are faster per photo "
                              "but need more memory.", min=1, max=4096, cli="--batch-size", form=True)
    lr: float = setting(1e-3, "Learning rate", "How big each training step is. Too high and training "
                        "diverges; too low and it learns slowly.", min=1e-6, max=10.0, step=1e-4, decimals=5,
                        cli="--lr", form=True)
    optimizer: str = setting("adam", "Optimizer", "How the weights are updated from each batch's gradients.",
                             choices=OPTIMIZERS, cli="--optimizer")
    weight_decay: float = setting(0.0, "Weight decay", "Pulls weights towards zero each step, against "
                                  "over-fitting (0 = off).", min=0.0, max=1.0, cli="--weight-decay")
    schedule: str = setting("constant", "Learning-rate schedule", "How the learning rate changes during training: "
                            "constant; one-cycle (up from a 25th of it to the learning rate over the first "
                            "30% of the steps, then down to almost 0); cosine (a short warm-up, then down "
                            "to 0). The learning rate is the highest it reaches.",
                            choices=SCHEDULES, cli="--schedule", form=True)
    image_size: Optional[int] = setting(None, "Image size", "Photos are resized to this many pixels square "
                                        "before the network sees them (pretrained models need their own size).",
                                        min=16, max=1024, optional=True, step=8, cli="--image-size", form=True)
    seed: int = setting(0, "Random seed", "Makes a run repeatable: the same seed gives the same split, "
                        "initial weights and shuffling.", min=0, max=2**31 - 1, cli="--seed", form=True)
    val_fraction: float = setting(0.2, "Validation fraction", "Share of the photos held out to measure the model "
                                  "on photos it did not train on (when there is no separate validation folder).",
                                  min=0.05, max=0.5, step=0.05, decimals=2, cli="--val-fraction", form=True)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    pretrained: bool = setting(False, "Pretrained", "transfer learning from ImageNet weights (default model then: "
                               f"{DEFAULT_PRETRAINED_MODEL})", cli="--pretrained")
    transfer_mode: str = setting("frozen", "Transfer mode", "with --pretrained: after the new head converges, also "
                                 "train the backbone's last blocks", choices=TRANSFER_MODES, cli="--finetune",
                                 cli_const="finetune")
    finetune_epochs: int = setting(3, "Fine-tuning epochs", "Epochs of fine-tuning after the new head has "
                                   "converged.", min=0, max=100, cli="--finetune-epochs")
    finetune_lr_factor: float = setting(0.1, "Fine-tuning learning-rate factor", "The backbone learns at the "
                                        "learning rate times this.", min=1e-4, max=1.0, cli="--finetune-lr-factor")
    patience: int = setting(8, "Early-stopping patience", "Stop after this many epochs without a better "
                            "validation loss or accuracy (0: never stop early).", min=0, max=1000,
                            cli="--patience", form=True)
    tta: bool = setting(False, "Mirror averaging", "When classifying, average the answers for the photo and its "
                        "mirror image (test-time augmentation): a little slower, sometimes more accurate",
                        cli="--tta", form=False)
    device: str = setting("auto", "Device", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps",
                          cli="--device")
    weights_path: Optional[str] = setting(None, "Pretrained weights file", "local file with a torchvision "
                                          "backbone's pretrained weights, for computers without internet "
                                          "(implies --pretrained)",
                                          optional=True, cli="--weights")
    #: CPU threads for the math; 0 = automatic: the model's own hint (1 for LeNet-5, whose tiny
    #: layers lose more to thread synchronisation than they gain), else every core
    threads: int = setting(0, "CPU threads", "threads for the math (0: automatic)", min=0, max=1024,
                           cli="--threads")
    #: keep decoded images (and a frozen backbone's features) on disk (user cache folder) so the next
    #: run on unchanged files starts at once
    disk_cache: bool = setting(True, "Disk cache", "keep decoded photos and backbone features in the user cache "
                               "folder so the next run starts at once", cli="--no-disk-cache",
                               cli_help="do not keep decoded photos or backbone features in the user cache folder")

    # -- the declaration, as data -----------------------------------------------------------
    @classmethod
    def settings(cls) -> tuple[Setting, ...]:
        """Every field's :class:`Setting`, in declaration order (``augment`` has its own class)."""
        out = []
        for f in fields(cls):
            meta = f.metadata.get("setting")
            if meta is None:
                continue
            kind = _KINDS[f.type] if isinstance(f.type, str) else f.type
            default = f.default if f.default is not MISSING else f.default_factory()
            out.append(Setting(name=f.name, kind=kind, default=default, **meta))
        return tuple(out)

    @classmethod
    def setting(cls, name: str) -> Setting:
        for s in cls.settings():
            if s.name == name:
                return s
        raise KeyError(name)

    @classmethod
    def for_model(cls, model: str, **overrides) -> "TrainConfig":
        """A config with the defaults that fit ``model`` (see ``ModelSpec.defaults``).

        With augmentation on (``augment=AugmentSettings(enabled=True)``), epochs and patience that
        were not given explicitly follow :meth:`AugmentSettings.recommended_epochs`: augmented
        training learns more slowly.
        """
        from .models import get_spec

        spec = get_spec(model)
        values = {k: v for k, v in spec.defaults.items() if k in {f.name for f in fields(cls)}}
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        aug = values.get("augment")
        if isinstance(aug, AugmentSettings) and aug.enabled:
            epochs, patience = aug.recommended_epochs(values.get("epochs", cls.epochs),
                                                      values.get("patience", cls.patience))
            if "epochs" not in given:
                values["epochs"] = epochs
            if "patience" not in given:
                values["patience"] = patience
        return cls(model=model, **values)

    def validate(self) -> "TrainConfig":
        from .models import get_spec

        get_spec(self.model)
        for s in self.settings():
            problem = s.check(getattr(self, s.name))
            if problem:
                raise CatdogError(problem)
        if not isinstance(self.augment, AugmentSettings):
            raise CatdogError("augment must be an AugmentSettings")
        self.augment.validate()
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        aug = AugmentSettings.from_dict(d.pop("augment", None))
        return cls(augment=aug, **{k: v for k, v in d.items() if k in known and k != "augment"})


# ------------------------------------------------------------------------------------------------
# the command line, derived


def _cli_type(s: Setting):
    def parse(text: str):
        try:
            value = s.coerce(text)
        except ValueError:
            kind = "whole number" if s.kind is int else "number"
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}") from None
        problem = s.check(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


def _num(v: float, kind: type) -> str:
    return f"{int(v):,}" if kind is int else f"{v:g}"


def add_cli_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per :class:`Setting` with a ``cli`` name (defaults None: "not given")."""
    for s in TrainConfig.settings():
        if not s.cli or s.name in skip:
            continue
        dest, text = s.name, s.cli_help or s.help
        if s.kind is bool:
            action = "store_false" if s.default else "store_true"
            parser.add_argument(s.cli, dest=dest, action=action, default=None, help=text)
        elif s.cli_const is not None:
            parser.add_argument(s.cli, dest=dest, action="store_const", const=s.cli_const, default=None, help=text)
        else:
            extra = {"choices": s.choices} if s.choices else {"type": _cli_type(s)}
            if s.kind in (int, float) and s.min is not None and s.max is not None:
                text += f" ({_num(s.min, s.kind)} to {_num(s.max, s.kind)})"
            metavar = {int: "N", float: "X"}.get(s.kind, "FILE" if s.name.endswith("_path") else None)
            if s.choices:
                metavar = None
            parser.add_argument(s.cli, dest=dest, default=None, help=text, metavar=metavar, **extra)


def overrides_from_cli(args: argparse.Namespace) -> dict:
    """The settings given on the command line (flags left out are not in the dict)."""
    out = {}
    for s in TrainConfig.settings():
        if s.cli and getattr(args, s.name, None) is not None:
            out[s.name] = getattr(args, s.name)
    return out


def make_config(model: Optional[str] = None, *, pretrained: bool = False, finetune: bool = False,
                augment=None, **settings) -> TrainConfig:
    """A TrainConfig from what a person asked for: the default model when none is named
    (:func:`default_model`), the model's own defaults, and every setting given (None
    means "not given"). Unknown names raise CatdogError listing the known ones. The one builder: the
    CLI, the API and the window's Training form all make their config here; the Trainer validates it."""
    known = {s.name for s in TrainConfig.settings()}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise CatdogError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                          f"TrainConfig has {', '.join(sorted(known | {'augment'}))}")
    # a pretrained-weights file means transfer learning from it (not training every weight from there)
    if pretrained or settings.get("weights_path"):
        settings["pretrained"] = True
    if finetune:
        settings["transfer_mode"] = "finetune"
    name = model or default_model(bool(settings.get("pretrained")))
    return TrainConfig.for_model(name, augment=augment, **settings)
