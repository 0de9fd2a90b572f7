"""The Training tab: choose a model and settings, train in the background, watch live curves, and
read the evaluation when the run ends.

The tab is a view, napari style: it takes its models in the constructor (the shared
:class:`~catdog_gui.gui.models.augment_model.AugmentModel`, the :class:`~catdog_gui.gui.settings.Settings` and the
window's :class:`~catdog_gui.gui.models.current_model.CurrentModel`) and, for each run, makes one
:class:`~catdog_gui.gui.models.training_run.TrainingRun` and draws it from the run's signals. It keeps no
state of a run itself. Its parts: :class:`~.training_form.TrainingForm` (the settings, derived from
TrainConfig), :class:`~.training_plots.TrainingPlots` and :class:`~.training_results.ResultsPanel`.
Torch and pyqtgraph are imported only once the window is on screen (:meth:`TrainingTab.set_backend`
and :meth:`TrainingTab.ensure_plots`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from ...core.events import Status
from ..models.current_model import CurrentModel
from ..models.dataset_model import DatasetModel
from ..models.runs_model import RunEvaluation, RunsModel, test_text
from ..settings import Settings
from .finetune_estimate import FinetuneEstimate
from .form import TrainingForm
from .plots import TrainingPlots
from .run_progress import RunProgress
from .results import ResultsPanel
from ..models.training_run import RunState, TrainingRun, models_dir, new_model_path
from ..models.augment_model import AugmentModel
from ..common.widgets import heading, muted
from ..common.workers import Task
from ..common.controls import push_button

__all__ = ["TrainingTab"]

#: how often the screen follows the batches (they come at up to ~20 Hz; plots are costly to repaint)
REFRESH_MS = 250
_DONE = {Status.COMPLETED: "Training finished", Status.STOPPED_EARLY: "Training finished (stopped early)",
         Status.CANCELLED: "Training stopped", Status.FAILED: "Training failed"}


class TrainingTab(QWidget):
    status_message = Signal(str)
    busy = Signal(str)  # "" when idle
    model_saved = Signal(str)  # path of the new model file (it is also opened as the current model)
    try_model_requested = Signal(str)
    image_size_changed = Signal(int)
    run_finished = Signal(object)  # the Finished event (with metrics)
    running_changed = Signal(bool)
    compare_requested = Signal(list)  # [this run's id, the previous run's id]: show them in the Runs tab

    def __init__(self, data: DatasetModel, augment: AugmentModel, current: CurrentModel, runs: RunsModel,
                 settings: Optional[Settings] = None, models_folder: Optional[Path] = None, parent=None):
        super().__init__(parent)
        self.data = data  # the dataset to train on (the split is edited here, the folders in the Dataset tab)
        self.augment = augment
        self.settings = settings
        self.current = current
        self.models_folder = Path(models_folder) if models_folder else None
        self.device = ""
        self.runs = runs  # the run store, shared with the Runs tab
        self.record_id: Optional[str] = None  # the shown run's id in the store (its test result goes there)
        self.evaluation = RunEvaluation(self.runs, self.current, parent=self)
        self.run: Optional[TrainingRun] = None  # the run on screen (the last one started, or one handed in)
        self._links: list = []  # (signal, slot) of self.run, cut when another run is shown
        self._busy_epoch = 0  # the epoch the status bar last announced
        self._view_timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._view_timer.timeout.connect(self._refresh_view)
        self._build()
        ev = self.evaluation
        self.results.eval_bar.attach(ev)
        ev.done.connect(self._on_test_result)
        ev.failed.connect(lambda msg: self.results.show_test(f"Not evaluated on the test folder: {msg}", "bad"))
        ev.cancelled.connect(lambda: self.results.show_test("Evaluation on the test folder stopped.", "warn"))
        ev.finished.connect(self._update_buttons)
        self.runs.test_evaluated.connect(self._on_test_result)
        self.current.changed.connect(self._on_current_changed)
        self.current.loading.connect(lambda _p: self._update_buttons())
        self.current.failed.connect(lambda _p, _m: self._update_buttons())
        self.data.changed.connect(self._on_dataset_changed)
        self.data.set_split(*self.form.split())  # the stored split, before the first scan
        self._on_dataset_changed(self.data.dataset)

    # ------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QHBoxLayout(self)
        root.setContentsMargins(10, 10, 10, 10)
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(self.main_split)

        # ---- left: settings and controls
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 10, 0)
        ll.setSpacing(6)
        f = self.form = TrainingForm(self.augment, self.settings)
        self.finetune_estimate = FinetuneEstimate(f, parent=self)
        f.note.connect(self.status_message)
        f.image_size_changed.connect(self.image_size_changed)
        f.split_changed.connect(self.data.set_split)
        f.find_lr_requested.connect(self.find_learning_rate)
        self.lr_finder = None  # the learning-rate finder's window (lr_finder.py), made on first use
        ll.addWidget(f)

        ll.addSpacing(8)
        ll.addWidget(heading("Data"))
        self.data_label = muted("No dataset yet: choose a folder in the Dataset tab.")
        ll.addWidget(self.data_label)
        # several GPUs: how many the run uses (one process each, through torchrun); shown when there are
        self.process_row = QWidget()
        pr = QHBoxLayout(self.process_row)
        pr.setContentsMargins(0, 4, 0, 0)
        pr.addWidget(QLabel("GPUs to use:"))
        self.process_spin = QSpinBox()
        self.process_spin.setRange(1, 1)
        self.process_spin.setAccessibleName("GPUs to use")
        self.process_spin.setToolTip("Train on this many GPUs at once (one process each); the run says which "
                                     "devices it used")
        pr.addWidget(self.process_spin)
        pr.addStretch(1)
        self.process_row.hide()
        ll.addWidget(self.process_row)
        ll.addStretch(1)

        icon = self.style().standardIcon
        self.train_button = push_button("Train", "Train a new model on the dataset (Ctrl+Return)",
                                        lambda: self.start_training(), name="Train",
                                        icon=icon(QStyle.StandardPixmap.SP_MediaPlay), primary=True)
        ll.addWidget(self.train_button)
        row = QHBoxLayout()
        self.pause_button = push_button("Pause",
                                        "Pause training after the current batch; Resume goes on where it stopped",
                                        self.toggle_pause, name="Pause",
                                        icon=icon(QStyle.StandardPixmap.SP_MediaPause))
        row.addWidget(self.pause_button)
        self.stop_button = push_button("Stop",
                                       "Stop after the current batch and keep the best model so far (Esc)",
                                       self.stop, name="Stop", icon=icon(QStyle.StandardPixmap.SP_MediaStop))
        row.addWidget(self.stop_button)
        ll.addLayout(row)
        self.continue_button = QPushButton("Continue training")
        self.continue_button.setIcon(icon(QStyle.StandardPixmap.SP_MediaSeekForward))
        self.continue_button.setToolTip("Train the current model further (on this dataset, with these settings); "
                                        "the result is saved as a new model")
        self.continue_button.setAccessibleName("Continue training")
        self.continue_button.clicked.connect(lambda: self.start_training(resume=True))
        ll.addWidget(self.continue_button)

        lscroll = QScrollArea()
        lscroll.setWidgetResizable(True)
        lscroll.setFrameShape(QFrame.Shape.NoFrame)
        lscroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lscroll.setWidget(left)
        # as wide as the form needs (no horizontal scroll bar: a narrower column would clip it)
        left_width = max(300, left.minimumSizeHint().width() + lscroll.verticalScrollBar().sizeHint().width() + 4)
        lscroll.setMinimumWidth(left_width)
        self.main_split.addWidget(lscroll)

        # ---- right: progress, plots, results
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        self.progress = RunProgress()
        rl.addWidget(self.progress)

        self.right_split = QSplitter(Qt.Orientation.Vertical)
        self.plots = TrainingPlots()
        self.right_split.addWidget(self.plots)
        r = self.results = ResultsPanel()
        r.hide()  # until a run ends: the plots get the whole height meanwhile
        r.try_requested.connect(self._try_model)
        r.evaluate_requested.connect(self.pick_test_folder)
        r.compare_requested.connect(self.compare_with_previous)
        self.right_split.addWidget(r)
        self.right_split.setStretchFactor(0, 3)
        self.right_split.setStretchFactor(1, 2)
        rl.addWidget(self.right_split, 1)
        self.main_split.addWidget(right)
        self.main_split.setStretchFactor(0, 0)
        self.main_split.setStretchFactor(1, 1)
        self.main_split.setSizes([left_width, 900])

        # actions: shortcuts live on the window (the main window adds them to its Training menu)
        self.train_action = QAction("&Train", self, shortcut=QKeySequence("Ctrl+Return"))
        self.train_action.setToolTip("Train a new model (Ctrl+Return)")
        self.train_action.triggered.connect(lambda: self.start_training())
        self.pause_action = QAction("&Pause / Resume", self)
        self.pause_action.triggered.connect(self.toggle_pause)
        self.stop_action = QAction("&Stop", self, shortcut=QKeySequence(Qt.Key.Key_Escape))
        self.stop_action.setToolTip("Stop training and keep the best model so far (Esc)")
        self.stop_action.triggered.connect(self.stop)
        self.continue_action = QAction("&Continue training", self)
        self.continue_action.triggered.connect(lambda: self.start_training(resume=True))

    # ------------------------------------------------------------------------------ plots, backend
    def ensure_plots(self) -> None:
        """Create the pyqtgraph plots (imports pyqtgraph: call after the window is shown)."""
        if not self.plots.ready:
            self.plots.ensure()
            self.plots.draw(self.run)

    @property
    def plots_ready(self) -> bool:
        return self.plots.ready

    def set_backend(self, specs, device: str) -> None:
        """Called once torch is loaded: fill the model list, restore settings, show the device."""
        self.device = device
        self.form.set_backend(specs)
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus > 1:  # default: all of them
            self.process_spin.setRange(1, gpus)
            self.process_spin.setValue(gpus)
            self.process_row.show()
        self._update_buttons()
        f = self.form
        for sig in (f.transfer_mode.currentIndexChanged, f.transfer_check.toggled, f.model_combo.currentIndexChanged):
            sig.connect(self.update_finetune_estimate)
        self.update_finetune_estimate()

    def update_finetune_estimate(self, *_) -> None:
        self.finetune_estimate.update(self.dataset, self.device if self.backend_ready else "")

    @property
    def specs(self) -> dict:
        return self.form.specs

    @property
    def backend_ready(self) -> bool:
        return self.form.backend_ready

    def processes(self) -> int:
        """How many training processes the next run uses (GPUs; 1 without several)."""
        return self.process_spin.value()

    def model_name(self) -> Optional[str]:
        return self.form.model_name()

    def select_model(self, name: str, defaults: bool = True) -> None:
        self.form.select_model(name, defaults)

    def config(self):
        """The TrainConfig the form describes (validated)."""
        return self.form.config()

    # ------------------------------------------------------------------------------ data, model
    @property
    def dataset(self):
        """The scanned Dataset training uses (the dataset model's), or None."""
        return self.data.dataset

    def _on_dataset_changed(self, dataset) -> None:
        if dataset is None:
            self.data_label.setText("No dataset yet: choose a folder in the Dataset tab.")
        else:
            r = dataset.report
            self.data_label.setText(
                f"{r.n_train:,} training and {r.n_val:,} validation photos in {len(r.classes)} classes "
                f"({', '.join(r.classes)}), from {r.root}")
            self.data_label.setToolTip(str(r.root))
        self._update_buttons()
        self.update_finetune_estimate()

    def _model_file(self) -> Optional[str]:
        """The model "Try" and "Save as" act on: the one being opened, else the current one."""
        return self.current.pending or self.current.path

    def _on_current_changed(self, _predictor) -> None:
        if self.current.path and self.results.isHidden() and not self.is_running():
            self.results.show_current_model(self.current.file_name)
            self.results.show()
        self._update_buttons()

    def _try_model(self) -> None:
        path = self._model_file()
        if path:
            self.try_model_requested.emit(path)

    # ------------------------------------------------------------------------------ running
    def is_running(self) -> bool:
        return self.run is not None and self.run.is_active()

    def _update_buttons(self) -> None:
        running = self.is_running()
        ready = self.backend_ready and self.dataset is not None
        self.train_button.setEnabled(ready and not running)
        self.train_action.setEnabled(ready and not running)
        self.continue_button.setEnabled(ready and not running and bool(self.current.path))
        self.continue_action.setEnabled(self.continue_button.isEnabled())
        for w in (self.pause_button, self.pause_action, self.stop_button, self.stop_action):
            w.setEnabled(running)
        self.form.set_running(running)
        has_model = bool(self._model_file())
        self.results.try_button.setEnabled(has_model and not running)
        self.results.save_button.setEnabled(has_model and not running)
        recorded = self.record_id is not None and not running
        self.results.evaluate_button.setEnabled(recorded and bool(self.run and self.run.model_path)
                                        and not self.evaluation.is_running())
        self.results.compare_button.setEnabled(recorded and self.runs.previous_of(self.record_id) is not None)
        if not self.backend_ready:
            self.train_button.setToolTip("Loading the training engine…")
        elif self.dataset is None:
            self.train_button.setToolTip("Choose a folder of photos in the Dataset tab first")
        else:
            self.train_button.setToolTip("Train a new model on the dataset (Ctrl+Return)")

    def _config_to_start(self, busy: str):
        """The form's TrainConfig when something can start now (no run going, a dataset scanned); else None,
        with the reason said (``busy`` when a run is going)."""
        from ...core.errors import CatdogError

        if self.is_running():
            self.status_message.emit(busy)
            return None
        if not self.backend_ready or self.dataset is None:
            self.status_message.emit("Choose a folder of photos in the Dataset tab first")
            return None
        try:
            return self.config()
        except CatdogError as e:
            self._show_error(str(e))
            return None

    def start_training(self, resume: bool = False) -> bool:
        """Start a run in the background; False (with a message) when it cannot start."""
        from ...core.errors import CatdogError

        resume_from = self.current.path if resume else None
        if resume and not resume_from:
            return False
        cfg = self._config_to_start("A training run is already going: stop it first")
        if cfg is None:
            return False
        folder = self.models_folder or models_dir()
        try:
            out = new_model_path(folder, (self.current.model_name or cfg.model) if resume else cfg.model)
        except OSError as e:
            self._show_error(f"cannot create the models folder {folder}: {e.strerror or e}")
            return False
        logger = None
        if self.form.tensorboard_check.isChecked():
            from ...core.training.tensorboard import TensorBoardLogger

            try:
                logger = str(TensorBoardLogger(folder / "runs").log_dir)  # the package is there, the folder made
            except CatdogError as e:
                self._show_error(str(e))
                return False
        run = TrainingRun()  # not a child of the tab: it lives as long as someone keeps it (self.run, a history)
        self.show_run(run)
        run.start(cfg, self.dataset, out, resume_from=resume_from, tensorboard=logger, nprocs=self.processes())
        return True

    def find_learning_rate(self) -> bool:
        """Open the learning-rate finder on the form's settings and the dataset; its suggestion reaches the
        form only when the user takes it. False (with a message) when it cannot start."""
        cfg = self._config_to_start("A training run is going: find a learning rate before or after it")
        if cfg is None:
            return False
        if self.lr_finder is None:
            from .lr_finder import LRFinderDialog

            self.lr_finder = LRFinderDialog(self)
            self.lr_finder.use_rate.connect(self._use_learning_rate)
        self.lr_finder.show()
        return self.lr_finder.start(cfg, self.dataset)

    def _use_learning_rate(self, lr: float) -> None:
        self.form.hyper["lr"].setValue(lr)
        self.status_message.emit(f"Learning rate set to {self.form.hyper['lr'].value():g} (the finder's suggestion)")

    def _on_notice(self, text: str) -> None:
        self.status_message.emit(text)

    def show_run(self, run: Optional[TrainingRun]) -> None:
        """Draw ``run`` from now on (a new one, or one kept from before); the previous run's signals are
        disconnected from this tab."""
        for sig, slot in self._links:
            sig.disconnect(slot)
        was_running = self.is_running()
        self.run = run
        self.record_id = self._record_of(run)
        self._links = []
        self._view_timer.stop()
        self._busy_epoch = 0
        if run is not None:
            self._links = [(run.state_changed, self._on_state), (run.stage_changed, self._on_stage),
                           (run.started, self._on_started), (run.batches_added, self._on_batches),
                           (run.epoch_added, self._on_epoch), (run.finished, self._on_finished),
                           (run.ended, self._on_ended), (run.notice, self._on_notice)]
            for sig, slot in self._links:
                sig.connect(slot)
        if run is not None and run.state is RunState.NEW:
            self.ensure_plots()
        self.plots.draw(run)
        self.results.clear()
        if run is not None and run.finished_event is not None:
            self._show_result(run.finished_event)
        else:
            self.results.hide()
        if run is not None and run.state is RunState.NEW:
            self.progress.show_preparing()
        if self.is_running() != was_running:
            self.running_changed.emit(self.is_running())
        self._update_buttons()

    def _record_of(self, run: Optional[TrainingRun]) -> Optional[str]:
        """The id in the store of a finished run (found by its model file)."""
        path = run.model_path if run is not None else None
        if not path:
            return None
        path = str(Path(path).resolve())
        return next((r.id for r in self.runs.records() if r.model_path == path), None)

    # ------------------------------------------------------------------------------ after a run
    def compare_with_previous(self) -> None:
        """Ask for this run and the one before it, side by side in the Runs tab."""
        prev = self.runs.previous_of(self.record_id) if self.record_id else None
        if prev is None:
            self.status_message.emit("This is the first run in the run list: nothing to compare it with yet")
            return
        self.compare_requested.emit([self.record_id, prev])

    def pick_test_folder(self) -> None:
        start = str(Path(self.dataset.report.root).parent) if self.dataset is not None else str(Path.home())
        folder = QFileDialog.getExistingDirectory(
            self, "Choose a labelled test folder (one subfolder per class) the model never saw", start)
        if folder:
            self.evaluate_on(folder)

    def evaluate_on(self, folder: str) -> bool:
        """Score the shown run's model on ``folder`` in the background; the result appears beside the
        validation result and is kept with the run (the Runs tab's test column)."""
        if self.record_id is None or self.run is None or not self.run.model_path:
            self.status_message.emit("Train a model first: the evaluation scores the model of a finished run")
            return False
        self.results.show_test("")
        ok = self.evaluation.start(self.record_id, self.run.model_path, folder)
        self._update_buttons()
        return ok

    def _on_test_result(self, run_id: str, test: dict) -> None:
        if run_id == self.record_id and test:
            self.results.show_test(test_text(test))
            self.status_message.emit(test_text(test))

    def toggle_pause(self) -> None:
        run = self.run
        if run is None or not run.is_active():
            return
        if run.paused:
            run.resume()
        else:
            run.pause()

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop any run, forget its signals, and join its thread (closing the window)."""
        ok = True
        run = self.run
        if run is not None:
            self.show_run(None)
            run.discard()
            ok = run.wait(timeout_ms)
        self.results.shutdown()
        if self.lr_finder is not None:
            self.lr_finder.shutdown()
        self.finetune_estimate.shutdown()
        self.evaluation.shutdown()
        Task.shutdown_all(self)
        return ok

    # ------------------------------------------------------------------------------ the run's events
    def _on_state(self, state: RunState) -> None:
        icon = self.style().standardIcon
        paused = state is RunState.PAUSED
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setIcon(icon(QStyle.StandardPixmap.SP_MediaPlay if paused
                                       else QStyle.StandardPixmap.SP_MediaPause))
        if paused:
            self.progress.say("Paused. Resume goes on from the same batch; Stop keeps the best model so far.")
            self.busy.emit("Training paused")
        elif state is RunState.STOPPING:
            self.progress.say("Stopping after this batch…")
            self.busy.emit("Stopping training…")
        elif state in (RunState.PREPARING, RunState.RUNNING):
            self.busy.emit("Training…")
            if state is RunState.PREPARING:
                self.running_changed.emit(True)
        self._update_buttons()

    def _on_stage(self, ev) -> None:
        self.progress.show_stage(self.run, ev)

    def _on_started(self, ev) -> None:
        self.progress.show_started(self.run, ev)
        self.status_message.emit(f"Training started on {self.run.device}")

    def _on_batches(self, chunk) -> None:
        last = chunk.last
        if last.epoch != self._busy_epoch and self.run.state is RunState.RUNNING:
            self._busy_epoch = last.epoch
            self.busy.emit(f"Training: epoch {last.epoch} of {self.run.epochs_total}")
        if not self._view_timer.isActive():
            self._view_timer.start()

    def _refresh_view(self) -> None:
        run = self.run
        if run is None or run.last_batch is None or not run.is_active():
            return
        self.plots.draw_batches(run)
        self.progress.show_batches(run)

    def _on_epoch(self, ev) -> None:
        self.progress.show_epoch(self.run, ev)
        self.plots.draw_epochs(self.run)

    def _on_finished(self, fin) -> None:
        self._view_timer.stop()
        self.plots.draw(self.run)  # the last batches too, and the axes fitted to what happened
        self.plots.fit()
        worker = self.run.worker
        rec = worker.recorder.record if worker is not None else None
        self.runs.reload()  # the run store has the new run: the Runs tab lists it
        self.record_id = rec.id if rec is not None else None
        self._show_result(fin)
        if fin.best_path and fin.status is not Status.FAILED:  # a failed run leaves the model in use as it is
            self.current.open(fin.best_path)
            self.model_saved.emit(fin.best_path)
        self.status_message.emit(f"Training failed: {fin.reason}" if fin.status is Status.FAILED
                                 else _DONE[fin.status])
        if worker is not None and worker.recorder.error:
            self.status_message.emit(f"{_DONE[fin.status]}, but the run could not be added to the run list: "
                                     f"{worker.recorder.error}")
        self.progress.show_finished(fin, _DONE[fin.status], self.run.device or self.device)
        self.run_finished.emit(fin)

    def _on_ended(self) -> None:
        self._update_buttons()
        self.running_changed.emit(False)
        self.busy.emit("")

    def _show_result(self, fin) -> None:
        self.results.show()
        h = sum(self.right_split.sizes())
        self.right_split.setSizes([int(h * 0.45), h - int(h * 0.45)])
        self.results.show_finished(fin)
        if fin.status is Status.FAILED:
            self.progress.say("Training failed: see below.")

    def _show_error(self, message: str, details: str = "") -> None:
        self.results.show()
        self.results.show_error(message, details)
        self.progress.say("Training failed: see below.")
        self.status_message.emit(f"Training failed: {message}")
