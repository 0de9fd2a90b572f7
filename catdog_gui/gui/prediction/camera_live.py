"""The Prediction tab's Camera page: the feed, with the current model's answer and probability bars
drawn over it, as Lobe and Teachable Machine preview a model.

* Inference runs on a :class:`~catdog_gui.gui.common.workers.Task` holding :func:`model_lock`; at most one
  prediction is in flight. A frame that arrives while one runs is DROPPED (``dropped`` counts them),
  never queued, so the answer never falls behind the picture and the GUI thread only copies pixels.
* Pause freezes the picture (and its answer); "Save this frame" classifies it on the Photos page
  or adds it to a class of the dataset (the same rules as "Wrong?":
  :func:`~catdog_gui.core.storage.files.add_to_dataset`).
* Mirror the preview (front cameras, a setting); what is classified and saved is the true image.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QMenu, QPushButton,
                               QSizePolicy, QVBoxLayout, QWidget)

from ..common.camera_source import MIRROR_KEY, fill_camera_combo, mirrored, multimedia_problem
from ..common.controls import choose_video_file, push_button
from ..common.workers import Task
from ...core.text import probability_text

__all__ = ["CameraLivePage"]


class CameraLivePage(QWidget):
    """See the module docstring."""

    prediction_shown = Signal(object)  # a core.inference.Prediction, once it is on screen
    classify_requested = Signal(bytes, str)  # (encoded frame, name): classify on the Photos page
    status_message = Signal(str)

    def __init__(self, current, feedback=None, settings=None, parent=None):
        super().__init__(parent)
        self.current = current
        self.feedback = feedback
        self.settings = settings
        #: say "neither ..." for frames unlike the training photos (the tab's setting)
        self.flag_unfamiliar = True
        self.source = None
        self.paused = False
        self.predicted = 0  # frames classified
        self.dropped = 0  # frames that arrived while a prediction ran
        self.frames = 0
        self.prediction = None  # the answer on screen
        self._frame: Optional[QImage] = None  # the picture on screen (true orientation)
        self._answered: Optional[QImage] = None  # the frame the answer is for
        self._task: Optional[Task] = None
        self._build()
        current.changed.connect(self._on_model_changed)
        problem = multimedia_problem()
        if problem:
            for w in (self.camera_combo, self.video_button, self.pause_button, self.save_button):
                w.setEnabled(False)
            self.message.setText(problem)
            return
        from ..common.camera_source import FrameSource

        self.source = FrameSource(settings, self)
        self.source.frame.connect(self.on_frame)
        self.source.problem.connect(self.message.setText)
        self.source.devices_changed.connect(self._fill_cameras)
        self.source.started.connect(self._on_started)
        self._fill_cameras()
        if not self.source.devices:
            self.message.setText("No camera found. Plug one in (it appears here by itself), or "
                                 "<a href='video'>classify a video file…</a>")

    # ---- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.camera_combo = QComboBox()
        self.camera_combo.setAccessibleName("Camera")
        self.camera_combo.setToolTip("The camera to classify live (every camera plugged in; remembered)")
        self.camera_combo.activated.connect(
            lambda i: self.source.use_camera(self.camera_combo.itemData(i)) if self.camera_combo.itemData(i) else None)
        self.video_button = push_button("Video file…", "Classify a video file live instead of a camera",
                                        self.choose_video, name="Classify a video file")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setAccessibleName("Pause")
        self.pause_button.setToolTip("Freeze the picture and its answer (Space)")
        self.pause_button.setShortcut(Qt.Key.Key_Space)
        self.pause_button.toggled.connect(self.set_paused)
        self.mirror_check = QCheckBox("Mirror")
        self.mirror_check.setAccessibleName("Mirror the preview")
        self.mirror_check.setToolTip("Show the picture as a mirror (front cameras). Saved frames are never mirrored.")
        if self.settings is not None:
            self.mirror_check.setChecked(self.settings.get_bool(MIRROR_KEY, False))
        self.mirror_check.toggled.connect(self._on_mirror)
        self.save_button = push_button("Save this frame", "Classify this frame on the Photos page, or add it to a "
                                       "class of the dataset", name="Save this frame")
        self.save_menu = QMenu(self)
        self.save_menu.aboutToShow.connect(self._fill_save_menu)
        self.save_button.setMenu(self.save_menu)
        for w in (QLabel("Camera:"), self.camera_combo, self.video_button, self.pause_button, self.mirror_check):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.save_button)
        lay.addLayout(bar)
        self.view = QLabel("No picture yet")
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setMinimumSize(320, 240)
        self.view.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.view.setAccessibleName("Live camera picture")
        lay.addWidget(self.view, 1)
        self.answer_label = QLabel("")
        self.answer_label.setAccessibleName("Live answer")
        self.rate_label = QLabel("")
        self.rate_label.setAccessibleName("Frames classified and dropped")
        row = QHBoxLayout()
        row.addWidget(self.answer_label, 1)
        row.addWidget(self.rate_label)
        lay.addLayout(row)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Camera message")
        self.message.linkActivated.connect(lambda _l: self.choose_video())
        lay.addWidget(self.message)

    def _fill_cameras(self) -> None:
        fill_camera_combo(self.camera_combo, self.source)

    def _on_started(self, _name: str) -> None:
        if self.source.camera_id and self.settings is not None and not self.settings.q.contains(MIRROR_KEY):
            self.mirror_check.setChecked(self.source.is_front())  # default for a camera facing the user

    def choose_video(self) -> None:
        path = choose_video_file(self)
        if path and self.source is not None:
            self.source.use_file(path)

    def hideEvent(self, e) -> None:  # noqa: N802
        super().hideEvent(e)
        if self.source is not None:
            self.source.suspend()  # another tab: the camera is free for other apps, nothing is classified

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        if self.source is not None:
            self.source.resume()
        if self.source is not None and not self.source.is_active():
            cam = self.camera_combo.currentData() or self.source.remembered_camera()
            if cam:
                self.source.use_camera(cam)

    # ---- frames ---------------------------------------------------------------------------------
    def on_frame(self, img: QImage) -> None:
        """A new frame (GUI thread): show it; classify it unless a prediction is already running."""
        if self.paused:
            return
        self.frames += 1
        self._frame = img
        self._redraw()
        predictor = self.current.predictor
        if predictor is None:
            self.answer_label.setText("No model open: open or train one to see its answer here.")
            return
        if self._task is not None:
            self.dropped += 1  # never queued: the next free frame gets the model
            self._update_rate()
            return
        from ..common.camera_source import qimage_to_pil
        from ..models.current_model import model_lock

        pil = qimage_to_pil(img)  # a copy the worker owns

        def work(_state):
            with model_lock(predictor):
                return predictor.predict(pil, name="camera frame")

        task = self._task = Task(work, self, "live prediction")
        task.done.connect(lambda p, img=img: self._on_prediction(p, img))
        task.failed.connect(lambda msg: self.answer_label.setText(f"Could not classify the frame: {msg}"))
        task.finished.connect(lambda t=task: self._task_finished(t))
        task.start()

    def _task_finished(self, task: Task) -> None:
        if self._task is task:
            self._task = None

    def _on_prediction(self, prediction, img: QImage) -> None:
        if self.paused:
            return
        self.predicted += 1
        self.prediction = prediction
        self._answered = img
        label, p = prediction.probabilities[0]
        if prediction.unfamiliar and self.flag_unfamiliar:
            from ...core.inference.unfamiliar import short_verdict

            self.answer_label.setText(f"{short_verdict(sorted(c for c, _ in prediction.probabilities))} Unlike the "
                                      f"photos the model was trained on (its answer: {label} {probability_text(p)})")
        else:
            self.answer_label.setText(f"{label} {probability_text(p)}")
        self._update_rate()
        self._redraw()
        self.prediction_shown.emit(prediction)

    def _update_rate(self) -> None:
        self.rate_label.setText(f"{self.predicted} classified, {self.dropped} skipped while the model was busy")

    def _on_model_changed(self, _predictor) -> None:
        if self._task is not None:
            self._task.discard()  # an answer from the previous model never shows
            self._task = None
        self.prediction = None
        self.answer_label.setText("")
        self._redraw()

    def set_paused(self, on: bool) -> None:
        self.paused = bool(on)
        self.pause_button.setText("Resume" if on else "Pause")
        if self.pause_button.isChecked() != self.paused:
            self.pause_button.setChecked(self.paused)
        if on and self._answered is not None:
            self._frame = self._answered  # freeze the picture the answer is for
            self._redraw()

    def _on_mirror(self, on: bool) -> None:
        if self.settings is not None:
            self.settings.set(MIRROR_KEY, bool(on))
        self._redraw()

    # ---- drawing --------------------------------------------------------------------------------
    def _redraw(self) -> None:
        if self._frame is None or not self.isVisible():
            return
        img = mirrored(self._frame) if self.mirror_check.isChecked() else self._frame
        pix = QPixmap.fromImage(img).scaled(self.view.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.FastTransformation)
        if self.prediction is not None and not pix.isNull():
            self._draw_bars(pix, self.prediction)
        self.view.setPixmap(pix)

    def _draw_bars(self, pix: QPixmap, prediction) -> None:
        """The answer and sorted, labelled probability bars over the bottom of the picture."""
        p = QPainter(pix)
        rows = prediction.probabilities[:5]
        h = 22
        top = pix.height() - h * len(rows) - 8
        p.fillRect(QRectF(0, top - 4, pix.width(), pix.height() - top + 4), QColor(0, 0, 0, 140))
        width = pix.width() - 16
        if prediction.unfamiliar and self.flag_unfamiliar:
            from ...core.inference.unfamiliar import short_verdict

            p.fillRect(QRectF(0, top - 4 - h, pix.width(), h), QColor(179, 89, 0, 220))
            p.setPen(QColor("white"))
            p.drawText(QRectF(12, top - 4 - h, width - 8, h), Qt.AlignmentFlag.AlignVCenter,
                       f"{short_verdict(sorted(c for c, _ in prediction.probabilities))} Unlike the training photos")
        for i, (cls, prob) in enumerate(rows):
            y = top + i * h
            p.fillRect(QRectF(8, y + 3, width * prob, h - 6), QColor(70, 140, 230, 220) if i == 0 else QColor(150, 150, 150, 200))
            p.setPen(QColor("white"))
            p.drawText(QRectF(12, y, width - 8, h), Qt.AlignmentFlag.AlignVCenter, f"{cls}  {probability_text(prob)}")
        p.end()

    # ---- saving ---------------------------------------------------------------------------------
    def frame_image(self):
        """The frame on screen as an RGB PIL image, true orientation (never mirrored), or None."""
        from ..common.camera_source import qimage_to_pil

        img = self._answered if self.paused and self._answered is not None else self._frame
        return qimage_to_pil(img) if img is not None else None

    def _frame_bytes(self) -> Optional[bytes]:
        from ..common.camera_source import jpeg_bytes

        im = self.frame_image()
        return jpeg_bytes(im, 95) if im is not None else None

    def _fill_save_menu(self) -> None:
        m = self.save_menu
        m.clear()
        m.addAction("Classify on the Photos page", self.classify_frame)
        classes = self.current.classes
        if classes:
            sub = m.addMenu("Add to the dataset as…")
            for cls in classes:
                sub.addAction(cls, lambda c=cls: self.add_frame(c))

    def classify_frame(self) -> None:
        data = self._frame_bytes()
        if data is not None:
            self.classify_requested.emit(data, time.strftime("camera-%Y%m%d-%H%M%S.jpg"))

    def add_frame(self, cls: str) -> Optional[Path]:
        """Add the frame on screen to the dataset as a photo of ``cls`` ("Wrong?" rules)."""
        from ...core.errors import CatdogError
        from ...core.storage.files import add_to_dataset

        data = self._frame_bytes()
        if data is None:
            self.message.setText("No frame to save yet.")
            return None
        root = self.feedback.root()[0] if self.feedback is not None else None
        if root is None:
            self.message.setText("Which dataset should this frame go to? Open your dataset in the Dataset tab first.")
            return None
        try:
            dest, msg = add_to_dataset(data, root, cls)
        except CatdogError as e:
            self.message.setText(f"Not added: {e}")
            return None
        self.message.setText(msg)
        self.status_message.emit(msg)
        if self.feedback is not None:
            self.feedback.added.emit(str(dest))
        return dest

    def shutdown(self, timeout_ms: int = 5000) -> None:
        if self.source is not None:
            self.source.stop()
        self._task = None
        Task.shutdown_all(self, timeout_ms)
