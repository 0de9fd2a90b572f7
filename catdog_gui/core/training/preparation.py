"""Data preparation for :class:`~.trainer.Trainer` (mixed in as :class:`DataPreparation`).

It scans the dataset with the config's split, decodes every photo once into uint8 arrays (under
torchrun only this process's shard) and puts them where training reads them (on a CUDA GPU when
they fit), makes each normalised (and, for training, augmented) batch, and computes the frozen
extractor's features once per photo for the phases that train on cached features, reading back and
keeping them in the disk feature cache with ``disk_cache``. It also warns when a model is continued
on another validation split than it was trained with.

The class it is mixed into provides ``config``, ``dist``, ``device``, ``feature_stats``, ``_state``
(the :class:`~.fit_state.FitState` of the fit), ``_cancel``, ``_emit`` and ``_check_controls``.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..data.decode_cache import ImageCache, build_cache, default_cache_dir
from ..data.scan import Dataset, scan_dataset
from ..data.split import SPLIT_VERSION
from ..errors import CatdogError, DatasetError
from ..events import DatasetScanned, Notice, StageProgress
from ..inference.features import FeatureExtractor, FeatureStore, store_key, weights_hash
from ..models import TrainPhase, get_spec


class DataPreparation:
    """Dataset, decoded images, batches and cached features of one fit."""

    #: how mode "features" runs the frozen backbone: "auto" (onnxruntime on CPU when it loads and
    #: agrees with PyTorch, else PyTorch) or "pytorch" ($CATDOG_FEATURE_BACKEND; benchmarks set it)
    feature_backend = os.environ.get("CATDOG_FEATURE_BACKEND", "auto")

    def _thread_hint(self) -> int:
        """CPU threads for this fit: the config's, else the model's hint, else 0 (leave as is)."""
        cfg = self.config
        if cfg.threads:
            return cfg.threads
        try:
            return int(get_spec(cfg.model).defaults.get("threads", 0))
        except CatdogError:
            return 0

    def _load_dataset(self, data, val_dir, cfg) -> Dataset:
        """``data`` split as ``cfg`` says: a scanned Dataset split with other settings than the
        config's is scanned again (the split is a setting like any other, and the model file
        records the one used)."""
        if isinstance(data, Dataset) and data.report.split_matches(cfg.val_fraction, cfg.seed):
            return data
        if isinstance(data, Dataset):
            data, val_dir = data.report.root, data.report.val_root
        return scan_dataset(data, val_dir, val_fraction=cfg.val_fraction, seed=cfg.seed,
                            progress=lambda d, t: self._emit(StageProgress("scan", d, t)),
                            cancel=self._cancel)

    def _check_resumed_split(self, resumed, report) -> bool:
        """Continuing a model on another validation split than it was trained with: some of this
        run's validation photos were its training photos, so validation accuracy reads high. Say so
        (the run goes on: a user may mean it)."""
        before = resumed.metrics.get("dataset") or {}
        if before.get("val_source") != "split" or report.val_source != "split":
            return False
        old = (before.get("val_fraction"), before.get("split_seed"), before.get("split_version") or 1)
        new = (report.val_fraction, report.split_seed, SPLIT_VERSION)
        if old == new:
            return False
        why = (f"{old[0]:.0%} held out with seed {old[1]}" if old[2] == SPLIT_VERSION else
               "the split of an earlier version of this app")
        self._emit(Notice(f"This model was trained with another validation split ({why}; this run: "
                          f"{new[0]:.0%}, seed {new[1]}). Some of this run's validation photos were its "
                          "training photos, so its validation accuracy will read high: to measure it "
                          "fairly, train a new model or use a separate test folder."))
        return True

    def _decode(self, dataset: Dataset, size: int) -> None:
        """Decode the training and validation photos once at ``size`` (under torchrun: only this
        process's shard) into the fit's caches and tensors; a class or a validation set left without
        a readable photo is a :class:`DatasetError`."""
        state, dist, classes = self._state, self.dist, dataset.classes
        train_samples, val_samples = dataset.train, dataset.val
        if dist is not None:
            train_samples, val_samples = dist.shard(train_samples), dist.shard(val_samples)
        self.train_samples = train_samples
        folder = default_cache_dir() if state.config.disk_cache else None
        decode = lambda d, t: self._emit(StageProgress("decode", d, t))  # noqa: E731
        train = build_cache(train_samples, size, decode, self._cancel, disk_cache=folder)
        val = build_cache(val_samples, size, decode, self._cancel, disk_cache=folder)
        if train.bad or val.bad:
            dataset.report.bad_files.extend(train.bad + val.bad)
            self._emit(DatasetScanned(dataset.report))
        counts = [float((train.labels == i).sum()) for i in range(len(classes))] + [float(len(val))]
        if dist is not None:
            counts = dist.sum(*counts)
        for i, c in enumerate(classes):
            if not counts[i]:
                raise DatasetError(f"class '{c}' has no readable training image left")
        if not counts[-1]:
            raise DatasetError("no readable validation images left")
        state.train_cache, state.val_cache = train, val
        state.xtrain, state.ytrain = self._to_device(train)
        state.xval, state.yval = self._to_device(val)

    def _to_device(self, cache: ImageCache):
        """Images stay uint8 (4x smaller than float); on CUDA they move to the GPU once if they fit."""
        x = torch.from_numpy(np.ascontiguousarray(cache.array)) if cache.array is not None else None
        y = torch.from_numpy(cache.labels)
        dev = self.device
        if dev.type != "cpu":
            fits = dev.type != "cuda" or x.numel() < 0.5 * torch.cuda.mem_get_info(dev)[0]
            if fits:
                x = x.to(dev)
            elif dev.type == "cuda":
                x = x.pin_memory()
            y = y.to(dev)
        return x, y

    def _batch(self, x_all: torch.Tensor, idx: torch.Tensor, augment: bool) -> torch.Tensor:
        """The images ``idx`` of ``x_all`` as the model's normalised input, augmented if ``augment``
        and the fit augments."""
        state = self._state
        xb = state.inputs.to_unit(x_all[idx.to(x_all.device)] if x_all.device.type != "cpu" else x_all[idx])
        if augment and state.augmenter is not None:
            xb = state.augmenter(xb, state.aug_gen)
        return state.inputs.normalize(xb)

    def _open_features(self, phase: TrainPhase) -> None:
        """The runner of the frozen extractor (onnxruntime or PyTorch) and, with ``disk_cache``,
        the features kept from earlier runs: both keyed by the hash of the extractor's weights."""
        state = self._state
        cfg, meta = state.config, state.meta
        phase.frozen.eval()
        digest = weights_hash(phase.frozen)
        state.extractor = FeatureExtractor(phase.frozen, cfg.model, meta["size"], self.device,
                                           backend=self.feature_backend, digest=digest,
                                           notify=lambda text: self._emit(Notice(text)))
        state.feature_store = (FeatureStore(store_key(cfg.model, meta["size"], digest, meta["mean"], meta["std"]))
                               if cfg.disk_cache else None)

    @torch.no_grad()
    def _features(self, x_all: torch.Tensor, cache: ImageCache, stage: str) -> torch.Tensor:
        """The frozen extractor's features of every image (rows of ``x_all``, the photos of
        ``cache``): those in the disk cache read back, the rest computed (and kept)."""
        state = self._state
        n = x_all.shape[0]
        store = state.feature_store
        ids = cache.identities
        feats, found = store.lookup(ids) if store is not None else (None, np.zeros(n, dtype=bool))
        todo = np.flatnonzero(~found)
        done = n - len(todo)
        if done:
            self._emit(StageProgress(stage, done, n))
        bs = 256 if self.device.type == "cuda" else 64  # a GPU is fed in bigger batches (overhead-bound at 64)
        computed = []
        for start in range(0, len(todo), bs):
            self._check_controls()
            idx = torch.from_numpy(todo[start:start + bs])
            computed.append(state.extractor(self._batch(x_all, idx, augment=False)).float().cpu())
            self._emit(StageProgress(stage, done + min(len(todo), start + bs), n))
        stats = self.feature_stats
        stats["cached"] += done
        stats["computed"] += len(todo)
        if computed:
            stats["path"] = state.extractor.path
            new = torch.cat(computed).numpy()
            if store is not None:
                store.save([ids[i] for i in todo], new)
            if feats is None:
                feats = np.empty((n, new.shape[1]), dtype=np.float32)
            feats[todo] = new
        if feats is None:  # no image at all (an empty shard under torchrun)
            feats = np.zeros((0, getattr(state.phase.head, "in_features", 0)), dtype=np.float32)
        return torch.from_numpy(feats).to(self.device)
