"""The Network tab's two painted widgets: LeNet-5 drawn as in the 1998 paper, and a grid of small
pictures (feature maps, filters). Plain Qt painting: no model, no torch."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..common import style

__all__ = ["LeNetDiagram", "TileGrid"]


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
