"""The live loss and accuracy curves of a :class:`~catdog_gui.gui.models.training_run.TrainingRun` (pyqtgraph).

Each curve is created once and updated with ``setData`` (pyqtgraph's advice for live plots); the
per-batch curve is clipped to the view and downsampled, so a long run stays cheap to repaint. The
best epoch (the one whose model is kept) is marked on both plots. Under the loss, a narrow plot shows
each step's learning rate (the schedule: ``TrainConfig.schedule``) on the same epoch axis. pyqtgraph is imported only in
:meth:`TrainingPlots.ensure` (after the window is on screen; :class:`~catdog_gui.gui.common.plots.LazyPlots`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout

from ..common.plots import LazyPlots, style_plot
from ..common import style


class TrainingPlots(LazyPlots):
    """Loss (per batch, smoothed; per epoch) and accuracy (per epoch) of one run."""

    def __init__(self, parent=None):
        super().__init__("The loss and accuracy curves appear here.", QHBoxLayout, parent)
        self._x_epochs = None  # the fixed epoch axis of a run in progress (None: fitted to the data)

    def build(self, pg) -> None:
        c = style.colors()

        def make(title, ylabel):
            # the legend sits in its own row above the plot: it never hides a curve
            w = self.new_canvas(title)
            w.ci.setSpacing(0)
            legend = self.new_legend()
            w.addItem(legend, row=0, col=0)
            p = w.addPlot(row=1, col=0)
            style_plot(p, title, "epoch", ylabel, "11pt")
            w.plot_item, w.legend = p, legend
            return w

        def epoch_curve(plot, key, symbol):
            return plot.plot([], [], pen=pg.mkPen(c[key], width=2), symbol=symbol, symbolSize=6,
                             symbolBrush=c[key], symbolPen=None)

        self.loss_plot = make("Loss (lower is better)", "cross-entropy loss")
        self.acc_plot = make("Accuracy (higher is better)", "accuracy (%)")
        lp = self.loss_plot.plot_item
        lp.setClipToView(True)
        lp.setDownsampling(auto=True, mode="peak")
        self.curve_batch = lp.plot([], [], pen=pg.mkPen(c["batch"], width=1))
        self.curve_train_loss = epoch_curve(lp, "train", "o")
        self.curve_val_loss = epoch_curve(lp, "val", "s")
        self.best_loss_point = pg.ScatterPlotItem([], [], symbol="star", size=16, brush=c["best"], pen=None)
        lp.addItem(self.best_loss_point)
        # the learning rate of each step, under the loss, on the same epoch axis
        rp = self.lr_plot = self.loss_plot.addPlot(row=2, col=0)
        style_plot(rp, "", "epoch", "learning rate", "9pt")
        rp.setMaximumHeight(110)
        rp.setXLink(lp)
        rp.setClipToView(True)
        rp.setDownsampling(auto=True, mode="peak")
        lp.setLabel("bottom", "")
        self.curve_lr = rp.plot([], [], pen=pg.mkPen(c["val"], width=1.5))
        leg = self.loss_plot.legend
        leg.addItem(self.curve_batch, "per batch (smoothed)")
        leg.addItem(self.curve_train_loss, "training")
        leg.addItem(self.curve_val_loss, "validation")
        ap = self.acc_plot.plot_item
        self.curve_train_acc = epoch_curve(ap, "train", "o")
        self.curve_val_acc = epoch_curve(ap, "val", "s")
        self.best_point = pg.ScatterPlotItem([], [], symbol="star", size=16, brush=c["best"], pen=None)
        ap.addItem(self.best_point)
        leg = self.acc_plot.legend
        leg.addItem(self.curve_train_acc, "training")
        leg.addItem(self.curve_val_acc, "validation")
        leg.addItem(self.best_point, "best epoch (kept)")
        ap.setYRange(0, 100, padding=0.02)
        self.best_lines = []
        for p in (lp, ap):
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen(c["best"], width=1, style=Qt.PenStyle.DashLine))
            line.hide()
            p.addItem(line, ignoreBounds=True)
            self.best_lines.append(line)
        self.lay.addWidget(self.loss_plot)
        self.lay.addWidget(self.acc_plot)

    # ------------------------------------------------------------------------------ drawing
    def draw(self, run) -> None:
        """Everything from ``run`` (None: empty plots), e.g. when a run starts or is shown again."""
        if not self.ready:
            return
        if run is None:
            self.curve_batch.setData([], [])
            self.curve_lr.setData([], [])
        else:
            self.draw_batches(run)
        self.draw_epochs(run)
        if run is not None and run.is_active():
            self.set_x_range(run.epochs_total)
        else:
            self.fit()

    def draw_batches(self, run) -> None:
        if self.ready:
            self.curve_batch.setData(run.batch_x, run.batch_smooth)
            self.curve_lr.setData(run.batch_x, run.batch_lr)

    def draw_epochs(self, run) -> None:
        if not self.ready:
            return
        epochs = run.epochs if run is not None else []
        ex = [e.epoch for e in epochs]
        self.curve_train_loss.setData(ex, [e.train_loss for e in epochs])
        self.curve_val_loss.setData(ex, [e.val_loss for e in epochs])
        self.curve_train_acc.setData(ex, [e.train_acc * 100 for e in epochs])
        self.curve_val_acc.setData(ex, [e.val_acc * 100 for e in epochs])
        best = run.best_epoch if run is not None else 0
        hit = [e for e in epochs if e.epoch == best]
        if hit:
            self.best_point.setData([best], [hit[-1].val_acc * 100])
            self.best_loss_point.setData([best], [hit[-1].val_loss])
            for line in self.best_lines:
                line.setValue(best)
                line.show()
        else:
            self.best_point.setData([], [])
            self.best_loss_point.setData([], [])
            for line in self.best_lines:
                line.hide()
        if run is not None and run.is_active():
            self.set_x_range(run.epochs_total)

    def set_x_range(self, epochs: int) -> None:
        """A fixed epoch axis for the whole run: the axes do not re-layout on every update."""
        if not self.ready or self._x_epochs == epochs:
            return
        self._x_epochs = epochs
        for w in (self.loss_plot, self.acc_plot):
            vb = w.plot_item.getViewBox()
            vb.enableAutoRange(x=False)
            vb.setXRange(0 if w is self.loss_plot else 1, max(epochs, 2), padding=0.03)

    def fit(self) -> None:
        """The run is over: fit the axes to what happened."""
        if not self.ready:
            return
        self._x_epochs = None
        for w in (self.loss_plot, self.acc_plot):
            w.plot_item.getViewBox().enableAutoRange(x=True)
