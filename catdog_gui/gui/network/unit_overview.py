"""The explainer's overview: every unit of every layer of a LeNet-5 at once, coloured by value.

Each layer is a column of its maps (a flat layer's units are 1x1 maps), on one colour scale per layer
(blue negative, white zero, orange positive; the scale is written under the column), from the input
to the softmax. Clicking a unit selects it: the units it reads in the layer before are outlined and
joined to it. Keyboard: arrows move inside a map, Page Up / Page Down change map, Ctrl+Left / Ctrl+Right
change layer. Plain Qt painting of a :class:`~catdog_gui.core.inference.unit_arithmetic.Trace`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...core.inference.explain_html import layer_scale, num, value_colours
from ...core.inference.unit_arithmetic import reads
from ..common.images import rgb_image

__all__ = ["UnitOverview", "Column", "layout_columns"]

#: how much of the width each layer's column gets
_WEIGHT = {"input": 1.0, "c1": 1.3, "s2": 1.0, "c3": 1.6, "s4": 1.1, "c5": 0.9, "f6": 0.8, "output": 0.5,
           "softmax": 0.5}
_HEAD, _FOOT, _GAP = 18, 16, 3


@dataclass
class Column:
    """Where one layer is drawn: its maps' top-left corners and the side of one unit, in pixels."""

    name: str
    label: str
    shape: tuple[int, int, int]
    x: float
    width: float
    cell: float
    origins: list  # (x, y) of each map

    def map_rect(self, c: int) -> QRectF:
        _n, h, w = self.shape
        x, y = self.origins[c]
        return QRectF(x, y, w * self.cell, h * self.cell)

    def unit_rect(self, c: int, y: int, x: int) -> QRectF:
        ox, oy = self.origins[c]
        return QRectF(ox + x * self.cell, oy + y * self.cell, self.cell, self.cell)

    def unit_at(self, p: QPointF) -> Optional[tuple[int, int, int]]:
        _n, h, w = self.shape
        for c, (ox, oy) in enumerate(self.origins):
            if ox <= p.x() < ox + w * self.cell and oy <= p.y() < oy + h * self.cell:
                return c, int((p.y() - oy) // self.cell), int((p.x() - ox) // self.cell)
        return None


def layout_columns(stages: list[tuple[str, str, tuple[int, int, int]]], width: float, height: float) -> list[Column]:
    """Columns for ``stages`` ((name, label, (C, H, W)) in order) in a ``width`` x ``height`` area: each
    gets a share of the width; its maps go in as many sub-columns as make the units largest."""
    total = sum(_WEIGHT.get(n, 1.0) for n, _l, _s in stages)
    cols, x = [], 4.0
    usable_h = max(20.0, height - _HEAD - _FOOT - 4)
    for name, label, (c, h, w) in stages:
        cw = max(12.0, (width - 8) * _WEIGHT.get(name, 1.0) / total)
        best = (0.0, 1)
        for k in range(1, c + 1):
            rows = math.ceil(c / k)
            cell = min((cw - 6 - _GAP * (k - 1)) / (k * w), (usable_h - _GAP * (rows - 1)) / (rows * h))
            if cell > best[0]:
                best = (cell, k)
        cell, k = max(best[0], 0.5), best[1]
        if h == 1 and w == 1:  # a flat layer's few units (the output) stay unit-sized, not slabs
            cell = min(cell, 26.0)
        gap = _GAP if cell * min(h, w) > 2 else 0.5
        grid_w = k * w * cell + gap * (k - 1)
        x0 = x + (cw - grid_w) / 2
        origins = [(x0 + (i % k) * (w * cell + gap), _HEAD + (i // k) * (h * cell + gap)) for i in range(c)]
        cols.append(Column(name, label, (c, h, w), x, cw, cell, origins))
        x += cw
    return cols


class UnitOverview(QWidget):
    """Every unit of a traced LeNet-5 (see the module docstring)."""

    unit_selected = Signal(str, int, int, int)  # layer ("softmax" for the probabilities), map, y, x

    def __init__(self, parent=None):
        super().__init__(parent)
        self.trace = None
        self.model = None
        self.columns: list[Column] = []
        self.values: dict[str, np.ndarray] = {}  # layer -> (C, H, W)
        self.scales: dict[str, float] = {}
        self.images: dict[str, list] = {}  # layer -> one QImage per map
        self.selected: Optional[tuple[str, int, int, int]] = None
        self.fill: Optional[tuple[str, int, int]] = None  # (layer, map, units shown) while animating
        self.setMinimumSize(480, 260)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Every unit of every layer")
        self.setToolTip("Every unit of every layer for this photo, one colour scale per layer (blue negative, "
                        "orange positive). Click a unit to see how its value was computed. Keys: arrows move, "
                        "Page Up/Down change map, Ctrl+Left/Right change layer.")

    # ---- data -------------------------------------------------------------------------------
    def set_trace(self, tr, model) -> None:
        """Show ``tr`` (a Trace of ``model``); keeps the selected unit when it still exists."""
        self.trace, self.model = tr, model
        self.values = {s.name: s.out for s in tr.stages}
        self.values["softmax"] = tr.probabilities.reshape(-1, 1, 1)
        self.scales = {k: (1.0 if k == "softmax" else layer_scale(v)) for k, v in self.values.items()}
        self.images = {k: [rgb_image(value_colours(m, self.scales[k])) for m in v] for k, v in self.values.items()
                       if v.shape[1] * v.shape[2] > 1}
        self._relayout()
        if self.selected is not None and not self._exists(*self.selected):
            self.selected = None
        self.update()

    def stages(self) -> list[tuple[str, str, tuple[int, int, int]]]:
        if self.trace is None:
            return []
        out = [(s.name, s.label, tuple(s.out.shape)) for s in self.trace.stages]
        return out + [("softmax", "SOFTMAX", tuple(self.values["softmax"].shape))]

    def _exists(self, layer, c, y, x) -> bool:
        v = self.values.get(layer)
        return v is not None and 0 <= c < v.shape[0] and 0 <= y < v.shape[1] and 0 <= x < v.shape[2]

    def column(self, name: str) -> Optional[Column]:
        return next((c for c in self.columns if c.name == name), None)

    def _relayout(self) -> None:
        self.columns = layout_columns(self.stages(), self.width(), self.height())

    def resizeEvent(self, e):  # noqa: N802
        self._relayout()
        super().resizeEvent(e)

    # ---- selection --------------------------------------------------------------------------
    def select(self, layer: str, c: int = 0, y: int = 0, x: int = 0, emit: bool = True) -> bool:
        """Select a unit (False when there is no such unit)."""
        if layer == "input" or not self._exists(layer, c, y, x):
            return False
        self.selected = (layer, c, y, x)
        self.update()
        if emit:
            self.unit_selected.emit(layer, c, y, x)
        return True

    def set_fill(self, fill: Optional[tuple[str, int, int]]) -> None:
        """While animating: only the first ``n`` units of (layer, map) are drawn filled in."""
        self.fill = fill
        self.update()

    def unit_at(self, p: QPointF) -> Optional[tuple[str, int, int, int]]:
        for col in self.columns:
            if col.x <= p.x() < col.x + col.width:
                hit = col.unit_at(p)
                return (col.name, *hit) if hit else None
        return None

    def mousePressEvent(self, e):  # noqa: N802
        hit = self.unit_at(e.position())
        if hit is not None and hit[0] != "input":
            self.select(*hit)
        self.setFocus()

    def keyPressEvent(self, e):  # noqa: N802
        if self.selected is None:
            if self.trace is not None and e.key() in (Qt.Key.Key_Right, Qt.Key.Key_Down):
                self.select("c1", 0, 0, 0)
                return
            super().keyPressEvent(e)
            return
        layer, c, y, x = self.selected
        names = [n for n, _l, _s in self.stages()][1:]  # the input has no arithmetic
        k, ctrl = e.key(), bool(e.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if ctrl and k in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            i = names.index(layer) + (1 if k == Qt.Key.Key_Right else -1)
            if 0 <= i < len(names):
                new = names[i]
                n, h, w = self.values[new].shape
                self.select(new, min(c, n - 1), min(y, h - 1), min(x, w - 1))
            return
        moves = {Qt.Key.Key_Left: (0, 0, -1), Qt.Key.Key_Right: (0, 0, 1), Qt.Key.Key_Up: (0, -1, 0),
                 Qt.Key.Key_Down: (0, 1, 0), Qt.Key.Key_PageUp: (-1, 0, 0), Qt.Key.Key_PageDown: (1, 0, 0)}
        if k not in moves:
            super().keyPressEvent(e)
            return
        dc, dy, dx = moves[k]
        _n, h, w = self.values[layer].shape
        if h == 1 and w == 1 and dy:  # a flat layer: up/down walk its units
            dc, dy = dy, 0
        self.select(layer, c + dc, y + dy, x + dx)

    # ---- painting ---------------------------------------------------------------------------
    def paintEvent(self, _e):  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().base())
        if self.trace is None:
            p.end()
            return
        text = self.palette().text().color()
        for col in self.columns:
            self._paint_column(p, col, text)
        if self.selected is not None:
            self._paint_selection(p)
        p.end()

    def _paint_column(self, p: QPainter, col: Column, text: QColor) -> None:
        v = self.values[col.name]
        c, h, w = col.shape
        p.setPen(text)
        p.drawText(QRectF(col.x, 0, col.width, _HEAD), Qt.AlignmentFlag.AlignCenter,
                   f"{col.label} {c}" if h * w == 1 else f"{col.label} {c}@{h}x{w}")
        scale = self.scales[col.name]
        p.drawText(QRectF(col.x, self.height() - _FOOT, col.width, _FOOT), Qt.AlignmentFlag.AlignCenter,
                   "0..1" if col.name == "softmax" else f"±{num(scale)[:6]}")
        fill = self.fill if self.fill and self.fill[0] == col.name else None
        if h * w > 1:
            for i, img in enumerate(self.images[col.name]):
                r = col.map_rect(i)
                p.drawImage(r, img)
                if fill is not None and fill[1] == i:  # the animation's unfinished part is blank
                    y, x = divmod(fill[2], w)
                    blank = QColor(235, 235, 235)
                    if y < h:
                        first = col.unit_rect(i, y, x)
                        p.fillRect(QRectF(first.x(), first.y(), (w - x) * col.cell, col.cell), blank)
                        p.fillRect(QRectF(r.x(), first.bottom(), r.width(), r.bottom() - first.bottom()), blank)
        else:
            colours = value_colours(v.reshape(-1), scale)
            for i in range(c):
                r = col.map_rect(i)
                p.fillRect(r, QColor(*colours[i].tolist()))

    def _paint_selection(self, p: QPainter) -> None:
        layer, c, y, x = self.selected
        col = self.column(layer)
        if col is None:
            return
        target = col.unit_rect(c, y, x).adjusted(-1, -1, 1, 1)
        hl = QColor(20, 20, 20)
        if layer == "softmax":
            src, rects = self.column("output"), [(i, 0, 0, 1, 1) for i in range(self.values["output"].shape[0])]
        else:
            names = [n for n, _l, _s in self.stages()]
            src = self.column(names[names.index(layer) - 1])
            rects = reads(self.trace, self.model, layer, c, y, x)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pen = QPen(QColor(40, 40, 40, 90 if len(rects) > 20 else 160))
        pen.setWidthF(0.8)
        for ch, y0, x0, rh, rw in rects:
            a = src.unit_rect(ch, y0, x0)
            r = QRectF(a.x(), a.y(), rw * src.cell, rh * src.cell)
            p.setPen(pen)
            p.drawLine(r.center(), target.center())
            p.setPen(QPen(hl, 1.5))
            p.drawRect(r)
        p.setPen(QPen(hl, 2.0))
        p.drawRect(target)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
