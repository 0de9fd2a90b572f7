"""The Prediction tab: drop a photo in, get an answer you can trust.

A view of the app's :class:`~catdog_gui.gui.models.current_model.CurrentModel` (``PredictionTab(current)``):
it shows the model that answers (file, architecture, classes, validation accuracy and on how many
photos), classifies with it, and redraws when it changes; it never loads a model file itself
("Open model…" and a dropped ``.pt`` go to ``current.open``). Everything that touches the model or
decodes photos runs in a :class:`~catdog_gui.gui.common.workers.Task`, so the window never waits.

* **Photos**: drop files (also file URLs and raw image data from a browser), paste (Ctrl+V) or
  open them; each gets a :class:`~.result_card.ResultCard` with the picture, the answer, sorted
  probability bars, a low-confidence warning below the user's threshold, an optional Grad-CAM
  overlay, and "Wrong?" :mod:`~.feedback`. Each photo is decoded once for all of that
  (:mod:`~.classify`), on the Tasks of :class:`~.card_jobs.CardJobs`; the drop target and what a
  drop carries are :mod:`~.drop_area`.
* **Folder**: :class:`~.folder_mode.FolderPage`, every image of a folder in a sortable table, CSV export.
* **Camera**: :class:`~.camera_live.CameraLivePage`, made when first shown.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication, QCheckBox, QFileDialog, QFrame, QGridLayout, QHBoxLayout, QLabel, QSpinBox, QStyle, QTabWidget,
    QVBoxLayout, QWidget,
)

from ...core.data.imageio import IMAGE_EXTS, is_image_name
from ..common.controls import error_label, open_failed_text, push_button
from ..common.workers import Task
from .card_jobs import CardJobs
from .classify import ImageItem, ItemResult
from .drop_area import DropArea, acceptable, read_mime
from .feedback import Feedback
from .folder_mode import FolderPage
from .result_card import DEFAULT_THRESHOLD, ResultCard

MODEL_SUFFIX = ".pt"  # core.modelfile.SUFFIX (not imported: it would pull torch in)

__all__ = ["PredictionTab"]


class PredictionTab(QWidget):
    """Classify photos with the current model: single photos, folders, Grad-CAM, feedback."""

    status_message = Signal(str)
    results_ready = Signal()  # a batch of dropped/pasted photos has been classified (or its heat maps are in)
    batch_finished = Signal(int)  # number of images classified in folder mode
    feedback_added = Signal(str)  # path of a photo copied into the dataset
    #: (source, model input) of the photo just classified: the path or bytes, and the uint8 (3, S, S)
    #: array the model saw (the Network tab shows it without decoding the photo again)
    image_shown = Signal(object, object)

    _ids = itertools.count(1)

    def __init__(self, current, parent=None):
        super().__init__(parent)
        self.current = current
        self.cards: list[ResultCard] = []
        self.jobs = CardJobs(self)
        self.jobs.result.connect(self._on_item_result)
        self.jobs.failed.connect(lambda msg: self.status_message.emit(f"Classification failed: {msg}"))
        self.jobs.classified.connect(self._after_classify)
        self.jobs.cam.connect(self._on_cam)
        self.jobs.cams_done.connect(self.results_ready)
        self._columns = 0
        self.feedback = Feedback(current, self)
        self.feedback.status_message.connect(self.status_message)
        self.feedback.added.connect(self.feedback_added)
        self.setAcceptDrops(True)
        self._build()
        current.changed.connect(self._on_model_changed)
        current.failed.connect(self._on_model_failed)
        current.loading.connect(self._on_model_loading)
        self._update_model_panel()
        self._update_empty_state()

    # ---- the model (read from CurrentModel; never loaded here) ------------------------------
    @property
    def predictor(self):
        return self.current.predictor

    @property
    def model_path(self) -> Optional[str]:
        return self.current.path

    # ---- building -------------------------------------------------------------------------
    def _build(self) -> None:
        # model panel: always visible
        self.model_icon = QLabel()
        self.model_icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon).pixmap(32, 32))
        self.model_label = QLabel()
        self.model_label.setTextFormat(Qt.TextFormat.RichText)
        self.model_label.setWordWrap(True)
        self.model_label.setAccessibleName("Model in use")
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        open_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton)
        self.open_model_button = push_button(
            "Open model…", "Use another model file (.pt) saved by catdog-gui (Ctrl+Shift+O)", self.open_model_dialog,
            name="Open model file", icon=open_icon)
        self.model_error = error_label("Model error")
        panel = QFrame()
        panel.setObjectName("modelPanel")
        panel.setFrameShape(QFrame.Shape.StyledPanel)
        pl = QGridLayout(panel)
        pl.addWidget(self.model_icon, 0, 0, 2, 1, Qt.AlignmentFlag.AlignTop)
        pl.addWidget(self.model_label, 0, 1)
        pl.addWidget(self.open_model_button, 0, 2, Qt.AlignmentFlag.AlignTop)
        pl.addWidget(self.model_error, 1, 1, 1, 2)
        pl.setColumnStretch(1, 1)

        # photos page
        self.open_button = push_button(
            "Open photos…", "Choose one or more photos to classify (or drop them below)", self.open_images_dialog,
            name="Open photos", icon=open_icon, primary=True)
        self.paste_button = push_button("Paste", "Classify the image on the clipboard (Ctrl+V)", self.paste,
                                        name="Paste image")
        self.cam_check = QCheckBox("Show where it looked")
        self.cam_check.setToolTip("Overlay a Grad-CAM heat map: the parts of the photo that pushed the model "
                                  "towards its answer are red")
        self.cam_check.setAccessibleName("Show Grad-CAM heat map")
        self.cam_check.toggled.connect(self._on_cam_toggled)
        self.threshold_spin = QSpinBox()
        self.threshold_spin.setRange(50, 99)
        self.threshold_spin.setValue(DEFAULT_THRESHOLD)
        self.threshold_spin.setSuffix("%")
        self.threshold_spin.setToolTip("Answers less sure than this are marked \"Not sure\"")
        self.threshold_spin.setAccessibleName("Low-confidence threshold")
        self.threshold_spin.valueChanged.connect(self._on_threshold)
        self.unfamiliar_check = QCheckBox("Flag unfamiliar photos")
        self.unfamiliar_check.setChecked(True)
        self.unfamiliar_check.setToolTip(
            "Say \"Looks like neither …\" for photos unlike every photo the model was trained on (a car, a cup, "
            "a drawing), on the cards, the folder table and the camera. Models trained before this check "
            "existed cannot say it")
        self.unfamiliar_check.setAccessibleName("Flag photos unlike the training photos")
        self.unfamiliar_check.toggled.connect(self._on_flag_unfamiliar)
        thr_label = QLabel("Warn when less sure than")
        thr_label.setBuddy(self.threshold_spin)
        self.clear_button = push_button("Clear", "Remove all photos from the list", self.clear, name="Clear photos")
        bar = QHBoxLayout()
        bar.addWidget(self.open_button)
        bar.addWidget(self.paste_button)
        bar.addSpacing(16)
        bar.addWidget(self.cam_check)
        bar.addSpacing(16)
        bar.addWidget(thr_label)
        bar.addWidget(self.threshold_spin)
        bar.addSpacing(16)
        bar.addWidget(self.unfamiliar_check)
        bar.addStretch(1)
        bar.addWidget(self.clear_button)
        self.drop_area = DropArea()
        photos = QWidget()
        vl = QVBoxLayout(photos)
        vl.addLayout(bar)
        vl.addWidget(self.drop_area, 1)

        # folder page
        self.folder = FolderPage(self.current)
        self.folder.status_message.connect(self.status_message)
        self.folder.batch_finished.connect(self.batch_finished)

        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        self.pages.addTab(photos, "Photos")
        self.pages.addTab(self.folder, "Folder")
        self.pages.setTabToolTip(0, "Classify single photos: drop, paste or open them")
        self.pages.setTabToolTip(1, "Classify a whole folder and export the results")
        # camera page (camera_live.py): made when first shown, so Qt Multimedia loads only then
        self.camera_holder = QWidget()
        QVBoxLayout(self.camera_holder).setContentsMargins(0, 0, 0, 0)
        self.camera = None
        self.pages.addTab(self.camera_holder, "Camera")
        self.pages.setTabToolTip(2, "Classify what a camera (or a video file) shows, live")
        self.pages.currentChanged.connect(lambda i: self.camera_page() if self.pages.widget(i) is self.camera_holder else None)

        lay = QVBoxLayout(self)
        lay.addWidget(panel)
        lay.addWidget(self.pages, 1)

        self.paste_action = QAction("Paste image to classify", self)
        self.paste_action.setShortcut(QKeySequence.StandardKey.Paste)
        # active while the tab is visible (a hidden widget's window shortcuts do not fire)
        self.paste_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.paste_action.setToolTip("Classify the image on the clipboard")
        self.paste_action.triggered.connect(self.paste)
        self.addAction(self.paste_action)

    # ---- the model ------------------------------------------------------------------------
    def _on_model_changed(self, predictor) -> None:
        self.model_error.hide()
        self._update_model_panel()
        self._update_empty_state()
        self.jobs.discard()  # answers from the previous model must not land
        if self.cards:
            if predictor is None:
                for c in self.cards:
                    c.set_waiting("Waiting for a model…")
            else:
                self._classify([c.item for c in self.cards])

    def _on_model_loading(self, _path: str) -> None:
        self.model_error.hide()

    def _on_model_failed(self, path: str, msg: str) -> None:
        if self.current.predictor is not None:
            keep = f" Still using {self.current.file_name}."
        else:
            keep = " No model is loaded: train one in the Training tab, or open another model file."
        self.model_error.setText(open_failed_text(path, msg, keep))
        self.model_error.show()

    def _update_model_panel(self) -> None:
        info = self.current.info
        if info is None:
            self.model_label.setText(
                "<b>No model loaded.</b> Train one in the <b>Training</b> tab (it is used here as soon as it is "
                "saved), or open a model file with <b>Open model…</b> (Ctrl+Shift+O).")
            self.model_label.setToolTip("")
            return
        m = info.metrics
        acc, n_val = m.get("val_accuracy"), m.get("n_val")
        if isinstance(acc, (int, float)):
            from ...core.inference.evaluation import measured_on

            measured = f" ({measured_on(int(n_val), bool(m.get('val_seen_in_training')))})" if n_val else ""
            acc_text = f"Validation accuracy <b>{acc * 100:.1f}%</b>{measured}"
        else:
            acc_text = "No validation accuracy stored in this file"
        classes = ", ".join(info.classes)
        self.model_label.setText(
            f"<b>{self.current.file_name}</b> &nbsp;·&nbsp; {self.current.title} &nbsp;·&nbsp; "
            f"{info.image_size}×{info.image_size} input<br>Classes: <b>{classes}</b> &nbsp;·&nbsp; {acc_text}")
        created = info.meta.get("created", "")
        path = self.current.path
        self.model_label.setToolTip(f"{path}\nsaved {created}" if created else str(path))

    def _update_empty_state(self) -> None:
        self.drop_area.show_model(self.current.file_name, self.current.classes)

    def open_model_dialog(self) -> None:
        start = str(Path(self.current.path).parent) if self.current.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start,
                                              f"catdog-gui models (*{MODEL_SUFFIX});;All files (*)")
        if path:
            self.current.open(path)

    # ---- the camera and feedback ------------------------------------------------------------
    def camera_page(self):
        """The Camera page (:class:`~.camera_live.CameraLivePage`), made on first use."""
        if self.camera is None:
            from .camera_live import CameraLivePage

            self.camera = CameraLivePage(self.current, self.feedback, getattr(self, "settings", None))  # set by the window
            self.camera.flag_unfamiliar = self.unfamiliar_check.isChecked()
            self.camera.status_message.connect(self.status_message)
            self.camera.classify_requested.connect(self.classify_data)
            self.camera_holder.layout().addWidget(self.camera)
        return self.camera

    def set_dataset_root(self, path: Optional[str]) -> None:
        """The dataset "Wrong?" copies photos into (the Dataset tab's)."""
        self.feedback.set_dataset_root(path)

    # ---- classifying photos -----------------------------------------------------------------
    def classify_paths(self, paths: list[str]) -> None:
        """Classify files: images get cards, a model file is opened, a folder goes to folder mode."""
        items = []
        for p in paths:
            p = str(p)
            if Path(p).is_dir():
                self.classify_folder(p)
                continue
            if p.lower().endswith(MODEL_SUFFIX) and not is_image_name(p):
                self.current.open(p)
                continue
            items.append(ImageItem(next(self._ids), Path(p).name, path=p))
        self._add_items(items)

    def classify_data(self, data: bytes, name: str = "pasted image") -> None:
        self._add_items([ImageItem(next(self._ids), name, data=bytes(data))])

    def classify_folder(self, folder: str) -> None:
        """Classify every image of ``folder`` on the Folder page."""
        self.pages.setCurrentWidget(self.folder)
        self.folder.classify_folder(folder)

    def _add_items(self, items: list[ImageItem]) -> None:
        if not items:
            return
        self.pages.setCurrentIndex(0)
        for item in items:
            card = ResultCard(item)
            card.set_threshold(self.threshold_spin.value() / 100)
            card.set_show_cam(self.cam_check.isChecked())
            card.set_flag_unfamiliar(self.unfamiliar_check.isChecked())
            card.feedback_requested.connect(self.feedback.give)
            card.cam_requested.connect(lambda _c: self._compute_missing_cams())
            card.remove_requested.connect(self._remove_card)
            card.message.linkActivated.connect(lambda link, c=card: self.feedback.on_card_link(c, link))
            self.cards.insert(0, card)
        self._relayout()
        self.drop_area.stack.setCurrentIndex(1)
        self.drop_area.scroll.verticalScrollBar().setValue(0)
        if self.current.predictor is None:
            for item in items:
                self._card(item.id).set_waiting("Waiting for a model…")
            self.status_message.emit("Open or train a model to classify these photos")
            return
        self._classify(items)

    def _classify(self, items: list[ImageItem]) -> None:
        for item in items:
            card = self._card(item.id)
            if card is not None:
                card.set_waiting("Classifying…")
        self.jobs.classify(self.current.predictor, items, self.cam_check.isChecked())

    def _after_classify(self) -> None:
        if any(c.show_cam and c.needs_cam() for c in self.cards):
            self._compute_missing_cams()  # e.g. photos re-classified by a new model
        self.results_ready.emit()

    def _card(self, item_id: int) -> Optional[ResultCard]:
        return next((c for c in self.cards if c.item.id == item_id), None)

    def _on_item_result(self, res: ItemResult) -> None:
        card = self._card(res.item_id)
        if card is None or self.current.predictor is None:
            return
        card.set_result(res, self.current.classes)
        if res.error:
            self.status_message.emit(res.error)
        else:
            self.status_message.emit(f"{card.item.name}: {res.prediction.describe()}")
            if card is self.cards[0]:  # the newest photo
                self.image_shown.emit(card.item.source, res.model_input)

    def _remove_card(self, card: ResultCard) -> None:
        if card in self.cards:
            self.cards.remove(card)
            self.drop_area.grid.removeWidget(card)
            card.deleteLater()
            self._relayout()
        if not self.cards:
            self.drop_area.stack.setCurrentIndex(0)

    def clear(self) -> None:
        self.jobs.discard_classification()
        for card in list(self.cards):
            self._remove_card(card)

    def _relayout(self) -> None:
        grid = self.drop_area.grid
        cols = self._column_count()
        self._columns = cols
        while grid.count():
            grid.takeAt(0)
        for i, card in enumerate(self.cards):
            grid.addWidget(card, i // cols, i % cols)
        for c in range(3):
            grid.setColumnStretch(c, 1 if c < cols else 0)

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        if self._column_count() != self._columns:
            self._relayout()

    def _column_count(self) -> int:
        # the drop area is visible whenever the photos page is (the scroll area may not be laid out yet)
        width = self.drop_area.width() - 40
        return max(1, min(3, width // 520))

    # ---- the unfamiliar-photo setting (kept in the window's settings, which set it here) ---------
    @property
    def settings(self):
        return getattr(self, "_settings", None)

    @settings.setter
    def settings(self, settings) -> None:
        from ..settings import FLAG_UNFAMILIAR_KEY

        self._settings = settings
        if settings is not None:
            self.unfamiliar_check.setChecked(settings.get_bool(FLAG_UNFAMILIAR_KEY, True))

    def _on_flag_unfamiliar(self, on: bool) -> None:
        from ..settings import FLAG_UNFAMILIAR_KEY

        for c in self.cards:
            c.set_flag_unfamiliar(on)
        self.folder.set_flag_unfamiliar(on)
        if self.camera is not None:
            self.camera.flag_unfamiliar = on
        if self.settings is not None:
            self.settings.set(FLAG_UNFAMILIAR_KEY, bool(on))

    def _on_threshold(self, value: int) -> None:
        for c in self.cards:
            c.set_threshold(value / 100)
        self.folder.set_threshold(value / 100)

    # ---- Grad-CAM ---------------------------------------------------------------------------
    def _on_cam_toggled(self, on: bool) -> None:
        for c in self.cards:
            c.set_show_cam(on)
        if on:
            self._compute_missing_cams()

    def _compute_missing_cams(self) -> None:
        predictor = self.current.predictor
        if predictor is None:
            return
        # only answers of the current model (a card still being re-classified waits for its new answer)
        todo = [c.result for c in self.cards
                if c.show_cam and c.needs_cam() and c.result.predictor is predictor]
        if todo:
            self.jobs.compute_cams(predictor, todo)

    def _on_cam(self, item_id: int, picture, error) -> None:
        card = self._card(item_id)
        if card is not None:
            card.set_cam(picture, error)

    # ---- input: drops, paste, dialogs -------------------------------------------------------
    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if acceptable(e.mimeData()):
            e.acceptProposedAction()
            self.drop_area.set_dragging(True)
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:  # noqa: N802
        if acceptable(e.mimeData()):
            e.acceptProposedAction()

    def dragLeaveEvent(self, e) -> None:  # noqa: N802
        self.drop_area.set_dragging(False)

    def dropEvent(self, e) -> None:  # noqa: N802
        self.drop_area.set_dragging(False)
        if self.handle_mime_data(e.mimeData()):
            e.acceptProposedAction()
        else:
            e.ignore()

    def handle_mime_data(self, mime: QMimeData) -> bool:
        """Drops and pastes: local files/folders/model files, raw image data, or a file path as text."""
        dropped = read_mime(mime)
        if dropped.paths:
            self.classify_paths(dropped.paths)
            return True
        if dropped.data is not None:
            self.classify_data(dropped.data, dropped.name)
            return True
        if dropped.remote:
            self.status_message.emit(
                "Only files on this computer can be classified: save the picture first, then drop the file")
            return False
        self.status_message.emit("The clipboard holds no image or image file")
        return False

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None or not self.handle_mime_data(mime):
            self.status_message.emit("The clipboard holds no image: copy a picture or an image file first")

    def open_images_dialog(self) -> None:
        exts = " ".join(f"*{e}" for e in sorted(IMAGE_EXTS))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open photos", "", f"Images ({exts});;All files (*)")
        if paths:
            self.classify_paths(paths)

    # ---- tasks ------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        """Whether a job of this tab (photos, heat maps, a folder) is still running."""
        return any(t.is_running() for t in self.findChildren(Task))  # recursive: the Folder page's too

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop every background job and wait for it (call before the window goes away)."""
        if self.camera is not None:
            self.camera.shutdown(timeout_ms)
        self.folder.shutdown(timeout_ms)
        self.jobs.shutdown(timeout_ms)
        Task.shutdown_all(self, timeout_ms)

    def keyPressEvent(self, e) -> None:  # noqa: N802
        # Esc stops a folder run (a plain key handler: the Training tab owns the Esc shortcut)
        if e.key() == Qt.Key.Key_Escape and self.folder.is_running():
            self.folder.cancel()
            e.accept()
            return
        super().keyPressEvent(e)

    def closeEvent(self, e) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(e)
