"""One trainer for the CLI, the GUI and notebooks.

Like minGPT's trainer it knows nothing about the model: it takes a
:class:`~catdog_gui.core.config.TrainConfig`, a dataset, and callbacks that receive plain event
dataclasses (:mod:`catdog_gui.core.events`). It can be cancelled and paused from another thread
(checked after every batch), stops early when validation loss and accuracy stop improving, keeps the
best epoch's weights (highest validation accuracy), and always ends with exactly one ``Finished``
event.

Modes, chosen from the config and the model:

* ``scratch``: every weight learns (LeNet-5, or a backbone without pretrained weights);
* ``features``: pretrained backbone frozen, no augmentation: each image's features are computed
  once and the new head trains on the cached features (epochs after the first take milliseconds).
  On a CPU the backbone runs through onnxruntime (:mod:`catdog_gui.core.inference.features`),
  and with ``disk_cache`` every photo's features are kept in the user cache folder, so the next run
  computes only new photos;
* ``frozen``: pretrained backbone frozen with augmentation: the backbone runs on every augmented
  batch (no gradients through it), the head learns;
* ``finetune``: first as ``features``/``frozen`` until the head has converged, then the backbone's
  later blocks are unfrozen and learn with a lower learning rate for ``finetune_epochs`` epochs.

This module holds :class:`Trainer`: its controls, ``fit`` and the order of a fit's steps. The steps
live in its mixins: :mod:`.preparation` (dataset, decoded images, batches, cached features),
:mod:`.loop` (phases, optimizer, epochs, validation), :mod:`.answer_fit` (calibration and the
unfamiliar-photo check) and :mod:`.model_writer` (the model file);
one fit's state is a :class:`~.fit_state.FitState`.
"""

from __future__ import annotations

import copy
import random
import threading
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..data.augment import BatchAugmenter
from ..data.scan import Dataset
from ..device import cpu_threads, device_name, pick_device
from ..errors import Cancelled, CatdogError, DatasetError
from ..events import DatasetScanned, Finished, RunStarted, StageProgress, Status
from ..models import ModelInput, create_model, get_spec, prefers_channels_last, training_phases
from ..storage.modelfile import load_model
from .distributed import DistContext
from .fit_state import FitState, StopFit
from .loop import TrainingLoop
from .answer_fit import AnswerFitting
from .lr_find import LRFinder
from .model_writer import ModelWriter
from .preparation import DataPreparation

Callback = Callable[[object], None]
#: raised for GPU (CUDA/MPS) memory; MemoryError for the computer's own
_OUT_OF_MEMORY = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), MemoryError)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class Trainer(DataPreparation, TrainingLoop, AnswerFitting, ModelWriter, LRFinder):
    """Train one model. Thread-safe controls: :meth:`cancel`, :meth:`pause`, :meth:`resume`.

    After :meth:`fit`: ``model`` (the best epoch's weights), ``dataset``, ``device`` and
    ``train_samples`` (this process's share) describe the run; its metrics travel in ``Finished``.
    """

    #: CPU threads while a frozen backbone's head trains on cached features: its ops are so small
    #: that a second thread only adds waiting, and on busy shared cores a lot of it
    head_threads = 1

    def __init__(self, config: TrainConfig, callbacks: Iterable[Callback] = (), dist: Optional[DistContext] = None):
        """CatdogError (saying which setting and why) when ``config`` is not valid: the one place a config
        is checked before it enters the engine, before anything starts."""
        self.config = config.validate()
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
        #: the state of the current (or last) fit
        self._state: Optional[FitState] = None

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

    def _check_controls(self) -> None:
        """Called after every batch: wait while paused, stop (:class:`StopFit`) when cancelled."""
        if not self._running.is_set():
            self._running.wait()
        stop = self._cancel.is_set()
        if self.dist is not None:  # every rank stops together, whichever one was asked
            stop = self.dist.max(1.0 if stop else 0.0) > 0
        if stop:
            raise StopFit(Status.CANCELLED, "stopped by the user")

    # -- the fit ---------------------------------------------------------------------------
    def fit(
        self,
        data: Union[str, Path, Dataset],
        val_dir: Union[str, Path, None] = None,
        out_path: Union[str, Path, None] = None,
        resume_from: Union[str, Path, None] = None,
    ) -> Finished:
        """Train; return (and emit) the ``Finished`` event. Never raises for training problems."""
        self._state = FitState(replace(self.config), Path(out_path).expanduser() if out_path else None)
        self.metrics = None
        self.feature_stats = {"computed": 0, "cached": 0, "path": None}
        try:
            with cpu_threads(self._thread_hint()):
                status, reason = self._fit(data, val_dir, resume_from)
        except StopFit as stop:
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
        self._state.free()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        cfg = self._state.config
        where = "the GPU" if self.device is not None and self.device.type != "cpu" else "this computer"
        return (f"out of memory on {where}: try a smaller batch size (now {cfg.batch_size}) or a smaller image "
                f"size, or close other programs that use {where}")

    def _finish(self, status: Status, reason: str, user_error: bool = True, tb: str = "") -> Finished:
        state = self._state
        ev = Finished(status, reason, state.saved_path, state.best_epoch, state.best_val_acc, tuple(state.history),
                      user_error, tb, metrics=self.metrics if status is not Status.FAILED else None,
                      val_seen=state.val_seen)
        self._emit(ev)
        return ev

    def _prepare(self, data, val_dir, resume_from):
        """Data (scanned, decoded), model (new, or the one continued from) on its device, and the
        training phases it asks for: (model, phases, the continued model's info or None). Emits
        ``DatasetScanned`` and ``RunStarted``."""
        state = self._state
        resumed = None
        if resume_from is not None:
            resumed_model, resumed = load_model(resume_from)
            state.config = replace(state.config, model=resumed.model_name, image_size=resumed.image_size)
        cfg = state.config
        seed_everything(cfg.seed)
        dist = self.dist
        self.device = device = dist.device if dist is not None else pick_device(cfg.device)
        spec = get_spec(cfg.model)
        size = cfg.image_size or spec.default_image_size

        # 1. data
        dataset = self._load_dataset(data, val_dir, cfg)
        self.dataset = dataset
        self._emit(DatasetScanned(dataset.report))
        classes = dataset.classes
        if resumed is not None:
            state.val_seen = (self._check_resumed_split(resumed, dataset.report)
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
        state.inputs = ModelInput(mean, std, device, channels_last)

        # 3. decode once (under torchrun: only this rank's shard)
        self._decode(dataset, size)

        # 4. the phases the model asks for (a frozen feature extractor, then maybe fine-tuning)
        phases = training_phases(model, cfg)
        aug = cfg.augment.enabled
        state.augmenter = BatchAugmenter(cfg.augment, size) if aug else None
        state.aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
        state.shuffle_gen = torch.Generator().manual_seed(cfg.seed + (dist.rank if dist else 0))
        n_train, n_val = len(state.train_cache), len(state.val_cache)
        if dist is not None:
            n_train, n_val = (int(v) for v in dist.sum(n_train, n_val))
        where = device_name(device) + (f" x {dist.world} processes ({dist.backend})" if dist else "")
        first_mode = self._mode_of(phases[0], aug)
        self._emit(RunStarted(where, tuple(classes), n_train, n_val, cfg.to_dict(),
                              "finetune" if any(p.name == "finetune" for p in phases) else first_mode))
        state.meta = {"classes": classes, "size": size, "mean": list(mean), "std": list(std)}
        return model, phases, resumed

    def _fit(self, data, val_dir, resume_from) -> tuple[Status, str]:
        """The steps of a fit, in order: data, model, decoding (:meth:`_prepare`), then each training phase."""
        state = self._state
        model, phases, resumed = self._prepare(data, val_dir, resume_from)
        cfg, device, aug = state.config, self.device, state.config.augment.enabled
        loss_fn = nn.CrossEntropyLoss()
        total_epochs = sum(p.epochs for p in phases)

        status, reason = Status.COMPLETED, ""
        first = 1
        for i, phase in enumerate(phases):
            if i > 0:
                if status is Status.CANCELLED:
                    break
                # the previous phase has converged (or stopped improving): start the next from its best epoch
                model.load_state_dict(state.best_state)
            self._enter_phase(model, phase, aug)
            if resumed is not None and i == 0:  # the model to beat is the one we continue from
                state.best_loss, state.best_val_acc, _ = self._validate(model)
                state.best_state = copy.deepcopy(model.state_dict())
                state.lowest_loss = state.best_loss
            opt = self._optimizer(phase.params, phase.lr)
            # a linear layer on cached features: tiny ops, best on one thread
            head_only = (state.mode == "features" and phase.name != "finetune" and device.type == "cpu"
                         and not cfg.threads)
            last = first + phase.epochs - 1
            with cpu_threads(self.head_threads if head_only else 0):
                status, reason = self._loop(model, opt, loss_fn, first, last,
                                            total_epochs if i == 0 else last, phase.name)
            first = (state.history[-1].epoch if state.history else 0) + 1
        return status, reason
