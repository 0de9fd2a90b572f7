"""The Network tab: the current model's layers, LeNet-5 drawn as in the 1998 paper, and what each layer sees.

Why a fourth tab and not a panel of the Training tab: the Training tab is already full (form, live
plots, results) and is about *running* something; this view is for *looking* at a model, and a
teaching view needs the whole width for the Figure 2 diagram, the layer table and the feature-map
grid side by side. As a tab after Prediction it leaves the Dataset -> Training -> Prediction flow
untouched and is reached in one click (Alt+4) whenever a model exists.

Built around a :class:`~catdog_gui.core.inference.Predictor` (its own copy of the model) and
:mod:`catdog_gui.core.explain`; the layer table is :func:`catdog_gui.core.models.summary`, the same
one ``catdog info`` prints. Loading the model and computing feature maps run on :class:`Task`\\ s, so
switching layers never freezes the window; a model file that cannot be opened leaves the previous
one in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from ..core import explain
from ..core.imageio import IMAGE_EXTS
from . import style
from .widgets import heading, muted
from .workers import Task, TaskState

#: feature maps shown at first; a "Show all" button shows the rest
MAP_CAP = 64


@dataclass(frozen=True)
class Loaded:
    """What the model-loading task hands to the GUI thread."""

    predictor: object
    layers: list  # LayerInfo
    stored: int  # sum(p.numel()) over the model's parameters
    filters: np.ndarray  # (N, kh, kw, 3) in 0..1
    filters_layer: str
    boxes: Optional[list]  # DiagramBox list for LeNet-5 models, else None


def _gray_image(a: np.ndarray) -> QImage:
    a = np.ascontiguousarray(a, dtype=np.uint8)
    h, w = a.shape
    return QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def _rgb_image(a: np.ndarray) -> QImage:
    a = np.ascontiguousarray(a, dtype=np.uint8)
    h, w = a.shape[:2]
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _shape_text(shape) -> str:
    return " x ".join(str(s) for s in shape)


# ------------------------------------------------------------------------------------------------
# the diagram


class LeNetDiagram(QWidget):
    """LeNet-5 in the style of Figure 2 of LeCun et al. (1998), drawn from :class:`DiagramBox` es.

    Each volume is a stack of planes whose side is proportional to its height x width and whose depth
    grows with the number of maps; flat layers (C5, F6, OUTPUT) are columns whose height grows with
    the number of units. Convolutions and subsamplings are drawn as a window on the previous volume
    projecting to one point of the next. Click a volume to select its layer.
    """

    layer_clicked = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.boxes: list = []
        self.kernels: dict[str, int] = {}
        self.selected = ""
        self.input_image: Optional[QImage] = None
        self.front: dict[str, QImage] = {}  # layer -> first feature map, drawn on its front plane
        self._hit: list[tuple[QRectF, str]] = []
        self.setMinimumHeight(210)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setAccessibleName("LeNet-5 diagram")
        self.setToolTip("LeNet-5 drawn from the model itself, as in Figure 2 of LeCun et al. (1998). "
                        "Click a volume to see its feature maps.")

    def set_boxes(self, boxes: list, kernels: dict[str, int]) -> None:
        self.boxes, self.kernels = list(boxes), dict(kernels)
        self.front = {}
        self.update()

    def set_selected(self, layer: str) -> None:
        self.selected = layer
        self.update()

    def set_input_image(self, image: Optional[QImage]) -> None:
        self.input_image = image
        self.update()

    def set_front(self, layer: str, image: Optional[QImage]) -> None:
        if image is None:
            self.front.pop(layer, None)
        else:
            self.front[layer] = image
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(1100, 260)

    # geometry ------------------------------------------------------------------------------
    def _layout(self) -> tuple[list[dict], float]:
        """Per box: the front plane rectangle, the depth offset and the number of planes."""
        if not self.boxes:
            return [], 0.0
        fm = self.fontMetrics()
        top_text = 2 * fm.height() + 10
        bottom_text = 2 * fm.height() + 10
        avail_h = max(60.0, self.height() - top_text - bottom_text - 8)
        max_side = max(b.height for b in self.boxes if not b.flat)
        max_units = max((b.channels for b in self.boxes if b.flat), default=1)
        margin = 12.0

        def widths(k: float) -> list[float]:
            out = []
            for b in self.boxes:
                if b.flat:
                    out.append(12.0)
                else:
                    out.append(b.width * k + self._depth(b, k))
            return out

        def title_w(b) -> float:
            head, rest = self._title_lines(b)
            return max(fm.horizontalAdvance(head), fm.horizontalAdvance(rest)) + 4

        k = avail_h / (max_side * 1.25)
        min_gap = max(fm.horizontalAdvance("Convolutions") + 8, 60)
        while k > 0.5:
            ws = widths(k)
            # the first and last titles may be wider than their volumes: keep them inside the widget
            extra_l = max(0.0, title_w(self.boxes[0]) / 2 - ws[0] / 2)
            extra_r = max(0.0, title_w(self.boxes[-1]) / 2 - ws[-1] / 2)
            need = sum(ws) + min_gap * (len(self.boxes) - 1) + 2 * margin + extra_l + extra_r
            if need <= self.width():
                break
            k *= 0.93
        ws = widths(k)
        extra_l = max(0.0, title_w(self.boxes[0]) / 2 - ws[0] / 2)
        extra_r = max(0.0, title_w(self.boxes[-1]) / 2 - ws[-1] / 2)
        gap = (self.width() - 2 * margin - extra_l - extra_r - sum(ws)) / max(1, len(self.boxes) - 1)
        gap = min(gap, 170.0)
        total = sum(ws) + gap * (len(self.boxes) - 1) + extra_l + extra_r
        x = max(margin, (self.width() - total) / 2) + extra_l
        cy = top_text + avail_h / 2 + 4
        unit_h = min(3.0, (max_side * k * 1.1) / max_units) if max_units else 1.0
        out = []
        for b, w in zip(self.boxes, ws):
            if b.flat:
                h = max(14.0, b.channels * unit_h)
                rect = QRectF(x, cy - h / 2, 12.0, h)
                out.append({"box": b, "front": rect, "dx": 0.0, "dy": 0.0, "n": 1})
            else:
                d = self._depth(b, k)
                side_w, side_h = b.width * k, b.height * k
                n = max(1, min(b.channels, 12))
                # back planes step up and to the right; the front plane is at the lower left
                front = QRectF(x, cy - side_h / 2 + d * 0.35, side_w, side_h)
                out.append({"box": b, "front": front, "dx": d / max(1, n - 1) if n > 1 else 0.0,
                            "dy": -0.7 * d / max(1, n - 1) if n > 1 else 0.0, "n": n})
            x += w + gap
        return out, k

    @staticmethod
    def _title_lines(b) -> tuple[str, str]:
        """The paper's two-line label: "C1: feature maps" / "6@28x28", "F6:" / "layer 84"."""
        if ": " in b.title:
            head, rest = b.title.split(": ", 1)
            if rest.startswith("feature maps "):
                return f"{head}: feature maps", rest[len("feature maps "):]
            return head, rest
        head, _, rest = b.title.partition(" ")
        return head, rest

    @staticmethod
    def _depth(b, k: float) -> float:
        if b.flat:
            return 0.0
        return min(b.width * k * 0.9, 3.0 * k ** 0.5 * b.channels ** 0.8 + 2.0)

    # painting ------------------------------------------------------------------------------
    def paintEvent(self, _e):  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        c = style.colors()
        fg = self.palette().color(self.foregroundRole())
        accent = QColor(c["accent"])
        muted_c = QColor(c["muted"])
        plane_fill = QColor(c["bg"])
        plane_edge = QColor(fg)
        plane_edge.setAlpha(170)
        boxes, k = self._layout()
        self._hit = []
        fm = self.fontMetrics()
        bold = QFont(self.font())
        bold.setBold(True)
        for i, g in enumerate(boxes):
            b, front = g["box"], g["front"]
            sel = b.layer and b.layer == self.selected
            edge = accent if sel else plane_edge
            pen = QPen(edge, 2.0 if sel else 1.0)
            if b.flat:
                p.setPen(pen)
                fill = QColor(accent) if sel else QColor(plane_fill)
                if sel:
                    fill.setAlpha(60)
                p.setBrush(fill)
                p.drawRect(front)
                step = front.height() / b.channels
                if step >= 3:
                    lp = QPen(edge, 0.6)
                    p.setPen(lp)
                    for u in range(1, b.channels):
                        y = front.top() + u * step
                        p.drawLine(QPointF(front.left(), y), QPointF(front.right(), y))
                hit = front.adjusted(-6, -4, 6, 4)
            else:
                n, dx, dy = g["n"], g["dx"], g["dy"]
                for j in reversed(range(n)):
                    r = front.translated(j * dx, j * dy)
                    p.setPen(pen)
                    if i == 0 and n == 3:  # the input: red, green and blue planes
                        col = QColor(("#e03131", "#2f9e44", "#1c7ed6")[j])
                        col.setAlpha(70 if j else 0)
                        p.setBrush(col if j else QColor(plane_fill))
                    else:
                        fill = QColor(accent) if sel else QColor(plane_fill)
                        if sel:
                            fill = QColor(plane_fill).darker(104) if j else QColor(plane_fill)
                        p.setBrush(fill)
                    p.drawRect(r)
                img = self.input_image if i == 0 else self.front.get(b.layer)
                if img is not None:
                    p.drawImage(front.adjusted(1, 1, -1, -1), img)
                    p.setBrush(Qt.BrushStyle.NoBrush)
                    p.setPen(pen)
                    p.drawRect(front)
                back = front.translated((n - 1) * dx, (n - 1) * dy)
                hit = front.united(back).adjusted(-4, -4, 4, 4)
            if b.layer:
                self._hit.append((hit, b.layer))
            # the paper's label above: "C1: feature maps" / "6@28x28"
            head, rest = self._title_lines(b)
            top = min(front.top(), front.top() + (g["n"] - 1) * g["dy"]) - 2 * fm.height() - 6
            cx = front.left() + (front.width() + (g["n"] - 1) * g["dx"]) / 2
            p.setPen(accent if sel else fg)
            p.setFont(bold)
            lw = max(fm.horizontalAdvance(head), fm.horizontalAdvance(rest)) + 30
            p.drawText(QRectF(cx - lw / 2, top, lw, fm.height()), Qt.AlignmentFlag.AlignHCenter, head)
            p.setFont(self.font())
            p.drawText(QRectF(cx - lw / 2, top + fm.height(), lw, fm.height()), Qt.AlignmentFlag.AlignHCenter, rest)
            if i > 0:
                self._draw_connection(p, boxes[i - 1], g, k, fg, muted_c)
        p.end()

    def _draw_connection(self, p: QPainter, a: dict, b: dict, k: float, fg: QColor, muted_c: QColor) -> None:
        box = b["box"]
        fa, fb = a["front"], b["front"]
        fm = self.fontMetrics()
        line = QPen(muted_c, 1.0)
        kernel = self.kernels.get(box.layer, 0)
        if not a["box"].flat and not box.flat and kernel:
            # the window a unit of the next volume looks at, projected to that unit
            s = kernel * k
            win = QRectF(fa.center().x() + fa.width() * 0.12 - s / 2, fa.center().y() - fa.height() * 0.12 - s / 2, s, s)
            target = QPointF(fb.center().x(), fb.center().y() - fb.height() * 0.12)
            p.setPen(QPen(fg, 1.0))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(win)
            p.setPen(line)
            p.drawLine(win.topRight(), target)
            p.drawLine(win.bottomRight(), target)
            p.setBrush(fg)
            p.drawEllipse(target, 1.8, 1.8)
        else:
            # a full connection: an arrow from volume to volume
            x0 = fa.right() + (a["n"] - 1) * a["dx"] + 6
            x1 = fb.left() - 6
            y = fb.center().y()
            p.setPen(QPen(muted_c, 1.2))
            p.drawLine(QPointF(x0, y), QPointF(x1, y))
            p.setBrush(muted_c)
            p.drawPolygon(QPolygonF([QPointF(x1, y), QPointF(x1 - 7, y - 4), QPointF(x1 - 7, y + 4)]))
        # what the connection is, under the gap (the paper writes it below the figure)
        x0 = fa.right() + (a["n"] - 1) * a["dx"]
        x1 = fb.left()
        w = max(x1 - x0, fm.horizontalAdvance("Convolutions") + 8)
        y = self.height() - 2 * fm.height() - 6
        p.setPen(muted_c)
        p.drawText(QRectF((x0 + x1) / 2 - w / 2, y, w, 2 * fm.height() + 2),
                   Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                   box.connection)

    # interaction ---------------------------------------------------------------------------
    def _layer_at(self, pos) -> str:
        for rect, layer in self._hit:
            if rect.contains(QPointF(pos)):
                return layer
        return ""

    def mouseMoveEvent(self, e):  # noqa: N802
        self.setCursor(Qt.CursorShape.PointingHandCursor if self._layer_at(e.position()) else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(e)

    def mousePressEvent(self, e):  # noqa: N802
        layer = self._layer_at(e.position())
        if layer and e.button() == Qt.MouseButton.LeftButton:
            self.layer_clicked.emit(layer)
        super().mousePressEvent(e)


# ------------------------------------------------------------------------------------------------
# grids of small pictures


class TileGrid(QWidget):
    """A painted grid of small images (feature maps or filters), wrapping to the width."""

    def __init__(self, tile: int = 64, spacing: int = 4, parent=None):
        super().__init__(parent)
        self._images: list[QImage] = []
        self._tips: list[str] = []
        self._tile = tile
        self._spacing = spacing
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.setMouseTracking(True)

    def set_images(self, images: list[QImage], tips: Optional[list[str]] = None, tile: Optional[int] = None) -> None:
        self._images = list(images)
        self._tips = list(tips or [])
        if tile:
            self._tile = tile
        self.setMinimumHeight(self.heightForWidth(max(self.width(), self._tile)))
        self.updateGeometry()
        self.update()

    def tile_count(self) -> int:
        return len(self._images)

    def _cols(self, width: int) -> int:
        return max(1, (width + self._spacing) // (self._tile + self._spacing))

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, w: int) -> int:  # noqa: N802
        if not self._images:
            return 0
        rows = -(-len(self._images) // self._cols(w))
        return rows * (self._tile + self._spacing)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(6 * (self._tile + self._spacing), self.heightForWidth(max(self.width(), 300)))

    def resizeEvent(self, e):  # noqa: N802
        super().resizeEvent(e)
        self.setMinimumHeight(self.heightForWidth(max(self.width(), self._tile)))

    def _rect(self, i: int, cols: int) -> QRectF:
        step = self._tile + self._spacing
        return QRectF((i % cols) * step, (i // cols) * step, self._tile, self._tile)

    def paintEvent(self, _e):  # noqa: N802
        if not self._images:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        cols = self._cols(self.width())
        edge = QColor(style.colors()["grid"])
        for i, img in enumerate(self._images):
            r = self._rect(i, cols)
            p.drawImage(r, img)
            p.setPen(edge)
            p.drawRect(r.adjusted(-0.5, -0.5, 0.5, 0.5))
        p.end()

    def event(self, e):
        if e.type() == e.Type.ToolTip and self._tips:
            cols = self._cols(self.width())
            pos = e.position() if hasattr(e, "position") else QPointF(e.pos())
            step = self._tile + self._spacing
            i = int(pos.y() // step) * cols + int(pos.x() // step)
            if 0 <= i < len(self._tips) and pos.x() < cols * step:
                QToolTip.showText(e.globalPos(), self._tips[i], self)
            else:
                QToolTip.hideText()
            return True
        return super().event(e)


# ------------------------------------------------------------------------------------------------
# the tab


class NetworkTab(QWidget):
    model_loaded = Signal(str)
    model_failed = Signal(str)
    maps_ready = Signal(str)  # the layer whose feature maps are now shown
    status_message = Signal(str)

    COLUMNS = ("Layer", "Type", "Kernel", "Stride", "Output (C x H x W)", "Parameters")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.predictor = None
        self.model_path: Optional[str] = None
        self.layers: list = []
        self.stored_params = 0
        self.image_source = None  # a path (str) or bytes
        self.image_name = ""
        self._image_array: Optional[np.ndarray] = None  # uint8 (3, S, S): what the model sees
        self._maps: dict[str, np.ndarray] = {}  # layer -> uint8 (C, H, W) for the current image
        self._show_all = False
        self._model_task: Optional[Task] = None
        self._maps_task: Optional[Task] = None
        self._tasks: set[Task] = set()
        self._modules: dict = {}
        self._build()
        self._update_model_label()

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.model_label = QLabel()
        self.model_label.setTextFormat(Qt.TextFormat.RichText)
        self.model_label.setWordWrap(True)
        self.model_label.setAccessibleName("Model shown")
        self.model_error = QLabel()
        self.model_error.setWordWrap(True)
        self.model_error.setProperty("role", "bad")
        self.model_error.setAccessibleName("Model error")
        self.model_error.hide()
        self.photo_label = QLabel()
        self.photo_label.setFixedSize(64, 64)
        self.photo_label.setFrameShape(QFrame.Shape.StyledPanel)
        self.photo_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.photo_label.setAccessibleName("What the model sees")
        self.photo_text = muted("")
        self.photo_text.setMaximumWidth(260)
        self.open_image_button = QPushButton("Choose photo…")
        self.open_image_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
        self.open_image_button.setToolTip("Pick a photo to see what every layer makes of it (photos you classify "
                                          "in the Prediction tab show up here too)")
        self.open_image_button.setAccessibleName("Choose photo")
        self.open_image_button.clicked.connect(self.open_image_dialog)
        top = QHBoxLayout()
        col = QVBoxLayout()
        col.addWidget(self.model_label)
        col.addWidget(self.model_error)
        top.addLayout(col, 1)
        top.addWidget(self.photo_label)
        top.addWidget(self.photo_text)
        top.addWidget(self.open_image_button, 0, Qt.AlignmentFlag.AlignVCenter)

        self.diagram = LeNetDiagram()
        self.diagram.layer_clicked.connect(self.select_layer)
        self.diagram_note = muted("")
        self.diagram_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.diagram_box = QWidget()
        dl = QVBoxLayout(self.diagram_box)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.diagram)
        dl.addWidget(self.diagram_note)

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setStretchLastSection(True)
        self.table.setAccessibleName("Layers")
        self.table.setToolTip("Every layer in order: what it is, its window (kernel) and step (stride), the volume "
                              "it outputs and how many numbers it learns. Select one to see its feature maps.")
        self.table.itemSelectionChanged.connect(self._on_table_selection)
        self.totals_label = QLabel()
        self.totals_label.setWordWrap(True)
        self.totals_label.setAccessibleName("Parameter totals")
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.table, 1)
        ll.addWidget(self.totals_label)

        self.layer_heading = heading("")
        self.caption_label = QLabel()
        self.caption_label.setWordWrap(True)
        self.caption_label.setAccessibleName("What this layer does")
        self.maps_heading = heading("Feature maps")
        self.maps_note = muted("")
        self.maps_grid = TileGrid(64)
        self.maps_grid.setAccessibleName("Feature maps")
        self.show_all_button = QPushButton()
        self.show_all_button.setToolTip("Show every map of this layer (may be many)")
        self.show_all_button.setAccessibleName("Show all feature maps")
        self.show_all_button.clicked.connect(self._on_show_all)
        self.show_all_button.hide()
        self.filters_heading = heading("First-layer filters")
        self.filters_note = muted("")
        self.filters_grid = TileGrid(40)
        self.filters_grid.setAccessibleName("First-layer filters")
        right_inner = QWidget()
        rl = QVBoxLayout(right_inner)
        rl.addWidget(self.layer_heading)
        rl.addWidget(self.caption_label)
        rl.addSpacing(6)
        rl.addWidget(self.maps_heading)
        rl.addWidget(self.maps_note)
        rl.addWidget(self.maps_grid)
        rl.addWidget(self.show_all_button, 0, Qt.AlignmentFlag.AlignLeft)
        rl.addSpacing(6)
        rl.addWidget(self.filters_heading)
        rl.addWidget(self.filters_note)
        rl.addWidget(self.filters_grid)
        rl.addStretch(1)
        self.right_scroll = QScrollArea()
        self.right_scroll.setWidgetResizable(True)
        self.right_scroll.setWidget(right_inner)
        self.right_scroll.setFrameShape(QFrame.Shape.NoFrame)

        self.bottom_split = QSplitter(Qt.Orientation.Horizontal)
        self.bottom_split.addWidget(left)
        self.bottom_split.addWidget(self.right_scroll)
        self.bottom_split.setStretchFactor(0, 5)
        self.bottom_split.setStretchFactor(1, 6)
        self.bottom_split.setSizes([560, 700])
        self.main_split = QSplitter(Qt.Orientation.Vertical)
        self.main_split.addWidget(self.diagram_box)
        self.main_split.addWidget(self.bottom_split)
        self.main_split.setStretchFactor(0, 2)
        self.main_split.setStretchFactor(1, 3)
        self.main_split.setChildrenCollapsible(False)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.main_split, 1)
        self._set_details_visible(False)

    def _set_details_visible(self, on: bool) -> None:
        for w in (self.maps_heading, self.maps_grid, self.filters_heading, self.filters_grid, self.filters_note):
            w.setVisible(on)

    # ---- the model --------------------------------------------------------------------------
    def set_model_path(self, path: str) -> None:
        """Load a model file in the background; the current one stays until it is ready, and stays if
        the new file cannot be opened."""
        path = str(path)
        if self._model_task is not None:
            self._model_task.discard()

        def load(state: TaskState) -> Loaded:
            from ..core.inference import Predictor
            from ..core.models import summary

            predictor = Predictor(path, "cpu")
            model, info = predictor.model, predictor.info
            layers = summary(model, info.image_size)
            stored = sum(p.numel() for p in model.parameters())
            filters = explain.first_layer_filters(model)
            first = explain.first_conv(model)
            boxes = explain.lenet_diagram_spec(layers, info.image_size) if explain.is_lenet(layers) else None
            return Loaded(predictor, layers, stored, filters, first[0] if first else "", boxes)

        self.status_message.emit(f"Opening model {Path(path).name}…")
        task = self._model_task = self._start(Task(load, self, "network: load model"))
        task.done.connect(lambda res: self._on_model(res, path))
        task.failed.connect(lambda msg: self._on_model_failed(msg, path))
        task.start()

    def _on_model(self, res: Loaded, path: str) -> None:
        self._model_task = None
        if self._maps_task is not None:
            self._maps_task.discard()
            self._maps_task = None
        self.predictor, self.layers, self.stored_params = res.predictor, res.layers, res.stored
        self._modules = dict(res.predictor.model.named_modules())
        self.model_path = path
        self._maps = {}
        self._image_array = None
        self.model_error.hide()
        self._update_model_label()
        self._fill_table()
        self._fill_filters(res.filters, res.filters_layer)
        if res.boxes:
            kernels = {}
            for l in res.layers:
                try:
                    kernels[l.name] = int(str(l.kernel).split("x")[0]) if l.kernel else 0
                except ValueError:
                    kernels[l.name] = 0
            self.diagram.set_boxes(res.boxes, kernels)
            self.diagram.show()
            self.diagram_box.setMaximumHeight(16777215)
            self.diagram_note.setText("LeNet-5 as drawn in Figure 2 of LeCun et al. (1998), computed from this model; "
                                      "click a volume to see its feature maps.")
        else:
            self.diagram.set_boxes([], {})
            self.diagram.hide()
            self.diagram_box.setMaximumHeight(self.diagram_note.sizeHint().height() + 12)
            self.diagram_note.setText(
                f"The Figure 2 style drawing is for LeNet-5 models. This {self._model_title()} has "
                f"{len(self.layers):,} layers: they are all in the table below.")
        self._set_details_visible(True)
        first = next((l.name for l in self.layers if explain.has_maps(l)), self.layers[0].name if self.layers else "")
        self.select_layer(first)
        if self.image_source is not None:
            self._compute_input_preview()
        self.status_message.emit(f"Network: {Path(path).name}")
        self.model_loaded.emit(path)

    def _on_model_failed(self, msg: str, path: str) -> None:
        self._model_task = None
        keep = f" Still showing {Path(self.model_path).name}." if self.predictor is not None else ""
        self.model_error.setText(f"Could not open {Path(path).name}: {msg}.{keep}".replace("..", "."))
        self.model_error.show()
        self.status_message.emit(f"Could not open {Path(path).name}: {msg}")
        self.model_failed.emit(msg)

    def _model_title(self) -> str:
        from ..core.models import title_of

        return title_of(self.predictor.info.model_name) if self.predictor is not None else ""

    def _update_model_label(self) -> None:
        if self.predictor is None:
            self.model_label.setText(
                "<b>No model yet.</b> Train one in the <b>Training</b> tab or open a model file (Ctrl+Shift+O): "
                "its layers, a drawing of LeNet-5 and what each layer sees in a photo appear here.")
            self.diagram_note.setText("")
            self.diagram.hide()
            self.diagram_box.setMaximumHeight(0)
            return
        info = self.predictor.info
        self.model_label.setText(
            f"<b>{self._model_title()}</b> &nbsp;·&nbsp; {Path(self.model_path).name} &nbsp;·&nbsp; "
            f"input {info.image_size}×{info.image_size}×3 &nbsp;·&nbsp; {len(info.classes)} classes: "
            f"{', '.join(info.classes)}<br><span>A ConvNet is a stack of layers: each turns the 3D volume it "
            f"receives (channels × height × width) into a new one.</span>")
        self.model_label.setToolTip(str(self.model_path))

    def _fill_table(self) -> None:
        t = self.table
        t.blockSignals(True)
        t.clearSelection()
        t.setRowCount(len(self.layers))
        lenet = explain.is_lenet(self.layers)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, l in enumerate(self.layers):
            name = f"{explain.PAPER_LABELS[l.name]} ({l.name})" if lenet else l.name
            cells = (name, l.kind, l.kernel or "-", l.stride or "-", _shape_text(l.out_shape), f"{l.params:,}")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 5:
                    item.setTextAlignment(right)
                if c == 0:
                    item.setData(Qt.ItemDataRole.UserRole, l.name)
                item.setToolTip(self._caption(l))
                t.setItem(r, c, item)
        t.blockSignals(False)
        total = sum(l.params for l in self.layers)
        text = f"<b>{len(self.layers):,} layers · {total:,} parameters</b> (the sum of the column)"
        diff = self.stored_params - total
        if diff > 0:
            if lenet:
                text += (f". The file stores {self.stored_params:,} numbers: the other {diff:,} are C3 weights that "
                         "the paper's connection table (Table I) keeps at zero, so they are not counted.")
            else:
                text += f". The file stores {self.stored_params:,} numbers ({diff:,} in layers not listed)."
        self.totals_label.setText(text)

    def _fill_filters(self, filters: np.ndarray, layer: str) -> None:
        if len(filters) == 0:
            self.filters_grid.set_images([])
            self.filters_note.setText("This model has no convolution reading the image.")
            return
        n, kh, kw, _ = filters.shape
        images = [_rgb_image((f * 255 + 0.5).clip(0, 255).astype(np.uint8)) for f in filters]
        self.filters_grid.set_images(images, [f"filter {i + 1} of {n} ({kh}x{kw} x 3 colours)" for i in range(n)],
                                     tile=48 if n <= 16 else 32)
        self.filters_note.setText(
            f"The {n} filters {layer} slides over the photo, {kh}x{kw} pixels x 3 colours each, enlarged: grey is a "
            "zero weight, a colour means that colour at that spot makes the map brighter, its opposite darker.")

    # ---- layers -----------------------------------------------------------------------------
    def _caption(self, l) -> str:
        module = self._modules.get(l.name)
        return explain.caption_for(l, is_output=l is self.layers[-1], module=module)

    def layer(self, name: str):
        return next((l for l in self.layers if l.name == name), None)

    def selected_layer(self) -> str:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return ""
        item = self.table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item else ""

    def select_layer(self, name: str) -> None:
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == name:
                if self.selected_layer() == name:
                    self._on_table_selection()
                else:
                    self.table.selectRow(r)
                self.table.scrollToItem(item)
                return

    def _on_table_selection(self) -> None:
        name = self.selected_layer()
        l = self.layer(name)
        if l is None:
            return
        self._show_all = False
        self.diagram.set_selected(name)
        label = explain.PAPER_LABELS.get(name, name) if explain.is_lenet(self.layers) else name
        self.layer_heading.setText(f"{label} · {l.kind} · {_shape_text(l.out_shape)}")
        self.caption_label.setText(self._caption(l))
        self._request_maps(name)

    # ---- the image and its feature maps -----------------------------------------------------
    def set_image(self, source) -> None:
        """Use a photo (a path or encoded bytes) for the feature maps."""
        if source is not None and source == self.image_source:
            return
        if isinstance(source, (bytes, bytearray)):
            self.image_source, self.image_name = bytes(source), "pasted image"
        else:
            self.image_source, self.image_name = str(source), Path(source).name
        self._maps = {}
        self._image_array = None
        if self.predictor is not None:
            self._compute_input_preview()
            name = self.selected_layer()
            if name:
                self._request_maps(name)

    def open_image_dialog(self) -> None:
        start = str(Path(self.image_source).parent) if isinstance(self.image_source, str) else ""
        pattern = " ".join(f"*{e}" for e in sorted(IMAGE_EXTS))
        path, _ = QFileDialog.getOpenFileName(self, "Choose a photo", start, f"Images ({pattern});;All files (*)")
        if path:
            self.set_image(path)

    def _compute_input_preview(self) -> None:
        # cheap (one decode): the maps task does the same decode again; done here so the photo shows at once
        self.photo_text.setText(f"{self.image_name}<br>as the model sees it")

    def _request_maps(self, name: str) -> None:
        l = self.layer(name)
        if self._maps_task is not None:
            self._maps_task.discard()
            self._maps_task = None
        if l is None or not explain.has_maps(l):
            self.maps_grid.set_images([])
            self.show_all_button.hide()
            self.maps_note.setText("This layer outputs a flat list of numbers, not maps: there are no pictures "
                                   "to show. Pick a convolution or pooling layer.")
            return
        if self.image_source is None:
            self.maps_grid.set_images([])
            self.show_all_button.hide()
            self.maps_note.setText("Choose a photo (or classify one in the Prediction tab) to see what this "
                                   "layer makes of it.")
            return
        if name in self._maps:
            self._show_maps(name)
            return
        predictor, source = self.predictor, self.image_source
        names = [name]
        if explain.is_lenet(self.layers):  # tiny: every volume at once, for the diagram's front planes too
            names = [x.name for x in self.layers if explain.has_maps(x)]
        need_image = self._image_array is None
        array = self._image_array

        def work(state: TaskState):
            arr = predictor.preprocess(source) if array is None else array
            state.check()
            maps = explain.feature_maps(predictor.model, predictor.to_input(arr), names)
            return arr, {k: explain.to_uint8_maps(v) for k, v in maps.items()}

        self.maps_note.setText(f"Computing the feature maps of {name}…")
        task = self._maps_task = self._start(Task(work, self, "network: feature maps"))
        task.done.connect(lambda res, name=name, need=need_image: self._on_maps(res, name, need))
        task.failed.connect(self._on_maps_failed)
        task.start()

    def _on_maps(self, res, name: str, new_image: bool) -> None:
        self._maps_task = None
        arr, maps = res
        self._maps.update(maps)
        if new_image or self._image_array is None:
            self._image_array = arr
            img = _rgb_image(arr.transpose(1, 2, 0))
            self.photo_label.setPixmap(QPixmap.fromImage(img).scaled(
                60, 60, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
            self.photo_label.setToolTip(f"{self.image_name}: the centre square at {arr.shape[1]}x{arr.shape[2]} "
                                        "pixels, exactly what the network receives")
            self.diagram.set_input_image(img)
        for layer, m in maps.items():
            if len(m) and m.shape[1] * m.shape[2] > 1:
                self.diagram.set_front(layer, _gray_image(m[0]))
        self._show_maps(name)

    def _on_maps_failed(self, msg: str) -> None:
        self._maps_task = None
        if msg == "cancelled":
            return
        self.maps_grid.set_images([])
        self.show_all_button.hide()
        self.maps_note.setText(f"Could not compute the feature maps: {msg}")
        self.status_message.emit(f"Feature maps: {msg}")

    def _show_maps(self, name: str) -> None:
        m = self._maps[name]
        c, h, w = m.shape
        n = c if self._show_all else min(c, MAP_CAP)
        tile = 96 if n <= 8 else 72 if n <= 24 else 56 if n <= 64 else 40
        images = [_gray_image(m[i]) for i in range(n)]
        self.maps_grid.set_images(images, [f"map {i + 1} of {c} ({h}x{w})" for i in range(n)], tile=tile)
        shown = f"All {c:,}" if n == c else f"The first {n:,} of {c:,}"
        self.maps_note.setText(
            f"{shown} maps of {h}x{w} for {self.image_name}, each stretched from its darkest (black) to its "
            "brightest (white) value: bright is where the layer's pattern was found.")
        if n < c:
            self.show_all_button.setText(f"Show all {c:,} maps")
            self.show_all_button.show()
        else:
            self.show_all_button.hide()
        self.maps_ready.emit(name)

    def _on_show_all(self) -> None:
        name = self.selected_layer()
        if name in self._maps:
            self._show_all = True
            self._show_maps(name)

    # ---- tasks ------------------------------------------------------------------------------
    def _start(self, task: Task) -> Task:
        self._tasks = {t for t in self._tasks if t.is_running()}
        self._tasks.add(task)
        return task

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
        self._model_task = self._maps_task = None

    def closeEvent(self, e):  # noqa: N802
        self.shutdown()
        super().closeEvent(e)
