"""One training run as data plus signals: what the Training tab draws (and what a run history keeps).

A :class:`TrainingRun` owns the run's :class:`~catdog_gui.gui.common.training_process.TrainingProcess` (the
training runs in a child process) and records
what its events say: the config, where the run is (:class:`RunState`), how it ended (the core
:class:`~catdog_gui.core.events.Status`), the curves (per-batch loss with x in fractional epochs,
per-epoch train/validation loss and accuracy), the best epoch, the speed and time left *as the
trainer measured them* (``EpochEnd.images_per_s`` / ``eta_s``; nothing is recomputed here), the
metrics and the model file. It needs no widget: a script or a test can start one and wait on its
signals. A discarded run's worker never delivers another event, so a stale run never reaches a view.

Also here: where new models go (:func:`models_dir`, :func:`new_model_path`) and
:func:`~catdog_gui.core.text.duration_text` for the time left.
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal
from ...core.events import STAGE_WORDS

#: smoothing of the per-batch loss curve (exponential moving average weight of a new batch)
EMA = 0.1

#: RunStarted.mode in words
MODES = {"scratch": "learning from scratch", "features": "pretrained network frozen (features computed once)",
         "frozen": "pretrained network frozen", "finetune": "pretrained network, then fine-tuning"}


def models_dir() -> Path:
    """The folder where the app saves the models it trains (beside the run store)."""
    from ...core.storage.run_store import app_data_dir

    return app_data_dir() / "models"


def new_model_path(folder: Path, model: str) -> Path:
    """``<folder>/<timestamp>-<model>.pt``, never an existing file."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model)
    path = folder / f"{stamp}-{safe}.pt"
    i = 2
    while path.exists():
        path = folder / f"{stamp}-{safe}-{i}.pt"
        i += 1
    return path


class RunState(enum.Enum):
    """Where a run is. How it ended is :attr:`TrainingRun.status` (the core ``Status``)."""

    NEW = "new"  # created, not started
    PREPARING = "preparing"  # scanning, decoding, loading weights, computing features
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"  # asked to stop: ends after the current batch
    FINISHED = "finished"  # its thread has ended; ``finished`` holds the Finished event
    DISCARDED = "discarded"  # dropped (window closing): no event of it arrives any more

    @property
    def active(self) -> bool:
        return self in (RunState.PREPARING, RunState.RUNNING, RunState.PAUSED, RunState.STOPPING)


class TrainingRun(QObject):
    """The state of one run, fed by its TrainingProcess's signals (see the module docstring).

    Signals (all on the GUI thread, all after the data they announce is recorded):
    ``state_changed(RunState)``, ``stage_changed(StageProgress)``, ``started(RunStarted)``,
    ``batches_added(BatchChunk)``, ``epoch_added(EpochEnd)``, ``finished(Finished)`` (after
    success, stop and failure alike) and ``ended()`` (its thread is done; state FINISHED).
    """

    state_changed = Signal(object)
    stage_changed = Signal(object)
    started = Signal(object)
    batches_added = Signal(object)
    epoch_added = Signal(object)
    finished = Signal(object)
    ended = Signal()
    notice = Signal(str)  # the trainer's Notice lines, for the status bar

    def __init__(self, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.config = None  # the TrainConfig
        self.resume_from: Optional[str] = None
        self.out_path: Optional[str] = None  # where the model file will be written
        self.state = RunState.NEW
        self.stage = None  # the last StageProgress
        self.device = ""
        self.mode = ""  # RunStarted.mode: "scratch", "features", "frozen", "finetune"
        self.classes: tuple = ()
        self.n_train = 0
        self.n_val = 0
        self.epochs_planned = 0  # from the config; EpochEnd.epochs when it says more
        # curves
        self.batch_x: list[float] = []  # fractional epochs: epoch 1, step 2 of 4 -> 0.5
        self.batch_loss: list[float] = []
        self.batch_smooth: list[float] = []  # EMA of batch_loss (the curve the tab draws)
        self.batch_lr: list[float] = []  # each step's learning rate (the schedule's curve)
        self.last_batch = None  # the last BatchEnd
        self.epochs: list = []  # the EpochEnd events
        # the end
        self.finished_event = None  # the Finished event
        self.started_at: Optional[float] = None  # time.time()
        self.ended_at: Optional[float] = None
        self.worker = None  # the TrainingProcess, from start() until its thread has ended
        self._before_pause = RunState.RUNNING  # the state resume() goes back to

    # ---- derived -------------------------------------------------------------------------------
    @property
    def status(self):
        """How the run ended (core ``Status``), or None while it goes."""
        return self.finished_event.status if self.finished_event is not None else None

    @property
    def metrics(self):
        """The best epoch's Metrics on the validation photos (None until the run ends with one)."""
        return self.finished_event.metrics if self.finished_event is not None else None

    @property
    def model_path(self) -> Optional[str]:
        """The saved model file (None until the run saved one)."""
        return self.finished_event.best_path if self.finished_event is not None else None

    @property
    def best_epoch(self) -> int:
        if self.finished_event is not None and self.finished_event.best_epoch:
            return self.finished_event.best_epoch
        return self.epochs[-1].best_epoch if self.epochs else 0

    @property
    def eta_s(self) -> Optional[float]:
        """Seconds left as the trainer estimated at the last epoch's end (None before the first)."""
        return self.epochs[-1].eta_s if self.epochs else None

    @property
    def images_per_s(self) -> Optional[float]:
        return self.epochs[-1].images_per_s if self.epochs else None

    @property
    def epochs_total(self) -> int:
        """How many epochs the run will have (fine-tuning included)."""
        return max([self.epochs_planned] + [e.epochs for e in self.epochs[-1:]])

    @property
    def stage_what(self) -> str:
        """The preparation stage in words ("reading the photos"), or ""."""
        return STAGE_WORDS.get(self.stage.stage, self.stage.stage) if self.stage is not None else ""

    @property
    def stage_text(self) -> str:
        """The preparation stage with its progress ("reading the photos (120 of 400)"), or ""."""
        ev = self.stage
        if ev is None:
            return ""
        return f"{self.stage_what} ({ev.done:,} of {ev.total:,})" if ev.total > 0 else self.stage_what

    @property
    def mode_text(self) -> str:
        return MODES.get(self.mode, self.mode)

    def is_active(self) -> bool:
        """Started and its thread not yet ended."""
        return self.state.active

    @property
    def paused(self) -> bool:
        return self.state is RunState.PAUSED

    # ---- controls ------------------------------------------------------------------------------
    def start(self, config, dataset, out, resume_from: Optional[str] = None, *, tensorboard=None,
              val_dir=None, nprocs: int = 1) -> "TrainingRun":
        """Train ``config`` on ``dataset`` (a Dataset or a folder) into the model file ``out``, in a
        training process (``nprocs`` > 1: that many, through torchrun). ``tensorboard``: a folder to log
        the run under. A run starts once."""
        from ..common.training_process import TrainingProcess

        if self.state is not RunState.NEW:
            raise RuntimeError("a TrainingRun starts only once: make a new one")
        self.config = config
        self.resume_from = str(resume_from) if resume_from else None
        self.out_path = str(out)
        self.epochs_planned = config.epochs + (config.finetune_epochs
                                               if config.pretrained and config.transfer_mode == "finetune" else 0)
        self.started_at = time.time()
        w = self.worker = TrainingProcess(config, dataset, str(out), val_dir=val_dir, resume_from=self.resume_from,
                                          parent=self, tensorboard=tensorboard, nprocs=nprocs)
        w.stage.connect(self._on_stage)
        w.started.connect(self._on_started)
        w.batches.connect(self._on_batches)
        w.epoch.connect(self._on_epoch)
        w.result.connect(self._on_result)
        w.ended.connect(self._on_ended)
        w.notice.connect(self.notice)
        self._set_state(RunState.PREPARING)
        w.start()
        return self

    def pause(self) -> None:
        if self.state in (RunState.PREPARING, RunState.RUNNING):
            self.worker.pause()
            self._before_pause = self.state
            self._set_state(RunState.PAUSED)

    def resume(self) -> None:
        if self.state is RunState.PAUSED:
            self.worker.resume()
            self._set_state(self._before_pause)

    def stop(self) -> None:
        """Stop after the current batch; the best epoch so far is kept (status CANCELLED)."""
        if self.state.active:
            self.worker.cancel()
            self._set_state(RunState.STOPPING)

    def discard(self) -> None:
        """Stop, and deliver no further event (the window is closing, or the run is dropped)."""
        if self.worker is not None:
            self.worker.discard()
        if self.state is not RunState.FINISHED:
            self.ended_at = self.ended_at or time.time()
            self._set_state(RunState.DISCARDED)

    def wait(self, ms: int = -1) -> bool:
        """Join the run's thread (True when it has ended)."""
        return self.worker.wait(ms) if self.worker is not None else True

    # ---- worker events ---------------------------------------------------------------------------
    def _set_state(self, state: RunState) -> None:
        if state is not self.state:
            self.state = state
            self.state_changed.emit(state)

    def _on_stage(self, ev) -> None:
        self.stage = ev
        self.stage_changed.emit(ev)

    def _on_started(self, ev) -> None:
        self.device = ev.device or self.device
        self.mode = ev.mode
        self.classes = tuple(ev.classes)
        self.n_train, self.n_val = ev.n_train, ev.n_val
        if self.state is RunState.PREPARING:
            self._set_state(RunState.RUNNING)
        elif self.state is RunState.PAUSED:
            self._before_pause = RunState.RUNNING
        self.started.emit(ev)

    def _on_batches(self, chunk) -> None:
        ema = self.batch_smooth[-1] if self.batch_smooth else None
        for b in chunk.events:
            self.batch_x.append((b.epoch - 1) + b.step / max(b.steps, 1))
            self.batch_loss.append(b.loss)
            ema = b.loss if ema is None else (1 - EMA) * ema + EMA * b.loss
            self.batch_smooth.append(ema)
            self.batch_lr.append(b.lr)
        self.last_batch = chunk.last
        self.batches_added.emit(chunk)

    def _on_epoch(self, ev) -> None:
        self.epochs.append(ev)
        self.epoch_added.emit(ev)

    def _on_result(self, fin) -> None:
        self.finished_event = fin
        self.finished.emit(fin)

    def _on_ended(self) -> None:
        self.ended_at = time.time()
        # the thread is done: let the worker go, and with it the trainer's model and photos
        worker, self.worker = self.worker, None
        worker.deleteLater()
        self._set_state(RunState.FINISHED)
        self.ended.emit()
