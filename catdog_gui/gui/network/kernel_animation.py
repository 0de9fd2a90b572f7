"""The explainer's animation: the kernel (or pooling window) slides over its input and the output map
fills in one value at a time. Play, pause, step and a speed in frames per second."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

__all__ = ["KernelAnimation"]


class KernelAnimation(QWidget):
    """Controls and clock of the sliding-window animation over one output map."""

    frame = Signal(int, int, int)  # y, x of the unit now computed, units done so far
    stopped = Signal()  # paused (by the user or at the end of the map)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.shape = (0, 0)
        self.done = 0
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.step)
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Slide the kernel over the input, filling the output map one value at a time")
        self.play_button.clicked.connect(self.toggle)
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("Compute the next value of the map")
        self.step_button.clicked.connect(self.step)
        self.speed = QSpinBox()
        self.speed.setRange(1, 60)
        self.speed.setValue(4)
        self.speed.setSuffix(" values/s")
        self.speed.setAccessibleName("Animation speed")
        self.speed.valueChanged.connect(self._set_speed)
        # Play/Pause keeps one width: a button that resizes would re-lay out the view on every toggle
        self.play_button.setMinimumWidth(max(self.play_button.fontMetrics().horizontalAdvance(t)
                                             for t in ("Play", "Pause")) + 32)
        self.position = QLabel("")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Animation:"))
        lay.addWidget(self.play_button)
        lay.addWidget(self.step_button)
        lay.addWidget(self.speed)
        lay.addWidget(self.position, 1)
        self.set_target(0, 0)

    def set_target(self, height: int, width: int, start: int = 0, note: Optional[str] = None) -> None:
        """Animate a map of ``height`` x ``width`` units (0 x 0: nothing to animate) from unit ``start``;
        ``note`` replaces the line saying why there is nothing to animate."""
        self.pause()
        self.shape, self.done = (height, width), start
        on = height * width > 1
        self.play_button.setEnabled(on)
        self.step_button.setEnabled(on)
        self.position.setText("" if on else ("a full connection has no window to slide" if note is None else note))

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def play(self) -> None:
        h, w = self.shape
        if h * w <= 1:
            return
        if self.done >= h * w:
            self.done = 0
        self._set_speed(self.speed.value())
        self.timer.start()
        self.play_button.setText("Pause")

    def pause(self) -> None:
        was = self.timer.isActive()
        self.timer.stop()
        self.play_button.setText("Play")
        if was:
            self.stopped.emit()

    def _set_speed(self, fps: int) -> None:
        self.timer.setInterval(max(1, round(1000 / max(1, fps))))

    def step(self) -> None:
        h, w = self.shape
        if h * w <= 1:
            return
        if self.done >= h * w:
            self.done = 0
        y, x = divmod(self.done, w)
        self.done += 1
        self.position.setText(f"value {self.done} of {h * w}: row {y}, column {x}")
        self.frame.emit(y, x, self.done)
        if self.done >= h * w and self.playing:
            self.pause()
