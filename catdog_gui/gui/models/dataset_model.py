"""The dataset the window trains on: its folders, split, exclusions and latest scan.

One :class:`DatasetModel` belongs to the main window. The Dataset tab edits it (folders, exclusions; the
review's near-duplicate groups are kept in the dataset folder and read by every scan), the Training tab edits its split (the validation fraction and seed of
``TrainConfig``) and reads :attr:`DatasetModel.dataset` to train on; both redraw on its signals. Every
change that affects the photos or their split scans again in the background (one :class:`Task` at a
time; a newer scan discards the older one's result), so :attr:`dataset` always matches the folders,
split and exclusions it holds, or is None while a scan runs or when the folder cannot be used.

Signals, in the order a scan gives them: ``scan_started(quiet)``, ``scan_progress(done, total)``, then
one of ``scanned(Dataset)``, ``scan_failed(message)`` or ``scan_cancelled()``; ``changed(Dataset or
None)`` whenever :attr:`dataset` changes; ``split_changed(fraction, seed)`` and ``folders_changed(train,
val)`` when those settings change.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence

from PySide6.QtCore import QObject, Signal

from ...core.config import TrainConfig
from ...core.storage.exclusions import Exclusions
from ..common.workers import Task


def _default(name: str):
    return next(f.default for f in fields(TrainConfig) if f.name == name)


class DatasetModel(QObject):
    changed = Signal(object)  # the Dataset training uses, or None
    scan_started = Signal(bool)  # quiet: the same folder again, the old report may stay on screen
    scan_progress = Signal(int, int)
    scanned = Signal(object)
    scan_failed = Signal(str)
    scan_cancelled = Signal()
    split_changed = Signal(float, int)
    folders_changed = Signal(object, object)  # (training folder, validation folder or None)

    def __init__(self, exclusions: Optional[Exclusions] = None, parent=None):
        super().__init__(parent)
        self.exclusions = exclusions if exclusions is not None else Exclusions()
        self.train_dir: Optional[str] = None
        self.val_dir: Optional[str] = None
        self.val_fraction: float = _default("val_fraction")
        self.seed: int = _default("seed")
        self.dataset = None
        self.error = ""
        self._task: Optional[Task] = None

    # ------------------------------------------------------------------------------ settings
    def set_folders(self, train: Optional[str], val: Optional[str] = None) -> None:
        """Use ``train`` (and an optional separate validation folder) and scan them."""
        self.train_dir = str(train) if train else None
        self.val_dir = str(val) if val else None
        self.folders_changed.emit(self.train_dir, self.val_dir)
        if self.train_dir:
            self.rescan()
        else:
            self.cancel_scan(discard=True)
            self._set_dataset(None)

    def set_split(self, val_fraction: float, seed: int) -> None:
        """Split as training will; an open folder is scanned again when the split changes."""
        split = (float(val_fraction), int(seed))
        if split == (self.val_fraction, self.seed):
            return
        self.val_fraction, self.seed = split
        self.split_changed.emit(*split)
        if self.train_dir:
            self.rescan()

    def split(self) -> tuple[float, int]:
        return self.val_fraction, self.seed

    def excluded(self) -> set[Path]:
        return self.exclusions.paths(self.train_dir) if self.train_dir else set()

    def set_excluded(self, paths: Sequence, excluded: bool = True) -> int:
        """Exclude (or include again) photos of the training folder and scan again quietly; how many changed.
        OSError when the exclusions file cannot be written (nothing changed then)."""
        if not self.train_dir:
            return 0
        n = self.exclusions.set_excluded(self.train_dir, paths, excluded)
        if n:
            self.rescan(quiet=True)
        return n

    def include_all(self) -> None:
        """Forget every exclusion of the training folder and scan it again."""
        if self.train_dir:
            self.exclusions.clear(self.train_dir)
            self.rescan(quiet=True)

    # ------------------------------------------------------------------------------ scanning
    def rescan(self, quiet: bool = False) -> Optional[Task]:
        """Scan the folders in the background (the previous scan's result is discarded)."""
        from ...core.data.scan import scan_dataset

        if not self.train_dir:
            return None
        self.cancel_scan(discard=True)
        train, val = self.train_dir, self.val_dir
        frac, seed = self.val_fraction, self.seed
        exclude = self.excluded()
        task = Task(lambda st: scan_dataset(train, val, val_fraction=frac, seed=seed, progress=st.progress,
                                            cancel=st.cancel_event, exclude=exclude),
                    self, name="scan")
        task.progress.connect(self.scan_progress)
        task.done.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.cancelled.connect(self._on_cancelled)
        self._task = task
        self.error = ""
        self._set_dataset(None)
        self.scan_started.emit(quiet)
        task.start()
        return task

    def cancel_scan(self, discard: bool = False) -> None:
        """Stop the running scan (``discard``: its result, if any, never arrives)."""
        t = self._task
        if t is None or not t.is_running():
            return
        if discard:
            t.discard()
            self._task = None
        else:
            t.cancel()

    def is_scanning(self) -> bool:
        return self._task is not None and self._task.is_running()

    def scan_task(self) -> Optional[Task]:
        """The scan running now (or the last one), for a caller that waits on it."""
        return self._task

    def shutdown(self) -> None:
        """Stop the scan and join its thread (closing the window)."""
        Task.shutdown_all(self)

    def _on_done(self, dataset) -> None:
        self._set_dataset(dataset)
        self.scanned.emit(dataset)

    def _on_failed(self, message: str) -> None:
        self.error = message
        self._set_dataset(None)
        self.scan_failed.emit(message)

    def _on_cancelled(self) -> None:
        self._set_dataset(None)
        self.scan_cancelled.emit()

    def _set_dataset(self, dataset) -> None:
        if dataset is None and self.dataset is None:
            return
        self.dataset = dataset
        self.changed.emit(dataset)
