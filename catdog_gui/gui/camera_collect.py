"""The Dataset tab's Camera panel: collect training photos from a camera or a video file, as
Teachable Machine does.

Pick the camera (every one Qt lists, hot-plug followed, the choice remembered), pick or type a
class, then "Hold to record" (a burst at the chosen rate, with a live count) or "Take one photo".
Each photo is a JPEG written atomically, with a unique name, into ``<dataset>/<class>/``
(``<dataset>/train/<class>/`` for a train/val layout); when a burst ends, ``photos_added(class, n)``
asks the Dataset tab to rescan, so the photos appear at once. An empty new folder works: name two
classes, record each, train.

If the camera goes away mid-recording, recording stops, what was saved stays, and the panel says
how many photos it kept.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from .camera_source import MIRROR_KEY, mirrored, multimedia_problem

__all__ = ["CameraCollectPanel", "save_photo"]


def class_folder(root: Path, cls: str) -> tuple[Path, str]:
    """Where photos of ``cls`` go in the dataset ``root``, and the file-name prefix: an existing folder
    of that name (any case), else a new one; in a dataset that takes the class from the file name
    (``cat.1.jpg``), the training folder itself, with ``<cls>.`` before each name (as "Wrong?" does)."""
    from ..core.data import class_from_name, split_layout
    from ..core.imageio import is_image_name

    train, _val = split_layout(root)
    if train.is_dir():
        subdirs = [d for d in train.iterdir() if d.is_dir() and not d.name.startswith(".")]
        for d in subdirs:
            if d.name.lower() == cls.lower():
                return d, ""
        if not subdirs and any(f.is_file() and is_image_name(f) and class_from_name(f.name) for f in train.iterdir()):
            return train, f"{cls}."
    return train / cls, ""


def save_photo(pil_image, root, cls: str, stem: str) -> Path:
    """Write ``pil_image`` as ``<root>/<cls>/<stem>.jpg`` (atomically, never overwriting; see
    :func:`class_folder` for the other layouts)."""
    from ..core.errors import CatdogError
    from ..core.files import atomic_write, unique_path
    from .camera_source import jpeg_bytes

    root = Path(root)
    if not root.is_dir():
        raise CatdogError(f"the dataset folder {root} does not exist (was it moved or unplugged?)")
    folder, prefix = class_folder(root, cls)
    data = jpeg_bytes(pil_image)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        dest = unique_path(folder / f"{prefix}{stem}.jpg")
        atomic_write(dest, lambda f: f.write(data), durable=False)
    except OSError as e:
        raise CatdogError(f"could not save the photo into {folder}: {e.strerror or e}") from None
    return dest


def _valid_class(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not any(c in name for c in '/\\:*?"<>|') and not name.startswith(".")


class CameraCollectPanel(QWidget):
    """See the module docstring. ``root_fn()`` gives the dataset folder (the Dataset tab's)."""

    photos_added = Signal(str, int)  # (class, how many) after a burst or one photo
    status_message = Signal(str)

    def __init__(self, root_fn: Callable[[], Optional[str]], classes_fn: Callable[[], list] = list,
                 settings=None, parent=None):
        super().__init__(parent)
        self.root_fn = root_fn
        self.classes_fn = classes_fn
        self.settings = settings
        self.source = None
        self.recording = False
        self.burst_count = 0  # photos saved in the current / last burst
        self.saved: list[Path] = []  # every photo this panel saved
        self.clock = time.monotonic
        self._last_save = -1e9
        self._latest: Optional[QImage] = None
        self._build()
        problem = multimedia_problem()
        if problem:
            self._disable(problem)
            return
        from .camera_source import FrameSource

        self.source = FrameSource(settings, self)
        self.source.frame.connect(self._on_frame)
        self.source.problem.connect(self._show_problem)
        self.source.devices_changed.connect(self._fill_cameras)
        self.source.lost.connect(self._on_lost)
        self._fill_cameras()
        if not self.source.devices:
            self._show_problem("No camera found. Plug one in (it appears here by itself), or use a video file.")

    # ---- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        top = QGridLayout()
        self.camera_combo = QComboBox()
        self.camera_combo.setAccessibleName("Camera")
        self.camera_combo.setToolTip("The camera to record from (every camera plugged in; remembered)")
        self.camera_combo.activated.connect(self._on_camera_chosen)
        self.video_button = QPushButton("Video file…")
        self.video_button.setAccessibleName("Use a video file")
        self.video_button.setToolTip("Collect frames from a video file instead of a camera")
        self.video_button.clicked.connect(self.choose_video)
        self.class_combo = QComboBox()
        self.class_combo.setEditable(True)
        self.class_combo.setAccessibleName("Class")
        self.class_combo.setToolTip("The class these photos show: pick one or type a new name")
        self.class_combo.lineEdit().setPlaceholderText("Type a class name, e.g. cat")
        self.rate_spin = QSpinBox()
        self.rate_spin.setRange(1, 30)
        self.rate_spin.setValue(5)
        self.rate_spin.setSuffix(" photos/s")
        self.rate_spin.setAccessibleName("Recording rate")
        self.rate_spin.setToolTip("How many photos per second 'Hold to record' saves")
        top.addWidget(QLabel("Camera:"), 0, 0)
        top.addWidget(self.camera_combo, 0, 1)
        top.addWidget(self.video_button, 0, 2)
        top.addWidget(QLabel("Class:"), 1, 0)
        top.addWidget(self.class_combo, 1, 1)
        top.addWidget(self.rate_spin, 1, 2)
        lay.addLayout(top)

        self.preview = QLabel("No picture yet")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(240, 180)
        self.preview.setAccessibleName("Camera preview")
        lay.addWidget(self.preview, 1)

        row = QHBoxLayout()
        self.record_button = QPushButton("Hold to record")
        self.record_button.setObjectName("primary")
        self.record_button.setAccessibleName("Hold to record")
        self.record_button.setToolTip("Hold down to save photos of this class at the chosen rate")
        self.record_button.pressed.connect(self.start_recording)
        self.record_button.released.connect(self.stop_recording)
        self.one_button = QPushButton("Take one photo")
        self.one_button.setAccessibleName("Take one photo")
        self.one_button.setToolTip("Save the current picture as one photo of this class")
        self.one_button.clicked.connect(self.take_photo)
        self.count_label = QLabel("")
        self.count_label.setAccessibleName("Photos recorded")
        row.addWidget(self.record_button)
        row.addWidget(self.one_button)
        row.addWidget(self.count_label, 1)
        lay.addLayout(row)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Camera message")
        lay.addWidget(self.message)

    def _disable(self, text: str) -> None:
        for w in (self.camera_combo, self.video_button, self.record_button, self.one_button):
            w.setEnabled(False)
        self.message.setText(text)

    def _show_problem(self, text: str) -> None:
        self.message.setText(text)
        self.video_button.setDefault(bool(text) and "video file" in text)

    # ---- sources ------------------------------------------------------------------------------
    def _fill_cameras(self) -> None:
        self.camera_combo.clear()
        for cam_id, name in self.source.camera_names():
            self.camera_combo.addItem(name, cam_id)
        current = self.source.camera_id or self.source.remembered_camera()
        i = self.camera_combo.findData(current)
        if i >= 0:
            self.camera_combo.setCurrentIndex(i)
        self.camera_combo.setEnabled(self.camera_combo.count() > 0)

    def _on_camera_chosen(self, index: int) -> None:
        cam_id = self.camera_combo.itemData(index)
        if cam_id:
            self.source.use_camera(cam_id)

    def start_camera(self) -> None:
        """Start the chosen (or remembered) camera, if any."""
        if self.source is None:
            return
        cam = self.camera_combo.currentData() or self.source.remembered_camera()
        if cam:
            self.source.use_camera(cam)

    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a video file", str(Path.home()),
                                              "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.mjpeg);;All files (*)")
        if path:
            self.source.use_file(path)

    def hideEvent(self, e) -> None:  # noqa: N802
        super().hideEvent(e)
        self.stop_recording()
        if self.source is not None:
            self.source.suspend()  # another tab: the camera is free for other apps

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        if self.source is not None:
            self.source.resume()
        if self.source is not None and not self.source.is_active():
            self.start_camera()

    # ---- classes --------------------------------------------------------------------------------
    def refresh_classes(self) -> None:
        text = self.class_combo.currentText()
        self.class_combo.clear()
        self.class_combo.addItems(list(self.classes_fn() or []))
        self.class_combo.setEditText(text)

    def current_class(self) -> str:
        return self.class_combo.currentText().strip()

    def _check_ready(self) -> Optional[tuple[Path, str]]:
        root = self.root_fn()
        if not root:
            self.message.setText("Choose a dataset folder first (an empty new folder is fine), then record.")
            return None
        cls = self.current_class()
        if not _valid_class(cls):
            self.message.setText("Type the class these photos show (a folder name: no / \\ : * ? \" < > |).")
            return None
        if self._latest is None:
            self.message.setText("No picture yet: choose a camera or a video file.")
            return None
        return Path(root), cls

    # ---- recording --------------------------------------------------------------------------------
    def start_recording(self) -> None:
        if self._check_ready() is None:
            return
        self.recording = True
        self.burst_count = 0
        self._last_save = -1e9
        self._save_latest()  # the first photo at once
        self._update_count()

    def stop_recording(self) -> None:
        if not self.recording:
            return
        self.recording = False
        self._finish_burst()

    def take_photo(self) -> Optional[Path]:
        ready = self._check_ready()
        if ready is None:
            return None
        self.burst_count = 0
        dest = self._save_latest()
        self._finish_burst()
        return dest

    def _finish_burst(self, note: str = "") -> None:
        n = self.burst_count
        cls = self.current_class()
        self._update_count()
        if n:
            folder = self.saved[-1].parent
            self.message.setText(note or f"Saved {n} photo{'s' if n != 1 else ''} of {cls} in {folder}.")
            self.photos_added.emit(cls, n)
        elif note:
            self.message.setText(note)

    def _save_latest(self) -> Optional[Path]:
        from ..core.errors import CatdogError
        from .camera_source import qimage_to_pil

        ready = self.root_fn(), self.current_class()
        stem = f"{ready[1]}-{time.strftime('%Y%m%d-%H%M%S')}-{len(self.saved) + 1:04d}"
        try:
            dest = save_photo(qimage_to_pil(self._latest), ready[0], ready[1], stem)
        except CatdogError as e:
            self.recording = False
            self.message.setText(f"Recording stopped: {e}.")
            return None
        self._last_save = self.clock()
        self.saved.append(dest)
        self.burst_count += 1
        return dest

    def _update_count(self) -> None:
        if self.recording:
            self.count_label.setText(f"Recording… {self.burst_count} photo{'s' if self.burst_count != 1 else ''}")
        elif self.saved:
            n = len(self.saved)
            self.count_label.setText(f"{n} photo{'s' if n != 1 else ''} saved")
        else:
            self.count_label.setText("")

    def _on_frame(self, img: QImage) -> None:
        self._latest = img
        if self.recording and self.clock() - self._last_save >= 1.0 / self.rate_spin.value() - 1e-3:
            self._save_latest()
            self._update_count()
        if self.isVisible():
            mirror = self.settings is not None and self.settings.get_bool(MIRROR_KEY, False)
            shown = mirrored(img) if mirror else img
            self.preview.setPixmap(QPixmap.fromImage(shown).scaled(
                self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))

    def _on_lost(self) -> None:
        was = self.recording
        self.recording = False
        if was:
            n = self.burst_count
            self._finish_burst(f"The camera was unplugged while recording: recording stopped. The {n} photo"
                               f"{'s' if n != 1 else ''} saved before it went are kept. Plug it back in and "
                               "choose it again to go on.")

    def shutdown(self) -> None:
        self.recording = False
        if self.source is not None:
            self.source.stop()
