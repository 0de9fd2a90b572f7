"""What a finished run says: the result in words, per-class precision/recall/F1, the confusion
matrix, and the photos of a confusion-matrix cell.

Clicking any cell shows its validation photos (``Metrics.cell``): for a mistake cell the most
confident mistakes first, for a diagonal cell the least confident correct answers first (the ones
the model nearly got wrong). Each thumbnail carries its verdict drawn on it: true class, predicted
class and confidence.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from ...core.events import Status
from ..common import style
from ..common.controls import push_button
from ..common.widgets import EvaluationBar, FlowGrid, Thumb, muted, pil_to_qimage, set_role
from ..common.workers import Task
from ...core.text import plural, probability_text

CELL_THUMB = 110  # px: a confusion-cell photo with its caption
CELL_MAX = 60  # photos shown per cell


def verdict(item) -> tuple[str, str]:
    """A cell photo's caption lines: ("cat → dog", "87.2% sure") or ("cat ✓", "62.0% sure")."""
    top = f"{item.true} ✓" if item.true == item.predicted else f"{item.true} → {item.predicted}"
    conf = item.confidence
    return top, (f"{probability_text(conf)} sure" if math.isfinite(conf) else "")


class CellThumb(Thumb):
    """A thumbnail with its verdict drawn on its lower edge (true → predicted, confidence)."""

    def __init__(self, item, size: int = CELL_THUMB, parent=None):
        self.item = item
        self.caption = verdict(item)
        name = Path(item.path).name
        super().__init__(size, tooltip=f"{name}: true {item.true}, predicted {item.predicted}"
                         + (f" ({probability_text(item.confidence)} sure)" if math.isfinite(item.confidence) else ""),
                         parent=parent)
        self.setAccessibleName(f"{name}: {' · '.join(t for t in self.caption if t)}")

    def paintEvent(self, e):  # noqa: N802
        super().paintEvent(e)
        lines = [t for t in self.caption if t]
        if not lines:
            return
        p = QPainter(self)
        font = p.font()
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.8))
        p.setFont(font)
        fm = p.fontMetrics()
        band = QRectF(2, self.height() - fm.height() * len(lines) - 6, self.width() - 4, fm.height() * len(lines) + 4)
        right = self.item.true == self.item.predicted
        p.fillRect(band, QColor(20, 90, 40, 210) if right else QColor(140, 25, 25, 210))  # verdict colour
        p.setPen(QColor("#ffffff"))
        for i, text in enumerate(lines):
            font.setBold(i == 0)
            p.setFont(font)
            line = QRectF(band.left() + 3, band.top() + 2 + i * fm.height(), band.width() - 6, fm.height())
            p.drawText(line, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(text, Qt.TextElideMode.ElideRight, int(line.width())))
        p.end()


class ResultsPanel(QWidget):
    """The result of a run (or the current model, before any run): see the module docstring."""

    try_requested = Signal()
    evaluate_requested = Signal()  # "Evaluate on a test folder…"
    compare_requested = Signal()  # "Compare with the previous run"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.metrics = None  # the Metrics shown in the tables
        self._thumb_task: Optional[Task] = None
        self._build()

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 6, 0, 0)
        self.result_label = QLabel("")
        self.result_label.setProperty("role", "big")
        self.result_label.setWordWrap(True)
        self.result_label.setAccessibleName("Result")
        lay.addWidget(self.result_label)
        # beside the validation result: the score on a test folder the model never saw (Create ML's testing)
        self.test_label = QLabel("")
        self.test_label.setProperty("role", "big")
        self.test_label.setWordWrap(True)
        self.test_label.setAccessibleName("Test folder result")
        self.test_label.hide()
        lay.addWidget(self.test_label)
        self.eval_bar = EvaluationBar()
        lay.addWidget(self.eval_bar)
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
        col.addStretch(1)
        tables.addLayout(col, 1)
        col = QVBoxLayout()
        self.confusion_title = QLabel("<b>Confusion matrix</b> (rows: true class; columns: predicted)")
        col.addWidget(self.confusion_title)
        self.confusion = QTableWidget(0, 0)
        self.confusion.setAccessibleName("Confusion matrix")
        self.confusion.setToolTip("Click a cell to see its photos: the most confident mistakes first, or for a "
                                  "correct cell the least confident answers first")
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.confusion.cellClicked.connect(self.show_cell)
        col.addWidget(self.confusion)
        col.addStretch(1)
        tables.addLayout(col, 1)
        from .reliability import ReliabilityDiagram

        self.reliability = ReliabilityDiagram()
        self.reliability.hide()
        tables.addWidget(self.reliability, 1)
        lay.addLayout(tables)
        self.cell_label = muted("")
        lay.addWidget(self.cell_label)
        self.cell_scroll = QScrollArea()
        self.cell_scroll.setWidgetResizable(True)
        self.cell_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.cell_grid = FlowGrid(CELL_THUMB, 6)
        self.cell_grid.setAccessibleName("Photos of the chosen cell")
        self.cell_scroll.setWidget(self.cell_grid)
        self.cell_scroll.setMaximumHeight(CELL_THUMB + 20)
        self.cell_scroll.hide()
        lay.addWidget(self.cell_scroll)
        lay.addStretch(1)

        icon, P = self.style().standardIcon, QStyle.StandardPixmap
        self.evaluate_button = push_button(
            "Evaluate on a test folder…", "Score this model on a labelled folder of photos it never saw (one "
            "subfolder per class), as `catdog evaluate` does", self.evaluate_requested,
            name="Evaluate on a test folder", icon=icon(P.SP_DialogApplyButton))
        self.compare_button = push_button(
            "Compare with the previous run", "Open the Runs tab with this run and the one before it overlaid: "
            "their curves, metrics and the settings that differ", self.compare_requested,
            name="Compare with the previous run", icon=icon(P.SP_FileDialogContentsView))
        self.save_button = push_button("Save model as…", "Save a copy of the model file where you want it (Ctrl+S)",
                                       name="Save model as", icon=icon(P.SP_DialogSaveButton))
        self.try_button = push_button("Try the model", "Classify your own photos with this model in the Prediction tab",
                                      self.try_requested, name="Try the model", icon=icon(P.SP_ArrowRight), primary=True)
        brow = QHBoxLayout()
        brow.addWidget(self.evaluate_button)
        brow.addWidget(self.compare_button)
        brow.addStretch(1)
        brow.addWidget(self.save_button)
        brow.addWidget(self.try_button)
        lay.addLayout(brow)
        self.show_tables(False)

    # ------------------------------------------------------------------------------ text
    def clear(self) -> None:
        self.show_tables(False)
        self.error_details.hide()
        self.result_label.setText("")
        set_role(self.result_label, "big")
        self.result_detail.setText("")
        self.show_test("")
        self.metrics = None

    def show_test(self, text: str, role: str = "big") -> None:
        """The test-folder result ("Test folder accuracy 96.0% (...)"), "" to hide it."""
        self.test_label.setText(text)
        set_role(self.test_label, role)
        self.test_label.setVisible(bool(text))

    def show_current_model(self, name: str) -> None:
        self.result_label.setText(f"Current model: {name}")
        set_role(self.result_label, "big")
        self.result_detail.setText("Continue training improves it on this dataset; Try the model classifies "
                                   "your own photos with it.")

    def show_error(self, message: str, details: str = "") -> None:
        self.result_label.setText(f"Training could not run: {message}")
        set_role(self.result_label, "bad")
        self.result_detail.setText("Change the settings or the photos and press Train again."
                                   if not details else "This is a bug in catdog-gui; the details below help fix it.")
        self.error_details.setPlainText(details)
        self.error_details.setVisible(bool(details))

    def show_stopped(self, message: str, kept: str, output: str = "") -> None:
        """A run that ended early without finishing (its training process died) but kept its best model."""
        self.result_label.setText(f"Training stopped: {message}")
        set_role(self.result_label, "bad")
        self.result_detail.setText(f"The best model so far is saved as {kept}: open it with File > Open model "
                                   "(or from the Runs tab), or press Train to start again.")
        self.error_details.setPlainText(output)
        self.error_details.setVisible(bool(output))

    def show_finished(self, fin) -> None:
        """The Finished event in words, and its metrics in the tables."""
        if fin.status is Status.FAILED and fin.best_path:
            self.show_stopped(fin.reason, fin.best_path, fin.traceback)
        elif fin.status is Status.FAILED:
            self.show_error(fin.reason, fin.traceback if not fin.user_error else "")
        elif fin.best_path is None:
            self.result_label.setText("Stopped before the first epoch ended: no model was saved.")
            set_role(self.result_label, "warn")
            self.result_detail.setText("Train again and let it run at least one epoch.")
        else:
            n_val = fin.metrics.n if fin.metrics is not None else 0
            from ...core.inference.evaluation import measured_on

            self.result_label.setText(f"Validation accuracy {fin.best_val_acc * 100:.1f}% "
                                      f"({measured_on(n_val, fin.val_seen)})")
            set_role(self.result_label, "big")
            n = len(fin.history)
            how = {Status.COMPLETED: f"Trained all {plural(n, 'epoch')}." if n != 1 else "Trained its one epoch.",
                   Status.STOPPED_EARLY: f"Stopped early: {fin.reason}.",
                   Status.CANCELLED: f"Stopped by you after {plural(n, 'epoch')}; the best model so far is kept."}
            self.result_detail.setText(f"{how.get(fin.status, fin.reason)} Best epoch: {fin.best_epoch}. "
                                       f"Saved as {fin.best_path}")
        if fin.metrics is not None:
            self.show_metrics(fin.metrics)

    # ------------------------------------------------------------------------------ tables
    def show_tables(self, on: bool) -> None:
        for w in (self.per_class_title, self.per_class, self.confusion_title, self.confusion):
            w.setVisible(on)
        if not on:
            self.reliability.hide()
            self.cell_scroll.hide()
            self.cell_label.setText("")

    def show_metrics(self, m) -> None:
        self.metrics = m
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
                it.setToolTip(f"{plural(v, 'photo')} of {m.classes[i]} predicted as {m.classes[j]}: click to see them")
                self.confusion.setItem(i, j, it)
        for t in (self.per_class, self.confusion):
            t.resizeRowsToContents()
            h = t.horizontalHeader().height() + sum(t.rowHeight(r) for r in range(t.rowCount())) + 4
            t.setFixedHeight(min(h, 240))
        self.show_tables(True)
        self.reliability.set_calibration(getattr(m, "calibration", None))
        self.cell_label.setText("Click a cell of the confusion matrix to see its photos.")

    def show_cell(self, row: int, col: int) -> None:
        """The photos of one confusion-matrix cell, with their verdicts drawn on them."""
        from ...core.data.imageio import load_rgb

        m = self.metrics
        if m is None:
            return
        true, pred = m.classes[row], m.classes[col]
        n = m.confusion[row][col]
        items = m.cell(true, pred)
        if row == col:
            text, order = f"{plural(n, 'photo')} of {true} {'was' if n == 1 else 'were'} recognised correctly", "least confident first"
        else:
            text, order = f"{plural(n, 'photo')} of {true} taken for {pred}", "most confident mistakes first"
        if items:
            text += f", {order}" + (f" (the first {CELL_MAX})" if len(items) > CELL_MAX else "") + ":"
        self.cell_label.setText(text + ("" if items else "."))
        self.cell_grid.clear()
        thumbs = []
        for x in items[:CELL_MAX]:
            t = CellThumb(x)
            self.cell_grid.add(t)
            thumbs.append((t, x.path))
        self.cell_scroll.setVisible(bool(thumbs))
        paths = [p for _, p in thumbs]

        def work(state):
            for i, p in enumerate(paths):
                state.check()
                try:
                    im = load_rgb(p, draft_size=2 * CELL_THUMB)
                    im.thumbnail((2 * CELL_THUMB, 2 * CELL_THUMB))
                    state.emit((i, pil_to_qimage(im)))
                except Exception:  # a photo that went away since training: its caption still says what it was
                    pass

        if self._thumb_task is not None:
            self._thumb_task.discard()
        task = Task(work, self, name="cell photos")
        task.partial.connect(lambda it: thumbs[it[0]][0].set_image(it[1]))
        self._thumb_task = task
        task.start()

    def cell_thumbs(self) -> list[CellThumb]:
        return [w for w in self.cell_grid.items() if isinstance(w, CellThumb)]

    def shutdown(self, ms: int = 10000) -> bool:
        self._thumb_task = None
        return Task.shutdown_all(self, ms)
