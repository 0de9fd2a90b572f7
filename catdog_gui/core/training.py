"""One trainer for the CLI, the GUI and notebooks.

Like minGPT's trainer it knows nothing about the model: it takes a :class:`TrainConfig`, a
dataset, and callbacks that receive plain event dataclasses (:mod:`.events`). It can be cancelled
and paused from another thread (checked after every batch), stops early when validation loss and
accuracy stop improving, keeps the best epoch's weights (highest validation accuracy), and always ends with exactly one ``Finished`` event.

Modes, chosen from the config and the model:

* ``scratch``: every weight learns (LeNet-5, or a backbone without pretrained weights);
* ``features``: pretrained backbone frozen, no augmentation: each image's features are computed
  once and the new head trains on the cached features (epochs after the first take milliseconds);
* ``frozen``: pretrained backbone frozen with augmentation: the backbone runs on every augmented
  batch (no gradients through it), the head learns;
* ``finetune``: first as ``features``/``frozen`` until the head has converged, then the backbone's
  later blocks are unfrozen and learn with a lower learning rate for ``finetune_epochs`` epochs.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import numpy as np
import torch
from torch import nn

from .augment import AugmentSettings, BatchAugmenter
from .data import Cancelled, Dataset, ImageCache, build_cache, default_cache_dir, scan_dataset
from .device import cpu_threads, device_name, pick_device
from .distributed import DistContext
from .errors import CatdogError, DatasetError
from .evaluation import compute_metrics
from .events import BatchEnd, CheckpointSaved, DatasetScanned, EpochEnd, Finished, RunStarted, StageProgress
from .modelfile import load_model, save_model
from .models import BackboneClassifier, create_model, get_spec

Callback = Callable[[object], None]
#: raised for GPU (CUDA/MPS) memory; MemoryError for the computer's own
_OUT_OF_MEMORY = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), MemoryError)
OPTIMIZERS = ("adam", "adamw", "sgd")
TRANSFER_MODES = ("frozen", "finetune")


@dataclass
class TrainConfig:
    """Every setting of a training run. The CLI flags, the GUI form and the model file all use it."""

    model: str = "lenet5"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    image_size: Optional[int] = None  # None: the model's own size
    seed: int = 0
    val_fraction: float = 0.2
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    pretrained: bool = False
    transfer_mode: str = "frozen"  # with pretrained: "frozen" (feature extraction) or "finetune"
    finetune_epochs: int = 3
    finetune_lr_factor: float = 0.1
    patience: int = 8  # epochs without a better validation loss before stopping; 0 = never stop early
    device: str = "auto"
    weights_path: Optional[str] = None  # local file with a torchvision backbone's pretrained weights
    #: CPU threads for the math; 0 = automatic: the model's own hint (1 for LeNet-5, whose tiny
    #: layers lose more to thread synchronisation than they gain), else every core
    threads: int = 0
    #: keep decoded images on disk (user cache folder) so the next run on unchanged files starts at once
    disk_cache: bool = True

    @classmethod
    def for_model(cls, model: str, **overrides) -> "TrainConfig":
        """A config with the defaults that fit ``model`` (see ``ModelSpec.defaults``).

        With augmentation on (``augment=AugmentSettings(enabled=True)``), epochs and patience that
        were not given explicitly follow :meth:`AugmentSettings.recommended_epochs`: augmented
        training learns more slowly.
        """
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
        get_spec(self.model)
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (1 <= self.batch_size <= 4096, "batch size must be between 1 and 4096"),
            (0 < self.lr <= 10, "learning rate must be a positive number such as 0.001"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.weight_decay >= 0, "weight decay cannot be negative"),
            (self.image_size is None or 16 <= self.image_size <= 1024, "image size must be between 16 and 1024"),
            (0 < self.val_fraction < 1, "validation fraction must be between 0 and 1"),
            (self.transfer_mode in TRANSFER_MODES, f"transfer mode must be one of {', '.join(TRANSFER_MODES)}"),
            (self.finetune_epochs >= 0, "fine-tuning epochs cannot be negative"),
            (0 < self.finetune_lr_factor <= 1, "fine-tuning learning-rate factor must be in (0, 1]"),
            (self.patience >= 0, "patience cannot be negative (0 turns early stopping off)"),
            (self.threads >= 0, "threads cannot be negative (0 chooses automatically)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise CatdogError(msg)
        if hasattr(self.augment, "validate"):
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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class _Stop(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Trainer:
    """Train one model. Thread-safe controls: :meth:`cancel`, :meth:`pause`, :meth:`resume`."""

    #: CPU threads while a frozen backbone's head trains on cached features: its ops are so small
    #: that a second thread only adds waiting, and on busy shared cores a lot of it
    head_threads = 1

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
        self.metrics = None
        self.device: Optional[torch.device] = None

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
            raise _Stop("cancelled", "stopped by the user")

    # -- the run ---------------------------------------------------------------------------
    def fit(
        self,
        data: Union[str, Path, Dataset],
        val_dir: Union[str, Path, None] = None,
        out_path: Union[str, Path, None] = None,
        resume_from: Union[str, Path, None] = None,
    ) -> Finished:
        """Train; return (and emit) the ``Finished`` event. Never raises for training problems."""
        self._history: list[EpochEnd] = []
        self._best_state = None
        self._best_epoch = 0
        self._best_val_acc = float("nan")
        self._out_path = Path(out_path).expanduser() if out_path else None
        self._saved_path: Optional[str] = None
        try:
            with cpu_threads(self._thread_hint()):
                status, reason = self._fit(data, val_dir, resume_from)
        except _Stop as stop:
            status, reason = stop.status, stop.reason
        except Cancelled:
            status, reason = "cancelled", "stopped by the user before training began"
        except CatdogError as e:
            return self._finish("failed", str(e))
        except _OUT_OF_MEMORY:
            return self._finish("failed", self._out_of_memory())
        except Exception as e:  # a bug: report it, with its traceback, instead of dying silently
            return self._finish("failed", f"internal error: {type(e).__name__}: {e}", user_error=False,
                                tb=traceback.format_exc())
        try:
            self._save_best()
        except CatdogError as e:
            return self._finish("failed", str(e))
        except Exception as e:
            return self._finish("failed", f"internal error while saving: {e}", user_error=False,
                                tb=traceback.format_exc())
        return self._finish(status, reason)

    def _out_of_memory(self) -> str:
        """Free what the failed step held and say what to change."""
        self._xtrain = self._xval = self._ftrain = self._fval = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        cfg = self.config
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

    def _finish(self, status: str, reason: str, user_error: bool = True, tb: str = "") -> Finished:
        ev = Finished(status, reason, self._saved_path, self._best_epoch, self._best_val_acc,
                      tuple(self._history), user_error, tb)
        self._emit(ev)
        return ev

    def _fit(self, data, val_dir, resume_from) -> tuple[str, str]:
        cfg = self.config
        resumed = None
        if resume_from is not None:
            resumed_model, resumed = load_model(resume_from)
            if resumed.model_name != cfg.model:
                cfg.model = resumed.model_name
            cfg.image_size = resumed.image_size
        cfg.validate()
        seed_everything(cfg.seed)
        dist = self.dist
        self.device = device = dist.device if dist is not None else pick_device(cfg.device)
        spec = get_spec(cfg.model)
        size = cfg.image_size or spec.default_image_size

        # 1. data
        if isinstance(data, Dataset):
            dataset = data
        else:
            dataset = scan_dataset(data, val_dir, val_fraction=cfg.val_fraction, seed=cfg.seed,
                                   progress=lambda d, t: self._emit(StageProgress("scan", d, t)),
                                   cancel=self._cancel)
        self.dataset = dataset
        self._emit(DatasetScanned(dataset.report))
        classes = dataset.classes
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
        # deep convolutional backbones run 1.5-1.9x faster on CPU in channels_last (NHWC) memory
        # layout (bench: EfficientNet-Lite0 1.49x, ResNet-18 1.89x, MobileNetV3-Large 1.50x);
        # LeNet-5 keeps the default layout (not measured to help its tiny layers)
        self._channels_last = isinstance(model, BackboneClassifier)
        model.to(device)
        if self._channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self._mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
        if resumed is not None:
            self._mean = torch.tensor(resumed.mean, device=device).view(1, 3, 1, 1)
            self._std = torch.tensor(resumed.std, device=device).view(1, 3, 1, 1)

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
        self._train_cache, self._val_cache = train, val
        self._xtrain, self._ytrain = self._to_device(train)
        self._xval, self._yval = self._to_device(val)

        backbone = isinstance(model, BackboneClassifier) and cfg.pretrained
        aug = cfg.augment.enabled
        mode = "scratch" if not backbone else ("frozen" if aug else "features")
        self._augmenter = BatchAugmenter(cfg.augment, size) if aug else None
        self._aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self._shuffle_gen = torch.Generator().manual_seed(cfg.seed + (dist.rank if dist else 0))
        n_train, n_val = len(train), len(val)
        if dist is not None:
            n_train, n_val = (int(v) for v in dist.sum(n_train, n_val))
        where = device_name(device) + (f" x {dist.world} processes ({dist.backend})" if dist else "")
        self._emit(RunStarted(where, tuple(classes), n_train, n_val, cfg.to_dict(),
                              "finetune" if backbone and cfg.transfer_mode == "finetune" else mode))
        self._run_meta = {"classes": classes, "size": size, "spec": spec,
                          "mean": self._mean.flatten().tolist(), "std": self._std.flatten().tolist()}

        if backbone:
            model.set_backbone_trainable("frozen")
            if mode == "features":
                self._ftrain = self._features(self._xtrain, "features")
                self._fval = self._features(self._xval, "features")
        loss_fn = nn.CrossEntropyLoss()

        if resumed is not None:  # the model to beat is the one we continue from
            vl, va, _ = self._validate(model, mode)
            self._best_loss = vl
            self._best_val_acc = va
            self._best_state = copy.deepcopy(model.state_dict())

        else:
            self._best_loss = math.inf
        self._lowest_loss = self._best_loss
        total_epochs = cfg.epochs + (cfg.finetune_epochs if backbone and cfg.transfer_mode == "finetune" else 0)
        params = model.head.parameters() if backbone else model.parameters()
        self._wrap(model, backbone)
        opt = self._optimizer(params, cfg.lr)
        # a linear layer on cached features: tiny ops, best on one thread
        head_only = mode == "features" and device.type == "cpu" and not cfg.threads
        with cpu_threads(self.head_threads if head_only else 0):
            status, reason = self._loop(model, mode, opt, loss_fn, 1, cfg.epochs, total_epochs, "train")

        if backbone and cfg.transfer_mode == "finetune" and cfg.finetune_epochs > 0 and status != "cancelled":
            # head has converged (or stopped improving): now let the later blocks learn, gently
            model.load_state_dict(self._best_state)
            model.set_backbone_trainable("finetune")
            self._ftrain = self._fval = None
            self._wrap(model, False)
            lr = cfg.lr * cfg.finetune_lr_factor
            opt = self._optimizer([p for p in model.parameters() if p.requires_grad], lr)
            start = (self._history[-1].epoch if self._history else 0) + 1
            status, reason = self._loop(model, "finetune", opt, loss_fn, start, start + cfg.finetune_epochs - 1,
                                        start + cfg.finetune_epochs - 1, "finetune")
        return status, reason

    # -- pieces ----------------------------------------------------------------------------
    def _wrap(self, model: nn.Module, head_only: bool) -> None:
        """The modules the training step calls: under torchrun, wrapped in DistributedDataParallel
        (validation and saving use the plain ones)."""
        self._train_model, self._train_head = model, getattr(model, "head", None)
        if self.dist is not None:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            if head_only:
                self._train_head = DDP(model.head, device_ids=ids)
            else:
                self._train_model = DDP(model, device_ids=ids)

    def _autocast(self):
        """Mixed precision (bfloat16) on CUDA GPUs that support it; full precision elsewhere."""
        if self.device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _optimizer(self, params, lr):
        cfg = self.config
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
        xb = x_all[idx.to(x_all.device)] if x_all.device.type != "cpu" else x_all[idx]
        xb = xb.to(self.device, non_blocking=True).float().div_(255.0)
        if augment and self._augmenter is not None:
            xb = self._augmenter(xb, self._aug_gen)
        xb = (xb - self._mean) / self._std
        return xb.contiguous(memory_format=torch.channels_last) if self._channels_last else xb

    @torch.no_grad()
    def _features(self, x_all: torch.Tensor, stage: str) -> torch.Tensor:
        model = self.model
        model.backbone.eval()
        n = x_all.shape[0]
        bs = 64
        feats = []
        for start in range(0, n, bs):
            self._checkpoint()
            idx = torch.arange(start, min(n, start + bs))
            feats.append(model.backbone(self._batch(x_all, idx, augment=False)))
            self._emit(StageProgress(stage, min(n, start + bs), n))
        return torch.cat(feats).to(self.device)

    def _logits(self, model, mode: str, idx: torch.Tensor, train: bool, which: str) -> torch.Tensor:
        x_all = self._xtrain if which == "train" else self._xval
        head = self._train_head if train else getattr(model, "head", None)
        if mode == "features":
            feats = self._ftrain if which == "train" else self._fval
            return head(feats[idx.to(feats.device)])
        x = self._batch(x_all, idx, augment=train)
        with self._autocast():
            if mode == "frozen":
                with torch.no_grad():
                    f = model.backbone(x)
                return head(f.float()).float()
            return (self._train_model if train else model)(x).float()

    def _set_train_mode(self, model, mode: str, train: bool) -> None:
        if mode == "scratch":
            model.train(train)
        else:  # a pretrained backbone keeps its BatchNorm statistics; only the head switches
            model.eval()
            model.head.train(train)

    @torch.no_grad()
    def _validate(self, model, mode: str) -> tuple[float, float, torch.Tensor]:
        self._set_train_mode(model, mode, False)
        n = len(self._yval)
        losses, probs = 0.0, []
        bs = max(64, self.config.batch_size)
        for start in range(0, n, bs):
            idx = torch.arange(start, min(n, start + bs))
            logits = self._logits(model, mode, idx, False, "val")
            y = self._yval[idx.to(self._yval.device)]
            losses += nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
            probs.append(torch.softmax(logits.float(), 1))
        p = torch.cat(probs)
        correct = (p.argmax(1) == self._yval).sum().item()
        if self.dist is not None:
            losses, correct, n = self.dist.sum(losses, correct, n)
        return losses / n, correct / n, p

    def _loop(self, model, mode, opt, loss_fn, first: int, last: int, total: int, phase: str) -> tuple[str, str]:
        cfg = self.config
        n = len(self._ytrain)
        bs = cfg.batch_size
        padded = n
        if self.dist is not None:  # same number of batches on every rank, same global batch size
            bs = math.ceil(bs / self.dist.world)
            padded = int(self.dist.max(n))
        steps = max(1, math.ceil(padded / bs))
        bad_epochs = 0
        self._mode = mode
        epoch_times: list[float] = []
        for epoch in range(first, last + 1):
            t0 = time.perf_counter()
            self._set_train_mode(model, mode, True)
            order = torch.randperm(n, generator=self._shuffle_gen)
            if padded > n:
                order = torch.cat([order, order[: padded - n]])
            seen = correct = 0
            loss_sum = 0.0
            for step in range(steps):
                idx = order[step * bs:(step + 1) * bs]
                if len(idx) == 0:
                    break
                logits = self._logits(model, mode, idx, True, "train")
                y = self._ytrain[idx.to(self._ytrain.device)]
                loss = loss_fn(logits, y)
                if not torch.isfinite(loss):
                    raise _Stop("failed", (
                        f"training diverged: the loss became {loss.item()} at epoch {epoch}, batch {step + 1}. "
                        f"Try a lower learning rate (now {cfg.lr * (cfg.finetune_lr_factor if phase == 'finetune' else 1):g})"
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
            val_loss, val_acc, _ = self._validate(model, mode)
            if not math.isfinite(val_loss):
                raise _Stop("failed", f"training diverged: validation loss is {val_loss} at epoch {epoch}. "
                                      "Try a lower learning rate")
            seconds = time.perf_counter() - t0
            epoch_times.append(seconds)
            # best epoch: highest validation accuracy (lower loss breaks ties). The minimum of the
            # loss alone often falls on an early epoch that predicts the majority class.
            best_acc = -1.0 if math.isnan(self._best_val_acc) else self._best_val_acc
            is_best = val_acc > best_acc or (val_acc == best_acc and val_loss < self._best_loss)
            improved_loss = val_loss < self._lowest_loss
            self._lowest_loss = min(self._lowest_loss, val_loss)
            if is_best:
                self._best_loss = val_loss
                self._best_epoch = epoch
                self._best_val_acc = val_acc
                self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            # early stopping: neither the validation loss nor the best accuracy improved lately
            bad_epochs = 0 if (is_best or improved_loss) else bad_epochs + 1
            eta = float(np.mean(epoch_times[-5:])) * (total - epoch)
            ev = EpochEnd(epoch, total, loss_sum / max(seen, 1), correct / max(seen, 1), val_loss, val_acc,
                          seen / max(train_seconds, 1e-9), seconds, eta, self._best_epoch, is_best, phase)
            self._history.append(ev)
            self._emit(ev)
            if cfg.patience and bad_epochs >= cfg.patience and epoch < last:
                return "stopped_early", (f"validation loss and accuracy did not improve for {cfg.patience} "
                                         f"epochs; kept epoch {self._best_epoch}")
        return "completed", f"trained {len(self._history)} epochs"

    def _save_best(self) -> None:
        """Restore the best epoch's weights, measure them, and write the model file."""
        if self._best_state is None or self.model is None:
            return
        model = self.model
        model.load_state_dict(self._best_state)
        _loss, acc, probs = self._validate(model, self._mode)
        conf, pred = probs.max(1)
        meta = self._run_meta
        y, pred, conf, paths = (self._yval.cpu().tolist(), pred.cpu().tolist(), conf.cpu().tolist(),
                                list(self._val_cache.paths))
        if self.dist is not None:  # the whole validation set's metrics, from every rank's shard
            parts = self.dist.gather((y, pred, conf, [str(p) for p in paths]))
            y, pred, conf, paths = ([v for part in parts for v in part[i]] for i in range(4))
        self.metrics = compute_metrics(y, pred, meta["classes"], conf, paths)
        if self._out_path is None or (self.dist is not None and not self.dist.is_main):
            return
        report = self.dataset.report
        metrics = {
            "val_accuracy": acc, "val_loss": self._best_loss, "best_epoch": self._best_epoch,
            "n_train": len(self.dataset.train), "n_val": self.metrics.n,
            "per_class": self.metrics.per_class, "confusion": self.metrics.confusion,
            "history": [asdict(e) for e in self._history],
            "dataset": {"root": str(report.root), "val_root": str(report.val_root) if report.val_root else None,
                        "val_source": report.val_source},
        }
        path = save_model(self._out_path, model, model_name=self.config.model, classes=meta["classes"],
                          image_size=meta["size"], mean=meta["mean"], std=meta["std"],
                          config=self.config.to_dict(), metrics=metrics)
        self._saved_path = str(path)
        self._emit(CheckpointSaved(str(path), self._best_epoch, acc))
