"""The one-file model format: weights plus everything needed to predict.

A model file is a ``torch.save`` archive of plain data only::

    {"format": "catdog-gui-model", "version": 1,
     "meta": {"model": "lenet5", "classes": [...], "image_size": 32, "mean": [...], "std": [...],
              "config": {...TrainConfig...}, "metrics": {...}, "versions": {...}, "created": "..."},
     "state_dict": {name: tensor}}

It is read with ``torch.load(weights_only=True)``, so a file that would need to run code while
unpickling is refused before any of it runs. Files are written to a temporary file in the same
folder and renamed into place: a crash or a full disk never leaves a half-written model behind.
"""

from __future__ import annotations

import datetime as _dt
import math
import pickle
import platform
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..errors import CatdogError, ModelFileError
from .files import _UMASK, atomic_write  # noqa: F401  (atomic_write lives in .files, torch-free)

FORMAT = "catdog-gui-model"
VERSION = 1
SUFFIX = ".pt"


@dataclass
class ModelInfo:
    """The metadata of a model file, with easy access to what prediction needs."""

    meta: dict
    #: named tensors beside the weights (the unfamiliarity statistics); empty in older files
    extras: dict = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.meta["model"]

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.meta["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.meta["std"])

    @property
    def config(self) -> dict:
        return dict(self.meta.get("config") or {})

    @property
    def metrics(self) -> dict:
        return dict(self.meta.get("metrics") or {})


def _plain(x: Any) -> Any:
    """Meta must be plain data that ``weights_only`` loading accepts."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if x is None:
        return None
    for t in (bool, int, float, str):  # exact builtin types: subclasses (numpy, TorchVersion) would not load
        if isinstance(x, t):
            return t(x)
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item"):
        return x.item()
    return str(x)


def library_versions() -> dict:
    import torchvision

    from ... import __version__

    return {"catdog_gui": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version()}


def save_model(
    path: Path | str,
    model: nn.Module,
    *,
    model_name: str,
    classes: list[str],
    image_size: int,
    mean,
    std,
    config: Optional[dict] = None,
    metrics: Optional[dict] = None,
    first_epoch: Optional[tuple[int, dict]] = None,
    extra_meta: Optional[dict] = None,
    extras: Optional[dict] = None,
) -> Path:
    """``extra_meta``: more plain metadata (e.g. "calibration", "unfamiliar"); ``extras``: named
    tensors kept beside the weights (the unfamiliarity statistics)."""
    meta = _plain({**(extra_meta or {}),
        "model": model_name, "classes": list(classes), "image_size": int(image_size),
        "mean": list(mean), "std": list(std), "config": config or {}, "metrics": metrics or {},
        "versions": library_versions(), "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    })
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "meta": meta, "state_dict": state}
    if first_epoch is not None:  # a small model's weights after its first saved epoch (the explainer's "before")
        payload["first_epoch"] = {"epoch": int(first_epoch[0]),
                                  "state_dict": {k: v.detach().to("cpu").clone() for k, v in first_epoch[1].items()}}
    if extras:
        payload["extras"] = {str(k): torch.as_tensor(v).detach().to("cpu").clone() for k, v in extras.items()}
    return atomic_write(path, lambda f: torch.save(payload, f))


def read_model_file(path: Path | str) -> tuple[ModelInfo, dict]:
    """Load (metadata, state_dict) safely, or raise :class:`ModelFileError` saying why not."""
    path = Path(path).expanduser()
    name = path.name
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "weights_only" in text or "Unsupported global" in text or "unsafe" in text.lower():
            raise ModelFileError(
                f"{name} was refused: loading it would run code stored in the file, which a model "
                "file never needs. Only open model files from people you trust, saved by catdog-gui"
            ) from None
        raise ModelFileError(f"{name} is not a catdog-gui model file (unreadable contents)") from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError, OSError) as e:
        if isinstance(e, PermissionError):
            raise ModelFileError(f"{name}: permission denied") from None
        msg = str(e)
        if "zip" in msg.lower() or isinstance(e, (EOFError, zipfile.BadZipFile)) or "central directory" in msg:
            raise ModelFileError(f"{name} is damaged or incomplete (was the copy interrupted?)") from None
        raise ModelFileError(f"{name} is not a catdog-gui model file ({msg.splitlines()[0] if msg else type(e).__name__})") from None
    except Exception as e:  # anything else the unpickler throws on junk
        raise ModelFileError(f"{name} is not a catdog-gui model file ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(
            f"{name} is not a catdog-gui model file (it may be a checkpoint from another program); "
            "open a model trained with catdog-gui"
        )
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{name} is damaged: its format version {version!r} is not valid")
    if version > VERSION:
        raise ModelFileError(
            f"{name} was saved by a newer catdog-gui (model format {version}); this version reads "
            f"format {VERSION}. Update catdog-gui to open it"
        )
    meta, state = payload.get("meta"), payload.get("state_dict")
    needed = ("model", "classes", "image_size", "mean", "std")
    if not isinstance(meta, dict) or not isinstance(state, dict) or any(k not in meta for k in needed):
        raise ModelFileError(f"{name} is damaged: its description or weights are missing")
    problem = _meta_problem(meta)
    if problem:
        raise ModelFileError(f"{name} is damaged: {problem}")
    extras = payload.get("extras")
    extras = {k: v for k, v in extras.items() if isinstance(v, torch.Tensor)} if isinstance(extras, dict) else {}
    return ModelInfo(meta, extras), state


def read_first_epoch(path: Path | str) -> Optional[tuple[int, dict]]:
    """(epoch, state_dict) of the weights kept after the first saved epoch, or None when the file has
    none (a large model, a file from an older version); raises :class:`ModelFileError` like
    :func:`read_model_file` for a file that is not a model file."""
    read_model_file(path)
    payload = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True)
    first = payload.get("first_epoch")
    if not isinstance(first, dict) or not isinstance(first.get("state_dict"), dict):
        return None
    epoch = first.get("epoch")
    return (epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else 0), first["state_dict"]


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _meta_problem(meta: dict) -> Optional[str]:
    """What is wrong with the description prediction relies on (None when it is usable)."""
    if not isinstance(meta["model"], str) or not meta["model"]:
        return "its architecture name is missing"
    classes = meta["classes"]
    if (not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)):
        return "its class names are missing, not text, or repeated"
    size = meta["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 4096:
        return f"its input size ({size!r}) is not a size in pixels"
    for key in ("mean", "std"):
        v = meta[key]
        if not isinstance(v, list) or len(v) != 3 or not all(_number(x) for x in v) or (
                key == "std" and min(v) <= 0):
            return f"its image normalisation ({key}) is not three numbers"
    return None


def load_model(path: Path | str, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelInfo]:
    """Rebuild the network from a model file, ready for inference (eval mode, on ``device``)."""
    from ..models import create_model

    info, state = read_model_file(path)
    try:
        model = create_model(info.model_name, len(info.classes), info.image_size, pretrained=False)
    except CatdogError as e:
        raise ModelFileError(f"{Path(path).name}: {e}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise ModelFileError(
            f"{Path(path).name} is damaged: its weights do not fit the {info.model_name} architecture "
            f"with {len(info.classes)} classes"
        ) from None
    model.to(device).eval()
    return model, info
