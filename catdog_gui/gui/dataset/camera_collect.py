"""The Dataset tab's Camera panel: collect training photos from a camera or a video file, as
Teachable Machine does.

Pick the camera (every one Qt lists, hot-plug followed, the choice remembered), pick or type a
class, then "Hold to record" (a burst at the chosen rate, with a live count) or "Take one photo".
Each photo is a JPEG written atomically, with a unique name, into ``<dataset>/<class>/``
(``<dataset>/train/<class>/`` for a train/val layout), encoded and written in order by a
:class:`PhotoWriter` thread (the GUI thread only hands it the frame); when a burst's photos are
all written, ``photos_added(class, n)`` asks the Dataset tab to rescan, so the photos appear at once. An empty new folder works: name two
classes, record each, train.

If the camera goes away mid-recording, recording stops, what was saved stays, and the panel says
how many photos it kept.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from ..common.camera_source import MIRROR_KEY, fill_camera_combo, mirrored, multimedia_problem
from ..common.controls import choose_video_file, push_button

__all__ = ["CameraCollectPanel", "PhotoWriter", "save_photo"]


def save_photo(pil_image, root, cls: str, stem: str) -> Path:
    """Write ``pil_image`` as ``<root>/<cls>/<stem>.jpg`` (atomically, never overwriting), or where
    :func:`~catdog_gui.core.data.layouts.place_new` says a new photo goes in the dataset's layout."""
    from ...core.data.layouts import place_new
    from ...core.errors import CatdogError, DatasetError
    from ...core.storage.files import atomic_write, unique_path
    from ..common.camera_source import jpeg_bytes

    root = Path(root)
    if not root.is_dir():
        raise CatdogError(f"the dataset folder {root} does not exist (was it moved or unplugged?)")
    try:
        place = place_new(root, cls, f"{stem}.jpg")
    except DatasetError as e:
        raise CatdogError(str(e)) from None
    folder = place.parent
    data = jpeg_bytes(pil_image)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        dest = unique_path(place)
        atomic_write(dest, lambda f: f.write(data), durable=False)
    except OSError as e:
        raise CatdogError(f"could not save the photo into {folder}: {e.strerror or e}") from None
    return dest


def _valid_class(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not any(c in name for c in '/\\:*?"<>|') and not name.startswith(".")


class PhotoWriter(QObject):
    """Encodes and writes recorded frames as JPEGs on one worker thread, in the order they were
    taken. The GUI thread only queues a frame (a shallow QImage copy): encoding a 640x480 frame
    takes several milliseconds, too much to do on the GUI thread 30 times a second.

    ``finish()`` says "no more for now": the worker ends once everything queued is written, then
    ``drained`` is emitted. A photo that cannot be written (the folder gone, a full disk) stops the
    writer: ``failed(message)``, the photos queued after it are dropped, then ``drained``.
    """

    saved = Signal(object, str)  # (path, class), one per photo written
    failed = Signal(str)
    drained = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._task = None
        #: photos queued and neither written nor dropped yet
        self.queued = 0

    def put(self, image: QImage, root, cls: str, stem: str) -> None:
        self.queued += 1
        self._queue.put((QImage(image), Path(root), cls, stem))
        if self._task is None:
            self._start()

    def finish(self) -> None:
        if self._task is not None:
            self._queue.put(None)

    def busy(self) -> bool:
        return self._task is not None

    def _start(self) -> None:
        from ..common.workers import Task

        task = Task(self._work, self, name="photo-writer")
        task.partial.connect(self._on_saved)
        task.done.connect(self._on_done)
        task.failed.connect(self._on_failed)
        self._task = task
        task.start()

    def _work(self, state) -> None:  # on the worker thread
        from ..common.camera_source import qimage_to_pil

        while (item := self._queue.get()) is not None:
            image, root, cls, stem = item
            state.emit((save_photo(qimage_to_pil(image), root, cls, stem), cls))

    def _on_saved(self, item) -> None:
        self.queued -= 1
        self.saved.emit(*item)

    def _on_done(self, _result) -> None:
        self._task = None
        if self.queued:  # photos queued behind the end marker (a new burst began at once)
            self._start()
        else:
            self.drained.emit()

    def _on_failed(self, message: str) -> None:
        self._task = None
        while True:  # the worker has stopped: what it had not written yet is dropped
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self.queued = 0
        self.failed.emit(message)
        self.drained.emit()

    def shutdown(self) -> None:
        """Write what is queued, then end (closing the window loses no recorded photo)."""
        task = self._task
        self.finish()
        if task is not None:
            task.wait(10000)


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
        self.burst_count = 0  # photos taken in the current / last burst (written soon after)
        self.saved: list[Path] = []  # every photo this panel has written
        self._taken = 0  # photos handed to the writer (numbers the file names)
        self._written: list[tuple[Path, str]] = []  # written since the last report
        self._note = ""  # said when the writer is done (an unplugged camera, a failed write)
        self.writer = PhotoWriter(self)
        self.writer.saved.connect(self._on_saved)
        self.writer.failed.connect(self._on_write_failed)
        self.writer.drained.connect(self._report)
        self.clock = time.monotonic
        self._next_due = 0.0  # when recording takes its next photo (clock seconds)
        self._latest: Optional[QImage] = None
        self._build()
        problem = multimedia_problem()
        if problem:
            self._disable(problem)
            return
        from ..common.camera_source import FrameSource

        self.source = FrameSource(settings, self)
        self.source.frame.connect(self._on_frame)
        self.source.problem.connect(self._on_source_problem)
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
        self.video_button = push_button("Video file…", "Collect frames from a video file instead of a camera",
                                        self.choose_video, name="Use a video file")
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
        self.mirror_check = QCheckBox("Mirror")
        self.mirror_check.setAccessibleName("Mirror the preview")
        self.mirror_check.setToolTip("Show the picture as a mirror (front cameras). Saved photos are never mirrored.")
        self.mirror_check.setChecked(self.settings is not None and self.settings.get_bool(MIRROR_KEY, False))
        self.mirror_check.toggled.connect(self._on_mirror)
        top.addWidget(QLabel("Camera:"), 0, 0)
        top.addWidget(self.camera_combo, 0, 1)
        top.addWidget(self.video_button, 0, 2)
        top.addWidget(self.mirror_check, 0, 3)
        top.addWidget(QLabel("Class:"), 1, 0)
        top.addWidget(self.class_combo, 1, 1)
        top.addWidget(self.rate_spin, 1, 2)
        top.setColumnStretch(1, 1)  # the choices grow, their labels stay beside them
        lay.addLayout(top)

        self.preview = QLabel("No picture yet")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(240, 180)
        self.preview.setAccessibleName("Camera preview")
        lay.addWidget(self.preview, 1)

        row = QHBoxLayout()
        self.record_button = push_button("Hold to record", "Hold down to save photos of this class at the chosen rate",
                                         name="Hold to record", primary=True)
        self.record_button.pressed.connect(self.start_recording)
        self.record_button.released.connect(self.stop_recording)
        self.one_button = push_button("Take one photo", "Save the current picture as one photo of this class",
                                      self.take_photo, name="Take one photo")
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

    def _on_source_problem(self, text: str) -> None:
        """The camera (or video) failed: a burst in progress stops, and says what it kept."""
        if self.recording:
            self.recording = False
            n = self.burst_count
            self._note = (f"Recording stopped: {text} The {n} photo{'s' if n != 1 else ''} taken before that "
                          f"{'are' if n != 1 else 'is'} kept.")
            self._update_count()
            self.writer.finish()
        self._show_problem(text)

    def _on_mirror(self, on: bool) -> None:
        if self.settings is not None:
            self.settings.set(MIRROR_KEY, bool(on))  # the live page's setting too
        if self._latest is not None:
            self._on_frame(self._latest)

    # ---- sources ------------------------------------------------------------------------------
    def _fill_cameras(self) -> None:
        fill_camera_combo(self.camera_combo, self.source)

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
        path = choose_video_file(self)
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
        self._next_due = self.clock()
        self._save_latest()  # the first photo at once
        self._update_count()

    def stop_recording(self) -> None:
        if not self.recording:
            return
        self.recording = False
        self._update_count()
        self.writer.finish()

    def take_photo(self) -> bool:
        """Save the current picture as one photo (written in the background); False when it cannot
        be taken (the message says why)."""
        if self._check_ready() is None:
            return False
        self.burst_count = 0
        self._save_latest()
        self.writer.finish()
        return True

    def _save_latest(self) -> None:
        root, cls = self.root_fn(), self.current_class()
        self._taken += 1
        stem = f"{cls}-{time.strftime('%Y%m%d-%H%M%S')}-{self._taken:04d}"
        self.writer.put(self._latest, root, cls, stem)
        # the next photo is due one interval after this one was: a schedule, not "an interval after
        # the frame that happened to arrive", so frames a little early (camera jitter) still count
        now, step = self.clock(), 1.0 / self.rate_spin.value()
        self._next_due = self._next_due + step if now - self._next_due < step else now + step
        self.burst_count += 1

    def _on_saved(self, path: Path, cls: str) -> None:
        self.saved.append(path)
        self._written.append((path, cls))

    def _on_write_failed(self, message: str) -> None:
        self.recording = False
        n = len(self._written)
        kept = f" The {n} photo{'s' if n != 1 else ''} saved before that {'are' if n != 1 else 'is'} kept." if n else ""
        self._note = f"Recording stopped: {message}.{kept}"

    def _report(self) -> None:
        """Everything taken is written (or the writer stopped): say so and have the photos scanned."""
        written, self._written = self._written, []
        note, self._note = self._note, ""
        self._update_count()
        n = len(written)
        if n:
            path, cls = written[-1]
            self.message.setText(note or f"Saved {n} photo{'s' if n != 1 else ''} of {cls} in {path.parent}.")
            self.photos_added.emit(cls, n)
        elif note:
            self.message.setText(note)

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
        if self.recording and self.clock() >= self._next_due - 0.25 / self.rate_spin.value():
            self._save_latest()
            self._update_count()
        if self.isVisible():
            shown = mirrored(img) if self.mirror_check.isChecked() else img
            self.preview.setPixmap(QPixmap.fromImage(shown).scaled(
                self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))

    def _on_lost(self) -> None:
        if not self.recording:
            return
        self.recording = False
        n = self.burst_count
        self._note = (f"The camera was unplugged while recording: recording stopped. The {n} photo"
                      f"{'s' if n != 1 else ''} saved before it went are kept. Plug it back in and "
                      "choose it again to go on.")
        self._update_count()
        self.writer.finish()

    def shutdown(self) -> None:
        self.recording = False
        self.writer.shutdown()
        if self.source is not None:
            self.source.stop()
