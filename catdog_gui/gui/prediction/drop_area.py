"""The Prediction tab's drop target: the large dashed area with the empty-state text, or the cards."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QScrollArea, QStackedWidget, QVBoxLayout, QWidget

__all__ = ["DropArea", "image_bytes"]


def image_bytes(image_data) -> Optional[bytes]:
    """Raw image data from a drop or the clipboard (a QImage, or encoded bytes) as encoded bytes
    (PNG for a QImage), or None."""
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
