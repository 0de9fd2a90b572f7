"""The Prediction tab's drop target and what a drop or a paste carries.

:class:`DropArea` is the large dashed area: the empty-state text (how to classify, and which model
will answer), or the cards. :func:`read_mime` turns a drop's or the clipboard's data into local
paths or encoded image bytes (:func:`image_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, Qt, QUrl
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QScrollArea, QStackedWidget, QVBoxLayout, QWidget

__all__ = ["DropArea", "Dropped", "acceptable", "image_bytes", "read_mime"]


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


def acceptable(mime: QMimeData) -> bool:
    """Whether a drag may carry something to classify (files, an image, a path as text)."""
    return mime.hasUrls() or mime.hasImage() or mime.hasText()


@dataclass
class Dropped:
    """What a drop or a paste carries: local files or folders, else one image's encoded bytes.
    Neither: ``remote`` says it held links to files that are not on this computer."""

    paths: list[str] = field(default_factory=list)
    data: Optional[bytes] = None
    name: str = ""
    remote: bool = False


def read_mime(mime: QMimeData) -> Dropped:
    """Local file URLs first, then raw image data (named after its URL), then file paths as text."""
    urls = [u for u in mime.urls()] if mime.hasUrls() else []
    local = [u.toLocalFile() for u in urls if u.isLocalFile()]
    if local:
        return Dropped(local)
    if mime.hasImage():
        data = image_bytes(mime.imageData())
        if data:
            name = Path(QUrl(urls[0]).path()).name if urls else "pasted image"
            return Dropped(data=data, name=name or "dropped image")
    if mime.hasText():
        text = mime.text().strip()
        candidates = [QUrl(t).toLocalFile() if t.startswith("file:") else t for t in text.splitlines()]
        paths = [p for p in candidates if p and Path(p).exists()]
        if paths:
            return Dropped(paths)
    return Dropped(remote=bool(urls))


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

    def show_model(self, file_name: str, classes: list[str]) -> None:
        """The empty-state text: how to classify photos, and which model answers (``classes``: [] for none)."""
        if not classes:
            who = ("No model yet: train one in the <b>Training</b> tab, or <b>Open model…</b> above. "
                   "Photos you drop now are classified as soon as a model is loaded.")
        else:
            who = (f"<b>{file_name}</b> will answer: "
                   f"{' or '.join(classes) if len(classes) <= 3 else ', '.join(classes)}.")
        self.empty.setText(
            "<p style='font-size:20px'><b>Drop photos here</b></p>"
            "<p>or click <b>Open photos…</b>, or paste an image with <b>Ctrl+V</b>.<br>"
            "Drop a folder to classify all its images, or a model file (.pt) to use it.</p>"
            f"<p>{who}</p>")
