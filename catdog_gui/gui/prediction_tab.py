"""The Prediction tab: drop a photo in, get an answer you can trust.

Built around a :class:`~catdog_gui.core.inference.Predictor`. Everything that touches the model or
decodes photos runs in a :class:`~catdog_gui.gui.workers.Task` (model loading, single photos, the
Grad-CAM overlay, folder batches), so the window never waits on the network.

* **Photos**: drop files (also file URLs and raw image data from a browser), paste (Ctrl+V) or
  open them; each gets a card with the picture, the answer, sorted probability bars, a
  low-confidence warning below the user's threshold, an optional Grad-CAM overlay, and "Wrong?"
  feedback that copies the photo into the dataset's class folder (never moving or overwriting).
* **Folder**: classify every image of a folder in the background (progress, cancel), a sortable
  table with thumbnails, CSV export (atomic write).

The model that answers (file, architecture, classes, validation accuracy and on how many photos)
is always visible at the top. A model file that cannot be opened leaves the previous one active.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, QRectF, QSize, QSortFilterProxyModel, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction, QColor, QDesktopServices, QImage, QKeySequence, QPainter, QPalette, QPixmap, QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView, QApplication, QCheckBox, QFileDialog, QFrame, QGridLayout, QHBoxLayout, QHeaderView,
    QLabel, QMenu, QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSpinBox, QStackedWidget, QStyle,
    QTableView, QTabWidget, QToolButton, QVBoxLayout, QWidget,
)

from ..core.errors import CatdogError, ImageError
from ..core.imageio import IMAGE_EXTS, is_image_name, load_rgb, to_square
from ..core.modelfile import SUFFIX as MODEL_SUFFIX
from ..core.modelfile import atomic_write
from .style import colors
from .widgets import file_url, shown_path
from .workers import Task, TaskState

#: longest side of the picture shown on a card (pixels, before high-DPI scaling)
DISPLAY_SIZE = 480
THUMB_SIZE = 48
CARD_PICTURE = QSize(200, 170)
DEFAULT_THRESHOLD = 70  # percent


# ------------------------------------------------------------------------------------------------
# plain helpers (no widgets): also used by tests


@dataclass
class ImageItem:
    """One photo to classify: a file, or raw bytes (pasted or dropped from a browser)."""

    id: int
    name: str
    path: Optional[str] = None
    data: Optional[bytes] = None

    @property
    def source(self):
        return self.path if self.path is not None else self.data


@dataclass
class ItemResult:
    item_id: int
    prediction: object = None  # core.inference.Prediction
    error: Optional[str] = None
    picture: Optional[QImage] = None  # the photo, aspect kept
    cam_picture: Optional[QImage] = None  # Grad-CAM over the centre square the model saw
    cam_error: Optional[str] = None


def _qimage(rgb: np.ndarray) -> QImage:
    """uint8 (H, W, 3) -> QImage (a deep copy: safe to create on a worker thread)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _display_picture(source, size: int = DISPLAY_SIZE) -> tuple[QImage, np.ndarray]:
    """(picture with its aspect kept, the centre square the model sees) at display resolution."""
    im = load_rgb(source, draft_size=size)
    im.thumbnail((size, size))
    square = np.asarray(to_square(im, min(im.size)), dtype=np.uint8)
    return _qimage(np.asarray(im)), square


def _cam_picture(predictor, source, label: str, square: Optional[np.ndarray]) -> QImage:
    from ..core.gradcam import grad_cam, overlay

    arr = np.array(predictor.preprocess(source))  # a writable copy: torch warns about read-only arrays
    cam = grad_cam(predictor.model, predictor.to_input(arr), predictor.classes.index(label))
    base = square if square is not None else arr.transpose(1, 2, 0)
    return _qimage(overlay(base, cam))


def classify_item(predictor, item: ImageItem, want_cam: bool) -> ItemResult:
    """Prediction, display picture and (optionally) Grad-CAM for one photo. Never raises for bad photos."""
    # predict_many stacks the image into a fresh (writable) array; Predictor.predict hands torch the
    # read-only array PIL gives, which makes torch warn. Same decoding and numbers either way.
    (pred,) = predictor.predict_many([item.source], batch_size=1)
    if not pred.ok:
        return ItemResult(item.id, error=pred.error)
    pred = replace(pred, source=item.path if item.path is not None else item.name)
    res = ItemResult(item.id, prediction=pred)
    square = None
    try:
        res.picture, square = _display_picture(item.source)
    except ImageError:
        pass
    if want_cam:
        try:
            res.cam_picture = _cam_picture(predictor, item.source, pred.label, square)
        except CatdogError as e:
            res.cam_error = str(e)
    return res


def list_images(folder: Path, cancel=None) -> tuple[list[Path], int]:
    """Image files below ``folder`` (sorted, hidden skipped) and how many other files were ignored."""
    images, others = [], 0
    for dirpath, dirnames, filenames in os.walk(folder):
        if cancel is not None and cancel.is_set():
            break
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.startswith("."):
                continue
            if is_image_name(f):
                images.append(Path(dirpath) / f)
            else:
                others += 1
    return images, others


def _thumbnail(path: Path) -> Optional[QImage]:
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


def _unique(path: Path) -> Path:
    if not path.exists():
        return path
    for i in itertools.count(2):
        cand = path.with_name(f"{path.stem}_{i}{path.suffix}")
        if not cand.exists():
            return cand
    raise AssertionError  # unreachable


def _image_suffix(item: ImageItem) -> str:
    if item.path is not None and is_image_name(item.path):
        return Path(item.path).suffix
    try:
        from PIL import Image

        src = item.path if item.path is not None else io.BytesIO(item.data)
        with Image.open(src) as im:
            fmt = (im.format or "png").lower()
    except Exception:
        fmt = "png"
    ext = {"jpeg": ".jpg", "tiff": ".tif"}.get(fmt, f".{fmt}")
    return ext if ext in IMAGE_EXTS else ".png"


def add_to_dataset(item: ImageItem, dataset_root: Path, cls: str) -> tuple[Path, str]:
    """Copy a photo into ``dataset_root`` as an example of ``cls``; return (new file, message).

    Never moves or overwrites: an existing name gets a ``_2``, ``_3``... suffix. Class-per-folder
    datasets get the copy in ``<root>/<cls>/`` (or ``<root>/train/<cls>/``); datasets that take the
    class from the file name (``cat.1.jpg``) get it next to the others, named ``<cls>.<name>``.
    """
    from ..core.data import class_from_name, split_layout

    root = Path(dataset_root).expanduser()
    if not root.is_dir():
        raise CatdogError(f"the dataset folder {root} does not exist (was it moved or unplugged?)")
    train, _val = split_layout(root)
    subdirs = [d for d in train.iterdir() if d.is_dir() and not d.name.startswith(".")]
    flat = not subdirs and any(
        f.is_file() and is_image_name(f) and class_from_name(f.name) for f in train.iterdir()
    )
    stem = Path(item.name).stem if item.path is not None else time.strftime("pasted-%Y%m%d-%H%M%S")
    suffix = _image_suffix(item)
    if flat:
        folder = train
        name = f"{cls}.{stem}{suffix}"
        how = (f"This dataset takes the class from the file name, so the copy is called {name} "
               f"in {folder}.")
    else:
        match = [d for d in subdirs if d.name == cls] or [d for d in subdirs if d.name.lower() == cls.lower()]
        folder = match[0] if match else train / cls
        name = f"{stem}{suffix}"
        how = f"Copied into {folder}."
    try:
        folder.mkdir(parents=True, exist_ok=True)
        dest = _unique(folder / name)
        if item.path is not None:
            shutil.copy2(item.path, dest)  # fails rather than overwrite: dest did not exist
        else:
            atomic_write(dest, lambda f: f.write(item.data))
    except OSError as e:
        raise CatdogError(f"could not copy the photo into {folder}: {e.strerror or e}") from None
    msg = how.replace(f"{folder / name}", str(dest)) if dest.name == name else f"{how} (as {dest.name}: the name was taken)"
    if item.path is not None:
        try:
            inside = Path(item.path).resolve().is_relative_to(root.resolve())
        except OSError:
            inside = False
        if inside:
            msg += (" The original is still in the dataset under its old class: remove it there, or the "
                    "dataset holds the same photo under two classes.")
    return dest, msg + " Continue training to learn from it."


def write_predictions_csv(path: Path, predictions, classes: list[str]) -> int:
    """One row per readable image: file, class, confidence, then one probability column per class."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "class", "confidence", *[f"p_{c}" for c in classes]])
    n = 0
    for p in predictions:
        if not p.ok:
            continue
        probs = dict(p.probabilities)
        w.writerow([p.source, p.label, f"{p.confidence:.6f}", *[f"{probs.get(c, 0.0):.6f}" for c in classes]])
        n += 1
    atomic_write(path, lambda f: f.write(buf.getvalue().encode("utf-8")))
    return n


def _pct(p: float) -> str:
    return f"{p * 100:.1f}%"


# ------------------------------------------------------------------------------------------------
# small widgets


class ProbBar(QWidget):
    """A labelled probability bar: class name, bar, percentage."""

    def __init__(self, cls: str, p: float, top: bool, parent=None):
        super().__init__(parent)
        self.cls, self.p, self.top = cls, p, top
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName(f"{cls}: {_pct(p)}")
        self.setToolTip(f"The model gives {_pct(p)} to {cls}")

    def sizeHint(self) -> QSize:
        return QSize(240, 22)

    def paintEvent(self, _e) -> None:
        pal = self.palette()
        qp = QPainter(self)
        qp.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = self.fontMetrics()
        label_w = min(max(fm.horizontalAdvance(self.cls) + 12, 70), 140)
        pct_w = fm.horizontalAdvance("100.0%") + 10
        r = self.rect()
        bar = QRectF(label_w, 3, max(r.width() - label_w - pct_w, 10), r.height() - 6)
        qp.setPen(pal.color(QPalette.ColorRole.WindowText))
        f = qp.font()
        f.setBold(self.top)
        qp.setFont(f)
        qp.drawText(QRectF(0, 0, label_w - 6, r.height()), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                    fm.elidedText(self.cls, Qt.TextElideMode.ElideRight, label_w - 8))
        qp.drawText(QRectF(r.width() - pct_w, 0, pct_w, r.height()),
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, _pct(self.p))
        qp.setPen(Qt.PenStyle.NoPen)
        track = QColor(pal.color(QPalette.ColorRole.Mid))
        track.setAlpha(70)
        qp.setBrush(track)
        qp.drawRoundedRect(bar, 4, 4)
        fill = QColor(colors()["accent"] if self.top else colors()["batch"])
        qp.setBrush(fill)
        w = bar.width() * max(0.0, min(1.0, self.p))
        if w > 0.5:
            qp.drawRoundedRect(QRectF(bar.x(), bar.y(), max(w, 3), bar.height()), 4, 4)
        qp.end()


def _set_picture(label: QLabel, image: Optional[QImage], box: QSize = CARD_PICTURE) -> None:
    if image is None or image.isNull():
        label.clear()
        return
    dpr = label.devicePixelRatioF() or 1.0
    pm = QPixmap.fromImage(image).scaled(
        int(box.width() * dpr), int(box.height() * dpr), Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    pm.setDevicePixelRatio(dpr)
    label.setPixmap(pm)


class ResultCard(QFrame):
    """One photo and what the model says about it."""

    feedback_requested = Signal(object, str)  # (card, right class)
    cam_requested = Signal(object)  # the card wants its heat map
    remove_requested = Signal(object)

    def __init__(self, item: ImageItem, parent=None):
        super().__init__(parent)
        self.item = item
        self.result: Optional[ItemResult] = None
        self.threshold = DEFAULT_THRESHOLD / 100
        self.show_cam = False
        self.classes: list[str] = []
        self.setObjectName("resultCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setAccessibleName(f"Result for {item.name}")

        self.picture = QLabel()
        self.picture.setFixedSize(CARD_PICTURE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setAccessibleName("Photo")
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setFixedWidth(CARD_PICTURE.width())
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setProperty("role", "muted")
        self.caption.setFixedHeight(self.caption.fontMetrics().lineSpacing() * 2 + 4)  # two lines, no reflow
        left = QVBoxLayout()
        left.addWidget(self.picture)
        left.addWidget(self.caption)
        left.addStretch(1)

        self.name_label = QLabel(item.name)
        self.name_label.setToolTip(item.path or item.name)
        self.name_label.setProperty("role", "muted")
        self.close_button = QToolButton()
        self.close_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Remove this photo from the list")
        self.close_button.setAccessibleName("Remove photo")
        self.close_button.clicked.connect(lambda: self.remove_requested.emit(self))
        top = QHBoxLayout()
        top.addWidget(self.name_label, 1)
        top.addWidget(self.close_button)

        self.headline = QLabel("Classifying…")
        f = self.headline.font()
        f.setPointSizeF(f.pointSizeF() * 1.6)
        f.setBold(True)
        self.headline.setFont(f)
        self.headline.setAccessibleName("Answer")
        self.summary = QLabel()
        self.summary.setAccessibleName("Probabilities")
        self.summary.setWordWrap(True)
        self.bars_box = QVBoxLayout()
        self.bars_box.setSpacing(2)
        self.bars: list[ProbBar] = []

        self.warning = QLabel()
        self.warning.setProperty("role", "warn")
        self.warning.setWordWrap(True)
        self.warning.setAccessibleName("Low-confidence warning")
        self.warning.hide()
        self.message = QLabel()  # errors and feedback results
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.message.setOpenExternalLinks(False)
        self.message.setAccessibleName("Message")
        self.message.hide()

        self.wrong_button = QToolButton()
        self.wrong_button.setText("Wrong?")
        self.wrong_button.setToolTip("Tell the model the right class: the photo is copied into your dataset's "
                                     "folder for that class, so the next training learns from it")
        self.wrong_button.setAccessibleName("Wrong? Give the right class")
        self.wrong_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.wrong_menu = QMenu(self.wrong_button)
        self.wrong_button.setMenu(self.wrong_menu)
        self.wrong_button.hide()
        self.cam_button = QToolButton()
        self.cam_button.setText("Heat map")
        self.cam_button.setCheckable(True)
        self.cam_button.setToolTip("Show where the model looked in this photo (Grad-CAM)")
        self.cam_button.setAccessibleName("Show heat map for this photo")
        self.cam_button.toggled.connect(self._on_cam_button)
        self.cam_button.hide()
        fb = QHBoxLayout()
        fb.addWidget(self.cam_button)
        fb.addWidget(self.wrong_button)
        fb.addStretch(1)

        right = QVBoxLayout()
        right.addLayout(top)
        right.addWidget(self.headline)
        right.addWidget(self.summary)
        right.addLayout(self.bars_box)
        right.addWidget(self.warning)
        right.addWidget(self.message)
        right.addLayout(fb)
        right.addStretch(1)

        lay = QHBoxLayout(self)
        lay.addLayout(left)
        lay.addLayout(right, 1)
        self.set_waiting("Classifying…")

    # -- state -------------------------------------------------------------------------------
    @property
    def prediction(self):
        return self.result.prediction if self.result else None

    @property
    def error(self) -> Optional[str]:
        return self.result.error if self.result else None

    def set_waiting(self, text: str) -> None:
        self.headline.setText(text)
        self.summary.clear()
        self._clear_bars()
        self.warning.hide()
        self.wrong_button.hide()
        self.cam_button.hide()
        self.caption.clear()
        self.picture.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_FileIcon).pixmap(48, 48))

    def set_result(self, result: ItemResult, classes: list[str]) -> None:
        old = self.result
        # keep a picture already shown when only the overlay was added
        if old is not None and result.picture is None and old.picture is not None:
            result.picture = old.picture
        self.result = result
        self.classes = classes
        self._clear_bars()
        self.message.hide()
        if result.error:
            self.headline.setText("Cannot read this file")
            self.summary.setText(result.error)
            self.picture.setPixmap(
                self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(48, 48))
            self.caption.setText("Try a JPEG, PNG, BMP, GIF, WebP or TIFF photo")
            self.warning.hide()
            self.wrong_button.hide()
            self.cam_button.hide()
            self.setAccessibleDescription(result.error)
            return
        pred = result.prediction
        self.headline.setText(pred.label)
        self.summary.setText(", ".join(f"{p * 100:.0f}% {c}" for c, p in pred.probabilities))
        for i, (c, p) in enumerate(pred.probabilities):
            bar = ProbBar(c, p, top=(i == 0))
            self.bars.append(bar)
            self.bars_box.addWidget(bar)
        self.setAccessibleDescription(f"{pred.label}: {pred.describe()}")
        self.wrong_menu.clear()
        for c in classes:
            if c != pred.label:
                act = self.wrong_menu.addAction(f"It is a {c}: add it to the dataset as {c}")
                act.triggered.connect(lambda _=False, c=c: self.feedback_requested.emit(self, c))
        self.wrong_button.setVisible(bool(self.wrong_menu.actions()))
        self.cam_button.show()
        self.update_picture()
        self.update_warning()

    def set_cam(self, cam_picture: Optional[QImage], cam_error: Optional[str]) -> None:
        if self.result is None:
            return
        self.result.cam_picture = cam_picture
        self.result.cam_error = cam_error
        self.update_picture()

    def set_threshold(self, t: float) -> None:
        self.threshold = t
        self.update_warning()

    def set_show_cam(self, on: bool) -> None:
        self.show_cam = on
        self.cam_button.blockSignals(True)
        self.cam_button.setChecked(on)
        self.cam_button.blockSignals(False)
        self.update_picture()

    def _on_cam_button(self, on: bool) -> None:
        self.set_show_cam(on)
        if on and self.needs_cam():
            self.cam_requested.emit(self)

    def needs_cam(self) -> bool:
        r = self.result
        return r is not None and r.prediction is not None and r.cam_picture is None and r.cam_error is None

    def update_picture(self) -> None:
        r = self.result
        if r is None or r.prediction is None:
            return
        if self.show_cam and r.cam_picture is not None:
            _set_picture(self.picture, r.cam_picture)
            self.caption.setText("Red: where the model looked")
            self.caption.setToolTip("Grad-CAM heat map over the centre square the model sees: the red parts "
                                    "pushed it most towards its answer")
        elif self.show_cam and r.cam_error:
            _set_picture(self.picture, r.picture)
            self.caption.setText(r.cam_error)
        else:
            _set_picture(self.picture, r.picture)
            self.caption.setText("Computing the heat map…" if self.show_cam else "")

    def update_warning(self) -> None:
        pred = self.prediction
        if pred is None:
            self.warning.hide()
            return
        if pred.confidence < self.threshold:
            self.warning.setText(
                f"⚠ Not sure: {pred.confidence * 100:.0f}% is below your {self.threshold * 100:.0f}% threshold. "
                "The photo may show neither class, or something the model has not learned well.")
            self.warning.show()
        else:
            self.warning.hide()

    def show_message(self, html: str, error: bool = False) -> None:
        self.message.setText(html)
        self.message.setProperty("role", "bad" if error else "")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.message.show()

    def _clear_bars(self) -> None:
        for b in self.bars:
            self.bars_box.removeWidget(b)
            b.deleteLater()
        self.bars = []


class DropArea(QFrame):
    """The large dashed drop target: an empty-state text, or the cards."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("dropArea")
        self.setProperty("dragging", False)
        self.setStyleSheet(
            "#dropArea { border: 2px dashed palette(mid); border-radius: 10px; }"
            "#dropArea[dragging=\"true\"] { border: 2px solid palette(highlight); background: palette(alternate-base); }"
        )
        self.setAccessibleName("Drop photos here")
        self.setToolTip("Drop photos, a folder or a model file here; paste an image with Ctrl+V")
        self.stack = QStackedWidget()
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setTextFormat(Qt.TextFormat.RichText)
        self.empty.setAccessibleName("How to classify photos")
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setStyleSheet("QScrollArea { background: transparent; }")
        self.cards_host = QWidget()
        self.cards_host.setAutoFillBackground(False)
        self.grid = QGridLayout(self.cards_host)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.grid.setSpacing(10)
        self.scroll.setWidget(self.cards_host)
        self.scroll.viewport().setAutoFillBackground(False)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.scroll)
        self.more_hint = QLabel("Drop more photos anywhere here, or paste one with Ctrl+V")
        self.more_hint.setProperty("role", "muted")
        self.more_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.more_hint.hide()
        self.stack.currentChanged.connect(lambda i: self.more_hint.setVisible(i == 1))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.more_hint)

    def set_dragging(self, on: bool) -> None:
        self.setProperty("dragging", on)
        self.style().unpolish(self)
        self.style().polish(self)
        self.update()


# ------------------------------------------------------------------------------------------------
# the tab


class PredictionTab(QWidget):
    """Classify photos with a model file: single photos, folders, Grad-CAM, feedback."""

    model_loaded = Signal(str)  # path of the model now in use
    model_failed = Signal(str)  # the message, when a model file could not be opened
    status_message = Signal(str)
    results_ready = Signal()  # a batch of dropped/pasted photos has been classified
    batch_finished = Signal(int)  # number of images classified in folder mode
    feedback_added = Signal(str)  # path of a photo copied into the dataset
    image_shown = Signal(object)  # the source (path or bytes) of the photo just classified: the Network tab uses it

    _ids = itertools.count(1)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.predictor = None
        self.model_path: Optional[str] = None
        self.dataset_root: Optional[str] = None
        self.cards: list[ResultCard] = []
        self.batch_predictions: list = []
        self.batch_folder: Optional[Path] = None
        self._tasks: set[Task] = set()
        self._single_tasks: set[Task] = set()
        self._model_task: Optional[Task] = None
        self._cam_task: Optional[Task] = None
        self._batch_task: Optional[Task] = None
        self._columns = 0
        self.setAcceptDrops(True)
        self._build()
        self._update_model_panel()
        self._update_empty_state()

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
        self.open_model_button = QPushButton("Open model…")
        self.open_model_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
        self.open_model_button.setToolTip("Use another model file (.pt) saved by catdog-gui (Ctrl+Shift+O)")
        self.open_model_button.setAccessibleName("Open model file")
        self.open_model_button.clicked.connect(self.open_model_dialog)
        self.model_error = QLabel()
        self.model_error.setWordWrap(True)
        self.model_error.setProperty("role", "bad")
        self.model_error.setAccessibleName("Model error")
        self.model_error.hide()
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
        self.open_button = QPushButton("Open photos…")
        self.open_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
        self.open_button.setToolTip("Choose one or more photos to classify (or drop them below)")
        self.open_button.setAccessibleName("Open photos")
        self.open_button.setObjectName("primary")
        self.open_button.clicked.connect(self.open_images_dialog)
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Classify the image on the clipboard (Ctrl+V)")
        self.paste_button.setAccessibleName("Paste image")
        self.paste_button.clicked.connect(self.paste)
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
        thr_label = QLabel("Warn when less sure than")
        thr_label.setBuddy(self.threshold_spin)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove all photos from the list")
        self.clear_button.setAccessibleName("Clear photos")
        self.clear_button.clicked.connect(self.clear)
        bar = QHBoxLayout()
        bar.addWidget(self.open_button)
        bar.addWidget(self.paste_button)
        bar.addSpacing(16)
        bar.addWidget(self.cam_check)
        bar.addSpacing(16)
        bar.addWidget(thr_label)
        bar.addWidget(self.threshold_spin)
        bar.addStretch(1)
        bar.addWidget(self.clear_button)
        self.drop_area = DropArea()
        photos = QWidget()
        vl = QVBoxLayout(photos)
        vl.addLayout(bar)
        vl.addWidget(self.drop_area, 1)

        # folder page
        self.folder_button = QPushButton("Classify a folder…")
        self.folder_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon))
        self.folder_button.setToolTip("Classify every image in a folder (and its subfolders) in the background")
        self.folder_button.setAccessibleName("Classify a folder")
        self.folder_button.setObjectName("primary")
        self.folder_button.clicked.connect(self.choose_folder_dialog)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_BrowserStop))
        self.cancel_button.setToolTip("Stop classifying the folder (Esc); the results so far stay")
        self.cancel_button.setAccessibleName("Cancel folder classification")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_batch)
        self.batch_progress = QProgressBar()
        self.batch_progress.setAccessibleName("Folder progress")
        self.batch_progress.setFormat("%v / %m images")
        self.batch_progress.setVisible(False)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton))
        self.export_button.setToolTip("Save the table as a CSV file (one row per readable image)")
        self.export_button.setAccessibleName("Export CSV")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_csv_dialog)
        fbar = QHBoxLayout()
        fbar.addWidget(self.folder_button)
        fbar.addWidget(self.cancel_button)
        fbar.addWidget(self.batch_progress, 1)
        fbar.addStretch(0)
        fbar.addWidget(self.export_button)
        self.batch_summary = QLabel("Pick a folder: every image in it is classified, and you can sort the "
                                    "results by class or confidence and export them as CSV.")
        self.batch_summary.setWordWrap(True)
        self.batch_summary.setAccessibleName("Folder summary")
        self.batch_model = QStandardItemModel(0, 3, self)
        self.batch_model.setHorizontalHeaderLabels(["File", "Class", "Confidence"])
        self.batch_proxy = QSortFilterProxyModel(self)
        self.batch_proxy.setSourceModel(self.batch_model)
        self.batch_proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.table = QTableView()
        self.table.setModel(self.batch_proxy)
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
        self.table.setAccessibleName("Folder results")
        self.table.setToolTip("Click a column header to sort; double-click a row to open the photo")
        self.table.doubleClicked.connect(self._open_row)
        folder = QWidget()
        fl = QVBoxLayout(folder)
        fl.addLayout(fbar)
        fl.addWidget(self.batch_summary)
        fl.addWidget(self.table, 1)

        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        self.pages.addTab(photos, "Photos")
        self.pages.addTab(folder, "Folder")
        self.pages.setTabToolTip(0, "Classify single photos: drop, paste or open them")
        self.pages.setTabToolTip(1, "Classify a whole folder and export the results")

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
    def set_model_path(self, path: str) -> None:
        """Load a model file in the background; the current model stays active until it is ready,
        and stays active if the new file cannot be opened."""
        from ..core.inference import Predictor

        path = str(path)
        if self._model_task is not None:
            self._model_task.discard()

        def load(state: TaskState):
            predictor = Predictor(path, "auto")
            s = predictor.info.image_size
            predictor.probabilities(np.zeros((1, 3, s, s), np.uint8))  # warm up: the first photo is fast
            return predictor

        self.model_error.hide()
        self.status_message.emit(f"Opening model {Path(path).name}…")
        task = self._model_task = self._start(Task(load, self, "load model"))
        task.done.connect(lambda p: self._on_model(p, path))
        task.failed.connect(lambda msg: self._on_model_failed(msg, path))
        task.start()

    def _on_model(self, predictor, path: str) -> None:
        self.predictor = predictor
        self.model_path = path
        self._model_task = None
        self.model_error.hide()
        self._update_model_panel()
        self._update_empty_state()
        self.cancel_batch(reason="the model changed")
        for t in list(self._single_tasks):
            t.discard()
            self._single_tasks.discard(t)
        if self._cam_task is not None:
            self._cam_task.discard()
            self._cam_task = None
        if self.cards:
            self._classify([c.item for c in self.cards])
        self.status_message.emit(f"Using model {Path(path).name}: {', '.join(predictor.classes)}")
        self.model_loaded.emit(path)

    def _on_model_failed(self, msg: str, path: str) -> None:
        self._model_task = None
        if self.predictor is not None:
            keep = f" Still using {Path(self.model_path).name}."
        else:
            keep = " No model is loaded: train one in the Training tab, or open another model file."
        self.model_error.setText(f"Could not open {Path(path).name}: {msg}.{keep}".replace("..", "."))
        self.model_error.show()
        self.status_message.emit(f"Could not open {Path(path).name}: {msg}")
        self.model_failed.emit(msg)

    def _model_title(self) -> str:
        from ..core.models import title_of

        return title_of(self.predictor.info.model_name) if self.predictor is not None else ""

    def _update_model_panel(self) -> None:
        if self.predictor is None:
            self.model_label.setText(
                "<b>No model loaded.</b> Train one in the <b>Training</b> tab (it is used here as soon as it is "
                "saved), or open a model file with <b>Open model…</b> (Ctrl+Shift+O).")
            self.model_label.setToolTip("")
            return
        info = self.predictor.info
        m = info.metrics
        acc, n_val = m.get("val_accuracy"), m.get("n_val")
        if isinstance(acc, (int, float)):
            measured = f" ({int(n_val):,} photos the model did not train on)" if n_val else ""
            acc_text = f"Validation accuracy <b>{acc * 100:.1f}%</b>{measured}"
        else:
            acc_text = "No validation accuracy stored in this file"
        classes = ", ".join(info.classes)
        self.model_label.setText(
            f"<b>{Path(self.model_path).name}</b> &nbsp;·&nbsp; {self._model_title()} &nbsp;·&nbsp; "
            f"{info.image_size}×{info.image_size} input<br>Classes: <b>{classes}</b> &nbsp;·&nbsp; {acc_text}")
        created = info.meta.get("created", "")
        self.model_label.setToolTip(f"{self.model_path}\nsaved {created}" if created else str(self.model_path))

    def _update_empty_state(self) -> None:
        if self.predictor is None:
            who = ("No model yet: train one in the <b>Training</b> tab, or <b>Open model…</b> above. "
                   "Photos you drop now are classified as soon as a model is loaded.")
        else:
            who = (f"<b>{Path(self.model_path).name}</b> will answer: "
                   f"{' or '.join(self.predictor.classes) if len(self.predictor.classes) <= 3 else ', '.join(self.predictor.classes)}.")
        self.drop_area.empty.setText(
            "<p style='font-size:20px'><b>Drop photos here</b></p>"
            "<p>or click <b>Open photos…</b>, or paste an image with <b>Ctrl+V</b>.<br>"
            "Drop a folder to classify all its images, or a model file (.pt) to use it.</p>"
            f"<p>{who}</p>")

    def open_model_dialog(self) -> None:
        start = str(Path(self.model_path).parent) if self.model_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, f"catdog-gui models (*{MODEL_SUFFIX});;All files (*)")
        if path:
            self.set_model_path(path)

    # ---- dataset for feedback ---------------------------------------------------------------
    def set_dataset_root(self, path: Optional[str]) -> None:
        self.dataset_root = str(path) if path else None

    def _feedback_root(self) -> tuple[Optional[Path], str]:
        if self.dataset_root:
            return Path(self.dataset_root), ""
        if self.predictor is not None:
            root = (self.predictor.info.metrics.get("dataset") or {}).get("root")
            if root and Path(root).is_dir():
                return Path(root), " (the dataset this model was trained on)"
        return None, ""

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
                self.set_model_path(p)
                continue
            items.append(ImageItem(next(self._ids), Path(p).name, path=p))
        self._add_items(items)

    def classify_data(self, data: bytes, name: str = "pasted image") -> None:
        self._add_items([ImageItem(next(self._ids), name, data=bytes(data))])

    def _add_items(self, items: list[ImageItem]) -> None:
        if not items:
            return
        self.pages.setCurrentIndex(0)
        for item in items:
            card = ResultCard(item)
            card.set_threshold(self.threshold_spin.value() / 100)
            card.set_show_cam(self.cam_check.isChecked())
            card.feedback_requested.connect(self._on_feedback)
            card.cam_requested.connect(lambda _c: self._compute_missing_cams())
            card.remove_requested.connect(self._remove_card)
            card.message.linkActivated.connect(lambda link, c=card: self._on_card_link(c, link))
            self.cards.insert(0, card)
        self._relayout()
        self.drop_area.stack.setCurrentIndex(1)
        self.drop_area.scroll.verticalScrollBar().setValue(0)
        if self.predictor is None:
            for item in items:
                self._card(item.id).set_waiting("Waiting for a model…")
            self.status_message.emit("Open or train a model to classify these photos")
            return
        self._classify(items)

    def _classify(self, items: list[ImageItem]) -> None:
        predictor, want_cam = self.predictor, self.cam_check.isChecked()
        for item in items:
            card = self._card(item.id)
            if card is not None:
                card.set_waiting("Classifying…")

        def work(state: TaskState):
            for i, item in enumerate(items):
                if state.cancelled():
                    break
                state.emit(classify_item(predictor, item, want_cam))
                state.progress(i + 1, len(items))
            return len(items)

        task = self._start(Task(work, self, "classify"))
        self._single_tasks.add(task)
        task.partial.connect(self._on_item_result)
        task.failed.connect(lambda msg: self.status_message.emit(f"Classification failed: {msg}"))
        task.finished.connect(lambda t=task: self._after_classify(t))
        task.start()

    def _after_classify(self, task: Task) -> None:
        self._single_tasks.discard(task)
        if any(c.show_cam and c.needs_cam() for c in self.cards):
            self._compute_missing_cams()  # e.g. photos re-classified by a new model
        self.results_ready.emit()

    def _card(self, item_id: int) -> Optional[ResultCard]:
        return next((c for c in self.cards if c.item.id == item_id), None)

    def _on_item_result(self, res: ItemResult) -> None:
        card = self._card(res.item_id)
        if card is None or self.predictor is None:
            return
        card.set_result(res, self.predictor.classes)
        if res.error:
            self.status_message.emit(res.error)
        else:
            self.status_message.emit(f"{card.item.name}: {res.prediction.describe()}")
            if card is self.cards[0]:  # the newest photo
                self.image_shown.emit(card.item.source)

    def _remove_card(self, card: ResultCard) -> None:
        if card in self.cards:
            self.cards.remove(card)
            self.drop_area.grid.removeWidget(card)
            card.deleteLater()
            self._relayout()
        if not self.cards:
            self.drop_area.stack.setCurrentIndex(0)

    def clear(self) -> None:
        for t in list(self._single_tasks):
            t.discard()
        self._single_tasks.clear()
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

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        if self._column_count() != self._columns:
            self._relayout()

    def _column_count(self) -> int:
        # the drop area is visible whenever the photos page is (the scroll area may not be laid out yet)
        width = self.drop_area.width() - 40
        return max(1, min(3, width // 520))

    def _on_threshold(self, value: int) -> None:
        for c in self.cards:
            c.set_threshold(value / 100)
        for row in range(self.batch_model.rowCount()):
            item = self.batch_model.item(row, 2)
            conf = item.data(Qt.ItemDataRole.UserRole)
            if conf is not None and conf >= 0:
                low = conf < value / 100
                item.setText(f"⚠ {_pct(conf)}" if low else _pct(conf))
                item.setToolTip("Below your low-confidence threshold" if low else "")

    # ---- Grad-CAM ---------------------------------------------------------------------------
    def _on_cam_toggled(self, on: bool) -> None:
        for c in self.cards:
            c.set_show_cam(on)
        if on:
            self._compute_missing_cams()

    def _compute_missing_cams(self) -> None:
        if self.predictor is None:
            return
        todo = [(c.item, c.prediction.label) for c in self.cards if c.show_cam and c.needs_cam()]
        if not todo:
            return
        if self._cam_task is not None:
            self._cam_task.discard()
        predictor = self.predictor

        def work(state: TaskState):
            for item, label in todo:
                if state.cancelled():
                    break
                try:
                    try:
                        _pic, square = _display_picture(item.source)
                    except ImageError:
                        square = None
                    state.emit((item.id, _cam_picture(predictor, item.source, label, square), None))
                except CatdogError as e:
                    state.emit((item.id, None, str(e)))

        task = self._cam_task = self._start(Task(work, self, "grad-cam"))
        task.partial.connect(self._on_cam)
        task.finished.connect(self.results_ready)
        task.start()

    def _on_cam(self, payload) -> None:
        item_id, picture, error = payload
        card = self._card(item_id)
        if card is not None:
            card.set_cam(picture, error)

    # ---- input: drops, paste, dialogs -------------------------------------------------------
    def dragEnterEvent(self, e) -> None:
        if self._acceptable(e.mimeData()):
            e.acceptProposedAction()
            self.drop_area.set_dragging(True)
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:
        if self._acceptable(e.mimeData()):
            e.acceptProposedAction()

    def dragLeaveEvent(self, e) -> None:
        self.drop_area.set_dragging(False)

    def dropEvent(self, e) -> None:
        self.drop_area.set_dragging(False)
        if self.handle_mime_data(e.mimeData()):
            e.acceptProposedAction()
        else:
            e.ignore()

    @staticmethod
    def _acceptable(mime: QMimeData) -> bool:
        return mime.hasUrls() or mime.hasImage() or mime.hasText()

    def handle_mime_data(self, mime: QMimeData) -> bool:
        """Drops and pastes: local files/folders/model files, raw image data, or a file path as text."""
        urls = [u for u in mime.urls()] if mime.hasUrls() else []
        local = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if local:
            self.classify_paths(local)
            return True
        if mime.hasImage():
            data = self._image_bytes(mime.imageData())
            if data:
                name = Path(QUrl(urls[0]).path()).name if urls else "pasted image"
                self.classify_data(data, name or "dropped image")
                return True
        if mime.hasText():
            text = mime.text().strip()
            candidates = [QUrl(t).toLocalFile() if t.startswith("file:") else t for t in text.splitlines()]
            paths = [p for p in candidates if p and Path(p).exists()]
            if paths:
                self.classify_paths(paths)
                return True
        if urls:
            self.status_message.emit(
                "Only files on this computer can be classified: save the picture first, then drop the file")
            return False
        self.status_message.emit("The clipboard holds no image or image file")
        return False

    @staticmethod
    def _image_bytes(image_data) -> Optional[bytes]:
        image = image_data if isinstance(image_data, QImage) else QImage(image_data) if image_data else QImage()
        if image is None or image.isNull():
            if isinstance(image_data, (bytes, bytearray, QByteArray)):
                return bytes(image_data)
            return None
        arr = QByteArray()
        buf = QBuffer(arr)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buf, "PNG")
        buf.close()
        return bytes(arr.data())

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None or not self.handle_mime_data(mime):
            self.status_message.emit("The clipboard holds no image: copy a picture or an image file first")

    def open_images_dialog(self) -> None:
        exts = " ".join(f"*{e}" for e in sorted(IMAGE_EXTS))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open photos", "", f"Images ({exts});;All files (*)")
        if paths:
            self.classify_paths(paths)

    # ---- feedback ---------------------------------------------------------------------------
    def _on_feedback(self, card: ResultCard, cls: str) -> Optional[Path]:
        return self.give_feedback(card, cls)

    def give_feedback(self, card: ResultCard, cls: str) -> Optional[Path]:
        """Copy the card's photo into the dataset as an example of ``cls``; the answer shows on the card."""
        root, why = self._feedback_root()
        if root is None:
            card.show_message(
                "Which dataset should this photo go to? Open your dataset in the <b>Dataset</b> tab, or "
                f"<a href='choose:{cls}'>choose the dataset folder…</a>")
            return None
        try:
            dest, msg = add_to_dataset(card.item, root, cls)
        except CatdogError as e:
            card.show_message(f"Not added: {e}", error=True)
            self.status_message.emit(f"Not added: {e}")
            return None
        card.show_message(f"✓ Added as <b>{cls}</b>{why}. {msg}")
        self.status_message.emit(f"Added {card.item.name} to the dataset as {cls}: {dest}")
        self.feedback_added.emit(str(dest))
        return dest

    def _on_card_link(self, card: ResultCard, link: str) -> None:
        if link.startswith("choose:"):
            folder = QFileDialog.getExistingDirectory(self, "Choose the dataset folder")
            if folder:
                self.set_dataset_root(folder)
                self.give_feedback(card, link.split(":", 1)[1])

    # ---- folder mode ------------------------------------------------------------------------
    def choose_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Classify all images in a folder",
                                                  str(self.batch_folder or ""))
        if folder:
            self.classify_folder(folder)

    def classify_folder(self, folder: str) -> None:
        self.pages.setCurrentIndex(1)
        if self.predictor is None:
            self.batch_summary.setText("Open or train a model first: then pick the folder again.")
            self.status_message.emit("No model loaded")
            return
        if self._batch_task is not None:
            self._batch_task.discard()
        folder_path = Path(folder)
        self.batch_folder = folder_path
        self.batch_predictions = []
        self.batch_model.removeRows(0, self.batch_model.rowCount())
        self.batch_progress.setRange(0, 0)
        self.batch_progress.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.export_button.setEnabled(False)
        self.table.setSortingEnabled(False)
        self.batch_summary.setText(f"Looking for images in {folder_path}…")
        predictor = self.predictor
        self._batch_started = time.monotonic()

        def work(state: TaskState):
            if not folder_path.is_dir():
                raise CatdogError(f"the folder {folder_path} does not exist")
            files, others = list_images(folder_path, state.cancel_event)
            state.emit(("listed", len(files), others))
            state.progress(0, len(files))
            step = 32
            for start in range(0, len(files), step):
                if state.cancelled():
                    break
                chunk = files[start:start + step]
                preds = predictor.predict_many([str(p) for p in chunk], batch_size=step, cancel=state.cancel_event)
                if len(preds) < len(chunk):  # cancelled inside
                    break
                thumbs = [_thumbnail(p) if pr.ok else None for p, pr in zip(chunk, preds)]
                state.emit(("rows", list(zip(preds, thumbs))))
                state.progress(start + len(chunk), len(files))
            return {"total": len(files), "others": others, "cancelled": state.cancelled()}

        task = self._batch_task = self._start(Task(work, self, "classify folder"))
        task.partial.connect(self._on_batch_partial)
        task.progress.connect(self._on_batch_progress)
        task.done.connect(self._on_batch_done)
        task.failed.connect(self._on_batch_failed)
        task.finished.connect(self._on_batch_finished)
        task.start()

    def _on_batch_progress(self, done: int, total: int) -> None:
        self.batch_progress.setRange(0, max(total, 1))
        self.batch_progress.setValue(done)
        elapsed = time.monotonic() - self._batch_started
        if 0 < done < total and elapsed > 1:
            eta = elapsed / done * (total - done)
            self.batch_summary.setText(f"Classifying {total:,} images in {self.batch_folder}… about {eta:.0f} s left")

    def _on_batch_partial(self, payload) -> None:
        kind = payload[0]
        if kind == "listed":
            _, n, others = payload
            self.batch_summary.setText(f"Classifying {n:,} images in {self.batch_folder}…")
            return
        for pred, thumb in payload[1]:
            self.batch_predictions.append(pred)
            self.batch_model.appendRow(self._batch_row(pred, thumb))

    def _batch_row(self, pred, thumb: Optional[QImage]) -> list[QStandardItem]:
        path = Path(pred.source)
        try:
            shown = str(path.relative_to(self.batch_folder)) if self.batch_folder else path.name
        except ValueError:
            shown = path.name
        shown = shown_path(shown)  # the real path stays in self.batch_predictions (same row order)
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
            conf = QStandardItem(_pct(pred.confidence))
            conf.setData(float(pred.confidence), Qt.ItemDataRole.UserRole)
            conf.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if pred.confidence < self.threshold_spin.value() / 100:
                conf.setText(f"⚠ {_pct(pred.confidence)}")
                conf.setToolTip("Below your low-confidence threshold")
        else:
            c = QStandardItem("cannot read")
            c.setData("~", Qt.ItemDataRole.UserRole)  # sorts after the class names
            c.setForeground(QColor(colors()["bad"]))
            c.setToolTip(pred.error)
            f.setToolTip(pred.error)
            conf = QStandardItem("")
            conf.setData(-1.0, Qt.ItemDataRole.UserRole)
        return [f, c, conf]

    def _on_batch_done(self, result: dict) -> None:
        ok = [p for p in self.batch_predictions if p.ok]
        bad = len(self.batch_predictions) - len(ok)
        counts = {}
        for p in ok:
            counts[p.label] = counts.get(p.label, 0) + 1
        per_class = ", ".join(f"{n:,} {c}" for c, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        low = sum(1 for p in ok if p.confidence < self.threshold_spin.value() / 100)
        parts = [f"{len(ok):,} images classified" + (f": {per_class}" if per_class else "")]
        if low:
            parts.append(f"{low:,} below your {self.threshold_spin.value()}% threshold (marked ⚠)")
        if bad:
            parts.append(f"{bad:,} could not be read (in red; hover for why): "
                         f"{'it is' if bad == 1 else 'they are'} left out of the CSV")
        if result.get("others"):
            parts.append(f"{result['others']:,} other files ignored")
        if result.get("total") == 0:
            parts = [f"No images in {self.batch_folder} (looked for {', '.join(sorted(IMAGE_EXTS))})"]
        if result.get("cancelled"):
            parts.insert(0, f"Cancelled after {len(self.batch_predictions):,} of {result['total']:,}")
        self.batch_summary.setText(". ".join(parts) + ".")
        self.status_message.emit(parts[0])
        self.batch_finished.emit(len(ok))

    def _on_batch_failed(self, msg: str) -> None:
        self.batch_summary.setText(f"Stopped: {msg}." if msg != "cancelled" else "Cancelled.")
        self.status_message.emit(f"Folder classification: {msg}")
        self.batch_finished.emit(sum(1 for p in self.batch_predictions if p.ok))

    def _on_batch_finished(self) -> None:
        self._batch_task = None
        self.batch_progress.setVisible(False)
        self.cancel_button.setEnabled(False)
        self.table.setSortingEnabled(True)
        self.export_button.setEnabled(any(p.ok for p in self.batch_predictions))

    def cancel_batch(self, reason: str = "") -> None:
        task = self._batch_task
        if task is None:
            return
        if reason:  # a stale run (e.g. the model changed): nothing more of it reaches the screen
            task.discard()
            self._batch_task = None
            self._on_batch_finished()
            self.batch_summary.setText(f"Stopped because {reason}: pick the folder again to use the new model.")
        else:
            task.cancel()
            self.cancel_button.setEnabled(False)
            self.batch_summary.setText("Cancelling…")

    def _open_row(self, index) -> None:
        src = self.batch_proxy.mapToSource(index)
        if 0 <= src.row() < len(self.batch_predictions):
            QDesktopServices.openUrl(file_url(self.batch_predictions[src.row()].source))

    def export_csv(self, path: str) -> int:
        """Write the folder results to ``path`` (atomically); returns the number of rows."""
        if self.predictor is None:
            raise CatdogError("no model loaded")
        n = write_predictions_csv(Path(path), self.batch_predictions, self.predictor.classes)
        self.status_message.emit(f"Saved {n:,} rows to {path}")
        return n

    def export_csv_dialog(self) -> None:
        start = str((self.batch_folder or Path.home()) / "predictions.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export predictions", start, "CSV files (*.csv)")
        if not path:
            return
        try:
            n = self.export_csv(path)
        except CatdogError as e:
            self.batch_summary.setText(f"Could not export: {e}")
            self.status_message.emit(f"Could not export: {e}")
            return
        self.batch_summary.setText(self.batch_summary.text() + f" Exported {n:,} rows to {path}.")

    # ---- tasks ------------------------------------------------------------------------------
    def _start(self, task: Task) -> Task:
        self._tasks = {t for t in self._tasks if t.is_running()}  # discarded runs that have ended
        self._tasks.add(task)
        task.finished.connect(lambda t=task: self._forget(t))
        return task  # the caller connects its slots, then starts it

    def _forget(self, task: Task) -> None:
        self._tasks.discard(task)

    def is_busy(self) -> bool:
        return any(t.is_running() for t in self._tasks)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop every background job and wait for it (call before the window goes away)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.discard()
        for t in tasks:
            t.wait(timeout_ms)
        self._tasks.clear()
        self._single_tasks.clear()
        self._batch_task = self._cam_task = self._model_task = None

    def keyPressEvent(self, e) -> None:
        # Esc stops a folder run (a plain key handler: the Training tab owns the Esc shortcut)
        if e.key() == Qt.Key.Key_Escape and self._batch_task is not None:
            self.cancel_batch()
            e.accept()
            return
        super().keyPressEvent(e)

    def closeEvent(self, e) -> None:
        self.shutdown()
        super().closeEvent(e)
