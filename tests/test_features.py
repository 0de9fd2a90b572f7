"""A frozen backbone's features: onnxruntime equal to PyTorch, the disk cache used and invalidated,
fall-backs that say so in one line, a full disk that costs only the cache, and the cache commands."""

from __future__ import annotations

import errno
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

from helpers import make_dataset, make_image

from catdog_gui.core.storage import caches as cachefiles
from catdog_gui.core.inference import features
from catdog_gui.core.events import Notice
from catdog_gui.core.inference.features import FeatureExtractor, FeatureStore
from catdog_gui.core.data.imageio import load_square_array
from catdog_gui.core.models import ModelInput, create_model, get_spec
from catdog_gui.core.training.progress import TqdmProgress
from catdog_gui.core.config import TrainConfig
from catdog_gui.core.training.trainer import Trainer

CPU = torch.device("cpu")


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """Every cache (decoded, features, onnx) in a fresh folder of this test."""
    monkeypatch.setenv("CATDOG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def count_images(monkeypatch):
    """How many images went through a backbone (either path), per call of the extractor."""
    calls = []
    real = FeatureExtractor.__call__

    def counting(self, x, *a, **k):
        calls.append(len(x))
        return real(self, x, *a, **k)

    monkeypatch.setattr(FeatureExtractor, "__call__", counting)
    return calls


class TinyBackbone(nn.Module):
    """A stand-in feature extractor that exports to ONNX in milliseconds: (N, 3, S, S) -> (N, 16)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, stride=2)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(self.bn(self.conv(x))), 1), 1)


def _photo_batch(tmp_path, n: int, size: int) -> torch.Tensor:
    """n small photo-like JPEGs, decoded and normalised as the trainer does for a Lite backbone."""
    spec = get_spec("efficientnet_lite0")
    arrays = [load_square_array(make_image(tmp_path / f"p{i}.jpg", (40 + 50 * i, 120, 200 - 40 * i),
                                           size=(60 + 7 * i, 48), seed=i), size).transpose(2, 0, 1)
              for i in range(n)]
    return ModelInput(spec.mean, spec.std, CPU, channels_last=True)(np.stack(arrays))


def _fit(data, notes=None, **kw):
    cfg = dict(model="efficientnet_lite0", pretrained=True, epochs=2, patience=0, val_fraction=0.25, seed=0) | kw
    trainer = Trainer(TrainConfig(**cfg), [notes.append] if notes is not None else [])
    return trainer, trainer.fit(data)


# --- onnxruntime vs PyTorch ------------------------------------------------------------------------


def test_onnxruntime_features_equal_pytorch_on_lite0(tmp_path):
    backbone = create_model("efficientnet_lite0", 2, pretrained=True).backbone.eval()
    backbone.to(memory_format=torch.channels_last)
    x = _photo_batch(tmp_path, 5, 224)
    notes = []
    ext = FeatureExtractor(backbone, "efficientnet_lite0", 224, CPU, notify=notes.append)
    got = ext(x)
    assert ext.path == "onnxruntime" and notes == []
    with torch.no_grad():
        ref = backbone(x)
    assert got.shape == ref.shape == (5, 1280) and got.dtype == torch.float32
    assert float((got - ref).abs().max()) <= 1e-4
    assert ext.onnx_file().is_file()  # kept in the user cache folder for the next run
    # a second extractor (the next run) loads the cached file: no export, the same features
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(features, "_export", lambda *a: pytest.fail("exported again"))
    try:
        again = FeatureExtractor(backbone, "efficientnet_lite0", 224, CPU)
        assert float((again(x[:2]) - ref[:2]).abs().max()) <= 1e-4 and again.path == "onnxruntime"
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("size", [15, 17, 30])
def test_same_padding_exports_equal_at_odd_map_sizes(own_cache, size):
    # TensorFlow "SAME" padding at stride 2 depends on the map size; at odd sizes (Lite1's 240 px gives
    # a 15 x 15 map) a ceil division that ONNX computes differently from Python padded wrongly
    from catdog_gui.core.models.backbones import SameConv2d

    torch.manual_seed(0)
    model = nn.Sequential(SameConv2d(3, 8, 3, 2), SameConv2d(8, 8, 5, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    x = torch.randn(3, 3, size, size)
    notes = []
    ext = FeatureExtractor(model, "same", size, CPU, notify=notes.append)
    got = ext(x)
    assert ext.path == "onnxruntime" and notes == []
    with torch.no_grad():
        assert float((got - model(x)).abs().max()) <= 1e-5


def test_onnx_file_is_per_weights_and_size(own_cache):
    a, b = TinyBackbone().eval(), TinyBackbone().eval()
    with torch.no_grad():
        b.conv.weight[0, 0, 0, 0] += 1e-3
    fa, fb = (FeatureExtractor(m, "tiny", 32, CPU).onnx_file() for m in (a, b))
    assert fa != fb and fa.parent == fb.parent == own_cache / "onnx"
    assert FeatureExtractor(a, "tiny", 40, CPU).onnx_file() != fa
    assert FeatureExtractor(TinyBackbone().eval(), "tiny", 32, CPU).onnx_file() == fa  # same weights: same file


def test_an_export_that_differs_from_pytorch_is_not_used(own_cache, monkeypatch):
    model = TinyBackbone().eval()
    x = torch.randn(6, 3, 32, 32)
    other = TinyBackbone().eval()
    with torch.no_grad():
        other.conv.bias += 0.05  # what onnxruntime would run is not quite the model
    real_export = features._export
    monkeypatch.setattr(features, "_export", lambda module, example: real_export(other, example))
    notes = []
    ext = FeatureExtractor(model, "tiny", 32, CPU, notify=notes.append)
    with torch.no_grad():
        assert torch.equal(ext(x), model(x))  # PyTorch's own features
        ext(x)
    assert ext.path == "pytorch" and len(notes) == 1
    assert "differ from PyTorch's" in notes[0] and "PyTorch instead" in notes[0]
    assert not ext.onnx_file().exists()  # never kept


def test_a_cached_onnx_file_that_differs_is_replaced(own_cache):
    model, other = TinyBackbone().eval(), TinyBackbone().eval()
    with torch.no_grad():
        other.conv.weight.mul_(1.5)
    x = torch.randn(4, 3, 32, 32)
    file = FeatureExtractor(model, "tiny", 32, CPU).onnx_file()
    file.parent.mkdir(parents=True)
    file.write_bytes(features._export(other, x[:2]))  # stale: made by other code or weights
    notes = []
    ext = FeatureExtractor(model, "tiny", 32, CPU, notify=notes.append)
    with torch.no_grad():
        assert float((ext(x) - model(x)).abs().max()) <= 1e-5
    assert ext.path == "onnxruntime" and notes == []
    again = FeatureExtractor(model, "tiny", 32, CPU)  # the file now holds the right network
    with torch.no_grad():
        assert float((again(x) - model(x)).abs().max()) <= 1e-5


def test_onnx_file_that_cannot_be_written_is_still_used(own_cache, monkeypatch):
    real_replace = os.replace

    def full(src, dst):
        if str(src).endswith(cachefiles.TMP_SUFFIX):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full)
    model = TinyBackbone().eval()
    x = torch.randn(3, 3, 32, 32)
    ext = FeatureExtractor(model, "tiny", 32, CPU)
    with torch.no_grad():
        assert float((ext(x) - model(x)).abs().max()) <= 1e-5
    assert ext.path == "onnxruntime" and ext.notice is None
    assert list((own_cache / "onnx").iterdir()) == []  # neither the file nor a temporary one


def test_onnxruntime_missing_falls_back_with_one_line(tmp_path, own_cache, monkeypatch):
    data = make_dataset(tmp_path / "data", 6)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    events, lines = [], []
    progress = TqdmProgress(bars=False, write=lines.append)
    trainer = Trainer(TrainConfig(model="efficientnet_lite0", pretrained=True, epochs=1, patience=0,
                                  val_fraction=0.25, disk_cache=False), [events.append, progress])
    result = trainer.fit(data)
    assert result.status == "completed", result.reason
    notes = [e for e in events if isinstance(e, Notice)]
    assert len(notes) == 1, notes  # one line for the run, not one per batch or per train/val pass
    assert "onnxruntime is not available" in notes[0].text and "PyTorch" in notes[0].text
    assert [ln for ln in lines if ln.startswith("Note:")] == [f"Note: {notes[0].text}"]
    assert trainer.feature_stats["path"] == "pytorch" and trainer.feature_stats["computed"] == 12


# --- the feature cache -----------------------------------------------------------------------------


def test_second_run_reads_cached_features_and_recomputes_only_changed_photos(tmp_path, own_cache, count_images):
    data = make_dataset(tmp_path / "data", 8)
    trainer, first = _fit(data)
    assert first.status == "completed", first.reason
    assert sum(count_images) == 16
    assert trainer.feature_stats == {"computed": 16, "cached": 0, "path": "onnxruntime"}

    count_images.clear()  # the same folder again, other head settings and more epochs: nothing to compute
    trainer, second = _fit(data, lr=3e-3, epochs=3)
    assert count_images == [] and trainer.feature_stats["cached"] == 16
    trainer, third = _fit(data)  # and the cached features are the computed ones: the same run, exactly
    assert [(e.val_loss, e.val_acc) for e in third.history] == [(e.val_loss, e.val_acc) for e in first.history]

    count_images.clear()  # one photo edited: exactly that one is computed again
    edited = data / "dog" / "dog_003.jpg"
    make_image(edited, (200, 200, 30), seed=77)
    os.utime(edited, ns=(1_000_000_000, 1_000_000_000))
    trainer, _ = _fit(data)
    assert sum(count_images) == 1 and trainer.feature_stats["cached"] == 15

    count_images.clear()  # one photo added: only the new one
    make_image(data / "cat" / "cat_100.jpg", (170, 60, 60), seed=555)
    trainer, _ = _fit(data)
    assert sum(count_images) == 1 and trainer.feature_stats["cached"] == 16


def test_feature_cache_follows_the_disk_cache_setting(tmp_path, own_cache, count_images):
    data = make_dataset(tmp_path / "data", 6)
    _fit(data, disk_cache=False)
    _fit(data, disk_cache=False)
    assert sum(count_images) == 24  # computed both times
    assert not (own_cache / "features").exists()


def test_full_disk_does_not_stop_training(tmp_path, own_cache, monkeypatch):
    real_replace = os.replace

    def full(src, dst):  # every cache write fails the way a full disk makes it fail
        if str(src).endswith(cachefiles.TMP_SUFFIX):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full)
    notes = []
    trainer, result = _fit(make_dataset(tmp_path / "data", 6), notes)
    assert result.status == "completed", result.reason
    assert result.metrics is not None and len(result.history) == 2
    assert trainer.feature_stats["computed"] == 12
    assert not [e for e in notes if isinstance(e, Notice)]  # the features' path is unaffected
    left = [p for p in own_cache.rglob("*") if p.is_file()]
    assert left == [], left  # nothing cached: no half-written feature, ONNX or temporary file


def test_feature_store_is_bounded_and_merges_its_files(tmp_path, monkeypatch):
    def ident(i):
        return (f"/photos/{i}.jpg", 1000 + i, 10**18 + i)

    rows = np.arange(10 * 256, dtype=np.float32).reshape(10, 256)  # 1 kB a photo
    store = FeatureStore("k", folder=tmp_path, limit=10**9)
    assert store.save([ident(i) for i in range(5)], rows[:5])
    feats, found = store.lookup([ident(3), ident(7), None, ident(0)])
    assert found.tolist() == [True, False, False, True]
    assert np.array_equal(feats[0], rows[3]) and np.array_equal(feats[3], rows[0])
    # the same photo with another size or time is another photo
    assert not store.lookup([("/photos/3.jpg", 1003, 10**18 + 4)])[1].any()

    monkeypatch.setattr(features, "MAX_SHARDS", 2)
    store.save([ident(5)], rows[5:6])
    store.save([ident(6)], rows[6:7])  # a third file: merged into one
    assert len(list((tmp_path / "k").glob("*.json"))) == 1
    feats, found = store.lookup([ident(i) for i in range(7)])
    assert found.all() and np.array_equal(feats, rows[:7])

    # bounded: another extractor's features push out the least recently used
    other = FeatureStore("other", folder=tmp_path, limit=10_000)  # room for 7 kB + 1 kB of index, not 14 kB
    assert other.save([ident(i) for i in range(7)], rows[:7])
    assert not store.lookup([ident(0)])[1].any() and other.lookup([ident(0)])[1].all()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(cachefiles.TMP_SUFFIX)]


def test_damaged_cache_file_is_a_miss(tmp_path):
    store = FeatureStore("k", folder=tmp_path)
    store.save([("/a.jpg", 1, 2)], np.ones((1, 8), np.float32))
    (data,) = (tmp_path / "k").glob("*.f32")
    data.write_bytes(b"\0" * 5)  # truncated
    feats, found = store.lookup([("/a.jpg", 1, 2)])
    assert feats is None and not found.any()


# --- prediction -------------------------------------------------------------------------------------


def test_predictor_runs_the_backbone_through_onnxruntime(tmp_path):
    from catdog_gui.core.inference.gradcam import grad_cam
    from catdog_gui.core.inference.predictor import Predictor

    data = make_dataset(tmp_path / "data", 6)
    out = tmp_path / "m.pt"
    result = Trainer(TrainConfig(model="efficientnet_lite0", pretrained=True, epochs=1, patience=0,
                                 val_fraction=0.25)).fit(data, out_path=out)
    assert result.status == "completed", result.reason
    predictor = Predictor(out, "cpu")
    photos = sorted(data.rglob("*.jpg"))[:3]
    arrays = np.stack([predictor.preprocess(p) for p in photos])
    probs = predictor.probabilities(arrays)
    one = predictor.probabilities(arrays[:1])
    assert predictor.feature_path == "onnxruntime"  # the file training exported (same frozen weights)
    with torch.inference_mode():
        ref = torch.softmax(predictor.model(predictor.to_input(arrays)), 1).numpy()
    assert np.abs(probs - ref).max() < 1e-5 and np.abs(one[0] - ref[0]).max() < 1e-5
    heat = grad_cam(predictor.model, predictor.to_input(arrays[:1]))  # Grad-CAM: still the PyTorch model
    assert heat.shape == (224, 224) and np.isfinite(heat).all()


def test_cache_info_and_clear(tmp_path, own_cache, capsys):
    from catdog_gui.cli import main

    FeatureStore("k").save([("/a.jpg", 1, 2), ("/b.jpg", 3, 4)], np.ones((2, 256), np.float32))
    (own_cache / "decoded").mkdir(parents=True)
    (own_cache / "decoded" / "x.u8").write_bytes(b"\1" * 1000)
    (own_cache / "unrelated.txt").write_text("not ours")
    usage = {u.kind: u for u in cachefiles.cache_info()}
    assert usage["features"].files == 2 and usage["features"].nbytes > 2048
    assert usage["decoded"].nbytes == 1000 and usage["onnx"].files == 0

    assert main(["cache", "info"]) == 0
    shown = capsys.readouterr().out
    assert "backbone features" in shown and str(own_cache) in shown
    total = sum(u.nbytes for u in usage.values())
    assert main(["cache", "clear"]) == 0
    assert f"{total / 1e3:.1f} kB freed" in capsys.readouterr().out
    assert all(u.files == 0 for u in cachefiles.cache_info())
    assert (own_cache / "unrelated.txt").exists()  # only the caches' own folders are emptied
    assert cachefiles.clear_caches() == 0
