"""Small shared pieces: the shared augmentation model, a collapsible box, thumbnails, count bars."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QCheckBox,
    QFrame,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import style


class CollapsibleBox(QWidget):
    """A titled box whose content shows or hides when the title is clicked ("Advanced")."""

    toggled = Signal(bool)

    def __init__(self, title: str, parent=None, expanded: bool = False):
        super().__init__(parent)
        self.button = QToolButton(text=title, checkable=True, checked=expanded)
        self.button.setStyleSheet("QToolButton { border: none; font-weight: 600; }")
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.button.setAccessibleName(title)
        self.button.setToolTip(f"Show or hide the {title.lower()} settings")
        self.button.toggled.connect(self.set_expanded)
        self.content = QWidget()
        self.content.setVisible(expanded)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.button)
        lay.addWidget(self.content)

    def set_expanded(self, on: bool) -> None:
        if self.button.isChecked() != on:
            self.button.setChecked(on)
            return
        self.button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.content.setVisible(on)
        self.toggled.emit(on)

    @property
    def expanded(self) -> bool:
        return self.button.isChecked()


def pil_to_pixmap(im) -> QPixmap:
    """A PIL image -> QPixmap (GUI thread only)."""
    return QPixmap.fromImage(pil_to_qimage(im))


def pil_to_qimage(im) -> QImage:
    """A PIL image -> QImage that owns its pixels (safe to build on a worker thread)."""
    im = im.convert("RGB")
    data = im.tobytes("raw", "RGB")
    q = QImage(data, im.width, im.height, 3 * im.width, QImage.Format.Format_RGB888)
    return q.copy()


class Thumb(QLabel):
    """A square cell showing an image scaled to fit with its aspect ratio kept; clickable."""

    clicked = Signal(object)  # the payload (usually a path)

    def __init__(self, size: int = 96, payload=None, tooltip: str = "", parent=None):
        super().__init__(parent)
        self.payload = payload
        self._size = size
        self.setFixedSize(size, size)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(tooltip)
        self.setAccessibleName(tooltip or "thumbnail")
        self._selected = False
        if payload is not None:
            self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_image(self, image: QImage | QPixmap) -> None:
        pm = image if isinstance(image, QPixmap) else QPixmap.fromImage(image)
        s = self._size - 6
        self.setPixmap(pm.scaled(s, s, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def set_selected(self, on: bool) -> None:
        self._selected = on
        self.setStyleSheet(f"QLabel {{ border: 2px solid {style.colors()['accent']}; }}" if on else "")

    def mousePressEvent(self, e):  # noqa: N802
        if self.payload is not None and e.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.payload)
        super().mousePressEvent(e)


class CountBars(QWidget):
    """A small horizontal bar chart: per class, training and validation counts."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[str, int, int]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName("Photos per class")

    def set_counts(self, classes, train: dict, val: dict) -> None:
        self._rows = [(c, int(train.get(c, 0)), int(val.get(c, 0))) for c in classes]
        self.setFixedHeight(self._row_h() * max(1, len(self._rows)) + 4)
        self.setToolTip("\n".join(f"{c}: {t} training, {v} validation" for c, t, v in self._rows))
        self.update()

    def _row_h(self) -> int:
        return self.fontMetrics().height() + 10

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(360, self._row_h() * max(1, len(self._rows)) + 4)

    def paintEvent(self, _e):  # noqa: N802
        if not self._rows:
            return
        c = style.colors()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = self.fontMetrics()
        name_w = min(160, max(fm.horizontalAdvance(r[0]) for r in self._rows) + 12)
        num_w = max(fm.horizontalAdvance(f"{r[1]:,} + {r[2]:,}") for r in self._rows) + 12
        bar_w = max(20, self.width() - name_w - num_w - 4)
        top = max(max(t + v for _, t, v in self._rows), 1)
        h = self._row_h()
        for i, (name, t, v) in enumerate(self._rows):
            y = i * h + 2
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(QRectF(0, y, name_w - 6, h), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       fm.elidedText(name, Qt.TextElideMode.ElideRight, name_w - 8))
            wt = bar_w * t / top
            wv = bar_w * v / top
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(c["train"]))
            p.drawRoundedRect(QRectF(name_w, y + 4, max(wt, 1), h - 8), 2, 2)
            p.setBrush(QColor(c["val"]))
            p.drawRoundedRect(QRectF(name_w + wt, y + 4, max(wv, 0), h - 8), 2, 2)
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(QRectF(name_w + wt + wv + 6, y, num_w, h), Qt.AlignmentFlag.AlignVCenter,
                       f"{t:,} + {v:,}")
        p.end()


def heading(text: str) -> QLabel:
    lab = QLabel(text)
    lab.setProperty("role", "heading")
    return lab


def muted(text: str, wrap: bool = True) -> QLabel:
    lab = QLabel(text)
    lab.setProperty("role", "muted")
    lab.setWordWrap(wrap)
    return lab


def set_role(label: QLabel, role: str) -> None:
    label.setProperty("role", role)
    label.style().unpolish(label)
    label.style().polish(label)


def bold_font(w: QWidget, delta: int = 0) -> QFont:
    f = QFont(w.font())
    f.setBold(True)
    if delta:
        f.setPointSize(f.pointSize() + delta)
    return f


class FlowGrid(QWidget):
    """Lays out fixed-size children in rows that wrap to the width (a tiny flow layout)."""

    def __init__(self, cell: int = 96, spacing: int = 6, parent=None):
        super().__init__(parent)
        self._cell = cell
        self._spacing = spacing
        self._items: list[QWidget] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def clear(self) -> None:
        for w in self._items:
            w.setParent(None)
            w.deleteLater()
        self._items = []
        self._relayout()

    def add(self, w: QWidget) -> None:
        w.setParent(self)
        w.show()
        self._items.append(w)
        self._relayout()

    def items(self) -> list[QWidget]:
        return list(self._items)

    def _cols(self, width: Optional[int] = None) -> int:
        width = width if width is not None else self.width()
        return max(1, (width + self._spacing) // (self._cell + self._spacing))

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, w: int) -> int:  # noqa: N802
        rows = -(-len(self._items) // self._cols(w)) if self._items else 0
        return rows * (self._cell + self._spacing)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(4 * (self._cell + self._spacing), self.heightForWidth(max(self.width(), 200)))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self._cell, self.heightForWidth(max(self.width(), self._cell)))

    def resizeEvent(self, e):  # noqa: N802
        super().resizeEvent(e)
        self._relayout()

    def _relayout(self) -> None:
        cols = self._cols()
        step = self._cell + self._spacing
        for i, w in enumerate(self._items):
            w.move((i % cols) * step, (i // cols) * step)
        self.setMinimumHeight(self.heightForWidth(max(self.width(), self._cell)))
        self.updateGeometry()


def shown_path(path) -> str:
    """A path as text Qt can show: bytes that are not valid UTF-8 (kept by Python as surrogates,
    which Qt silently drops) become U+FFFD. Keep the real path on the Python side; never round-trip
    it through a Qt string."""
    import os

    return os.fsencode(str(path)).decode("utf-8", "replace")


def file_url(path):
    """A file:// QUrl for ``path`` that keeps bytes which are not UTF-8 (percent-encoded), so
    opening a photo or its folder works whatever its name is."""
    import os
    import urllib.parse

    from PySide6.QtCore import QByteArray, QUrl

    raw = os.fsencode(os.path.abspath(os.fspath(path)))
    return QUrl.fromEncoded(QByteArray(b"file://" + urllib.parse.quote_from_bytes(raw).encode("ascii")))


class EvaluationBar(QWidget):
    """What an evaluation on a test folder is doing: a label, a bar and Cancel (hidden when idle). A folder
    refused because it holds photos the model trained on stays shown, saying so, with "Score anyway"."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._ev = None
        self._refused = False
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = muted("", wrap=False)
        lay.addWidget(self.label, 0)
        self.bar = QProgressBar()
        self.bar.setAccessibleName("Evaluation progress")
        lay.addWidget(self.bar, 1)
        self.anyway_button = QPushButton("Score anyway")
        self.anyway_button.setToolTip("Score this folder although the model trained on some of its photos; "
                                      "the result says how many (its accuracy reads high)")
        self.anyway_button.setAccessibleName("Score anyway")
        self.anyway_button.hide()
        lay.addWidget(self.anyway_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop scoring the test folder")
        self.cancel_button.setAccessibleName("Cancel the evaluation")
        lay.addWidget(self.cancel_button)
        self.hide()

    def attach(self, ev) -> None:
        """Follow ``ev`` (a :class:`~catdog_gui.gui.models.runs_model.RunEvaluation`)."""
        self._ev = ev
        ev.started.connect(self._on_started)
        ev.progress.connect(self._on_progress)
        ev.overlap_found.connect(self._on_overlap)
        ev.finished.connect(self._on_finished)
        self.cancel_button.clicked.connect(self._on_cancel)
        self.anyway_button.clicked.connect(ev.score_anyway)

    def _on_started(self, folder: str) -> None:
        self._refused = False
        self.label.setWordWrap(False)
        self.label.setText(f"Scoring the model on {folder}…")
        self.bar.setRange(0, 0)
        self.bar.show()
        self.anyway_button.hide()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop scoring the test folder")
        self.show()

    def _on_overlap(self, message: str) -> None:
        self._refused = True
        self.label.setWordWrap(True)
        self.label.setText(f"Not scored: {message}")
        self.bar.hide()
        self.anyway_button.show()
        self.cancel_button.setText("Dismiss")
        self.cancel_button.setToolTip("Close this message and choose another folder")

    def _on_finished(self) -> None:
        if not self._refused:
            self.hide()

    def _on_cancel(self) -> None:
        if self._refused:
            self._refused = False
            self.hide()
        elif self._ev is not None:
            self._ev.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)


def augment_checkbox(augment, text: str = "Augment training images", parent=None) -> QCheckBox:
    """A checkbox bound two-way to ``augment`` (an :class:`~catdog_gui.gui.models.augment_model.AugmentModel`)."""
    cb = QCheckBox(text, parent)
    cb.setChecked(augment.enabled)
    cb.setToolTip(
        "Show the model randomly cropped, flipped, rotated and recoloured versions of the training "
        "photos, so it learns what matters and not the exact pixels. Helps most with few photos."
    )
    cb.setAccessibleName("Augment training images")
    cb.toggled.connect(augment.set_enabled)
    augment.enabled_changed.connect(lambda on, cb=cb: cb.isChecked() != on and cb.setChecked(on))
    return cb
