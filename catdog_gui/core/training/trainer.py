"""One trainer for the CLI, the GUI and notebooks.

Like minGPT's trainer it knows nothing about the model: it takes a :class:`TrainConfig`, a
dataset, and callbacks that receive plain event dataclasses (:mod:`.events`). It can be cancelled
and paused from another thread (checked after every batch), stops early when validation loss and
accuracy stop improving, keeps the best epoch's weights (highest validation accuracy), and always ends with exactly one ``Finished`` event.

Modes, chosen from the config and the model:

* ``scratch``: every weight learns (LeNet-5, or a backbone without pretrained weights);
* ``features``: pretrained backbone frozen, no augmentation: each image's features are computed
  once and the new head trains on the cached features (epochs after the first take milliseconds).
  On a CPU the backbone runs through onnxruntime (:mod:`.features`), and with ``disk_cache`` every
  photo's features are kept in the user cache folder, so the next run computes only new photos;
* ``frozen``: pretrained backbone frozen with augmentation: the backbone runs on every augmented
  batch (no gradients through it), the head learns;
* ``finetune``: first as ``features``/``frozen`` until the head has converged, then the backbone's
  later blocks are unfrozen and learn with a lower learning rate for ``finetune_epochs`` epochs.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import numpy as np
import torch
from torch import nn

from ..data.augment import BatchAugmenter
from ..config import OPTIMIZERS, TRANSFER_MODES, TrainConfig  # noqa: F401  (TrainConfig lives in .config)
from ..data.split import SPLIT_VERSION
from ..errors import Cancelled
from ..data.scan import Dataset, scan_dataset
from ..data.decode_cache import ImageCache, build_cache, default_cache_dir
from ..device import cpu_threads, device_name, pick_device
from .distributed import DistContext
from ..errors import CatdogError, DatasetError
from ..inference.evaluation import compute_metrics
from ..events import (
    BatchEnd,
    CheckpointSaved,
    DatasetScanned,
    EpochEnd,
    Finished,
    Notice,
    RunStarted,
    StageProgress,
    Status,
)
from ..inference.features import FeatureExtractor, FeatureStore, store_key, weights_hash
from ..storage.modelfile import load_model, save_model
from ..models import ModelInput, TrainPhase, create_model, get_spec, prefers_channels_last, training_phases

Callback = Callable[[object], None]
#: raised for GPU (CUDA/MPS) memory; MemoryError for the computer's own
_OUT_OF_MEMORY = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), MemoryError)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class _Stop(Exception):
    def __init__(self, status: Status, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def is_better_epoch(val_acc: float, val_loss: float, best_acc: float, best_loss: float) -> bool:
    """The project's best-epoch rule: higher validation accuracy wins, a lower validation loss
    breaks ties. (The minimum of the loss alone often falls on an early epoch that predicts the
    majority class.) ``best_acc`` is NaN before the first epoch."""
    best_acc = -1.0 if math.isnan(best_acc) else best_acc
    return val_acc > best_acc or (val_acc == best_acc and val_loss < best_loss)


@dataclass
class _RunState:
    """Everything one ``fit`` call builds and changes; a new one for every run."""

    config: TrainConfig  # the effective config (on resume: the resumed model's name and size)
    out_path: Optional[Path]
    history: list = field(default_factory=list)  # EpochEnd events
    best_state: Optional[dict] = None
    best_epoch: int = 0
    best_val_acc: float = float("nan")
    best_loss: float = math.inf
    lowest_loss: float = math.inf
    saved_path: Optional[str] = None
    #: some validation photos were training photos of the model continued from (another split)
    val_seen: bool = False
    mode: str = "scratch"
    meta: dict = field(default_factory=dict)  # classes, size, mean, std for the model file
    inputs: Optional[ModelInput] = None
    augmenter: Optional[BatchAugmenter] = None
    aug_gen: Optional[torch.Generator] = None
    shuffle_gen: Optional[torch.Generator] = None
    train_cache: Optional[ImageCache] = None
    val_cache: Optional[ImageCache] = None
    xtrain: Optional[torch.Tensor] = None
    ytrain: Optional[torch.Tensor] = None
    xval: Optional[torch.Tensor] = None
    yval: Optional[torch.Tensor] = None
    ftrain: Optional[torch.Tensor] = None  # cached features (mode "features")
    fval: Optional[torch.Tensor] = None
    phase: Optional[TrainPhase] = None
    extractor: Optional[FeatureExtractor] = None  # mode "features": the frozen extractor's runner
    feature_store: Optional[FeatureStore] = None  # ... and the features kept on disk (disk_cache)
    train_model: Optional[nn.Module] = None  # what the training step calls (DDP-wrapped under torchrun)
    train_head: Optional[nn.Module] = None

    def free(self) -> None:
        self.xtrain = self.xval = self.ftrain = self.fval = None


class Trainer:
    """Train one model. Thread-safe controls: :meth:`cancel`, :meth:`pause`, :meth:`resume`.

    After :meth:`fit`: ``model`` (the best epoch's weights), ``dataset``, ``device`` and
    ``train_samples`` (this process's share) describe the run; its metrics travel in ``Finished``.
    """

    #: CPU threads while a frozen backbone's head trains on cached features: its ops are so small
    #: that a second thread only adds waiting, and on busy shared cores a lot of it
    head_threads = 1
    #: how mode "features" runs the frozen backbone: "auto" (onnxruntime on CPU when it loads and
    #: agrees with PyTorch, else PyTorch) or "pytorch" ($CATDOG_FEATURE_BACKEND; benchmarks set it)
    feature_backend = os.environ.get("CATDOG_FEATURE_BACKEND", "auto")

    def __init__(self, config: TrainConfig, callbacks: Iterable[Callback] = (), dist: Optional[DistContext] = None):
        self.config = config
        self.callbacks = list(callbacks)
        #: set when running under torchrun (see :mod:`.distributed`)
        self.dist = dist
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.model: Optional[nn.Module] = None
        self.dataset: Optional[Dataset] = None
        self.device: Optional[torch.device] = None
        self.train_samples: list = []
        self.metrics = None  # the last run's Finished.metrics (kept for scripts; prefer Finished)
        #: the last run's features: how many photos were computed and found in the disk cache, and
        #: the path that computed them ("onnxruntime", "pytorch"; None when none was computed)
        self.feature_stats: dict = {}
        self._run: Optional[_RunState] = None

    # -- controls (any thread) -------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        return self._cancel

    def _emit(self, event) -> None:
        for cb in self.callbacks:
            cb(event)

    def _checkpoint(self) -> None:
        """Called after every batch: honour pause and cancel."""
        if not self._running.is_set():
            self._running.wait()
        stop = self._cancel.is_set()
        if self.dist is not None:  # every rank stops together, whichever one was asked
            stop = self.dist.max(1.0 if stop else 0.0) > 0
        if stop:
            raise _Stop(Status.CANCELLED, "stopped by the user")

    # -- the run ---------------------------------------------------------------------------
    def fit(
        self,
        data: Union[str, Path, Dataset],
        val_dir: Union[str, Path, None] = None,
        out_path: Union[str, Path, None] = None,
        resume_from: Union[str, Path, None] = None,
    ) -> Finished:
        """Train; return (and emit) the ``Finished`` event. Never raises for training problems."""
        self._run = _RunState(replace(self.config), Path(out_path).expanduser() if out_path else None)
        self.metrics = None
        self.feature_stats = {"computed": 0, "cached": 0, "path": None}
        try:
            with cpu_threads(self._thread_hint()):
                status, reason = self._fit(data, val_dir, resume_from)
        except _Stop as stop:
            status, reason = stop.status, stop.reason
        except Cancelled:
            status, reason = Status.CANCELLED, "stopped by the user before training began"
        except CatdogError as e:
            return self._finish(Status.FAILED, str(e))
        except _OUT_OF_MEMORY:
            return self._finish(Status.FAILED, self._out_of_memory())
        except Exception as e:  # a bug: report it, with its traceback, instead of dying silently
            return self._finish(Status.FAILED, f"internal error: {type(e).__name__}: {e}", user_error=False,
                                tb=traceback.format_exc())
        try:
            self._save_best()
        except CatdogError as e:
            return self._finish(Status.FAILED, str(e))
        except Exception as e:
            return self._finish(Status.FAILED, f"internal error while saving: {e}", user_error=False,
                                tb=traceback.format_exc())
        return self._finish(status, reason)

    def _out_of_memory(self) -> str:
        """Free what the failed step held and say what to change."""
        self._run.free()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        cfg = self._run.config
        where = "the GPU" if self.device is not None and self.device.type != "cpu" else "this computer"
        return (f"out of memory on {where}: try a smaller batch size (now {cfg.batch_size}) or a smaller image "
                f"size, or close other programs that use {where}")

    def _thread_hint(self) -> int:
        """CPU threads for this run: the config's, else the model's hint, else 0 (leave as is)."""
        cfg = self.config
        if cfg.threads:
            return cfg.threads
        try:
            return int(get_spec(cfg.model).defaults.get("threads", 0))
        except CatdogError:
            return 0

    def _finish(self, status: Status, reason: str, user_error: bool = True, tb: str = "") -> Finished:
        run = self._run
        ev = Finished(status, reason, run.saved_path, run.best_epoch, run.best_val_acc, tuple(run.history),
                      user_error, tb, metrics=self.metrics if status is not Status.FAILED else None,
                      val_seen=run.val_seen)
        self._emit(ev)
        return ev

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

    def _fit(self, data, val_dir, resume_from) -> tuple[Status, str]:
        run = self._run
        resumed = None
        if resume_from is not None:
            resumed_model, resumed = load_model(resume_from)
            run.config = replace(run.config, model=resumed.model_name, image_size=resumed.image_size)
        cfg = run.config
        cfg.validate()
        seed_everything(cfg.seed)
        dist = self.dist
        self.device = device = dist.device if dist is not None else pick_device(cfg.device)
        spec = get_spec(cfg.model)
        size = cfg.image_size or spec.default_image_size

        # 1. data (a scanned Dataset split with other settings than the config's is scanned again:
        # the split is a setting like any other, and the model file records the one used)
        if isinstance(data, Dataset) and data.report.split_matches(cfg.val_fraction, cfg.seed):
            dataset = data
        else:
            if isinstance(data, Dataset):
                data, val_dir = data.report.root, data.report.val_root
            dataset = scan_dataset(data, val_dir, val_fraction=cfg.val_fraction, seed=cfg.seed,
                                   progress=lambda d, t: self._emit(StageProgress("scan", d, t)),
                                   cancel=self._cancel)
        self.dataset = dataset
        self._emit(DatasetScanned(dataset.report))
        classes = dataset.classes
        if resumed is not None:
            run.val_seen = (self._check_resumed_split(resumed, dataset.report)
                            or bool(resumed.metrics.get("val_seen_in_training")))
        if resumed is not None and resumed.classes != classes:
            raise DatasetError(
                f"the model was trained on classes {', '.join(resumed.classes)} but this dataset has "
                f"{', '.join(classes)}: continue training needs the same classes"
            )

        # 2. model
        if resumed is not None:
            model = resumed_model
        else:
            model = create_model(cfg.model, len(classes), size, pretrained=cfg.pretrained,
                                 weights_path=cfg.weights_path,
                                 progress=lambda d, t: self._emit(StageProgress("weights", d, t)))
        channels_last = prefers_channels_last(model)
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        mean, std = (resumed.mean, resumed.std) if resumed is not None else (spec.mean, spec.std)
        run.inputs = ModelInput(mean, std, device, channels_last)

        # 3. decode once (under torchrun: only this rank's shard)
        train_samples, val_samples = dataset.train, dataset.val
        if dist is not None:
            train_samples, val_samples = dist.shard(train_samples), dist.shard(val_samples)
        self.train_samples = train_samples
        folder = default_cache_dir() if cfg.disk_cache else None
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
        run.train_cache, run.val_cache = train, val
        run.xtrain, run.ytrain = self._to_device(train)
        run.xval, run.yval = self._to_device(val)

        # 4. the phases the model asks for (a frozen feature extractor, then maybe fine-tuning)
        phases = training_phases(model, cfg)
        aug = cfg.augment.enabled
        run.augmenter = BatchAugmenter(cfg.augment, size) if aug else None
        run.aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
        run.shuffle_gen = torch.Generator().manual_seed(cfg.seed + (dist.rank if dist else 0))
        n_train, n_val = len(train), len(val)
        if dist is not None:
            n_train, n_val = (int(v) for v in dist.sum(n_train, n_val))
        where = device_name(device) + (f" x {dist.world} processes ({dist.backend})" if dist else "")
        first_mode = self._mode_of(phases[0], aug)
        self._emit(RunStarted(where, tuple(classes), n_train, n_val, cfg.to_dict(),
                              "finetune" if any(p.name == "finetune" for p in phases) else first_mode))
        run.meta = {"classes": classes, "size": size, "mean": list(mean), "std": list(std)}
        loss_fn = nn.CrossEntropyLoss()
        total_epochs = sum(p.epochs for p in phases)

        status, reason = Status.COMPLETED, ""
        first = 1
        for i, phase in enumerate(phases):
            if i > 0:
                if status is Status.CANCELLED:
                    break
                # the previous phase has converged (or stopped improving): start the next from its best epoch
                model.load_state_dict(run.best_state)
            self._enter_phase(model, phase, aug)
            if resumed is not None and i == 0:  # the model to beat is the one we continue from
                run.best_loss, run.best_val_acc, _ = self._validate(model)
                run.best_state = copy.deepcopy(model.state_dict())
                run.lowest_loss = run.best_loss
            opt = self._optimizer(phase.params, phase.lr)
            # a linear layer on cached features: tiny ops, best on one thread
            head_only = (run.mode == "features" and phase.name != "finetune" and device.type == "cpu"
                         and not cfg.threads)
            last = first + phase.epochs - 1
            with cpu_threads(self.head_threads if head_only else 0):
                status, reason = self._loop(model, opt, loss_fn, first, last,
                                            total_epochs if i == 0 else last, phase.name)
            first = (run.history[-1].epoch if run.history else 0) + 1
        return status, reason

    # -- pieces ----------------------------------------------------------------------------
    @staticmethod
    def _mode_of(phase: TrainPhase, augment: bool) -> str:
        """How a phase runs: "features" (the frozen part's output computed once per photo, the rest
        trained on it: a head on a backbone's features, or fine-tuning's upper blocks on its lower
        blocks' output), "frozen" (the same, computed each batch: augmentation changes the photos),
        "finetune" (the whole model runs, the later blocks learn) or "scratch"."""
        if phase.frozen is None:
            return "finetune" if phase.name == "finetune" else "scratch"
        return "frozen" if augment else "features"

    def _enter_phase(self, model: nn.Module, phase: TrainPhase, augment: bool) -> None:
        """Freeze what the phase does not train, cache features if it can, wrap for torchrun."""
        run = self._run
        run.phase = phase
        run.mode = self._mode_of(phase, augment)
        learn = {id(p) for p in phase.params}
        for p in model.parameters():
            p.requires_grad_(id(p) in learn)
        run.ftrain = run.fval = None
        if run.mode == "features":
            self._open_features(phase)
            run.ftrain = self._features(run.xtrain, run.train_cache, "features")
            run.fval = self._features(run.xval, run.val_cache, "features")
            run.extractor = None  # its onnxruntime sessions (threads, memory) go with it
        run.train_model, run.train_head = model, phase.head
        if self.dist is not None:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            if phase.frozen is not None:
                run.train_head = DDP(phase.head, device_ids=ids)
            else:
                run.train_model = DDP(model, device_ids=ids)

    def _autocast(self):
        """Mixed precision (bfloat16) on CUDA GPUs that support it; full precision elsewhere."""
        if self.device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _optimizer(self, params, lr):
        cfg = self._run.config
        # fused: one kernel over all parameters instead of ~10 tensor ops per parameter per step
        # (LeNet-5 on CPU: Adam's step 1.08 -> 0.25 ms of a ~13 ms batch)
        kw = {"fused": True} if self.device is not None and self.device.type in ("cpu", "cuda") else {}
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay, **kw)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, **kw)
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay, **kw)

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
        run = self._run
        xb = run.inputs.to_unit(x_all[idx.to(x_all.device)] if x_all.device.type != "cpu" else x_all[idx])
        if augment and run.augmenter is not None:
            xb = run.augmenter(xb, run.aug_gen)
        return run.inputs.normalize(xb)

    def _open_features(self, phase: TrainPhase) -> None:
        """The runner of the frozen extractor (onnxruntime or PyTorch) and, with ``disk_cache``,
        the features kept from earlier runs: both keyed by the hash of the extractor's weights."""
        run = self._run
        cfg, meta = run.config, run.meta
        phase.frozen.eval()
        digest = weights_hash(phase.frozen)
        run.extractor = FeatureExtractor(phase.frozen, cfg.model, meta["size"], self.device,
                                         backend=self.feature_backend, digest=digest,
                                         notify=lambda text: self._emit(Notice(text)))
        run.feature_store = (FeatureStore(store_key(cfg.model, meta["size"], digest, meta["mean"], meta["std"]))
                             if cfg.disk_cache else None)

    @torch.no_grad()
    def _features(self, x_all: torch.Tensor, cache: ImageCache, stage: str) -> torch.Tensor:
        """The frozen extractor's features of every image (rows of ``x_all``, the photos of
        ``cache``): those in the disk cache read back, the rest computed (and kept)."""
        run = self._run
        n = x_all.shape[0]
        store = run.feature_store
        ids = cache.identities
        feats, found = store.lookup(ids) if store is not None else (None, np.zeros(n, dtype=bool))
        todo = np.flatnonzero(~found)
        done = n - len(todo)
        if done:
            self._emit(StageProgress(stage, done, n))
        bs = 256 if self.device.type == "cuda" else 64  # a GPU is fed in bigger batches (overhead-bound at 64)
        computed = []
        for start in range(0, len(todo), bs):
            self._checkpoint()
            idx = torch.from_numpy(todo[start:start + bs])
            computed.append(run.extractor(self._batch(x_all, idx, augment=False)).float().cpu())
            self._emit(StageProgress(stage, done + min(len(todo), start + bs), n))
        stats = self.feature_stats
        stats["cached"] += done
        stats["computed"] += len(todo)
        if computed:
            stats["path"] = run.extractor.path
            new = torch.cat(computed).numpy()
            if store is not None:
                store.save([ids[i] for i in todo], new)
            if feats is None:
                feats = np.empty((n, new.shape[1]), dtype=np.float32)
            feats[todo] = new
        if feats is None:  # no image at all (an empty shard under torchrun)
            feats = np.zeros((0, getattr(run.phase.head, "in_features", 0)), dtype=np.float32)
        return torch.from_numpy(feats).to(self.device)

    def _logits(self, model, idx: torch.Tensor, train: bool, which: str) -> torch.Tensor:
        run = self._run
        phase = run.phase
        head = run.train_head if train else phase.head
        if run.mode == "features":
            feats = run.ftrain if which == "train" else run.fval
            return head(feats[idx.to(feats.device)])
        x = self._batch(run.xtrain if which == "train" else run.xval, idx, augment=train)
        with self._autocast():
            if phase.frozen is not None:
                with torch.no_grad():
                    f = phase.frozen(x)
                return head(f.float()).float()
            return (run.train_model if train else model)(x).float()

    def _set_train_mode(self, model, train: bool) -> None:
        """Only the phase's learning module switches (a pretrained backbone keeps its BatchNorm statistics)."""
        learning = self._run.phase.learning
        if learning is not model:
            model.eval()
        learning.train(train)

    @torch.no_grad()
    def _validate(self, model) -> tuple[float, float, torch.Tensor]:
        run = self._run
        self._set_train_mode(model, False)
        n = len(run.yval)
        losses, probs = 0.0, []
        bs = max(64, run.config.batch_size)
        for start in range(0, n, bs):
            idx = torch.arange(start, min(n, start + bs))
            logits = self._logits(model, idx, False, "val")
            y = run.yval[idx.to(run.yval.device)]
            losses += nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
            probs.append(torch.softmax(logits.float(), 1))
        p = torch.cat(probs)
        correct = (p.argmax(1) == run.yval).sum().item()
        if self.dist is not None:
            losses, correct, n = self.dist.sum(losses, correct, n)
        return losses / n, correct / n, p

    def _loop(self, model, opt, loss_fn, first: int, last: int, total: int, phase: str) -> tuple[Status, str]:
        run = self._run
        cfg = run.config
        n = len(run.ytrain)
        bs = cfg.batch_size
        padded = n
        if self.dist is not None:  # same number of batches on every rank, same global batch size
            bs = math.ceil(bs / self.dist.world)
            padded = int(self.dist.max(n))
        steps = max(1, math.ceil(padded / bs))
        bad_epochs = 0
        epoch_times: list[float] = []
        for epoch in range(first, last + 1):
            t0 = time.perf_counter()
            self._set_train_mode(model, True)
            order = torch.randperm(n, generator=run.shuffle_gen)
            if padded > n:
                order = torch.cat([order, order[: padded - n]])
            seen = correct = 0
            loss_sum = 0.0
            for step in range(steps):
                idx = order[step * bs:(step + 1) * bs]
                if len(idx) == 0:
                    break
                logits = self._logits(model, idx, True, "train")
                y = run.ytrain[idx.to(run.ytrain.device)]
                loss = loss_fn(logits, y)
                if not torch.isfinite(loss):
                    raise _Stop(Status.FAILED, (
                        f"training diverged: the loss became {loss.item()} at epoch {epoch}, batch {step + 1}. "
                        f"Try a lower learning rate (now {run.phase.lr:g})"
                    ))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                lv = loss.item()
                loss_sum += lv * len(idx)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(idx)
                self._emit(BatchEnd(epoch, step + 1, steps, lv, phase))
                self._checkpoint()
            train_seconds = time.perf_counter() - t0
            if self.dist is not None:
                loss_sum, correct, seen = self.dist.sum(loss_sum, correct, seen)
            val_loss, val_acc, _ = self._validate(model)
            if not math.isfinite(val_loss):
                raise _Stop(Status.FAILED, f"training diverged: validation loss is {val_loss} at epoch {epoch}. "
                                           "Try a lower learning rate")
            seconds = time.perf_counter() - t0
            epoch_times.append(seconds)
            is_best = is_better_epoch(val_acc, val_loss, run.best_val_acc, run.best_loss)
            improved_loss = val_loss < run.lowest_loss
            run.lowest_loss = min(run.lowest_loss, val_loss)
            if is_best:
                run.best_loss = val_loss
                run.best_epoch = epoch
                run.best_val_acc = val_acc
                run.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            # early stopping: neither the validation loss nor the best accuracy improved lately
            bad_epochs = 0 if (is_best or improved_loss) else bad_epochs + 1
            eta = float(np.mean(epoch_times[-5:])) * (total - epoch)
            ev = EpochEnd(epoch, total, loss_sum / max(seen, 1), correct / max(seen, 1), val_loss, val_acc,
                          seen / max(train_seconds, 1e-9), seconds, eta, run.best_epoch, is_best, phase)
            run.history.append(ev)
            self._emit(ev)
            if cfg.patience and bad_epochs >= cfg.patience and epoch < last:
                return Status.STOPPED_EARLY, (f"validation loss and accuracy did not improve for {cfg.patience} "
                                              f"epochs; kept epoch {run.best_epoch}")
        n = len(run.history)
        return Status.COMPLETED, f"trained {n} epoch{'s' if n != 1 else ''}"

    @torch.no_grad()
    def _mirrored_probs(self, model) -> torch.Tensor:
        """Validation probabilities of the mirror images (test-time augmentation)."""
        run = self._run
        self._set_train_mode(model, False)
        frozen, head = run.phase.frozen, run.phase.head
        out = []
        for start in range(0, len(run.yval), 64):
            idx = torch.arange(start, min(len(run.yval), start + 64))
            x = self._batch(run.xval, idx, augment=False).flip(-1)
            with self._autocast():
                logits = head(frozen(x).float()) if frozen is not None else model(x)
            out.append(torch.softmax(logits.float(), 1))
        return torch.cat(out)

    def _save_best(self) -> None:
        """Restore the best epoch's weights, measure them, and write the model file."""
        run = self._run
        if run.best_state is None or self.model is None:
            return
        model = self.model
        model.load_state_dict(run.best_state)
        _loss, acc, probs = self._validate(model)
        if run.config.tta:  # measured as it will predict: with the mirror images averaged in
            probs = (probs + self._mirrored_probs(model)) / 2
            correct, n = float((probs.argmax(1) == run.yval).sum().item()), float(len(run.yval))
            if self.dist is not None:
                correct, n = self.dist.sum(correct, n)
            acc = correct / max(n, 1.0)
        conf, pred = probs.max(1)
        meta = run.meta
        y, pred, conf, paths = (run.yval.cpu().tolist(), pred.cpu().tolist(), conf.cpu().tolist(),
                                list(run.val_cache.paths))
        if self.dist is not None:  # the whole validation set's metrics, from every rank's shard
            parts = self.dist.gather((y, pred, conf, [str(p) for p in paths]))
            y, pred, conf, paths = ([v for part in parts for v in part[i]] for i in range(4))
        self.metrics = compute_metrics(y, pred, meta["classes"], conf, paths)
        if run.out_path is None or (self.dist is not None and not self.dist.is_main):
            return
        report = self.dataset.report
        metrics = {
            "val_accuracy": acc, "val_loss": run.best_loss, "best_epoch": run.best_epoch,
            "n_train": len(self.dataset.train), "n_val": self.metrics.n, "val_seen_in_training": run.val_seen,
            "per_class": self.metrics.per_class, "confusion": self.metrics.confusion,
            "history": [asdict(e) for e in run.history],
            "dataset": {"root": str(report.root), "val_root": str(report.val_root) if report.val_root else None,
                        "val_source": report.val_source, "val_fraction": report.val_fraction,
                        "split_seed": report.split_seed,
                        "split_version": SPLIT_VERSION if report.val_source == "split" else None},
        }
        path = save_model(run.out_path, model, model_name=run.config.model, classes=meta["classes"],
                          image_size=meta["size"], mean=meta["mean"], std=meta["std"],
                          config=run.config.to_dict(), metrics=metrics)
        run.saved_path = str(path)
        self._emit(CheckpointSaved(str(path), run.best_epoch, acc))


# ------------------------------------------------------------------------------------------------
# how long fine-tuning would take here, measured before the user commits to it


def estimate_finetune_seconds(config: TrainConfig, n_train: int, n_val: int, device: str = "auto",
                              batch: Optional[int] = None) -> float:
    """Seconds the fine-tuning phase of ``config`` would take on ``device`` for ``n_train``
    training and ``n_val`` validation photos, timed here on a batch of the run's size (the second
    of two tries): a training step (forward, backward, optimizer) through the part of the model
    that learns, a forward pass for validation, and, where the model splits at the blocks that
    learn (:meth:`~.models.backbones.EfficientNetLite.finetune_split`), one pass of every photo
    through the frozen part below, which training computes once (through onnxruntime on a CPU,
    faster than the PyTorch pass timed here; a second run finds it in the feature cache). The
    phase before it (the head on cached features) takes seconds and is left out. A one-off
    measurement on this machine at this load."""
    cfg = replace(config, pretrained=True, transfer_mode="finetune")
    spec = get_spec(cfg.model)
    size = cfg.image_size or spec.default_image_size
    dev = pick_device(device)
    model = create_model(cfg.model, 2, size, pretrained=False).to(dev)
    if prefers_channels_last(model):
        model.to(memory_format=torch.channels_last)
    phases = [p for p in training_phases(model, cfg) if p.name == "finetune"]
    if not phases:
        return 0.0
    phase = phases[0]
    batch = batch or cfg.batch_size
    learn = {id(p) for p in phase.params}
    for p in model.parameters():
        p.requires_grad_(id(p) in learn)
    x = torch.randn(batch, 3, size, size, device=dev)
    if prefers_channels_last(model):
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(batch, dtype=torch.long, device=dev)
    model.eval()
    phase.learning.train()

    def timed(fn) -> float:
        fn()  # the first call pays one-off costs
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    below_s = 0.0
    if phase.frozen is not None:
        with torch.no_grad():
            below_s = timed(lambda: phase.frozen(x))
            inputs = phase.frozen(x)
        forward = phase.head
    else:
        inputs, forward = x, model
    opt = torch.optim.Adam(phase.params, lr=phase.lr)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(forward(inputs), y).backward()
        opt.step()

    train_s = timed(step)
    model.eval()
    with torch.no_grad():
        eval_s = timed(lambda: forward(inputs))
    per_epoch = (n_train * train_s + n_val * eval_s) / batch
    return float((n_train + n_val) * below_s / batch + cfg.finetune_epochs * per_epoch)
