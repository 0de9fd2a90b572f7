"""Shared fixtures: real photos (through CATDOG_TEST_DATA) and small datasets made on the fly."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from helpers import make_dataset, make_image, real_data_dir  # noqa: F401  (re-exported for tests)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# decoded-image disk cache: a fresh folder per test session, never the user's own cache
os.environ["CATDOG_CACHE_DIR"] = tempfile.mkdtemp(prefix="catdog-test-cache-")


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path_factory, monkeypatch):
    """Models and the run store of each test in its own folder (beside tmp_path), never the user's."""
    monkeypatch.setenv("CATDOG_DATA_DIR", str(tmp_path_factory.mktemp("catdog-data")))


@pytest.fixture(scope="session")
def real_data() -> Path:
    path = real_data_dir()
    if path is None:
        pytest.skip("CATDOG_TEST_DATA is not set (or has no cat/ and dog/ folders): real-photo tests skipped")
    return path


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "data", 20)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A LeNet-5 trained for a few epochs on the synthetic dataset (shared by many tests)."""
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    root = tmp_path_factory.mktemp("tiny")
    data = make_dataset(root / "data", 20)
    out = root / "model.pt"
    result = Trainer(TrainConfig(model="lenet5", epochs=4, seed=0, patience=0)).fit(data, out_path=out)
    assert result.status == "completed", result.reason
    return out
