"""Shared fixtures: real photos (through CATDOG_TEST_DATA) and small datasets made on the fly."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# decoded-image disk cache: a fresh folder per test session, never the user's own cache
os.environ["CATDOG_CACHE_DIR"] = tempfile.mkdtemp(prefix="catdog-test-cache-")


def real_data_dir() -> Path | None:
    value = os.environ.get("CATDOG_TEST_DATA")
    if not value:
        return None
    path = Path(value)
    return path if (path / "cat").is_dir() and (path / "dog").is_dir() else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    path = real_data_dir()
    if path is None:
        pytest.skip("CATDOG_TEST_DATA is not set (or has no cat/ and dog/ folders): real-photo tests skipped")
    return path


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


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "data", 20)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A LeNet-5 trained for a few epochs on the synthetic dataset (shared by many tests)."""
    from catdog_gui.core.training import TrainConfig, Trainer

    root = tmp_path_factory.mktemp("tiny")
    data = make_dataset(root / "data", 20)
    out = root / "model.pt"
    result = Trainer(TrainConfig(model="lenet5", epochs=4, seed=0, patience=0)).fit(data, out_path=out)
    assert result.status == "completed", result.reason
    return out
