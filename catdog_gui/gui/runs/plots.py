"""The Runs tab's curves: loss and accuracy per epoch of the selected runs, overlaid on one pair of axes.

One colour per run (:data:`RUN_COLORS`, the same colour as the run's column header in the details
table), solid for validation and dashed for training, a star on each run's best epoch (the model it
kept). pyqtgraph is imported in :meth:`RunsPlots.ensure`
(:class:`~catdog_gui.gui.common.plots.LazyPlots`), after the window is on screen.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from ...core.storage.run_store import RunRecord
from ..common import style
from ..common.plots import LazyPlots, style_plot

#: one colour per run of a comparison (colour-blind-friendly, after Okabe and Ito)
RUN_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8c6d31", "#7f7f7f")


class RunsPlots(LazyPlots):
    """Loss and accuracy per epoch of one or more runs on the same axes (solid: validation, dashed:
    training), one legend above both. The curves are made once and reused with ``setData``; a run's
    best epoch (the model it kept) is a star."""

    def __init__(self, parent=None):
        super().__init__("Select a run to see its curves; select two or more to compare them.", parent=parent)
        self.sets: list[dict] = []  # per shown run: its curves ("train_loss", "val_loss", "train_acc", ...)
        self.shown: list[str] = []  # the ids drawn, in the order of self.sets
        self._records: list[RunRecord] = []

    def ensure(self) -> None:
        if not self.ready:
            super().ensure()
            self.show_runs(self._records)

    def build(self, pg) -> None:
        w = self.view = self.new_canvas("Loss and accuracy per epoch of the selected runs")
        self.legend = self.new_legend()
        w.addItem(self.legend, row=0, col=0, colspan=2)
        self.plot_items = []
        for col, (title, ylabel) in enumerate((("Loss (lower is better)", "cross-entropy loss"),
                                               ("Accuracy (higher is better)", "accuracy (%)"))):
            p = w.addPlot(row=1, col=col)
            style_plot(p, title, "epoch (solid: validation, dashed: training)", ylabel, "10pt")
            self.plot_items.append(p)
        self.loss_plot, self.acc_plot = self.plot_items
        self.lay.addWidget(w)

    def _make_set(self) -> dict:
        pg, lp, ap = self.pg, self.loss_plot, self.acc_plot
        s = {}
        for key, plot in (("train_loss", lp), ("val_loss", lp), ("train_acc", ap), ("val_acc", ap)):
            s[key] = plot.plot([], [])
        for key, plot in (("best_loss", lp), ("best_acc", ap)):
            s[key] = pg.ScatterPlotItem([], [], symbol="star", size=15)
            plot.addItem(s[key])
        return s

    def show_runs(self, records: list[RunRecord]) -> None:
        """Draw ``records`` (in this order, colour i for run i); [] clears the plots."""
        self._records = list(records)
        if not self.ready:
            return
        pg = self.pg
        while len(self.sets) < len(records):
            self.sets.append(self._make_set())
        self.legend.clear()
        for i, s in enumerate(self.sets):
            if i >= len(records):
                for item in s.values():
                    item.setData([], [])
                    item.hide()
                continue
            r, color = records[i], RUN_COLORS[i % len(RUN_COLORS)]
            h = [e for e in r.history if isinstance(e, dict)]
            x = [e.get("epoch", j + 1) for j, e in enumerate(h)]
            for key, scale in (("train_loss", 1), ("val_loss", 1), ("train_acc", 100), ("val_acc", 100)):
                train = key.startswith("train")
                s[key].setPen(pg.mkPen(color, width=1.5 if train else 2.2,
                                       style=Qt.PenStyle.DashLine if train else Qt.PenStyle.SolidLine))
                s[key].setData(x, [float(e.get(key, float("nan"))) * scale for e in h])
                s[key].show()
            best = [e for e in h if e.get("epoch") == r.best_epoch]
            for key, y, scale in (("best_loss", "val_loss", 1), ("best_acc", "val_acc", 100)):
                s[key].setBrush(pg.mkBrush(color))
                s[key].setPen(pg.mkPen(style.colors()["fg"], width=0.8))
                s[key].setData([r.best_epoch] if best else [], [float(best[-1][y]) * scale] if best else [])
                s[key].show()
            if len(records) == 1:
                self.legend.addItem(s["val_acc"], f"{r.title}: validation")
                self.legend.addItem(s["train_acc"], "training")
                self.legend.addItem(s["best_acc"], f"best epoch ({r.best_epoch}, kept)")
            else:
                self.legend.addItem(s["val_acc"], r.title)
        self.shown = [r.id for r in records]
        for p in self.plot_items:
            p.getViewBox().enableAutoRange()

    def legend_labels(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]

    def data_of(self, run_id: str) -> dict:
        """The plotted (x, y) of one shown run, by curve name."""
        s = self.sets[self.shown.index(run_id)]
        return {k: tuple(list(a) for a in item.getData()) for k, item in s.items()}
