"""The Runs tab: every training run kept, from the window, the ``catdog`` command and the API alike.

A sortable table over :class:`~catdog_gui.gui.models.runs_model.RunsModel`. Select one run to see its loss and accuracy
per epoch (best epoch marked) and its metrics as they were; select two or more to overlay their
curves on the same axes (one colour per run, the legend by run name) and read their metrics and the
settings that differ (:func:`~catdog_gui.core.storage.run_store.differing_settings`) in one table. The actions (star, rename,
note, delete, export, open in Prediction, continue training, evaluate on a test folder) are buttons,
the table's context menu and shortcuts. The curves are :class:`~.plots.RunsPlots`; pyqtgraph is
imported in :meth:`RunsView.ensure_plots` (called by the window once the engine is loaded), never
before the first paint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QFile, QItemSelection, QItemSelectionModel, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QSplitter,
    QStyle,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core.storage.run_store import RunRecord
from ...core.text import plural
from ..common.widgets import EvaluationBar, heading, muted
from ..models.runs_model import COL, ID_ROLE, SORT_ROLE, RunEvaluation, RunsModel, details_rows, test_text
from .plots import RUN_COLORS, RunsPlots


class RunsView(QWidget):
    """The Runs tab (see the module docstring)."""

    status_message = Signal(str)
    open_requested = Signal(str)  # a run's model file, to use in the Prediction tab
    continue_requested = Signal(str)  # a run's model file, to train further

    def __init__(self, runs: RunsModel, current=None, parent=None):
        super().__init__(parent)
        self.runs = runs
        self.current = current
        self.evaluation = RunEvaluation(runs, current, parent=self)
        self._keep: list[str] = []  # the selected runs, selected again after a reload
        self._build()
        runs.error.connect(self.status_message)
        # the proxy's signals: they come once the table's rows are up to date
        self.proxy.modelReset.connect(self._after_reset)
        self.proxy.dataChanged.connect(lambda *_: self._show_selection())
        ev = self.evaluation
        ev.done.connect(lambda rid, t: self.status_message.emit(test_text(t)))
        ev.failed.connect(lambda msg: self.status_message.emit(f"Not evaluated: {msg}"))
        ev.overlap_found.connect(lambda msg: self.status_message.emit(f"Not evaluated: {msg}"))
        ev.cancelled.connect(lambda: self.status_message.emit("Evaluation stopped"))
        ev.finished.connect(self._update_actions)
        self._after_reset()

    # ------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 10, 10, 10)
        top = QHBoxLayout()
        top.addWidget(heading("Runs"))
        self.hint = muted("Every training run is kept here, from the window and the catdog command. "
                          "Select one to see it as it was; select two or more (Ctrl+click) to compare them.")
        top.addWidget(self.hint, 1)
        lay.addLayout(top)

        icon = self.style().standardIcon
        P = QStyle.StandardPixmap

        def act(text, tip, slot, pix=None, shortcut=None):
            a = QAction(text, self)
            if pix is not None:
                a.setIcon(icon(pix))
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                tip += f" ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
            a.setToolTip(tip)
            a.setStatusTip(tip)
            a.triggered.connect(slot)
            self.addAction(a)
            return a

        self.refresh_action = act("Refresh", "Read the run list again (runs from the catdog command too)",
                                  self.refresh, P.SP_BrowserReload, "F5")
        self.star_action = act("Star", "Star the selected runs (or unstar them), to find them again",
                               self.toggle_star, P.SP_DialogYesButton, "Ctrl+D")
        self.rename_action = act("Rename", "Give the selected run a name of your own", self.rename_selected,
                                 P.SP_FileDialogDetailedView, "F2")
        self.note_action = act("Note…", "Write a note about the selected run", self.edit_note,
                               P.SP_FileDialogInfoView)
        self.delete_action = act("Delete…", "Forget the selected runs; you choose whether their model files "
                                 "go to the trash", self.delete_selected, P.SP_TrashIcon, "Delete")
        self.export_action = act("Export…", "Copy the selected runs (settings, curves, metrics and model) "
                                 "into a folder a colleague can open", self.export_selected, P.SP_DialogSaveButton)
        self.open_action = act("Open in Prediction", "Classify photos with the selected run's model",
                               self.open_selected, P.SP_ArrowRight)
        self.continue_action = act("Continue training from it", "Make the selected run's model the current "
                                   "model and go to the Training tab, where Continue training trains it further",
                                   self.continue_selected, P.SP_MediaSeekForward)
        self.evaluate_action = act("Evaluate on a test folder…", "Score the selected run's model on a labelled "
                                   "folder of photos it never saw", self.pick_test_folder, P.SP_DialogApplyButton)
        row = QHBoxLayout()
        self.buttons = {}
        for a in (self.refresh_action, self.star_action, self.rename_action, self.note_action, self.delete_action,
                  self.export_action, None, self.open_action, self.continue_action, self.evaluate_action):
            if a is None:
                row.addStretch(1)
                continue
            b = QToolButton()
            b.setDefaultAction(a)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setAccessibleName(a.text().rstrip("…"))
            row.addWidget(b)
            self.buttons[a.text()] = b
        lay.addLayout(row)
        self.eval_bar = EvaluationBar()
        self.eval_bar.attach(self.evaluation)
        lay.addWidget(self.eval_bar)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        table_box = QWidget()
        tl = QVBoxLayout(table_box)
        tl.setContentsMargins(0, 0, 0, 0)
        self.empty_label = muted("No runs yet: train a model in the Training tab (or with `catdog train`) "
                                 "and it appears here.")
        tl.addWidget(self.empty_label)
        self.proxy = QSortFilterProxyModel(self)  # its source, the runs, is set by attach()
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setAccessibleName("Runs")
        self.table.setToolTip("Click a column to sort; double-click a name to rename; right-click for actions")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_selection())
        tl.addWidget(self.table)
        self.splitter.addWidget(table_box)

        bottom = QSplitter(Qt.Orientation.Horizontal)
        self.plots = RunsPlots()
        bottom.addWidget(self.plots)
        box = QWidget()
        bl = QVBoxLayout(box)
        bl.setContentsMargins(6, 0, 0, 0)
        self.details_title = QLabel("")
        self.details_title.setWordWrap(True)
        bl.addWidget(self.details_title)
        self.details = QTableWidget(0, 0)
        self.details.setAccessibleName("Metrics and settings of the selected runs")
        self.details.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.details.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.details.horizontalHeader().setTextElideMode(Qt.TextElideMode.ElideRight)
        self.details.setWordWrap(True)
        bl.addWidget(self.details)
        bottom.addWidget(box)
        bottom.setSizes([640, 600])
        self.bottom_split = bottom
        self.splitter.addWidget(bottom)
        self.splitter.setSizes([200, 500])
        lay.addWidget(self.splitter, 1)

    def attach(self) -> None:
        """Put the runs in the table: when the view is first shown or the engine is loaded, not while
        the window is built (the table's first layout calls into Python for every header, and during
        the first paint the warm-up thread is to have the interpreter to itself)."""
        if self.proxy.sourceModel() is not None:
            return
        self.proxy.setSourceModel(self.runs)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(COL["name"], QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COL["date"], Qt.SortOrder.DescendingOrder)

    def showEvent(self, e):  # noqa: N802
        self.attach()
        super().showEvent(e)

    def ensure_plots(self) -> None:
        """Create the plots (imports pyqtgraph: after the window is on screen)."""
        self.attach()
        self.plots.ensure()

    # ------------------------------------------------------------------------------ selection
    def refresh(self) -> None:
        self.runs.reload()
        n, bad = len(self.runs.records()), len(self.runs.entries) - len(self.runs.records())
        self.status_message.emit(plural(n, "run") + (f"; {plural(bad, 'damaged run file')} (greyed; hover for why)" if bad else ""))

    def _after_reset(self) -> None:
        self.empty_label.setVisible(self.runs.rowCount() == 0)
        keep, self._keep = self._keep, []
        keep = [i for i in keep if self.runs.record(i) is not None]
        if keep:
            self.select_ids(keep)
        else:
            self._show_selection()

    def selected_ids(self) -> list[str]:
        rows = sorted({ix.row() for ix in self.table.selectionModel().selectedRows()})
        return [self.proxy.index(r, 0).data(ID_ROLE) for r in rows]

    def selected_records(self) -> list[RunRecord]:
        return [r for r in (self.runs.record(i) for i in self.selected_ids()) if r is not None]

    def select_ids(self, ids: list[str]) -> None:
        """Select these runs (and no others), first one scrolled to."""
        self.attach()
        sel = QItemSelection()
        for rid in ids:
            row = self.runs.row_of(rid)
            if row < 0:
                continue
            p = self.proxy.mapFromSource(self.runs.index(row, 0))
            sel.select(p, p.siblingAtColumn(self.proxy.columnCount() - 1))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().select(sel, flags)
        if not sel.isEmpty():
            self.table.scrollTo(sel.indexes()[0])
            self.table.selectionModel().setCurrentIndex(sel.indexes()[0], QItemSelectionModel.SelectionFlag.NoUpdate)
        self._show_selection()

    def _show_selection(self) -> None:
        # the runs in the table's order (newest first unless sorted otherwise): colour i for run i
        recs = self.selected_records()
        self._keep = [r.id for r in recs]
        self.plots.show_runs(recs)
        self._fill_details(recs)
        self._update_actions()

    def _fill_details(self, recs: list[RunRecord]) -> None:
        t = self.details
        if not recs:
            t.setRowCount(0)
            t.setColumnCount(0)
            self.details_title.setText("")
            return
        rows = details_rows(recs)
        t.setColumnCount(len(recs))
        t.setHorizontalHeaderLabels([r.title for r in recs])
        for j, r in enumerate(recs):
            h = t.horizontalHeaderItem(j)
            h.setForeground(QColor(RUN_COLORS[j % len(RUN_COLORS)]) if len(recs) > 1 else QBrush())
            h.setToolTip(f"{r.title} ({r.id})")
        t.setRowCount(len(rows))
        bold = QFont(t.font())
        bold.setBold(True)
        for i, (label, vals) in enumerate(rows):
            section = label.startswith("§")
            head = QTableWidgetItem(label.lstrip("§"))
            if section:
                head.setFont(bold)
            t.setVerticalHeaderItem(i, head)
            for j, v in enumerate(vals):
                it = QTableWidgetItem(v)
                it.setToolTip(v)
                t.setItem(i, j, it)
        t.resizeRowsToContents()
        if len(recs) == 1:
            self.details_title.setText(f"<b>{recs[0].title}</b>: metrics and settings as they were")
        else:
            self.details_title.setText(f"<b>{len(recs)} runs compared</b>: metrics, and the settings that differ")

    def _update_actions(self) -> None:
        recs = self.selected_records()
        one = len(recs) == 1
        has_model = one and bool(recs[0].model_path)
        for a in (self.rename_action, self.note_action):
            a.setEnabled(one)
        for a in (self.star_action, self.delete_action, self.export_action):
            a.setEnabled(bool(recs))
        self.open_action.setEnabled(has_model)
        self.continue_action.setEnabled(has_model)
        self.evaluate_action.setEnabled(has_model and not self.evaluation.is_running())
        starred = bool(recs) and all(r.starred for r in recs)
        self.star_action.setText("Unstar" if starred else "Star")

    def _context_menu(self, pos) -> None:
        if not self.table.indexAt(pos).isValid():
            return
        m = QMenu(self)
        for a in (self.open_action, self.continue_action, self.evaluate_action, None, self.star_action,
                  self.rename_action, self.note_action, self.export_action, None, self.delete_action):
            m.addSeparator() if a is None else m.addAction(a)
        m.exec(self.table.viewport().mapToGlobal(pos))

    # ------------------------------------------------------------------------------ actions
    def _one(self) -> Optional[RunRecord]:
        recs = self.selected_records()
        return recs[0] if len(recs) == 1 else None

    def toggle_star(self) -> None:
        recs = self.selected_records()
        on = not all(r.starred for r in recs)
        for r in recs:
            self.runs.set_starred(r.id, on)

    def rename_selected(self) -> None:
        r = self._one()
        if r is not None:
            row = self.runs.row_of(r.id)
            self.table.edit(self.proxy.mapFromSource(self.runs.index(row, COL["name"])))

    def edit_note(self) -> None:
        r = self._one()
        if r is None:
            return
        text, ok = QInputDialog.getMultiLineText(self, "Note", f"A note about {r.title}:", r.note)
        if ok:
            self.runs.set_note(r.id, text)

    def _ask_delete(self, recs: list[RunRecord]) -> Optional[str]:
        """"keep" (the model files stay), "trash" (they go to the system trash) or None (cancel)."""
        models = [r.model_path for r in recs if r.model_path and Path(r.model_path).is_file()]
        what = f"the run {recs[0].title}" if len(recs) == 1 else f"these {len(recs)} runs"
        box = QMessageBox(QMessageBox.Icon.Question, "Delete runs", f"Delete {what} from the run list?", parent=self)
        box.cancel_button = box.addButton(QMessageBox.StandardButton.Cancel)
        if models:
            box.setInformativeText(f"{len(models)} model file{'s' if len(models) > 1 else ''} belong to "
                                   f"{'it' if len(recs) == 1 else 'them'}: keep "
                                   f"{'it' if len(models) == 1 else 'them'}, or move to the system trash?")
            box.setDetailedText("\n".join(models))
            box.keep_button = box.addButton("Keep the model file" + ("s" if len(models) > 1 else ""),
                                            QMessageBox.ButtonRole.AcceptRole)
            box.trash_button = box.addButton("Move to the trash", QMessageBox.ButtonRole.DestructiveRole)
        else:
            box.keep_button = box.addButton("Delete", QMessageBox.ButtonRole.AcceptRole)
            box.trash_button = None
        box.setDefaultButton(box.keep_button)
        box.exec()
        clicked = box.clickedButton()
        if clicked is box.keep_button:
            return "keep"
        if box.trash_button is not None and clicked is box.trash_button:
            return "trash"
        return None

    def delete_selected(self) -> None:
        recs = self.selected_records()
        if not recs:
            return
        choice = self._ask_delete(recs)
        if choice is None:
            return
        kept = []
        for r in recs:
            if choice == "trash" and r.model_path and Path(r.model_path).is_file():
                if not QFile.moveToTrash(r.model_path):
                    kept.append(r.title)
                    continue  # the run stays listed: its model file is still where it was
            self.runs.delete(r.id)
        if kept:
            self.status_message.emit(f"Could not move the model file of {', '.join(kept)} to the trash "
                                     "(no trash here?): those runs are kept")
        else:
            self.status_message.emit(f"Deleted {len(recs)} run{'s' if len(recs) > 1 else ''}"
                                     + ("; model files moved to the trash" if choice == "trash" else ""))

    def export_selected(self) -> None:
        from ...core.errors import CatdogError

        recs = self.selected_records()
        if not recs:
            return
        dest = QFileDialog.getExistingDirectory(self, "Export the runs into this folder", str(Path.home()))
        if not dest:
            return
        try:
            outs = [self.runs.export(r.id, dest) for r in recs]
        except CatdogError as e:
            self.status_message.emit(f"Could not export: {e}")
            return
        self.status_message.emit(f"Exported to {outs[0]}" if len(outs) == 1 else f"Exported {len(outs)} runs to {dest}")

    def _model_of(self, r: Optional[RunRecord]) -> Optional[str]:
        if r is None:
            return None
        if not r.model_path or not Path(r.model_path).is_file():
            self.status_message.emit(f"The model file of {r.title} is no longer there"
                                     + (f" ({r.model_path}): moved or deleted?" if r.model_path else ""))
            return None
        return r.model_path

    def open_selected(self) -> None:
        path = self._model_of(self._one())
        if path:
            self.open_requested.emit(path)

    def continue_selected(self) -> None:
        path = self._model_of(self._one())
        if path:
            self.continue_requested.emit(path)

    def pick_test_folder(self) -> None:
        r = self._one()
        if r is None or not self._model_of(r):
            return
        start = str(Path((r.dataset or {}).get("root") or Path.home()).parent)
        folder = QFileDialog.getExistingDirectory(
            self, "Choose a labelled test folder (one subfolder per class) the model never saw", start)
        if folder:
            self.evaluate(r.id, folder)

    def evaluate(self, run_id: str, folder: str) -> bool:
        r = self.runs.record(run_id)
        ok = r is not None and self.evaluation.start(run_id, r.model_path, folder)
        self._update_actions()
        return ok

    def shutdown(self) -> None:
        self.evaluation.shutdown()
