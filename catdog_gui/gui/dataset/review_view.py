"""The Review view (Dataset tab): the photos that hurt, worst first, fixed in place.

Likely label errors (with the suggested class), near-duplicate groups, "no class fits" outliers
(all from :mod:`catdog_gui.core.inference.review`, computed on a :class:`Task` with progress and cancel) and,
after a training run, the model's most confident mistakes and most confused pairs
(:meth:`ReviewView.set_metrics`). Each row: thumbnail, file, current class, suggested class, score.
Actions on the selected rows: relabel, remove (into ``_removed/``), keep, and undo the last action
(:mod:`catdog_gui.core.inference.review_plan`).
"""

from __future__ import annotations

import os
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..common.controls import push_button
from ..common.workers import Task
from ...core.data.layouts import class_of
from ..common.training_process import ProcessTask
from ...core.inference.review import photo_identity

KIND_TITLES = {"label": "Label error?", "duplicate": "Near-duplicates", "leak": "Also in validation folder",
               "outlier": "No class fits", "mistake": "Model's mistake"}
COLUMNS = ("Problem", "File", "Class", "Suggested", "Score")
THUMB = 48


class ReviewView(QWidget):
    """``root``: the dataset folder; ``val_dir``: a separate validation folder, checked for near-copies of
    the training photos (leakage: they are then left out of validation by every scan); ``features``: the
    feature function (tests pass a stand-in)."""

    #: the dataset's files changed (an action was applied or undone): the tab scans again
    dataset_changed = Signal()
    status_message = Signal(str)
    #: a review finished (its near-duplicate groups are in ``review``)
    reviewed = Signal()

    def __init__(self, root: Optional[str] = None, features=None, parent=None, val_dir: Optional[str] = None):
        super().__init__(parent)
        self.setWindowTitle("Review photos")
        self.root = root
        self.val_dir = val_dir
        self.features = features
        self.review = None
        self.metrics = None
        #: every listed photo as it was when first listed: path -> [size, mtime_ns, sha256]; an action on a
        #: photo changed since is refused (the plan carries these, apply_plan checks them)
        self._listed: dict = {}
        self._task: Optional[Task] = None
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.run_button = push_button("Find problem photos", slot=self.start, name="Find problem photos")
        self.cancel_button = push_button("Cancel", slot=self.cancel, enabled=False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        top.addWidget(self.run_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.progress, 1)
        lay.addLayout(top)
        lay.addWidget(self.summary)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setIconSize(QPixmap(THUMB, THUMB).size())
        self.tree.setRootIsDecorated(True)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        lay.addWidget(self.tree, 1)

        acts = QHBoxLayout()
        self.relabel_combo = QComboBox()
        self.relabel_combo.setAccessibleName("Relabel to")
        self.relabel_button = push_button("Move to class", "Move the selected photos into the chosen class folder",
                                          self.relabel_selected)
        self.suggested_button = push_button("Accept suggestion", "Move each selected photo into its suggested class "
                                            "folder", lambda: self.relabel_selected(suggested=True))
        self.remove_button = push_button("Remove", "Move the selected photos into the dataset's _removed folder "
                                         "(never deleted)", self.remove_selected)
        self.keep_button = push_button("Keep", "These photos are fine: never suggest them again", self.keep_selected)
        self.undo_button = push_button("Undo", "Undo the last action (files move back)", self.undo)
        for w in (self.suggested_button, self.relabel_combo, self.relabel_button, self.remove_button,
                  self.keep_button):
            acts.addWidget(w)
        acts.addStretch(1)
        acts.addWidget(self.undo_button)
        lay.addLayout(acts)
        self._update_buttons()

    # ------------------------------------------------------------------------------ computing
    def set_root(self, root: Optional[str], val_dir: Optional[str] = None) -> None:
        if root != self.root or val_dir != self.val_dir:
            self.cancel()
            self.root, self.val_dir = root, val_dir
            self.review = None
            self._listed = {}
            self._fill()

    def start(self) -> None:
        if not self.root or (self._task is not None and self._task.is_running()):
            return
        task = ProcessTask("catdog_gui.core.inference.review:review_dataset", self.root, self.features,
                           test_dir=self.val_dir, parent=self, name="review")
        task.progress.connect(self._on_progress)
        task.done.connect(self._on_done)
        task.failed.connect(lambda m: self.summary.setText(f"Could not review the photos: {m}"))
        task.cancelled.connect(lambda: self.summary.setText("Review cancelled."))
        task.finished.connect(self._ended)
        self._task = task
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.summary.setText("Looking at every photo…")
        task.start()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def is_running(self) -> bool:
        return self._task is not None and self._task.is_running()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _on_done(self, review) -> None:
        self.review = review
        self._listed.update(review.identities)
        self._fill()
        self.reviewed.emit()

    def _ended(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)

    def set_metrics(self, metrics) -> None:
        """A training run's validation metrics: its most confident mistakes join the list."""
        self.metrics = metrics
        self._fill()

    # ------------------------------------------------------------------------------ the list
    def _row(self, parent, kind, path, current, suggested, score, data) -> QTreeWidgetItem:
        name = os.path.relpath(path, self.root) if self.root else path
        item = QTreeWidgetItem([KIND_TITLES.get(kind, kind), name, current or "", suggested or "",
                                f"{score:.2f}" if score is not None else ""])
        item.setData(0, Qt.ItemDataRole.UserRole, data)
        # decoded at thumbnail size (a JPEG's DCT scaling: a few ms, not a full decode on the GUI thread)
        reader = QImageReader(path)
        reader.setAutoTransform(True)
        size = reader.size()
        if size.isValid():
            reader.setScaledSize(size.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio))
        img = reader.read()
        if not img.isNull():
            item.setIcon(1, QIcon(QPixmap.fromImage(img)))
        item.setToolTip(1, path)
        (parent.addChild(item) if parent is not None else self.tree.addTopLevelItem(item))
        return item

    def _fill(self) -> None:
        self.tree.clear()
        self.relabel_combo.clear()
        r = self.review
        if r is None and self.metrics is None:
            self.summary.setText("Find likely label errors, near-duplicates and photos no class fits.")
            self._update_buttons()
            return
        parts = []
        if r is not None:
            self.relabel_combo.addItems(r.classes)
            for s in r.label_errors:
                self._row(None, "label", s.path, s.current, s.suggested, s.score, ("photo", s.path, s.suggested))
            for g in r.duplicate_groups + r.leaks:
                kind = "leak" if g in r.leaks else "duplicate"
                head = QTreeWidgetItem([KIND_TITLES[kind], f"{len(g)} photos", "", "", str(len(g))])
                head.setData(0, Qt.ItemDataRole.UserRole, ("group", g, None))
                self.tree.addTopLevelItem(head)
                for p in g:
                    cls = ((class_of(self.root, p) or (class_of(self.val_dir, p) if self.val_dir else None) or "")
                           if self.root else "")
                    self._row(head, kind, p, cls, None, None, ("photo", p, None))
                head.setExpanded(True)
            for s in r.outliers:
                self._row(None, "outlier", s.path, s.current, None, s.score, ("photo", s.path, None))
            parts.append(f"{len(r.label_errors)} likely label errors, {len(r.duplicate_groups)} near-duplicate "
                         f"groups, {len(r.outliers)} photos no class fits ({r.seconds:.1f} s)")
            if self.val_dir:
                parts.append(f"{len(r.leaks)} group(s) of training photos with near-copies in the validation "
                             "folder: the copies are left out of validation by the next scan" if r.leaks else
                             "no validation photo is a near-copy of a training photo")
        if self.metrics is not None:
            m = self.metrics
            for mk in m.mistakes[:50]:
                if os.path.exists(mk.path):
                    if mk.path not in self._listed:
                        ident = photo_identity(mk.path)
                        if ident is not None:
                            self._listed[mk.path] = ident
                    self._row(None, "mistake", mk.path, mk.true, mk.predicted, mk.confidence,
                              ("photo", mk.path, mk.predicted))
            pairs = sorted(((m.confusion[i][j], a, b) for i, a in enumerate(m.classes)
                            for j, b in enumerate(m.classes) if i != j and m.confusion[i][j]), reverse=True)
            if pairs:
                parts.append("Most confused: " + ", ".join(f"{a} taken for {b} ({n})" for n, a, b in pairs[:3]))
            if r is None:
                self.relabel_combo.addItems(list(m.classes))
        self.summary.setText(". ".join(parts))
        self._update_buttons()

    def _selected(self, whole_groups: bool = False) -> list[tuple[str, Optional[str]]]:
        """(path, suggested class) of every selected photo; a selected group gives all but its first (the
        copy that stays), or every photo with ``whole_groups`` (Keep: the group is fine as it is)."""
        out, seen = [], set()
        for item in self.tree.selectedItems():
            kind, what, suggested = item.data(0, Qt.ItemDataRole.UserRole)
            paths = [(what, suggested)] if kind == "photo" else [(p, None) for p in what[0 if whole_groups else 1:]]
            for p, s in paths:
                if p not in seen:
                    seen.add(p)
                    out.append((p, s))
        return out

    def _update_buttons(self) -> None:
        sel = bool(self.tree.selectedItems())
        for b in (self.relabel_button, self.remove_button, self.keep_button, self.suggested_button):
            b.setEnabled(sel)
        from ...core.storage.dataset_memory import load_memory

        self.undo_button.setEnabled(bool(self.root) and bool(load_memory(self.root).log))

    # ------------------------------------------------------------------------------ actions
    def _apply(self, actions) -> None:
        from ...core.inference.review import Review
        from ...core.inference.review_plan import apply_plan, make_plan

        if not actions or not self.root:
            return
        try:
            plan = make_plan(Review(self.root, [], [], [], [], identities=dict(self._listed)), actions)
            entries = apply_plan(self.root, plan)
        except Exception as e:  # a stale file, a folder that cannot be written: say so
            self.status_message.emit(f"Nothing changed: {e}")
            self.summary.setText(f"Nothing changed: {e}")
            return
        done = {os.path.join(self.root, e["path"]) for e in entries}
        self._forget(done)
        self.status_message.emit(f"{len(entries)} photo(s): {entries[0]['action']}" if entries else "")
        if any(e["action"] != "keep" for e in entries):
            self.dataset_changed.emit()
        self._update_buttons()

    def _forget(self, paths: set) -> None:
        """Take the handled photos off the list; the others stay listed."""
        r = self.review
        if r is not None:
            r.label_errors = [s for s in r.label_errors if s.path not in paths]
            r.outliers = [s for s in r.outliers if s.path not in paths]
            groups = [[p for p in g if p not in paths] for g in r.duplicate_groups]
            r.duplicate_groups = [g for g in groups if len(g) > 1]
        if self.metrics is not None:
            self.metrics.mistakes = [m for m in self.metrics.mistakes if m.path not in paths]
        self._fill()

    def relabel_selected(self, suggested: bool = False) -> None:
        to = self.relabel_combo.currentText()
        acts = [("relabel", p, s if suggested else to) for p, s in self._selected()
                if (s if suggested else to)]
        acts = [a for a in acts if os.path.relpath(a[1], self.root).split(os.sep)[0] != a[2]]
        self._apply(acts)

    def remove_selected(self) -> None:
        self._apply([("remove", p, None) for p, _s in self._selected()])

    def keep_selected(self) -> None:
        self._apply([("keep", p, None) for p, _s in self._selected(whole_groups=True)])

    def undo(self) -> None:
        from ...core.inference.review_plan import undo_last

        if not self.root:
            return
        entries = undo_last(self.root)
        self.status_message.emit(f"Undid {len(entries)} action(s)" if entries else "Nothing to undo")
        if entries:
            self.dataset_changed.emit()
            if self.review is not None:
                self.summary.setText(f"Undid {len(entries)} action(s). Find problem photos again to see them.")
        self._update_buttons()

    def shutdown(self) -> None:
        if self._task is not None:
            self._task.discard()
        ProcessTask.shutdown_all(self)
        Task.shutdown_all(self)
