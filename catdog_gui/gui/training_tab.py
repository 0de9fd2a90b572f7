"""The Training tab: choose a model and settings, train in the background, watch live curves, and
read the evaluation when the run ends.

The run itself is a :class:`~catdog_gui.gui.workers.TrainingWorker` (``Trainer.fit`` on a Task);
this tab only steers it and shows its events. Torch and pyqtgraph are imported only once the
window is on screen (:meth:`TrainingTab.set_backend` and :meth:`TrainingTab.ensure_plots`).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from . import style
from .settings import TRAIN_FIELDS, Settings
from .widgets import AugmentModel, CollapsibleBox, FlowGrid, Thumb, heading, muted, pil_to_qimage, set_role
from .workers import Task, TrainingWorker

TRANSFER_DEFAULT_MODEL = "efficientnet_lite0"
EMA = 0.1  # smoothing of the per-batch loss curve

HYPER_TIPS = {
    "epochs": "How many times the model sees every training photo. More epochs can help, but training stops "
              "early when validation stops improving (see Patience).",
    "batch_size": "How many photos the model looks at before each update. Larger batches are faster per "
                  "photo but use more memory.",
    "lr": "Learning rate: how big each update step is. Too high and training is unstable; too low and it "
          "learns slowly. 0.001 is a good start for Adam.",
    "image_size": "Photos are resized to this many pixels square before the model sees them. Pretrained "
                  "models and the original LeNet-5 have a fixed size.",
    "seed": "Makes a run repeatable: the same seed, data and settings give the same model.",
    "patience": "Stop when the validation loss has not improved for this many epochs (0 = never stop early). "
                "The best epoch's model is kept either way.",
}
HYPER_LABELS = {"epochs": "Epochs", "batch_size": "Batch size", "lr": "Learning rate", "image_size": "Image size (px)",
                "seed": "Random seed", "patience": "Patience (epochs)"}


def models_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".catdog-gui") / "models"


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


def fmt_duration(s: float) -> str:
    if not math.isfinite(s) or s < 0:
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class TrainingTab(QWidget):
    status_message = Signal(str)
    busy = Signal(str)  # "" when idle
    model_saved = Signal(str)  # path of the new model file
    try_model_requested = Signal(str)
    image_size_changed = Signal(int)
    run_finished = Signal(object)  # the Finished event (with metrics)
    running_changed = Signal(bool)

    def __init__(self, augment: Optional[AugmentModel] = None, settings: Optional[Settings] = None,
                 models_folder: Optional[Path] = None, parent=None):
        super().__init__(parent)
        self.augment = augment or AugmentModel(parent=self)
        self.settings = settings
        self.models_folder = Path(models_folder) if models_folder else None
        self.specs: dict = {}
        self.device = ""
        self.dataset = None
        self.current_model: Optional[str] = None
        self.worker: Optional[TrainingWorker] = None
        self.last_result = None
        self.metrics = None
        self.plots_ready = False
        self._restoring = False
        self._thumb_task: Optional[Task] = None
        self._last_batch = None
        self._x_epochs = 0
        self._view_timer = QTimer(self, singleShot=True, interval=250)
        self._view_timer.timeout.connect(self._refresh_view)
        self._reset_run_data()
        self._build()
        self._update_buttons()

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
        ll.addWidget(heading("Model"))
        self.model_combo = QComboBox()
        self.model_combo.setAccessibleName("Model")
        self.model_combo.setToolTip("The network to train. LeNet-5 learns from scratch and is fast; pretrained "
                                    "models reuse what they learned on millions of photos and are far more accurate.")
        self.model_combo.addItem("Loading models…")
        self.model_combo.setEnabled(False)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        ll.addWidget(self.model_combo)
        self.model_desc = muted("")
        ll.addWidget(self.model_desc)

        self.transfer_check = QCheckBox("Start from a pretrained model (transfer learning)")
        self.transfer_check.setAccessibleName("Transfer learning")
        self.transfer_check.setToolTip("Reuse a network already trained on ImageNet and only teach it your classes: "
                                       "much better results from few photos.")
        self.transfer_check.toggled.connect(self._on_transfer_toggled)
        ll.addWidget(self.transfer_check)
        self.transfer_mode = QComboBox()
        self.transfer_mode.addItem("Train only the new last layer (fast)", "frozen")
        self.transfer_mode.addItem("Then fine-tune the last blocks (slower)", "finetune")
        self.transfer_mode.setAccessibleName("Transfer mode")
        self.transfer_mode.setToolTip("Frozen: the pretrained network stays as it is and only a new last layer learns. "
                                      "Fine-tune: afterwards its last blocks also adapt, gently.")
        self.transfer_mode.currentIndexChanged.connect(self._save_settings)
        ll.addWidget(self.transfer_mode)
        self.model_note = QLabel()
        self.model_note.setWordWrap(True)
        self.model_note.setProperty("role", "warn")
        self.model_note.hide()
        ll.addWidget(self.model_note)
        self.augment_check = self.augment.make_checkbox()
        self.augment.enabled_changed.connect(self._on_augment_toggled)
        ll.addWidget(self.augment_check)
        self.tensorboard_check = QCheckBox("Log to TensorBoard")
        self.tensorboard_check.setAccessibleName("Log to TensorBoard")
        self.tensorboard_check.setToolTip(
            "Also write loss, accuracy, settings and images for TensorBoard, in the runs/ folder next to the "
            "saved models (needs the tensorboard package: pip install tensorboard)")
        self.tensorboard_check.toggled.connect(self._save_settings)
        ll.addWidget(self.tensorboard_check)

        self.advanced = CollapsibleBox("Advanced")
        form = QFormLayout(self.advanced.content)
        form.setContentsMargins(12, 0, 0, 0)
        self.hyper: dict[str, QWidget] = {}
        for key, (typ, default, lo, hi) in TRAIN_FIELDS.items():
            if typ is int:
                w = QSpinBox()
                w.setRange(int(lo), int(hi))
                if key == "image_size":
                    w.setSingleStep(8)
            else:
                w = QDoubleSpinBox()
                w.setDecimals(5)
                w.setRange(1e-5, 1.0)
                w.setSingleStep(0.0001)
            w.setValue(default)
            w.setToolTip(HYPER_TIPS[key])
            w.setAccessibleName(HYPER_LABELS[key])
            w.valueChanged.connect(self._on_hyper_changed)
            form.addRow(HYPER_LABELS[key], w)
            self.hyper[key] = w
        self.defaults_button = QPushButton("Use this model's defaults")
        self.defaults_button.setToolTip("Reset epochs, batch size, learning rate, image size and patience to what "
                                        "suits the chosen model")
        self.defaults_button.setAccessibleName("Use this model's defaults")
        self.defaults_button.clicked.connect(lambda: self._apply_model_defaults())
        form.addRow(self.defaults_button)
        ll.addWidget(self.advanced)

        ll.addSpacing(8)
        ll.addWidget(heading("Data"))
        self.data_label = muted("No dataset yet: choose a folder in the Dataset tab.")
        ll.addWidget(self.data_label)
        ll.addStretch(1)

        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("primary")
        self.train_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.train_button.setToolTip("Train a new model on the dataset (Ctrl+Return)")
        self.train_button.setAccessibleName("Train")
        self.train_button.clicked.connect(lambda: self.start_training())
        ll.addWidget(self.train_button)
        row = QHBoxLayout()
        self.pause_button = QPushButton("Pause")
        self.pause_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self.pause_button.setToolTip("Pause training after the current batch; Resume goes on where it stopped")
        self.pause_button.setAccessibleName("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        row.addWidget(self.pause_button)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.setToolTip("Stop after the current batch and keep the best model so far (Esc)")
        self.stop_button.setAccessibleName("Stop")
        self.stop_button.clicked.connect(self.stop)
        row.addWidget(self.stop_button)
        ll.addLayout(row)
        self.continue_button = QPushButton("Continue training")
        self.continue_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward))
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
        lscroll.setMinimumWidth(300)
        self.main_split.addWidget(lscroll)

        # ---- right: progress, plots, results
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        prow = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Training progress")
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setValue(0)
        prow.addWidget(self.progress, 1)
        rl.addLayout(prow)
        self.stats_label = muted("Ready. Press Train to start; the curves below fill in as the model learns.")
        self.stats_label.setAccessibleName("Training status")
        rl.addWidget(self.stats_label)

        self.right_split = QSplitter(Qt.Orientation.Vertical)
        self.plot_holder = QWidget()
        self.plot_layout = QHBoxLayout(self.plot_holder)
        self.plot_layout.setContentsMargins(0, 0, 0, 0)
        self.plot_placeholder = muted("The loss and accuracy curves appear here.")
        self.plot_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.plot_layout.addWidget(self.plot_placeholder)
        self.right_split.addWidget(self.plot_holder)
        self.results_box = self._build_results()
        self.results_box.hide()  # until a run ends: the plots get the whole height meanwhile
        self.right_split.addWidget(self.results_box)
        self.right_split.setStretchFactor(0, 3)
        self.right_split.setStretchFactor(1, 2)
        rl.addWidget(self.right_split, 1)
        self.main_split.addWidget(right)
        self.main_split.setStretchFactor(0, 0)
        self.main_split.setStretchFactor(1, 1)
        self.main_split.setSizes([330, 900])

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

    def _build_results(self) -> QWidget:
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 6, 0, 0)
        self.result_label = QLabel("")
        self.result_label.setProperty("role", "big")
        self.result_label.setWordWrap(True)
        self.result_label.setAccessibleName("Result")
        lay.addWidget(self.result_label)
        self.result_detail = muted("")
        self.result_detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.result_detail)
        self.error_details = QTextEdit(readOnly=True)
        self.error_details.setAccessibleName("Error details")
        self.error_details.setMaximumHeight(120)
        self.error_details.hide()
        lay.addWidget(self.error_details)

        tables = QHBoxLayout()
        col = QVBoxLayout()
        self.per_class_title = QLabel("<b>Per class</b>")
        col.addWidget(self.per_class_title)
        self.per_class = QTableWidget(0, 4)
        self.per_class.setHorizontalHeaderLabels(["Precision", "Recall", "F1", "Photos"])
        self.per_class.setAccessibleName("Per-class precision, recall and F1")
        self.per_class.setToolTip("Precision: of the photos called this class, how many were right. "
                                  "Recall: of the photos of this class, how many were found.")
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        col.addWidget(self.per_class)
        tables.addLayout(col, 1)
        col = QVBoxLayout()
        self.confusion_title = QLabel("<b>Confusion matrix</b> (rows: true class; columns: predicted)")
        col.addWidget(self.confusion_title)
        self.confusion = QTableWidget(0, 0)
        self.confusion.setAccessibleName("Confusion matrix")
        self.confusion.setToolTip("Click a cell to see its photos, most confident mistakes first")
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.confusion.cellClicked.connect(self.show_cell)
        col.addWidget(self.confusion)
        tables.addLayout(col, 1)
        lay.addLayout(tables)
        self.cell_label = muted("")
        lay.addWidget(self.cell_label)
        self.cell_scroll = QScrollArea()
        self.cell_scroll.setWidgetResizable(True)
        self.cell_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.cell_grid = FlowGrid(100, 6)
        self.cell_scroll.setWidget(self.cell_grid)
        self.cell_scroll.setMaximumHeight(120)
        self.cell_scroll.hide()
        lay.addWidget(self.cell_scroll)
        lay.addStretch(1)

        brow = QHBoxLayout()
        brow.addStretch(1)
        self.save_button = QPushButton("Save model as…")
        self.save_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton))
        self.save_button.setToolTip("Save a copy of the model file where you want it (Ctrl+S)")
        self.save_button.setAccessibleName("Save model as")
        brow.addWidget(self.save_button)
        self.try_button = QPushButton("Try the model")
        self.try_button.setObjectName("primary")
        self.try_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_ArrowRight))
        self.try_button.setToolTip("Classify your own photos with this model in the Prediction tab")
        self.try_button.setAccessibleName("Try the model")
        self.try_button.clicked.connect(lambda: self.current_model and self.try_model_requested.emit(self.current_model))
        brow.addWidget(self.try_button)
        lay.addLayout(brow)
        self._show_tables(False)
        return box

    def _show_tables(self, on: bool) -> None:
        for w in (self.per_class_title, self.per_class, self.confusion_title, self.confusion):
            w.setVisible(on)
        if not on:
            self.cell_scroll.hide()
            self.cell_label.setText("")

    # ------------------------------------------------------------------------------ plots
    def ensure_plots(self) -> None:
        """Create the pyqtgraph plots (imports pyqtgraph: call after the window is shown)."""
        if self.plots_ready:
            return
        import pyqtgraph as pg

        c = style.colors()
        self.plot_placeholder.hide()

        bg = self.palette().color(self.backgroundRole())

        def make(title, ylabel):
            # the legend sits in its own row above the plot: it never hides a curve
            w = pg.GraphicsLayoutWidget()
            w.setBackground(bg)
            w.setAccessibleName(title)
            w.ci.setContentsMargins(2, 2, 2, 2)
            w.ci.setSpacing(0)
            legend = pg.LegendItem(colCount=3, labelTextColor=c["fg"], verSpacing=-4, horSpacing=16)
            w.addItem(legend, row=0, col=0)
            p = w.addPlot(row=1, col=0)
            p.setTitle(title, color=c["fg"], size="11pt")
            p.setLabel("bottom", "epoch", color=c["fg"])
            p.setLabel("left", ylabel, color=c["fg"])
            p.showGrid(x=True, y=True, alpha=0.2)
            for ax in ("bottom", "left"):
                p.getAxis(ax).setTextPen(c["fg"])
                p.getAxis(ax).setPen(c["muted"])
                p.getAxis(ax).enableAutoSIPrefix(False)
            p.setMenuEnabled(False)
            w.plot_item, w.legend = p, legend
            return w

        self.loss_plot = make("Loss (lower is better)", "cross-entropy loss")
        self.acc_plot = make("Accuracy (higher is better)", "accuracy (%)")
        lp = self.loss_plot.plot_item
        lp.setClipToView(True)
        lp.setDownsampling(auto=True, mode="peak")
        self.curve_batch = lp.plot([], [], pen=pg.mkPen(c["batch"], width=1))
        self.curve_train_loss = lp.plot([], [], pen=pg.mkPen(c["train"], width=2), symbol="o", symbolSize=6,
                                        symbolBrush=c["train"], symbolPen=None)
        self.curve_val_loss = lp.plot([], [], pen=pg.mkPen(c["val"], width=2), symbol="s", symbolSize=6,
                                      symbolBrush=c["val"], symbolPen=None)
        leg = self.loss_plot.legend
        leg.addItem(self.curve_batch, "per batch (smoothed)")
        leg.addItem(self.curve_train_loss, "training")
        leg.addItem(self.curve_val_loss, "validation")
        ap = self.acc_plot.plot_item
        self.curve_train_acc = ap.plot([], [], pen=pg.mkPen(c["train"], width=2), symbol="o", symbolSize=6,
                                       symbolBrush=c["train"], symbolPen=None)
        self.curve_val_acc = ap.plot([], [], pen=pg.mkPen(c["val"], width=2), symbol="s", symbolSize=6,
                                     symbolBrush=c["val"], symbolPen=None)
        self.best_point = pg.ScatterPlotItem([], [], symbol="star", size=16, brush=c["best"], pen=None)
        ap.addItem(self.best_point)
        leg = self.acc_plot.legend
        leg.addItem(self.curve_train_acc, "training")
        leg.addItem(self.curve_val_acc, "validation")
        leg.addItem(self.best_point, "best epoch (kept)")
        ap.setYRange(0, 100, padding=0.02)
        self.best_lines = []
        for p in (lp, ap):
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen(c["best"], width=1, style=Qt.PenStyle.DashLine))
            line.hide()
            p.addItem(line, ignoreBounds=True)
            self.best_lines.append(line)
        self.plot_layout.addWidget(self.loss_plot)
        self.plot_layout.addWidget(self.acc_plot)
        self.plots_ready = True
        self._redraw()

    def _reset_run_data(self) -> None:
        self.batch_x: list[float] = []
        self.batch_y: list[float] = []
        self._ema: Optional[float] = None
        self.epochs_seen: list = []  # EpochEnd events

    def _redraw(self) -> None:
        """Everything from the run data (start and end of a run)."""
        if not self.plots_ready:
            return
        self.curve_batch.setData(self.batch_x, self.batch_y)
        self._redraw_epochs()

    def _redraw_epochs(self) -> None:
        if not self.plots_ready:
            return
        ex = [e.epoch for e in self.epochs_seen]
        self.curve_train_loss.setData(ex, [e.train_loss for e in self.epochs_seen])
        self.curve_val_loss.setData(ex, [e.val_loss for e in self.epochs_seen])
        self.curve_train_acc.setData(ex, [e.train_acc * 100 for e in self.epochs_seen])
        self.curve_val_acc.setData(ex, [e.val_acc * 100 for e in self.epochs_seen])
        best = self.epochs_seen[-1].best_epoch if self.epochs_seen else 0
        hit = [e for e in self.epochs_seen if e.epoch == best]
        if hit:
            self.best_point.setData([best], [hit[-1].val_acc * 100])
            for line in self.best_lines:
                line.setValue(best)
                line.show()
        else:
            self.best_point.setData([], [])
            for line in self.best_lines:
                line.hide()

    def _set_x_range(self, epochs: int) -> None:
        """A fixed epoch axis for the whole run: the axes do not re-layout on every update."""
        if not self.plots_ready:
            return
        for w in (self.loss_plot, self.acc_plot):
            vb = w.plot_item.getViewBox()
            vb.enableAutoRange(x=False)
            vb.setXRange(0 if w is self.loss_plot else 1, max(epochs, 2), padding=0.03)

    # ------------------------------------------------------------------------------ backend
    def set_backend(self, specs, device: str) -> None:
        """Called once torch is loaded: fill the model list, restore settings, show the device."""
        self.specs = {s.name: s for s in specs}
        self.device = device
        self._restoring = True
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for s in specs:
            self.model_combo.addItem(s.title, s.name)
            self.model_combo.setItemData(self.model_combo.count() - 1, s.description or s.title,
                                         Qt.ItemDataRole.ToolTipRole)
        self.model_combo.blockSignals(False)
        self.model_combo.setEnabled(True)
        stored = self.settings.train_values() if self.settings else {}
        name = stored.get("model") if stored.get("model") in self.specs else "lenet5"
        if name not in self.specs:
            name = specs[0].name
        self.select_model(name, defaults=True)
        spec = self.specs[name]
        for key, value in stored.items():
            if key in self.hyper and not (key == "image_size" and spec.fixed_image_size):
                self.hyper[key].setValue(value)
        self.transfer_check.setChecked(bool(stored.get("pretrained")) and spec.is_backbone)
        i = self.transfer_mode.findData(stored.get("transfer_mode", "frozen"))
        self.transfer_mode.setCurrentIndex(max(i, 0))
        self.tensorboard_check.setChecked(bool(stored.get("tensorboard")))
        self._restoring = False
        self.model_note.hide()
        self._update_transfer_widgets()
        self._update_buttons()
        self.image_size_changed.emit(self.hyper["image_size"].value())

    @property
    def backend_ready(self) -> bool:
        return bool(self.specs)

    # ------------------------------------------------------------------------------ model choice
    def model_name(self) -> Optional[str]:
        return self.model_combo.currentData()

    def select_model(self, name: str, defaults: bool = True) -> None:
        i = self.model_combo.findData(name)
        if i < 0:
            return
        if i == self.model_combo.currentIndex():
            self._on_model_changed(i, defaults=defaults)
        else:
            self._next_defaults = defaults
            self.model_combo.setCurrentIndex(i)

    def _on_model_changed(self, _i: int, defaults: Optional[bool] = None) -> None:
        name = self.model_name()
        spec = self.specs.get(name)
        if spec is None:
            return
        if defaults is None:
            defaults = getattr(self, "_next_defaults", True)
        self._next_defaults = True
        self.model_desc.setText(spec.description or "")
        self.model_desc.setVisible(bool(spec.description))
        if defaults:
            self._apply_model_defaults()
        size = self.hyper["image_size"]
        size.setEnabled(not spec.fixed_image_size)
        size.setToolTip(HYPER_TIPS["image_size"] + (f" {spec.title} always uses {spec.default_image_size} px."
                                                    if spec.fixed_image_size else ""))
        if spec.fixed_image_size:
            size.setValue(spec.default_image_size)
        if not spec.is_backbone and self.transfer_check.isChecked():
            self.transfer_check.blockSignals(True)
            self.transfer_check.setChecked(False)
            self.transfer_check.blockSignals(False)
            self._note(f"{spec.title} has no pretrained weights, so transfer learning is off: it learns from scratch.")
        else:
            self.model_note.hide()
        self._update_transfer_widgets()
        self._save_settings()

    def _apply_model_defaults(self) -> None:
        spec = self.specs.get(self.model_name())
        if spec is None:
            return
        for key, w in self.hyper.items():
            if key in spec.defaults:
                w.setValue(spec.defaults[key])
        self.hyper["image_size"].setValue(spec.default_image_size)
        self._apply_augment_epochs()

    def _apply_augment_epochs(self, only_if_default: bool = False) -> Optional[tuple[int, int]]:
        """Epochs and patience for the model's defaults, scaled up when augmentation is on
        (AugmentSettings.recommended_epochs: augmented training learns more slowly).
        ``only_if_default``: leave a field the user changed alone."""
        from dataclasses import replace

        from ..core.training import TrainConfig

        spec = self.specs.get(self.model_name())
        if spec is None:
            return None
        plain = (spec.defaults.get("epochs", TrainConfig.epochs), spec.defaults.get("patience", TrainConfig.patience))
        s = self.augment.settings
        new = s.recommended_epochs(*plain)
        old = replace(s, enabled=not s.enabled).recommended_epochs(*plain)
        for key, value, before in (("epochs", new[0], old[0]), ("patience", new[1], old[1])):
            if not only_if_default or self.hyper[key].value() == before:
                self.hyper[key].setValue(value)
        return self.hyper["epochs"].value(), self.hyper["patience"].value()

    def _on_augment_toggled(self, on: bool) -> None:
        if self._restoring or not self.specs:
            return
        values = self._apply_augment_epochs(only_if_default=True)
        if on and values:
            self._note(f"Augmentation on: {values[0]} epochs, stopping early after {values[1]} without "
                       "improvement. Augmented training learns more slowly (see Advanced).")
        else:
            self.model_note.hide()

    def _on_transfer_toggled(self, on: bool) -> None:
        if self._restoring:
            return
        spec = self.specs.get(self.model_name())
        if on and spec is not None and not spec.is_backbone:
            target = TRANSFER_DEFAULT_MODEL if TRANSFER_DEFAULT_MODEL in self.specs else next(
                (s.name for s in self.specs.values() if s.is_backbone), None)
            if target is None:
                self.transfer_check.setChecked(False)
                return
            self.transfer_check.blockSignals(True)
            self.select_model(target, defaults=True)
            self.transfer_check.setChecked(True)
            self.transfer_check.blockSignals(False)
            self._note(f"{spec.title} has no pretrained weights, so the model is now "
                       f"{self.specs[target].title}, which starts from one trained on ImageNet.")
        else:
            self.model_note.hide()
        self._update_transfer_widgets()
        self._save_settings()

    def _note(self, text: str) -> None:
        self.model_note.setText(text)
        self.model_note.show()
        self.status_message.emit(text)

    def _update_transfer_widgets(self) -> None:
        self.transfer_mode.setVisible(self.transfer_check.isChecked())

    def _on_hyper_changed(self, *_):
        if self.sender() is self.hyper["image_size"]:
            self.image_size_changed.emit(self.hyper["image_size"].value())
        self._save_settings()

    def _save_settings(self, *_):
        if self.settings is None or self._restoring or not self.specs:
            return
        vals = {k: w.value() for k, w in self.hyper.items()}
        vals["model"] = self.model_name()
        vals["pretrained"] = self.transfer_check.isChecked()
        vals["transfer_mode"] = self.transfer_mode.currentData()
        vals["tensorboard"] = self.tensorboard_check.isChecked()
        self.settings.set_train_values(vals)

    def config(self):
        """The TrainConfig the form describes (validated)."""
        from dataclasses import replace

        from ..core.training import TrainConfig

        name = self.model_name()
        spec = self.specs[name]
        cfg = TrainConfig.for_model(
            name,
            epochs=self.hyper["epochs"].value(),
            batch_size=self.hyper["batch_size"].value(),
            lr=float(self.hyper["lr"].value()),
            image_size=self.hyper["image_size"].value(),
            seed=self.hyper["seed"].value(),
            patience=self.hyper["patience"].value(),
            pretrained=self.transfer_check.isChecked() and spec.is_backbone,
            transfer_mode=self.transfer_mode.currentData(),
        )
        cfg.augment = replace(self.augment.settings)
        return cfg.validate()

    # ------------------------------------------------------------------------------ data, model
    def set_dataset(self, dataset) -> None:
        self.dataset = dataset
        if dataset is None:
            self.data_label.setText("No dataset yet: choose a folder in the Dataset tab.")
        else:
            r = dataset.report
            self.data_label.setText(
                f"{r.n_train:,} training and {r.n_val:,} validation photos in {len(r.classes)} classes "
                f"({', '.join(r.classes)}), from {r.root}")
            self.data_label.setToolTip(str(r.root))
        self._update_buttons()

    def set_current_model(self, path: Optional[str]) -> None:
        self.current_model = str(path) if path else None
        if self.current_model and self.results_box.isHidden() and not self.is_running():
            self.result_label.setText(f"Current model: {Path(self.current_model).name}")
            set_role(self.result_label, "big")
            self.result_detail.setText("Continue training improves it on this dataset; Try the model classifies "
                                       "your own photos with it.")
            self.results_box.show()
        self._update_buttons()

    # ------------------------------------------------------------------------------ running
    def is_running(self) -> bool:
        return self.worker is not None

    def _update_buttons(self) -> None:
        running = self.is_running()
        ready = self.backend_ready and self.dataset is not None
        self.train_button.setEnabled(ready and not running)
        self.train_action.setEnabled(ready and not running)
        self.continue_button.setEnabled(ready and not running and bool(self.current_model))
        self.continue_action.setEnabled(self.continue_button.isEnabled())
        self.pause_button.setEnabled(running)
        self.pause_action.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.stop_action.setEnabled(running)
        for w in [self.model_combo, self.transfer_check, self.transfer_mode, self.defaults_button, *self.hyper.values()]:
            w.setEnabled(not running and self.backend_ready)
        spec = self.specs.get(self.model_name()) if self.specs else None
        if spec is not None and spec.fixed_image_size:
            self.hyper["image_size"].setEnabled(False)
        has_model = bool(self.current_model)
        self.try_button.setEnabled(has_model and not running)
        self.save_button.setEnabled(has_model and not running)
        if not self.backend_ready:
            self.train_button.setToolTip("Loading the training engine…")
        elif self.dataset is None:
            self.train_button.setToolTip("Choose a folder of photos in the Dataset tab first")
        else:
            self.train_button.setToolTip("Train a new model on the dataset (Ctrl+Return)")

    def start_training(self, resume: bool = False) -> bool:
        """Start a run in the background; False (with a message) when it cannot start."""
        from ..core.errors import CatdogError

        if self.is_running():
            self.status_message.emit("A training run is already going: stop it first")
            return False
        if not self.backend_ready or self.dataset is None:
            self.status_message.emit("Choose a folder of photos in the Dataset tab first")
            return False
        if resume and not self.current_model:
            return False
        try:
            cfg = self.config()
        except CatdogError as e:
            self._show_error(str(e))
            return False
        folder = self.models_folder or models_dir()
        try:
            out = new_model_path(folder, cfg.model if not resume else Path(self.current_model).stem.split("-")[-1])
        except OSError as e:
            self._show_error(f"cannot create the models folder {folder}: {e.strerror or e}")
            return False
        logger = None
        if self.tensorboard_check.isChecked():
            from ..core.tensorboard import TensorBoardLogger

            try:
                logger = TensorBoardLogger(folder / "runs")
            except CatdogError as e:
                self._show_error(str(e))
                return False
        self.tensorboard_dir = str(folder / "runs") if logger is not None else None
        self.ensure_plots()
        self._reset_run_data()
        self._last_batch = None
        self._redraw()
        self._show_tables(False)
        self.results_box.hide()
        self.error_details.hide()
        self.result_label.setText("")
        set_role(self.result_label, "big")
        self.result_detail.setText("")
        self.metrics = None
        self._steps = 0
        self._epochs_total = cfg.epochs + (cfg.finetune_epochs if cfg.pretrained and cfg.transfer_mode == "finetune"
                                           else 0)
        self._epoch_t0 = None
        self._cur_epoch = 0
        self._epoch_step0 = 0
        self._epoch_images = 0
        self._batch_size = cfg.batch_size
        self._run_mode = ""
        self._x_epochs = self._epochs_total
        self._set_x_range(self._epochs_total)
        self.progress.setRange(0, 0)
        self.progress.setFormat("Preparing…")
        self.stats_label.setText("Preparing the photos…")
        worker = TrainingWorker(cfg, self.dataset, str(out), resume_from=self.current_model if resume else None,
                                parent=self)
        worker.tensorboard = logger
        w = worker
        worker.stage.connect(lambda ev: w is self.worker and self._on_stage(ev))
        worker.started.connect(lambda ev: w is self.worker and self._on_started(ev))
        worker.batches.connect(lambda ch: w is self.worker and self._on_batches(ch))
        worker.epoch.connect(lambda ev: w is self.worker and self._on_epoch(ev))
        worker.result.connect(lambda r: w is self.worker and self._on_result(r))
        worker.ended.connect(lambda: self._on_ended(w))
        self.worker = worker
        self.paused = False
        self.pause_button.setText("Pause")
        self._update_buttons()
        self.running_changed.emit(True)
        self.busy.emit("Training…")
        worker.start()
        return True

    def toggle_pause(self) -> None:
        if self.worker is None:
            return
        if self.worker.paused:
            self.worker.resume()
            self.pause_button.setText("Pause")
            self.pause_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
            self.busy.emit("Training…")
        else:
            self.worker.pause()
            self.pause_button.setText("Resume")
            self.pause_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
            self.stats_label.setText("Paused. Resume goes on from the same batch; Stop keeps the best model so far.")
            self.busy.emit("Training paused")

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.pause_button.setText("Pause")
            self.stats_label.setText("Stopping after this batch…")
            self.busy.emit("Stopping training…")

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop any run, forget its signals, and join its thread (closing the window)."""
        ok = True
        w = self.worker
        if w is not None:
            w.discard()
            ok = w.wait(timeout_ms)
            self.worker = None
        Task.shutdown_all(self)
        return ok

    # ------------------------------------------------------------------------------ events
    STAGES = {"scan": "looking at the photos", "decode": "reading the photos", "weights": "loading pretrained weights",
              "features": "computing features with the pretrained network"}

    def _on_stage(self, ev) -> None:
        what = self.STAGES.get(ev.stage, ev.stage)
        if ev.total > 0:
            self.progress.setRange(0, ev.total)
            self.progress.setValue(ev.done)
            self.progress.setFormat(f"Preparing: {what} %p%")
        self.stats_label.setText(f"Preparing: {what} ({ev.done:,} of {ev.total:,})…")

    def _on_started(self, ev) -> None:
        self.device = ev.device or self.device
        self._run_mode = ev.mode
        mode = {"scratch": "learning from scratch", "features": "pretrained network frozen (features computed once)",
                "frozen": "pretrained network frozen", "finetune": "pretrained network, then fine-tuning"}.get(ev.mode, ev.mode)
        self.stats_label.setText(f"Training on {ev.n_train:,} photos, checking on {ev.n_val:,} · {mode} · {ev.device}")
        self.status_message.emit(f"Training started on {ev.device}")

    def _on_batches(self, chunk) -> None:
        import time

        for b in chunk.events:
            x = (b.epoch - 1) + b.step / max(b.steps, 1)
            self._ema = b.loss if self._ema is None else (1 - EMA) * self._ema + EMA * b.loss
            self.batch_x.append(x)
            self.batch_y.append(self._ema)
        last = chunk.last
        now = time.monotonic()
        if self._epoch_t0 is None or last.epoch != self._cur_epoch:  # speed is measured within an epoch
            self._epoch_t0 = now
            self._cur_epoch = last.epoch
            self._epoch_step0 = last.step
            self.busy.emit(f"Training: epoch {last.epoch} of {self._epochs_total}")
        self._epoch_images = (last.step - self._epoch_step0) * self._batch_size
        self._last_batch = last
        # signals come at up to ~20 Hz; the screen is refreshed at ~4 Hz (plots are costly to repaint)
        if not self._view_timer.isActive():
            self._view_timer.start()

    def _refresh_view(self) -> None:
        import time

        last = self._last_batch
        if last is None or self.worker is None:
            return
        if self.plots_ready:
            self.curve_batch.setData(self.batch_x, self.batch_y)
        total_steps = max(self._epochs_total * last.steps, 1)
        done = (last.epoch - 1) * last.steps + last.step
        self.progress.setRange(0, total_steps)
        self.progress.setValue(min(done, total_steps))
        self.progress.setFormat(f"Epoch {last.epoch} of {self._epochs_total} · batch {last.step}/{last.steps}")
        elapsed = time.monotonic() - self._epoch_t0 if self._epoch_t0 is not None else 0.0
        rate = self._epoch_images / elapsed if elapsed > 0.2 and self._epoch_images else float("nan")
        if self.epochs_seen:
            per_step = self.epochs_seen[-1].seconds / max(last.steps, 1)
        elif math.isfinite(rate):
            per_step = self._batch_size / rate
        else:
            per_step = float("nan")
        eta = per_step * (total_steps - done)
        rate_s = f"{rate:,.0f} images/s" if math.isfinite(rate) else "measuring speed…"
        eta_s = f"about {fmt_duration(eta)} left" if math.isfinite(eta) else "estimating time left…"
        if not self.worker.paused:
            self.stats_label.setText(f"Epoch {last.epoch} of {self._epochs_total} · batch {last.step} of {last.steps} · "
                                     f"{rate_s} · {eta_s} · {self.device}")

    def _on_epoch(self, ev) -> None:
        self.epochs_seen.append(ev)
        self._epochs_total = max(self._epochs_total, ev.epochs)
        self._epoch_t0 = None
        self.stats_label.setText(
            f"Epoch {ev.epoch} of {ev.epochs}: validation accuracy {ev.val_acc * 100:.1f}% · "
            f"{ev.images_per_s:,.0f} images/s · about {fmt_duration(ev.eta_s)} left · {self.device}")
        if ev.epochs > self._x_epochs:
            self._x_epochs = ev.epochs
            self._set_x_range(ev.epochs)
        self._redraw_epochs()

    def _on_result(self, result) -> None:
        self.last_result = result
        self._view_timer.stop()
        if self.plots_ready:  # the run is over: fit the axes to what happened
            for w in (self.loss_plot, self.acc_plot):
                w.plot_item.getViewBox().enableAutoRange(x=True)
        fin = result
        self.metrics = result.metrics
        self.results_box.show()
        h = sum(self.right_split.sizes())
        self.right_split.setSizes([int(h * 0.45), h - int(h * 0.45)])
        self._redraw()
        n_val = self.metrics.n if self.metrics is not None else 0
        if fin.status == "failed":
            self._show_error(fin.reason, fin.traceback if not fin.user_error else "")
        elif fin.best_path is None:
            self.result_label.setText("Stopped before the first epoch ended: no model was saved.")
            set_role(self.result_label, "warn")
            self.result_detail.setText("Train again and let it run at least one epoch.")
        else:
            acc = fin.best_val_acc * 100
            self.result_label.setText(f"Validation accuracy {acc:.1f}% ({n_val:,} photos the model did not train on)")
            set_role(self.result_label, "big")
            how = {"completed": f"Trained all {len(fin.history)} epochs.",
                   "stopped_early": f"Stopped early: {fin.reason}.",
                   "cancelled": f"Stopped by you after {len(fin.history)} epochs; the best model so far is kept."}
            self.result_detail.setText(f"{how.get(fin.status, fin.reason)} Best epoch: {fin.best_epoch}. "
                                       f"Saved as {fin.best_path}")
        if fin.best_path:
            self.current_model = fin.best_path
            self.model_saved.emit(fin.best_path)
        if self.metrics is not None:
            self.show_metrics(self.metrics)
        status = {"completed": "Training finished", "stopped_early": "Training finished (stopped early)",
                  "cancelled": "Training stopped", "failed": "Training failed"}.get(fin.status, fin.status)
        self.status_message.emit(status)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if fin.status != "failed" else 0)
        self.progress.setFormat({"failed": "Failed", "cancelled": "Stopped"}.get(fin.status, "Done"))
        if fin.status != "failed":
            self.stats_label.setText(f"{status}. {len(fin.history)} epochs on {self.device}.")
        self.run_finished.emit(result)

    def _on_ended(self, w) -> None:
        if w is not self.worker:
            return
        self.worker = None
        self._update_buttons()
        self.running_changed.emit(False)
        self.busy.emit("")

    def _show_error(self, message: str, details: str = "") -> None:
        self.results_box.show()
        self.result_label.setText(f"Training could not run: {message}")
        set_role(self.result_label, "bad")
        self.result_detail.setText("Change the settings or the photos and press Train again."
                                   if not details else "This is a bug in catdog-gui; the details below help fix it.")
        self.error_details.setPlainText(details)
        self.error_details.setVisible(bool(details))
        self.stats_label.setText("Training failed: see below.")
        self.status_message.emit(f"Training failed: {message}")

    # ------------------------------------------------------------------------------ evaluation
    def show_metrics(self, m) -> None:
        c = style.colors()
        k = len(m.classes)
        self.per_class.setRowCount(k)
        self.per_class.setVerticalHeaderLabels(m.classes)
        for i, cls in enumerate(m.classes):
            pc = m.per_class[cls]
            vals = [f"{pc['precision'] * 100:.1f}%", f"{pc['recall'] * 100:.1f}%", f"{pc['f1'] * 100:.1f}%",
                    f"{int(pc['support']):,}"]
            for j, v in enumerate(vals):
                it = QTableWidgetItem(v)
                it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.per_class.setItem(i, j, it)
        self.confusion.setRowCount(k)
        self.confusion.setColumnCount(k)
        self.confusion.setVerticalHeaderLabels([f"true {x}" for x in m.classes])
        self.confusion.setHorizontalHeaderLabels([f"predicted {x}" for x in m.classes])
        top = max(max(row) for row in m.confusion) or 1
        for i, row in enumerate(m.confusion):
            for j, v in enumerate(row):
                it = QTableWidgetItem(f"{v:,}")
                it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                base = QColor(c["good"] if i == j else c["bad"])
                base.setAlpha(int(30 + 150 * v / top) if v else 0)
                it.setBackground(QBrush(base))
                it.setToolTip(f"{v:,} photos of {m.classes[i]} predicted as {m.classes[j]}")
                self.confusion.setItem(i, j, it)
        for t in (self.per_class, self.confusion):
            t.resizeRowsToContents()
            h = t.horizontalHeader().height() + sum(t.rowHeight(r) for r in range(t.rowCount())) + 4
            t.setFixedHeight(min(h, 240))
        self._show_tables(True)
        self.cell_label.setText("Click a cell of the confusion matrix to see its photos.")

    def show_cell(self, row: int, col: int) -> None:
        from ..core.imageio import load_rgb

        m = self.metrics
        if m is None:
            return
        true, pred = m.classes[row], m.classes[col]
        n = m.confusion[row][col]
        if row == col:
            self.cell_label.setText(f"{n:,} photos of {true} were recognised correctly.")
            self.cell_scroll.hide()
            return
        items = [x for x in m.mistakes if x.true == true and x.predicted == pred]
        self.cell_label.setText(f"{n:,} photos of {true} taken for {pred}, most confident mistakes first:")
        self.cell_grid.clear()
        thumbs = []
        for x in items[:60]:
            t = Thumb(100, tooltip=f"{Path(x.path).name}: true {x.true}, predicted {x.predicted} "
                                   f"({x.confidence * 100:.0f}% sure)")
            self.cell_grid.add(t)
            thumbs.append((t, x.path))
        self.cell_scroll.setVisible(bool(thumbs))
        paths = [p for _, p in thumbs]

        def work(state):
            for i, p in enumerate(paths):
                state.check()
                try:
                    im = load_rgb(p, draft_size=200)
                    im.thumbnail((200, 200))
                    state.emit((i, pil_to_qimage(im)))
                except Exception:
                    pass

        if self._thumb_task is not None:
            self._thumb_task.discard()
        task = Task(work, self, name="mistakes")
        task.partial.connect(lambda it: thumbs[it[0]][0].set_image(it[1]))
        self._thumb_task = task
        task.start()
