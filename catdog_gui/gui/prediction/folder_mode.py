"""The Prediction tab's "Folder" page: classify every image of a folder in the background (progress,
cancel, Esc), a sortable table with thumbnails, CSV export (atomic write).

Built around the app's :class:`~catdog_gui.gui.models.current_model.CurrentModel`: it classifies with the
current model, and stops a run (saying why) when the model changes under it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QSize, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QDesktopServices, QImage, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QStyle,
    QTableView, QVBoxLayout, QWidget,
)

from ...core.errors import CatdogError, ImageError
from ...core.data.layouts import list_images
from ...core.storage.files import write_predictions_csv
from ...core.data.imageio import IMAGE_EXTS, load_rgb
from ..models.current_model import model_lock
from .result_card import DEFAULT_THRESHOLD
from ..common.controls import push_button
from ..common.style import colors
from ..common.widgets import file_url, shown_path
from ..common.workers import Task, TaskState
from ...core.text import probability_text
from ...core.text import plural

THUMB_SIZE = 48
#: images per prediction batch (and per batch of rows sent to the table)
STEP = 32

__all__ = ["FolderPage", "THUMB_SIZE"]


def thumbnail(path: Path) -> Optional[QImage]:
    """A THUMB_SIZE square thumbnail, the photo centred on transparency (None if unreadable)."""
    try:
        im = load_rgb(path, draft_size=THUMB_SIZE * 2)
    except ImageError:
        return None
    im.thumbnail((THUMB_SIZE, THUMB_SIZE))
    # centred on a transparent square, so every file name in the table starts at the same place
    rgb = np.asarray(im, dtype=np.uint8)
    h, w = rgb.shape[:2]
    sq = np.zeros((THUMB_SIZE, THUMB_SIZE, 4), np.uint8)
    top, left = (THUMB_SIZE - h) // 2, (THUMB_SIZE - w) // 2
    sq[top:top + h, left:left + w, :3] = rgb
    sq[top:top + h, left:left + w, 3] = 255
    return QImage(sq.data, THUMB_SIZE, THUMB_SIZE, 4 * THUMB_SIZE, QImage.Format.Format_RGBA8888).copy()


class FolderPage(QWidget):
    """Classify a whole folder with the current model; see the module docstring."""

    status_message = Signal(str)
    batch_finished = Signal(int)  # number of images classified

    def __init__(self, current, parent=None):
        super().__init__(parent)
        self.current = current
        self.predictions: list = []  # in table (source model) row order
        self.folder: Optional[Path] = None
        self.threshold = DEFAULT_THRESHOLD / 100
        self._task: Optional[Task] = None
        self._started = 0.0
        self._build()
        current.changed.connect(self._on_model_changed)

    def _build(self) -> None:
        icon, P = self.style().standardIcon, QStyle.StandardPixmap
        self.folder_button = push_button(
            "Classify a folder…", "Classify every image in a folder (and its subfolders) in the background",
            self.choose_folder_dialog, name="Classify a folder", icon=icon(P.SP_DirOpenIcon), primary=True)
        self.cancel_button = push_button(
            "Cancel", "Stop classifying the folder (Esc); the results so far stay", lambda: self.cancel(),
            name="Cancel folder classification", icon=icon(P.SP_BrowserStop), enabled=False)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Folder progress")
        self.progress.setFormat("%v / %m images")
        self.progress.setVisible(False)
        self.export_button = push_button(
            "Export CSV…", "Save the table as a CSV file (one row per readable image)", self.export_csv_dialog,
            name="Export CSV", icon=icon(P.SP_DialogSaveButton), enabled=False)
        bar = QHBoxLayout()
        bar.addWidget(self.folder_button)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.progress, 1)
        bar.addStretch(0)
        bar.addWidget(self.export_button)
        self.summary = QLabel("Pick a folder: every image in it is classified, and you can sort the "
                              "results by class or confidence and export them as CSV.")
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("Folder summary")
        self.model = QStandardItemModel(0, 4, self)
        self.model.setHorizontalHeaderLabels(["File", "Class", "Confidence", "Unfamiliar"])
        self.model.horizontalHeaderItem(3).setToolTip(
            "Photos unlike every photo the model was trained on (neither class, probably): sort to see "
            "the least familiar first")
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.table.verticalHeader().setDefaultSectionSize(THUMB_SIZE + 6)
        self.table.verticalHeader().hide()
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setAccessibleName("Folder results")
        self.table.setToolTip("Click a column header to sort; double-click a row to open the photo")
        self.table.doubleClicked.connect(self.open_row)
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.summary)
        lay.addWidget(self.table, 1)

    # ---- running ----------------------------------------------------------------------------
    def _on_model_changed(self, _predictor) -> None:
        self.cancel(reason="the model changed")

    def is_running(self) -> bool:
        return self._task is not None

    def choose_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Classify all images in a folder", str(self.folder or ""))
        if folder:
            self.classify_folder(folder)

    def classify_folder(self, folder: str) -> None:
        predictor = self.current.predictor
        if predictor is None:
            self.summary.setText("Open or train a model first: then pick the folder again.")
            self.status_message.emit("No model loaded")
            return
        if self._task is not None:
            self._task.discard()
        folder_path = Path(folder)
        self.folder = folder_path
        self.predictions = []
        self.model.removeRows(0, self.model.rowCount())
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.export_button.setEnabled(False)
        self.table.setSortingEnabled(False)
        self.summary.setText(f"Looking for images in {folder_path}…")
        self._started = time.monotonic()

        def work(state: TaskState):
            if not folder_path.is_dir():
                raise CatdogError(f"the folder {folder_path} does not exist")
            files, others = list_images(folder_path, state.cancel_event)
            state.emit(("listed", len(files), others))
            state.progress(0, len(files))
            for start in range(0, len(files), STEP):
                if state.cancelled():
                    break
                chunk = files[start:start + STEP]
                with model_lock(predictor):
                    preds = predictor.predict_many([str(p) for p in chunk], batch_size=STEP, cancel=state.cancel_event)
                if len(preds) < len(chunk):  # cancelled inside
                    break
                thumbs = [thumbnail(p) if pr.ok else None for p, pr in zip(chunk, preds)]
                state.emit(("rows", list(zip(preds, thumbs))))
                state.progress(start + len(chunk), len(files))
            return {"total": len(files), "others": others, "cancelled": state.cancelled()}

        task = self._task = Task(work, self, "classify folder")
        task.partial.connect(self._on_partial)
        task.progress.connect(self._on_progress)
        task.done.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.finished.connect(self._on_finished)
        task.start()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        elapsed = time.monotonic() - self._started
        if 0 < done < total and elapsed > 1:
            eta = elapsed / done * (total - done)
            self.summary.setText(f"Classifying {total:,} images in {self.folder}… about {eta:.0f} s left")

    def _on_partial(self, payload) -> None:
        if payload[0] == "listed":
            self.summary.setText(f"Classifying {payload[1]:,} images in {self.folder}…")
            return
        for pred, thumb in payload[1]:
            self.predictions.append(pred)
            self.model.appendRow(self._row(pred, thumb))

    def _row(self, pred, thumb: Optional[QImage]) -> list[QStandardItem]:
        path = Path(pred.source)
        try:
            shown = str(path.relative_to(self.folder)) if self.folder else path.name
        except ValueError:
            shown = path.name
        shown = shown_path(shown)  # the real path stays in self.predictions (same row order)
        f = QStandardItem(shown)
        f.setData(shown.lower(), Qt.ItemDataRole.UserRole)
        f.setToolTip(shown_path(path))
        if thumb is not None:
            f.setData(QPixmap.fromImage(thumb), Qt.ItemDataRole.DecorationRole)
        elif not pred.ok:
            f.setData(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning), Qt.ItemDataRole.DecorationRole)
        if pred.ok:
            c = QStandardItem(pred.label)
            c.setData(pred.label, Qt.ItemDataRole.UserRole)
            c.setToolTip(pred.describe())
            conf = QStandardItem(probability_text(pred.confidence))
            conf.setData(float(pred.confidence), Qt.ItemDataRole.UserRole)
            conf.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if pred.confidence < self.threshold:
                conf.setText(f"⚠ {probability_text(pred.confidence)}")
                conf.setToolTip("Below your low-confidence threshold")
        else:
            c = QStandardItem("cannot read")
            c.setData("~", Qt.ItemDataRole.UserRole)  # sorts after the class names
            c.setForeground(QColor(colors()["bad"]))
            c.setToolTip(pred.error)
            f.setToolTip(pred.error)
            conf = QStandardItem("")
            conf.setData(-1.0, Qt.ItemDataRole.UserRole)
        return [f, c, conf, self._unfamiliar_item(pred)]

    def _unfamiliar_item(self, pred) -> QStandardItem:
        """'Neither cat nor dog?' for a flagged photo, sorted by how unfamiliar (score over threshold)."""
        from ...core.inference.unfamiliar import short_verdict

        item = QStandardItem("")
        item.setData(float("-inf"), Qt.ItemDataRole.UserRole)
        if not pred.ok or pred.unfamiliar is None:
            item.setToolTip("" if not pred.ok else "This model file has no unfamiliar-photo check")
            return item
        # sorted by the score relative to the threshold: comparable across the rows of one model
        item.setData(float(pred.unfamiliar_score - pred.unfamiliar_threshold), Qt.ItemDataRole.UserRole)
        if pred.unfamiliar:
            item.setText(f"⚠ {short_verdict(self.current.predictor.classes if self.current.predictor else [])}")
            item.setForeground(QColor(colors()["warn"]))
        item.setToolTip(f"Unfamiliarity {pred.unfamiliar_score:.3g} (flagged above {pred.unfamiliar_threshold:.3g})")
        return item

    def set_flag_unfamiliar(self, on: bool) -> None:
        """Show or hide the Unfamiliar column (the tab's setting)."""
        self.table.setColumnHidden(3, not on)

    def _on_done(self, result: dict) -> None:
        ok = [p for p in self.predictions if p.ok]
        bad = len(self.predictions) - len(ok)
        counts: dict[str, int] = {}
        for p in ok:
            counts[p.label] = counts.get(p.label, 0) + 1
        per_class = ", ".join(f"{n:,} {c}" for c, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        low = sum(1 for p in ok if p.confidence < self.threshold)
        parts = [f"{plural(len(ok), 'image')} classified" + (f": {per_class}" if per_class else "")]
        if low:
            parts.append(f"{low:,} below your {round(self.threshold * 100)}% threshold (marked ⚠)")
        if bad:
            parts.append(f"{bad:,} could not be read (in red; hover for why): "
                         f"{'it is' if bad == 1 else 'they are'} left out of the CSV")
        if result.get("others"):
            parts.append(f"{result['others']:,} other files ignored")
        if result.get("total") == 0:
            parts = [f"No images in {self.folder} (looked for {', '.join(sorted(IMAGE_EXTS))})"]
        if result.get("cancelled"):
            parts.insert(0, f"Cancelled after {len(self.predictions):,} of {result['total']:,}")
        self.summary.setText(". ".join(parts) + ".")
        self.status_message.emit(parts[0])
        self.batch_finished.emit(len(ok))

    def _on_failed(self, msg: str) -> None:
        self.summary.setText(f"Stopped: {msg}.")
        self.status_message.emit(f"Folder classification: {msg}")
        self.batch_finished.emit(sum(1 for p in self.predictions if p.ok))

    def _on_finished(self) -> None:
        self._task = None
        self.progress.setVisible(False)
        self.cancel_button.setEnabled(False)
        self.table.setSortingEnabled(True)
        self.export_button.setEnabled(any(p.ok for p in self.predictions))

    def cancel(self, reason: str = "") -> None:
        """Stop the run: the results so far stay. With a ``reason`` (a stale run, e.g. the model
        changed) nothing more of it reaches the screen and the summary says why."""
        task = self._task
        if task is None:
            return
        if reason:
            task.discard()
            self._task = None
            self._on_finished()
            self.summary.setText(f"Stopped because {reason}: pick the folder again to use the new model.")
        else:
            task.cancel()
            self.cancel_button.setEnabled(False)
            self.summary.setText("Cancelling…")

    def shutdown(self, ms: int = 5000) -> None:
        self._task = None
        Task.shutdown_all(self, ms)

    # ---- the table --------------------------------------------------------------------------
    def set_threshold(self, t: float) -> None:
        """Mark answers less sure than ``t`` (0..1) with ⚠."""
        self.threshold = t
        for row in range(self.model.rowCount()):
            item = self.model.item(row, 2)
            conf = item.data(Qt.ItemDataRole.UserRole)
            if conf is not None and conf >= 0:
                low = conf < t
                item.setText(f"⚠ {probability_text(conf)}" if low else probability_text(conf))
                item.setToolTip("Below your low-confidence threshold" if low else "")

    def open_row(self, index) -> None:
        src = self.proxy.mapToSource(index)
        if 0 <= src.row() < len(self.predictions):
            QDesktopServices.openUrl(file_url(self.predictions[src.row()].source))

    def export_csv(self, path: str) -> int:
        """Write the results to ``path`` (atomically); returns the number of rows."""
        predictor = self.current.predictor
        if predictor is None:
            raise CatdogError("no model loaded")
        n = write_predictions_csv(Path(path), self.predictions, predictor.classes)
        self.status_message.emit(f"Saved {n:,} rows to {path}")
        return n

    def export_csv_dialog(self) -> None:
        start = str((self.folder or Path.home()) / "predictions.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export predictions", start, "CSV files (*.csv)")
        if not path:
            return
        try:
            n = self.export_csv(path)
        except CatdogError as e:
            self.summary.setText(f"Could not export: {e}")
            self.status_message.emit(f"Could not export: {e}")
            return
        self.summary.setText(self.summary.text() + f" Exported {n:,} rows to {path}.")
