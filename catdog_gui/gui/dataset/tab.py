"""The Dataset tab: pick folders (or get sample photos), scan them in the background, show what is
in them (the report, and every photo in a lazy grid), and preview what augmentation will do to a photo.

Built around the window's :class:`~catdog_gui.gui.models.dataset_model.DatasetModel` (folders, split,
exclusions, the latest scan), which it edits and redraws from, and the shared :class:`AugmentModel`.
Every decode (thumbnails, previews) runs on a :class:`Task`. Photos excluded from training in the grid
are left out by the model's scan, so the Dataset the Training tab trains on never holds them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..models.augment_model import AugmentModel
from ..common.widgets import heading, muted
from .augment_panel import AugmentPanel
from .empty_state import EmptyState
from .scan_report import ScanReportView
from ...core.errors import CatdogError
from ..models.dataset_model import DatasetModel
from .photo_grid import PhotoGrid
from ..common.workers import Task
from ...core.text import count_text
from ...core.text import plural
from ..common.controls import push_button

PREVIEW_N = 8
PREVIEW_CELL = 140

def _local_dir(mime) -> Optional[str]:
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            p = url.toLocalFile()
            if os.path.isdir(p):
                return p
    return None


class DatasetTab(QWidget):
    #: emitted once per scan when it ends (with the Dataset or None)
    scan_finished = Signal(object)
    train_requested = Signal()
    status_message = Signal(str)
    busy = Signal(str)  # "" when idle
    folder_opened = Signal(str)

    def __init__(self, data: DatasetModel, augment: AugmentModel, parent=None, *, settings=None):
        super().__init__(parent)
        self.data = data
        self.augment = augment
        self.settings = settings  # a Settings (the sample photos' mirror address), or None
        self.samples_dialog = None
        self._quiet_scan = False  # a rescan after an exclusion: the report stays on screen
        self.setAcceptDrops(True)
        self._build()
        data.folders_changed.connect(self._on_folders_changed)
        data.split_changed.connect(lambda _f, _s: self._update_split_hints())
        data.scan_started.connect(self._on_scan_started)
        data.scan_progress.connect(self._on_scan_progress)
        data.scanned.connect(self._on_scan_done)
        data.scan_failed.connect(self._on_scan_failed)
        data.scan_cancelled.connect(self._on_scan_cancelled)
        self._update_split_hints()

    # the model's state, read where the tab shows it
    @property
    def dataset(self):
        return self.data.dataset

    @property
    def train_dir(self) -> Optional[str]:
        return self.data.train_dir

    @property
    def val_dir(self) -> Optional[str]:
        return self.data.val_dir

    @property
    def error(self) -> str:
        return self.data.error

    # ------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(10, 10, 10, 10)
        root.setSpacing(8)

        # folder pickers
        pick = QGridLayout()
        pick.setHorizontalSpacing(6)
        self.train_edit = QLineEdit(readOnly=True, placeholderText="No folder chosen yet")
        self.train_edit.setAccessibleName("Training folder")
        self.train_button = push_button("Choose…",
                                        "Choose the folder with your photos, one subfolder per class (Ctrl+O)",
                                        self.choose_train_folder, name="Choose training folder",
                                        icon=self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon))
        self.val_edit = QLineEdit(readOnly=True, placeholderText="Optional: otherwise 20% of the photos are held out")
        self.val_edit.setAccessibleName("Validation folder")
        self.val_button = push_button("Choose…",
                                      "Optional: a separate folder of photos to measure accuracy on, same class folders",
                                      self.choose_val_folder, name="Choose validation folder",
                                      icon=self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon))
        self.val_clear = QToolButton()
        self.val_clear.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DialogCloseButton))
        self.val_clear.setToolTip("Use no separate validation folder (hold out 20% of the training photos)")
        self.val_clear.setAccessibleName("Clear validation folder")
        self.val_clear.clicked.connect(lambda: self.set_folders(self.train_dir, None) if self.train_dir else None)
        self.val_clear.setEnabled(False)
        pick.addWidget(QLabel("Training photos:"), 0, 0)
        pick.addWidget(self.train_edit, 0, 1)
        pick.addWidget(self.train_button, 0, 2)
        pick.addWidget(QLabel("Validation photos:"), 1, 0)
        pick.addWidget(self.val_edit, 1, 1)
        pick.addWidget(self.val_button, 1, 2)
        pick.addWidget(self.val_clear, 1, 3)
        self.camera_button = QPushButton("Camera")
        self.camera_button.setCheckable(True)
        self.camera_button.setToolTip("Take photos for a class with a camera (or from a video file)")
        self.camera_button.setAccessibleName("Collect photos with a camera")
        self.camera_button.toggled.connect(self.show_camera)
        pick.addWidget(self.camera_button, 0, 3)
        root.addLayout(pick)
        self.camera_panel = None  # the Camera panel (camera_collect.py), made on first use

        self.stack = QStackedWidget()
        self.empty = EmptyState()
        self.empty.choose_requested.connect(self.choose_train_folder)
        self.empty.samples_requested.connect(self.get_samples)
        self.empty.include_all_requested.connect(self.include_all)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self._build_scanning())
        self.stack.addWidget(self._build_report())
        root.addWidget(self.stack, 1)

        # the primary action
        bottom = QHBoxLayout()
        self.summary_label = muted("", wrap=False)
        bottom.addWidget(self.summary_label, 1)
        self.review_button = push_button("Review photos…",
                                         "Find likely label errors, near-duplicates and photos no class fits; fix them",
                                         self.open_review, name="Review photos", enabled=False)
        bottom.addWidget(self.review_button)
        self.review_view = None  # the Review view (review_view.py), made on first use
        self.run_metrics = None  # the last training run's validation Metrics (set_run_metrics)
        self.train_action = push_button("Train on these photos", "Go to the Training tab with this dataset",
                                        self.train_requested, name="Train on these photos", primary=True,
                                        enabled=False)
        bottom.addWidget(self.train_action)
        root.addLayout(bottom)

    def _build_scanning(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addStretch(1)
        self.scan_label = QLabel("Looking at the photos…")
        self.scan_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.scan_label)
        row = QHBoxLayout()
        row.addStretch(1)
        self.scan_progress = QProgressBar()
        self.scan_progress.setMinimumWidth(420)
        self.scan_progress.setAccessibleName("Scan progress")
        row.addWidget(self.scan_progress)
        self.scan_cancel = push_button("Cancel", "Stop looking at this folder", self.cancel_scan,
                                       name="Cancel scan")
        row.addWidget(self.scan_cancel)
        row.addStretch(1)
        lay.addLayout(row)
        note = muted("Every photo is opened once to find unreadable files and duplicates.")
        note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(note)
        lay.addStretch(2)
        return page

    def _build_report(self) -> QWidget:
        split = QSplitter(Qt.Orientation.Horizontal)
        self.splitter = split

        # left: the report above, every photo below
        left_split = QSplitter(Qt.Orientation.Vertical)
        self.left_splitter = left_split
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setFrameShape(QFrame.Shape.NoFrame)
        body = self.report = ScanReportView()
        self.report.include_all_requested.connect(self.include_all)
        left.setWidget(body)
        left_split.addWidget(left)

        gridbox = QWidget()
        gl = QVBoxLayout(gridbox)
        gl.setContentsMargins(4, 4, 12, 4)
        self.thumbs_title = heading("Every photo")
        gl.addWidget(self.thumbs_title)
        gl.addWidget(muted("Click a photo to see what augmentation does to it; double-click opens it; "
                           "right-click to open its folder or exclude it from training."))
        self.grid = PhotoGrid()
        self.grid.photo_clicked.connect(self.set_preview_image)
        self.grid.exclude_requested.connect(self.set_excluded)
        gl.addWidget(self.grid, 1)
        left_split.addWidget(gridbox)
        left_split.setStretchFactor(0, 2)
        left_split.setStretchFactor(1, 3)
        left_split.setSizes([260, 420])
        split.addWidget(left_split)

        # right: augmentation (its own view over the shared AugmentModel)
        right = AugmentPanel(self.augment)
        self.augment_panel = right
        rscroll = QScrollArea()
        rscroll.setWidgetResizable(True)
        rscroll.setFrameShape(QFrame.Shape.NoFrame)
        rscroll.setWidget(right)
        rscroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        split.addWidget(rscroll)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([700, 480])
        return split

    # ------------------------------------------------------------------------------ folders
    def choose_train_folder(self) -> None:
        start = self.train_dir or str(Path.home())
        d = QFileDialog.getExistingDirectory(self, "Choose the folder with your photos", start)
        if d:
            self.set_folders(d, None)

    def choose_val_folder(self) -> None:
        start = self.val_dir or self.train_dir or str(Path.home())
        d = QFileDialog.getExistingDirectory(self, "Choose a validation folder (same class folders)", start)
        if d and self.train_dir:
            self.set_folders(self.train_dir, d)

    def set_folders(self, train_dir: Optional[str], val_dir: Optional[str] = None) -> None:
        """Use a folder (and an optional validation folder): the dataset model scans it in the background."""
        self.data.set_folders(train_dir, val_dir)
        if self.train_dir:
            self.folder_opened.emit(self.train_dir)

    def _on_folders_changed(self, train: Optional[str], val: Optional[str]) -> None:
        self.train_edit.setText(train or "")
        self.val_edit.setText(val or "")
        self.val_clear.setEnabled(bool(val))

    def show_camera(self, on: bool = True) -> None:
        """Show (or hide) the Camera panel: record photos of a class into the training folder."""
        if on and self.camera_panel is None:
            from .camera_collect import CameraCollectPanel

            self.camera_panel = CameraCollectPanel(
                lambda: self.train_dir, lambda: list(self.dataset.classes) if self.dataset else [],
                settings=self.settings, parent=self)
            self.camera_panel.photos_added.connect(lambda _cls, _n: self.data.rescan(quiet=True))
            self.scan_finished.connect(lambda _ds: self.camera_panel.refresh_classes())  # a new class is offered
            lay = self.layout()
            lay.insertWidget(max(lay.indexOf(self.stack), 0), self.camera_panel)
        if self.camera_panel is not None:
            if on:
                self.camera_panel.refresh_classes()
            self.camera_panel.setVisible(on)
        if self.camera_button.isChecked() != on:
            self.camera_button.setChecked(on)

    def set_run_metrics(self, metrics) -> None:
        """A training run's validation Metrics (``TrainingTab.run_finished``'s ``Finished.metrics``):
        the Review view lists its most confident mistakes and most confused pairs."""
        self.run_metrics = metrics
        if self.review_view is not None and metrics is not None:
            self.review_view.set_metrics(metrics)

    def open_review(self) -> None:
        """Open the Review view on the training folder: the photos that hurt, fixed in place."""
        if not self.train_dir:
            return
        if self.review_view is None:
            from .review_view import ReviewView

            self.review_view = ReviewView(self.train_dir, parent=self)
            self.review_view.setWindowFlag(Qt.WindowType.Window)
            self.review_view.resize(900, 600)
            self.review_view.dataset_changed.connect(lambda: self.data.rescan(quiet=True))
            self.review_view.reviewed.connect(self._on_reviewed)
            self.review_view.status_message.connect(self.status_message)
        self.review_view.set_root(self.train_dir, self.val_dir)
        if self.run_metrics is not None:
            self.review_view.set_metrics(self.run_metrics)
        self.review_view.show()
        self.review_view.raise_()

    def _on_reviewed(self) -> None:
        """The review stored its near-duplicate groups in the dataset folder: scan again, keeping them together."""
        self.data.rescan(quiet=True)

    def _update_split_hints(self) -> None:
        pct = f"{self.data.val_fraction:.0%}"
        self.val_edit.setPlaceholderText(f"Optional: otherwise {pct} of the photos are held out")
        self.val_clear.setToolTip(f"Use no separate validation folder (hold out {pct} of the training photos)")

    def start_scan(self, quiet: bool = False) -> None:
        """Scan the folders again in the background. ``quiet``: the same folder again (after an
        exclusion): the report and grid stay on screen until the new scan replaces them."""
        self.data.rescan(quiet=quiet)

    def _on_scan_started(self, quiet: bool) -> None:
        quiet = quiet and self.stack.currentIndex() == 2
        self._quiet_scan = quiet
        self.train_action.setEnabled(False)
        self.summary_label.setText("")
        self.scan_progress.setRange(0, 0)
        self.scan_label.setText(f"Looking at the photos in {self.train_dir}…")
        if not quiet:
            self.stack.setCurrentIndex(1)
        self.busy.emit("Scanning photos…")

    def cancel_scan(self) -> None:
        self.data.cancel_scan()

    def is_scanning(self) -> bool:
        return self.data.is_scanning()

    def _on_scan_progress(self, done: int, total: int) -> None:
        self.scan_progress.setRange(0, max(total, 1))
        self.scan_progress.setValue(done)
        self.scan_label.setText(f"Checking photo {count_text(done)} of {count_text(total)}…")
        self.busy.emit(f"Scanning photos: {done * 100 // max(total, 1)}%")

    def _on_scan_cancelled(self) -> None:
        self.empty.error_label.hide()
        self.status_message.emit("Scan cancelled")
        self._scan_ended()

    def _on_scan_failed(self, message: str) -> None:
        n = len(self.data.excluded())
        excluded = f" ({plural(n, 'photo')} of it are excluded from training.)" if n else ""
        self.empty.error_label.setText(f"This folder cannot be used yet: {message}{excluded}")
        self.empty.error_label.show()
        self.empty.empty_include.setVisible(bool(n))
        self.status_message.emit("The folder cannot be used: see the Dataset tab")
        self._scan_ended()

    def _scan_ended(self) -> None:
        """No dataset (failed or cancelled scan): back to the empty state."""
        self.stack.setCurrentIndex(0)
        self.busy.emit("")
        self.scan_finished.emit(None)

    def _on_scan_done(self, dataset) -> None:
        self.busy.emit("")
        self.empty.error_label.hide()
        self.empty.empty_include.hide()
        self.show_report(dataset)
        self.stack.setCurrentIndex(2)
        n = dataset.report.n_train + dataset.report.n_val
        self.train_action.setText(f"Train on these {count_text(n)} photos")
        self.train_action.setEnabled(True)
        self.review_button.setEnabled(True)
        self.status_message.emit(f"Found {plural(n, 'photo')} in {len(dataset.classes)} classes")
        self.scan_finished.emit(dataset)
        self._show_photos(dataset)

    # ------------------------------------------------------------------------------ the report
    def show_report(self, dataset) -> None:
        self.report.show_report(dataset)
        r = dataset.report
        self.summary_label.setText(f"{r.root}  ·  {count_text(r.n_train)} training + {count_text(r.n_val)} validation")

    # ------------------------------------------------------------------------------ the photo grid
    def _show_photos(self, dataset) -> None:
        self.grid.set_dataset(dataset, keep_view=self._quiet_scan)
        self._quiet_scan = False
        paths = {str(s.path) for s in dataset.train} | {str(s.path) for s in dataset.val}
        if self.augment_panel.preview_path not in paths:
            first = dataset.train[0] if dataset.train else (dataset.val[0] if dataset.val else None)
            if first is not None:
                self.set_preview_image(str(first.path))
        else:
            self.grid.select_path(self.augment_panel.preview_path)

    def set_excluded(self, paths: list, excluded: bool = True) -> None:
        """Exclude ``paths`` from training (or include them again) and scan the folder again."""
        if not self.train_dir or not paths:
            return
        try:
            changed = self.data.set_excluded(paths, excluded)
        except (OSError, CatdogError) as e:  # the data folder cannot be written
            self.status_message.emit(f"Could not save the excluded photos: {e}")
            return
        if changed:
            what = plural(changed, "photo")
            self.status_message.emit(f"{what} excluded from training" if excluded
                                     else f"{what} included in training again")

    def include_all(self) -> None:
        """Forget every exclusion of this folder and scan it again."""
        if self.train_dir:
            self.empty.empty_include.hide()
            self.data.include_all()

    # ------------------------------------------------------------------------------ sample photos
    def get_samples(self) -> None:
        """Open the sample photos (downloading them first through the dialog if needed)."""
        from ...core.data.sample_photos import DEFAULT_SET, installed
        from .samples_dialog import SamplesDialog

        have = installed(DEFAULT_SET)
        if have is not None:
            self.set_folders(str(have), None)
            return
        if self.samples_dialog is None:
            self.samples_dialog = SamplesDialog(self.settings, self)
            self.samples_dialog.samples_ready.connect(lambda path: self.set_folders(path, None))
        self.samples_dialog.show()
        self.samples_dialog.raise_()

    # ------------------------------------------------------------------------------ augmentation preview
    def set_preview_size(self, size: int) -> None:
        """The model's input size: previews show what the model would see."""
        self.augment_panel.set_preview_size(size)

    def set_preview_image(self, path: str) -> None:
        self.grid.select_path(path)
        self.augment_panel.set_preview_image(path)

    # ------------------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, e):  # noqa: N802
        if _local_dir(e.mimeData()):
            e.acceptProposedAction()

    def dropEvent(self, e):  # noqa: N802
        d = _local_dir(e.mimeData())
        if d:
            e.acceptProposedAction()
            self.set_folders(d, None)

    # ------------------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Stop every background job of this tab and join its thread (closing the window)."""
        self.augment_panel.shutdown()
        self.grid.shutdown()
        if self.camera_panel is not None:
            self.camera_panel.shutdown()
        if self.samples_dialog is not None:
            self.samples_dialog.shutdown()
        if self.review_view is not None:
            self.review_view.shutdown()
        Task.shutdown_all(self)

    def set_sizes_state(self, sizes) -> None:
        if sizes:
            self.splitter.setSizes([int(x) for x in sizes])

