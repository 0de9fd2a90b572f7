"""A result card of the Prediction tab: one photo, its answer, sorted probability bars, the
low-confidence warning, the Grad-CAM toggle and "Wrong?" feedback."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMenu, QSizePolicy, QStyle, QToolButton, QVBoxLayout, QWidget

from .classify import ImageItem, ItemResult
from ..common.style import colors
from ...core.text import probability_text

CARD_PICTURE = QSize(200, 170)
DEFAULT_THRESHOLD = 70  # percent

__all__ = ["CARD_PICTURE", "DEFAULT_THRESHOLD", "ProbBar", "ResultCard", "set_picture"]


class ProbBar(QWidget):
    """A labelled probability bar: class name, bar, percentage."""

    def __init__(self, cls: str, p: float, top: bool, parent=None):
        super().__init__(parent)
        self.cls, self.p, self.top = cls, p, top
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName(f"{cls}: {probability_text(p)}")
        self.setToolTip(f"The model gives {probability_text(p)} to {cls}")

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
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, probability_text(self.p))
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


def set_picture(label: QLabel, image: Optional[QImage], box: QSize = CARD_PICTURE) -> None:
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
        #: show "looks like neither ..." for photos unlike the training photos (the tab's setting)
        self.flag_unfamiliar = True
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
        self._show_answer(pred)
        for i, (c, p) in enumerate(pred.probabilities):
            bar = ProbBar(c, p, top=(i == 0))
            self.bars.append(bar)
            self.bars_box.addWidget(bar)
        self.wrong_menu.clear()
        for c in classes:
            if c != pred.label:
                act = self.wrong_menu.addAction(f"It is a {c}: add it to the dataset as {c}")
                act.triggered.connect(lambda _=False, c=c: self.feedback_requested.emit(self, c))
        self.wrong_button.setVisible(bool(self.wrong_menu.actions()))
        self.cam_button.show()
        self.update_picture()
        self.update_warning()

    def _show_answer(self, pred) -> None:
        """The answer as the headline; for a photo unlike the training photos the verdict instead,
        and the answer below it, smaller."""
        from ...core.inference.unfamiliar import verdict

        if pred.unfamiliar and self.flag_unfamiliar:
            line = verdict(self.classes or [c for c, _p in pred.probabilities])
            head, _sep, why = line.partition(": ")
            self.headline.setText(head)
            self.headline.setToolTip(f"Unfamiliarity {pred.unfamiliar_score:.3g}, above this model's threshold "
                                     f"{pred.unfamiliar_threshold:.3g} (set so 95% of its validation photos pass)")
            self.summary.setText(f"{why[:1].upper()}{why[1:]}.<br>The model's answer: <b>{pred.label}</b> "
                                 f"({pred.describe()})")
            self.setAccessibleDescription(f"{line}. The model's answer: {pred.label}: {pred.describe()}")
        else:
            self.headline.setText(pred.label)
            self.headline.setToolTip("")
            self.summary.setText(pred.describe())
            self.setAccessibleDescription(f"{pred.label}: {pred.describe()}")

    def set_flag_unfamiliar(self, on: bool) -> None:
        self.flag_unfamiliar = bool(on)
        if self.prediction is not None:
            self._show_answer(self.prediction)
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
            set_picture(self.picture, r.cam_picture)
            self.caption.setText("Red: where the model looked")
            self.caption.setToolTip("Grad-CAM heat map over the centre square the model sees: the red parts "
                                    "pushed it most towards its answer")
        elif self.show_cam and r.cam_error:
            set_picture(self.picture, r.picture)
            self.caption.setText(r.cam_error)
        else:
            set_picture(self.picture, r.picture)
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
