"""Test helpers: small images and datasets made on the fly, and the real-photo folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image


def real_data_dir() -> Path | None:
    value = os.environ.get("CATDOG_TEST_DATA")
    if not value:
        return None
    path = Path(value)
    return path if (path / "cat").is_dir() and (path / "dog").is_dir() else None


def make_image(path: Path, color: tuple[int, int, int], size=(40, 36), seed=0, fmt=None) -> Path:
    """A small photo-like JPEG: a base colour, noise, and a random bright square."""
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(color)[None, None, :] + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255)
    x, y = rng.integers(0, max(1, size[0] - 10)), rng.integers(0, max(1, size[1] - 10))
    arr[y:y + 8, x:x + 8] = rng.integers(150, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path, fmt or ("JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None))
    return path


def make_dataset(root: Path, n_per_class: int = 20, classes=("cat", "dog"), layout: str = "folders",
                 seed: int = 0) -> Path:
    """Learnable synthetic classes: reddish vs bluish (vs greenish...)."""
    colors = [(170, 60, 60), (60, 60, 170), (60, 170, 60), (170, 170, 60)]
    for ci, c in enumerate(classes):
        for i in range(n_per_class):
            name = f"{c}/{c}_{i:03d}.jpg" if layout == "folders" else f"{c}.{i}.jpg"
            make_image(root / name, colors[ci], seed=seed * 100_000 + ci * 1000 + i)
    return root
