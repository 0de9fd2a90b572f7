"""The reliability diagram of a finished run: for each confidence bin, how often the model was right
(accuracy) against how sure it said it was (the diagonal: probabilities that mean what they say),
before and after temperature scaling, with the expected calibration error (ECE) of each.

It draws the calibration that the trainer stored with the run's metrics (``Metrics.calibration``:
:meth:`~catdog_gui.core.inference.calibration.Calibration.to_meta`): the "after" bins are
cross-fitted, each validation photo scored with a temperature fitted on the other half.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ...core.inference.calibration import Calibration
from ..common import style


class ReliabilityDiagram(QWidget):
    """Accuracy per confidence bin, before (hollow) and after (filled) temperature scaling."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.calibration: Optional[Calibration] = None
        self.setAccessibleName("Reliability diagram")
        self.setMinimumSize(260, 200)
        self.setMaximumHeight(240)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(320, 240)

    def set_calibration(self, meta) -> bool:
        """Show the calibration of a run (its metadata dict); False (and hidden) when there is none."""
        self.calibration = Calibration.from_meta(meta)
        c = self.calibration
        if c is not None:
            self.setToolTip(
                f"Each pair of bars: the validation photos whose top probability fell in that bin. Bar height: "
                f"how many of them the model got right; the number at its foot: how many photos. On the diagonal, a probability means what it says.\n"
                f"Before: ECE {c.ece_before * 100:.2f}%. After temperature scaling (T = {c.temperature:.2f}, "
                f"measured on photos the temperature was not fitted on): ECE {c.ece_after * 100:.2f}%.")
            self.setAccessibleDescription(f"ECE before {c.ece_before * 100:.2f}%, after {c.ece_after * 100:.2f}%")
        self.setVisible(c is not None)
        self.update()
        return c is not None

    def paintEvent(self, _e) -> None:  # noqa: N802
        c = self.calibration
        if c is None:
            return
        col = style.colors()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = p.fontMetrics()
        line = fm.lineSpacing()
        left, top, right, bottom = fm.horizontalAdvance("100%") + 10, line * 2 + 6, fm.horizontalAdvance("100") // 2 + 4, line * 2 + 8
        plot = QRectF(left, top, max(self.width() - left - right, 10), max(self.height() - top - bottom, 10))
        text = QColor(self.palette().color(self.foregroundRole()))
        muted = QColor(text)
        muted.setAlpha(110)
        # title: the two ECEs
        p.setPen(text)
        p.drawText(QRectF(0, 0, self.width(), line), Qt.AlignmentFlag.AlignLeft,
                   f"Reliability: ECE {c.ece_before * 100:.1f}% → {c.ece_after * 100:.1f}% (T = {c.temperature:.2f})")
        # lowest bin with photos: two classes never go below 50%
        used = [i for i, (a, b) in enumerate(zip(c.bins_before, c.bins_after)) if a.count or b.count]
        lo_bin = min(used) if used else 0
        lo = c.bins_before[lo_bin].low if c.bins_before else 0.0
        span = max(1.0 - lo, 1e-6)

        def x_of(v):
            return plot.left() + (v - lo) / span * plot.width()

        def y_of(v):
            return plot.bottom() - v * plot.height()

        # axes, grid and the diagonal
        p.setPen(QPen(muted, 1))
        p.drawRect(plot)
        for v in (0.0, 0.5, 1.0):
            p.drawText(QRectF(0, y_of(v) - line / 2, left - 4, line),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{v * 100:.0f}%")
        for b in c.bins_before[lo_bin:] + [None]:
            v = b.low if b is not None else 1.0
            p.drawText(QRectF(x_of(v) - 20, plot.bottom() + 2, 40, line), Qt.AlignmentFlag.AlignHCenter,
                       f"{v * 100:.0f}")
        p.drawText(QRectF(plot.left(), plot.bottom() + line + 2, plot.width(), line), Qt.AlignmentFlag.AlignHCenter,
                   "confidence (%)  ·  bar: accuracy")
        p.setPen(QPen(muted, 1, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(x_of(lo), y_of(lo)), QPointF(x_of(1.0), y_of(1.0)))
        # the bars: before hollow, after filled, side by side in each bin
        before, after = QColor(col["bad"]), QColor(col.get("accent", "#3c78d8"))
        for b0, b1 in zip(c.bins_before[lo_bin:], c.bins_after[lo_bin:]):
            x0, x1 = x_of(b0.low), x_of(b0.high)
            w = (x1 - x0) / 2 - 2
            if b0.count:
                p.setPen(QPen(before, 1.5))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(QRectF(x0 + 1, y_of(b0.accuracy), w, plot.bottom() - y_of(b0.accuracy)))
            if b1.count:
                fill = QColor(after)
                fill.setAlpha(190)
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(fill)
                p.drawRect(QRectF(x0 + w + 3, y_of(b1.accuracy), w, plot.bottom() - y_of(b1.accuracy)))
            # how many photos each bar stands for, at its foot (a bar of 1 photo is 0% or 100%)
            small = p.font()
            small.setPointSizeF(max(small.pointSizeF() * 0.75, 6))
            p.setFont(small)
            for n, bx, pen in ((b0.count, x0 + 1, text), (b1.count, x0 + w + 3, QColor("white"))):
                if n:
                    p.setPen(pen)
                    p.drawText(QRectF(bx - 4, plot.bottom() - line, w + 8, line),
                               Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, f"{n:,}")
            p.setFont(self.font())
        # legend
        y = line + 2
        p.setPen(QPen(before, 1.5))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(left, y + 3, 10, line - 6))
        p.setPen(text)
        p.drawText(QPointF(left + 14, y + fm.ascent()), "before")
        x = left + 14 + fm.horizontalAdvance("before") + 12
        fill = QColor(after)
        fill.setAlpha(190)
        p.fillRect(QRectF(x, y + 3, 10, line - 6), fill)
        p.drawText(QPointF(x + 14, y + fm.ascent()), "after temperature scaling")
        p.end()
