"""pyqtgraph plots made when first needed, all with the same look.

pyqtgraph takes a while to import, so no view imports it while the window is built: a
:class:`LazyPlots` shows one line of text until :meth:`LazyPlots.ensure` (called once the window is
on screen) imports pyqtgraph and has the subclass build its plots in :meth:`LazyPlots.build`.
:meth:`LazyPlots.new_canvas`, :meth:`LazyPlots.new_legend` and :func:`style_plot` give the Training
tab's live curves and the Runs tab's comparison the same background, legend and axes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from . import style
from .widgets import muted


class LazyPlots(QWidget):
    """A placeholder text until :meth:`ensure`; then the plots :meth:`build` adds to ``self.lay``.

    ``layout``: the layout class the plots go in side by side (``QHBoxLayout``) or stacked (the
    default). ``self.pg`` is the pyqtgraph module once :attr:`ready`."""

    def __init__(self, placeholder: str, layout=QVBoxLayout, parent=None):
        super().__init__(parent)
        self.ready = False
        self.pg = None
        self.lay = layout(self)
        self.lay.setContentsMargins(0, 0, 0, 0)
        self.placeholder = muted(placeholder)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.lay.addWidget(self.placeholder)

    def ensure(self) -> None:
        """Import pyqtgraph and build the plots, once (call after the window is shown)."""
        if self.ready:
            return
        import pyqtgraph as pg

        self.pg = pg
        self.placeholder.hide()
        self.build(pg)
        self.ready = True

    def build(self, pg) -> None:
        """Create the plots and add them to ``self.lay`` (subclasses)."""
        raise NotImplementedError

    def new_canvas(self, name: str):
        """A pyqtgraph ``GraphicsLayoutWidget`` on this widget's background, with a thin margin."""
        w = self.pg.GraphicsLayoutWidget()
        w.setBackground(self.palette().color(self.backgroundRole()))
        w.setAccessibleName(name)
        w.ci.setContentsMargins(2, 2, 2, 2)
        return w

    def new_legend(self):
        """A legend of up to three entries a row, in the text colour (it sits in a row of its own)."""
        return self.pg.LegendItem(colCount=3, labelTextColor=style.colors()["fg"], verSpacing=-4, horSpacing=16)


def style_plot(plot, title: str, xlabel: str, ylabel: str, title_size: str) -> None:
    """Title, axis labels, a faint grid and the theme's colours on a pyqtgraph ``PlotItem``; its
    right-click menu off and plain numbers on the axes (no SI prefixes)."""
    c = style.colors()
    plot.setTitle(title, color=c["fg"], size=title_size)
    plot.setLabel("bottom", xlabel, color=c["fg"])
    plot.setLabel("left", ylabel, color=c["fg"])
    plot.showGrid(x=True, y=True, alpha=0.2)
    for ax in ("bottom", "left"):
        plot.getAxis(ax).setTextPen(c["fg"])
        plot.getAxis(ax).setPen(c["muted"])
        plot.getAxis(ax).enableAutoSIPrefix(False)
    plot.setMenuEnabled(False)
