"""The learning-rate finder's window: the sweep (:mod:`catdog_gui.core.training.lr_find`, through
:func:`~catdog_gui.core.training.harness.find_learning_rate`) runs in a process
of its own (:class:`~catdog_gui.gui.common.training_process.ProcessTask`) with a progress bar and Cancel;
then the smoothed loss is drawn against the learning rate (log axis), the suggestion marked and said in
words, and "Use" puts it into the Training form's learning rate. Nothing else changes.
"""

from __future__ import annotations

import math
from typing import Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QVBoxLayout

from ..common import style
from ..common.controls import push_button
from ..common.plots import style_plot
from ..common.training_process import ProcessTask


class LRFinderDialog(QDialog):
    """Signal: ``use_rate(lr)`` when the user takes the suggestion."""

    use_rate = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Find a learning rate")
        self.setModal(True)
        self.resize(640, 480)
        self.task: Optional[ProcessTask] = None
        self.found = None
        lay = QVBoxLayout(self)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        lay.addWidget(self.label)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Sweep progress")
        lay.addWidget(self.progress)
        import pyqtgraph as pg

        self._pg = pg
        self.plot = pg.PlotWidget(background=style.colors()["bg"])
        p = self.plot.getPlotItem()
        style_plot(p, "Loss while the learning rate grows", "learning rate (log scale)", "loss (smoothed)", "11pt")
        p.setLogMode(x=True, y=False)
        c = style.colors()
        self.curve_raw = p.plot([], [], pen=pg.mkPen(c["batch"], width=1))
        self.curve = p.plot([], [], pen=pg.mkPen(c["train"], width=2))
        self.mark = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(c["best"], width=2))
        self.mark.hide()
        p.addItem(self.mark, ignoreBounds=True)
        lay.addWidget(self.plot, 1)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        lay.addWidget(self.result)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.use_button = push_button("Use it", "Put the suggested learning rate into the Training form",
                                      self._use, name="Use the suggested learning rate", enabled=False)
        self.cancel_button = push_button("Cancel", "Stop the sweep", self._cancel_or_close)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.cancel_button)
        lay.addLayout(buttons)

    # ------------------------------------------------------------------------------ running
    def start(self, config, dataset, resume_from: Optional[str] = None) -> bool:
        """Sweep with ``config`` on ``dataset`` (a scanned Dataset); False when one is already running."""
        if self.task is not None:
            return False
        self.found = None
        self.curve.setData([], [])
        self.curve_raw.setData([], [])
        self.mark.hide()
        self.result.setText("")
        self.use_button.setEnabled(False)
        self.use_button.setText("Use it")
        self.cancel_button.setText("Cancel")
        self.label.setText(f"Training {config.model} for a few hundred batches while its learning rate grows from "
                           "1e-7 to 10, to see where the loss falls fastest and where it blows up. Nothing is "
                           "saved; the model and the settings stay as they are.")
        self.progress.setRange(0, 0)
        self.progress.show()
        task = self.task = ProcessTask("catdog_gui.core.training.harness:find_learning_rate", config, dataset,
                                       resume_from=resume_from, parent=self, name="lr-find")
        task.progress.connect(self._on_progress)
        task.done.connect(self._on_done)
        task.failed.connect(lambda m: self.result.setText(f"The sweep failed: {m}"))
        task.cancelled.connect(lambda: self.result.setText("Sweep cancelled."))
        task.finished.connect(self._on_finished)
        task.start()
        return True

    def is_running(self) -> bool:
        return self.task is not None

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_done(self, found) -> None:
        from ...core.training.lr_find import RULES

        self.found = found
        self.curve_raw.setData(found.lrs, found.losses)
        self.curve.setData(found.lrs, found.smoothed)
        self.mark.setValue(math.log10(found.suggestion))
        self.mark.show()
        top = max(found.smoothed[0] * 1.5, min(found.smoothed) * 1.2)
        self.plot.getPlotItem().setYRange(min(found.smoothed) * 0.95, top, padding=0)
        ended = "the loss diverged, so the sweep stopped" if found.diverged else "the sweep reached 10"
        self.result.setText(
            f"Suggested learning rate: {found.suggestion:.2e} ({RULES[found.rule]}). The loss was lowest at "
            f"{found.lr_at_min:.2e} and fell fastest at {found.steepest:.2e}; {ended} after {len(found.lrs)} "
            f"batches. Now {found.current_lr:g}.")
        self.use_button.setText(f"Use {found.suggestion:.2e}")
        self.use_button.setEnabled(True)

    def _on_finished(self) -> None:
        self.task = None
        self.progress.hide()
        self.cancel_button.setText("Close")

    def _use(self) -> None:
        if self.found is not None:
            self.use_rate.emit(float(self.found.suggestion))
            self.accept()

    def _cancel_or_close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        else:
            self.reject()

    def reject(self) -> None:
        if self.task is not None:  # closing the window cancels the sweep
            self.task.cancel()
        super().reject()

    def shutdown(self, ms: int = 10000) -> bool:
        self.task = None
        return ProcessTask.shutdown_all(self, ms)
