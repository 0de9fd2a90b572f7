"""The run history as Qt models: :class:`RunsModel`, a table over the core
:class:`~catdog_gui.core.storage.run_store.RunStore`, and :class:`RunEvaluation`, which scores one run's model on a
labelled test folder in the background and stores the result with the run.

``RunsModel`` is the one way the window changes the store (rename, note, star, delete, test metrics):
each change is written first, then the model says so (``dataChanged``, rows removed, ``changed``),
so every view of it stays in step. A damaged run file is one row, greyed, with its reason as the
tooltip; it never stops the others from loading. No torch here; the store is plain JSON.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Optional, Union

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont

from ...core.storage.run_store import DamagedRun, RunRecord, RunStore, differing_settings, flat_settings
from ..common import style
from ...core.text import duration_text
from ..common.training_process import ProcessTask

#: (key, header, tooltip) of each column
COLUMNS = (
    ("name", "Name", "The run's name (double-click or F2 to rename); ★ marks a starred run"),
    ("model", "Model", "The network that was trained"),
    ("augment", "Augmentation", "Whether the training photos were randomly varied (augmentation)"),
    ("transfer", "Transfer", "Pretrained network (transfer learning), or learned from scratch"),
    ("epochs", "Epochs", "Epochs the run trained"),
    ("val", "Validation accuracy", "Accuracy of the kept (best) epoch on the validation photos"),
    ("test", "Test accuracy", "Accuracy on a labelled test folder the model never saw (Evaluate on a test folder…)"),
    ("time", "Time", "How long the run took"),
    ("date", "Date", "When the run started"),
)
COL = {key: i for i, (key, _h, _t) in enumerate(COLUMNS)}
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # a value that sorts (numbers as numbers)
ID_ROLE = Qt.ItemDataRole.UserRole + 2  # the run id
DAMAGED_ROLE = Qt.ItemDataRole.UserRole + 3
SOURCES = {"gui": "the window", "cli": "the catdog command", "api": "the Python API"}
Entry = Union[RunRecord, DamagedRun]


def accuracy_text(x) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def transfer_text(config: dict) -> str:
    if not config.get("pretrained"):
        return "from scratch"
    return "pretrained, fine-tuned" if config.get("transfer_mode") == "finetune" else "pretrained"


def date_text(started: str) -> str:
    try:
        return _dt.datetime.fromisoformat(started).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return started or ""


def validation_text(val: Optional[dict]) -> str:
    """``Validation accuracy 97.8% (361 photos the model did not train on)``."""
    if not val:
        return "No validation result (the run ended before its first epoch)"
    from ...core.inference.evaluation import measured_on

    return (f"Validation accuracy {accuracy_text(val.get('accuracy'))} "
            f"({measured_on(int(val.get('n', 0)), bool(val.get('seen_in_training')))})")


def test_text(test: Optional[dict]) -> str:
    """``Test folder accuracy 96.0% (200 photos in /x/test the model never saw)``."""
    if not test:
        return "Not evaluated on a test folder yet"
    overlap = test.get("overlap")
    which = ("the model never saw" if overlap == 0 else
             f"of which {overlap:,} the model trained on: this accuracy reads high" if isinstance(overlap, int)
             else "(this model file cannot tell whether it trained on them)")
    text = (f"Test folder accuracy {accuracy_text(test.get('accuracy'))} ({int(test.get('n', 0)):,} photos in "
            f"{test.get('folder', '?')} {which})")
    skipped = int(test.get("skipped") or 0)
    return text + (f"; {skipped:,} unreadable files skipped" if skipped else "")


def _when(r: RunRecord) -> str:
    """What orders runs in time: the start (to the second), then the id (the end, to the second)."""
    return f"{r.started}|{r.id}"


def _value(v) -> str:
    return "—" if v is None or v == "" else str(v)


def details_rows(records: list[RunRecord]) -> list[tuple[str, list[str]]]:
    """The details table: (row label, one text per run); a label starting with "§" is a section."""
    rows: list[tuple[str, list[str]]] = []

    def val(r):
        m = r.metrics.get("validation")
        return f"{accuracy_text(m.get('accuracy'))} on {int(m.get('n', 0)):,} photos" if m else "—"

    def test(r):
        t = r.metrics.get("test")
        return f"{accuracy_text(t.get('accuracy'))} on {int(t.get('n', 0)):,} photos in {t.get('folder', '?')}" if t \
            else "not evaluated"

    def dataset(r):
        d = r.dataset or {}
        return (f"{d.get('root', '?')} ({int(d.get('n_train') or 0):,} training, "
                f"{int(d.get('n_val') or 0):,} validation photos)") if d else "—"

    rows.append(("Validation accuracy", [val(r) for r in records]))
    rows.append(("Test folder accuracy", [test(r) for r in records]))
    rows.append(("Best epoch", [f"{r.best_epoch} of {r.epochs}" for r in records]))
    rows.append(("Status", [str(r.status).replace("_", " ") + (f": {r.reason}" if r.reason else "") for r in records]))
    rows.append(("Time", [duration_text(r.duration_s) for r in records]))
    rows.append(("Started", [date_text(r.started) for r in records]))
    rows.append(("Model", [f"{r.config.get('model', '?')}, {transfer_text(r.config)}" for r in records]))
    rows.append(("Dataset", [dataset(r) for r in records]))
    rows.append(("Device", [r.device or "—" for r in records]))
    rows.append(("From", [SOURCES.get(r.source, r.source) for r in records]))
    rows.append(("Note", [r.note or "" for r in records]))
    classes: list[str] = []
    for r in records:
        for c in ((r.metrics.get("validation") or {}).get("per_class") or {}):
            if c not in classes:
                classes.append(c)
    if classes:
        one = len(records) == 1
        rows.append(("§Per class (validation)" if one else "§F1 per class (validation)", [""] * len(records)))
        for c in classes:
            def pc(r, c=c):
                m = ((r.metrics.get("validation") or {}).get("per_class") or {}).get(c)
                if not m:
                    return "—"
                return (f"precision {accuracy_text(m['precision'])} · recall {accuracy_text(m['recall'])} · F1 {accuracy_text(m['f1'])}" if one
                        else accuracy_text(m["f1"]))
            rows.append((c, [pc(r) for r in records]))
    if len(records) == 1:
        rows.append(("§Settings", [""]))
        flat = {**flat_settings(records[0].config), **{f"dataset.{k}": v for k, v in (records[0].dataset or {}).items()
                                                if k in ("val_fraction", "split_seed")}}
        rows.extend((k, [_value(v)]) for k, v in sorted(flat.items()))
        return rows
    first, diffs = records[0], {}
    for i, r in enumerate(records[1:], 1):
        for k, (a, b) in differing_settings(first, r).items():
            diffs.setdefault(k, {0: a})[i] = b
    rows.append((f"§Settings that differ ({len(diffs)})" if diffs else "§Settings that differ: none",
                 [""] * len(records)))
    for k in sorted(diffs):
        vals = diffs[k]
        rows.append((k, [_value(vals.get(i, vals[0])) for i in range(len(records))]))
    return rows


class RunsModel(QAbstractTableModel):
    """Every run of the store, one row each, newest first (see the module docstring)."""

    changed = Signal()  # after a reload or any change
    test_evaluated = Signal(str, object)  # (run id, the stored test metrics dict)
    error = Signal(str)  # a change the store refused, in words

    def __init__(self, store: Optional[RunStore] = None, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.store = store or RunStore()
        self._entries: list[Entry] = []
        self.reload()

    # ---- reading ------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the store again (a run finished, another program added one, Refresh)."""
        self.beginResetModel()
        self._entries = self.store.entries()
        self.endResetModel()
        self.changed.emit()

    @property
    def entries(self) -> list[Entry]:
        return list(self._entries)

    def records(self) -> list[RunRecord]:
        return [e for e in self._entries if isinstance(e, RunRecord)]

    def record(self, run_id: str) -> Optional[RunRecord]:
        row = self.row_of(run_id)
        e = self._entries[row] if row >= 0 else None
        return e if isinstance(e, RunRecord) else None

    def entry(self, row: int) -> Entry:
        return self._entries[row]

    def row_of(self, run_id: str) -> int:
        return next((i for i, e in enumerate(self._entries) if e.id == run_id), -1)

    def previous_of(self, run_id: str) -> Optional[str]:
        """The run that started just before ``run_id`` (None: it is the first). By start time: an id
        tells when a run was recorded, to the second, and two short runs can end in the same second."""
        rec = self.record(run_id)
        if rec is None:
            return None
        earlier = [r for r in self.records() if r.id != run_id and _when(r) < _when(rec)]
        return max(earlier, key=_when).id if earlier else None

    # ---- Qt's table ---------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section][1]
            if role == Qt.ItemDataRole.ToolTipRole:
                return COLUMNS[section][2]
        return None

    def flags(self, index):
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if isinstance(self._entries[index.row()], DamagedRun):
            return Qt.ItemFlag.ItemIsEnabled  # listed, greyed, not selectable: nothing can be done with it
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return f | Qt.ItemFlag.ItemIsEditable if index.column() == COL["name"] else f

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        e, key = self._entries[index.row()], COLUMNS[index.column()][0]
        if role == ID_ROLE:
            return e.id
        if role == DAMAGED_ROLE:
            return isinstance(e, DamagedRun)
        if isinstance(e, DamagedRun):
            return self._damaged_data(e, key, role)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(e, key)
        if role == Qt.ItemDataRole.EditRole:
            return e.title if key == "name" else self._text(e, key)
        if role == SORT_ROLE:
            return self._sort_key(e, key)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(e, key)
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("epochs", "val", "test", "time"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and e.status == "failed":
            return QColor(style.colors()["bad"])
        return None

    def _damaged_data(self, e: DamagedRun, key: str, role):
        if role == Qt.ItemDataRole.DisplayRole:
            return f"Damaged run file {e.path.name}" if key == "name" else ""
        if role == SORT_ROLE:
            return "" if key == "date" else e.id if key in ("name", "model", "augment", "transfer") else -1.0
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{e.path}: {e.reason}. This run cannot be shown; the others are not affected."
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor(style.colors()["muted"])
        if role == Qt.ItemDataRole.FontRole:
            f = QFont()
            f.setItalic(True)
            return f
        return None

    @staticmethod
    def _text(r: RunRecord, key: str) -> str:
        c = r.config
        if key == "name":
            return ("★ " if r.starred else "") + r.title + (" (failed)" if r.status == "failed" else "")
        if key == "model":
            return str(c.get("model", "?"))
        if key == "augment":
            return "on" if r.augmented else "off"
        if key == "transfer":
            return transfer_text(c)
        if key == "epochs":
            return str(r.epochs)
        if key == "val":
            return accuracy_text(r.val_accuracy)
        if key == "test":
            return accuracy_text(r.test_accuracy)
        if key == "time":
            return duration_text(r.duration_s)
        return date_text(r.started)

    @staticmethod
    def _sort_key(r: RunRecord, key: str):
        if key == "epochs":
            return float(r.epochs)
        if key in ("val", "test"):
            v = r.val_accuracy if key == "val" else r.test_accuracy
            return -1.0 if v is None else float(v)
        if key == "time":
            return float(r.duration_s or 0)
        if key == "date":
            return _when(r)
        if key == "name":
            return ("0" if r.starred else "1") + r.title.lower()
        return RunsModel._text(r, key).lower()

    @staticmethod
    def _tooltip(r: RunRecord, key: str) -> str:
        if key == "name":
            lines = [r.title, f"id {r.id}, from {SOURCES.get(r.source, r.source)}"]
            status = str(r.status).replace("_", " ")
            lines.append(f"{status}: {r.reason}" if r.reason else status)
            if r.note:
                lines.append(f"Note: {r.note}")
            return "\n".join(lines)
        if key == "val":
            return validation_text(r.metrics.get("validation"))
        if key == "test":
            t = r.metrics.get("test")
            return test_text(t) if t else "Not evaluated: select the run and press Evaluate on a test folder…"
        if key == "augment" and r.augmented:
            aug = r.config.get("augment") or {}
            return ", ".join(f"{k} {v}" for k, v in aug.items() if k != "enabled")
        return ""

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or index.column() != COL["name"]:
            return False
        e = self._entries[index.row()]
        if isinstance(e, DamagedRun):
            return False
        return self.rename(e.id, str(value).strip())

    # ---- changing -----------------------------------------------------------------------------
    def _replace(self, rec: RunRecord) -> None:
        row = self.row_of(rec.id)
        if row >= 0:
            self._entries[row] = rec
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        self.changed.emit()

    def _update(self, run_id: str, **changes) -> bool:
        from ...core.errors import CatdogError

        try:
            self._replace(self.store.update(run_id, **changes))
        except CatdogError as e:
            self.error.emit(str(e))
            return False
        return True

    def rename(self, run_id: str, name: str) -> bool:
        """A new name ("" goes back to the default name, made from the settings)."""
        return self._update(run_id, name=name)

    def set_note(self, run_id: str, note: str) -> bool:
        return self._update(run_id, note=note)

    def set_starred(self, run_id: str, starred: bool) -> bool:
        return self._update(run_id, starred=starred)

    def delete(self, run_id: str) -> bool:
        """Forget the run; its model file is left alone (the view asks about it and trashes it)."""
        from ...core.errors import CatdogError

        try:
            self.store.delete(run_id, delete_model=False)
        except CatdogError as e:
            self.error.emit(str(e))
            return False
        row = self.row_of(run_id)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._entries[row]
            self.endRemoveRows()
        self.changed.emit()
        return True

    def export(self, run_id: str, dest) -> Path:
        """Export as a folder a colleague can open (raises CatdogError)."""
        return self.store.export(run_id, dest)

    def set_test_metrics(self, run_id: str, metrics: dict, folder: str) -> bool:
        from ...core.errors import CatdogError

        try:
            rec = self.store.set_test_metrics(run_id, metrics, folder)
        except CatdogError as e:
            self.error.emit(f"The test result could not be kept with the run: {e}")
            return False
        self._replace(rec)
        self.test_evaluated.emit(run_id, rec.metrics.get("test"))
        return True


class RunEvaluation(QObject):
    """Score a run's model on a labelled test folder (``core.evaluation.evaluate_folder``, the same as
    ``catdog evaluate``) in a process of its own (:class:`ProcessTask`), then keep the result with the run.

    The window's current model is used when it is the run's model (holding its ``model_lock``);
    otherwise the model file is loaded for this job only, so the current model stays as it is.
    A folder holding photos the model trained on is refused (``overlap_found(message)`` instead of
    ``failed``: the score would read high); :meth:`score_anyway` then scores it with the overlap shown.
    Signals: ``started(folder)``, ``progress(done, total)``, then ``done(run_id, test_dict)``,
    ``failed(message)``, ``overlap_found(message)`` or ``cancelled()``, and always ``finished()``.
    """

    started = Signal(str)
    progress = Signal(int, int)
    done = Signal(str, object)
    failed = Signal(str)
    overlap_found = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, runs: RunsModel, current=None, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.runs = runs
        self.current = current
        self.task: Optional[ProcessTask] = None
        self.run_id: Optional[str] = None
        self.folder: Optional[str] = None
        self.model_path: Optional[str] = None
        #: the folder last refused for its overlap with the training photos ((run_id, model, folder) or None)
        self.refused: Optional[tuple[str, str, str]] = None

    def is_running(self) -> bool:
        return self.task is not None

    def start(self, run_id: str, model_path: Optional[str], folder: str, allow_overlap: bool = False) -> bool:
        """Start scoring; False (and ``failed``) when it cannot start. ``allow_overlap``: score even when
        the folder holds photos the model trained on."""
        if self.task is not None:
            self.failed.emit("An evaluation is already running: wait for it or cancel it")
            return False
        if not model_path or not Path(model_path).is_file():
            self.failed.emit(f"The run's model file {model_path or ''} is no longer there (moved or deleted?), "
                             "so it cannot be evaluated")
            return False
        cur = self.current
        device = cur.device if cur is not None else "auto"
        folder = str(folder)
        self.run_id, self.folder, self.model_path, self.refused = run_id, folder, str(model_path), None
        task = self.task = ProcessTask("catdog_gui.core.inference.evaluation:evaluate_model_file", str(model_path),
                                       folder, device, allow_overlap=allow_overlap, parent=self, name="evaluate")
        task.progress.connect(self.progress)
        task.done.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.cancelled.connect(self.cancelled)
        task.finished.connect(self._on_finished)
        self.started.emit(folder)
        task.start()
        return True

    def score_anyway(self) -> bool:
        """Score the folder last refused for its overlap, the overlap shown with the result."""
        if self.refused is None:
            return False
        run_id, model_path, folder = self.refused
        return self.start(run_id, model_path, folder, allow_overlap=True)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _on_failed(self, message: str) -> None:
        if self.task is not None and self.task.error_kind == "OverlapError":
            self.refused = (self.run_id, self.model_path, self.folder)
            self.overlap_found.emit(message)
        else:
            self.failed.emit(message)

    def _on_done(self, result) -> None:
        metrics, skipped = result
        d = dict(metrics.to_dict(with_mistakes=False), skipped=int(skipped))
        self.runs.set_test_metrics(self.run_id, d, self.folder)
        self.done.emit(self.run_id, dict(d, folder=self.folder))

    def _on_finished(self) -> None:
        self.task = None
        self.finished.emit()

    def shutdown(self, ms: int = 10000) -> bool:
        self.task = None
        return ProcessTask.shutdown_all(self, ms)
