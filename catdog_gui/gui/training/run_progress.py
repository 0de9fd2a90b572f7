"""The Training tab's progress bar and status line: what a run is doing now, in words (preparing, epoch
and batch, speed, time left, device; paused, stopping, done)."""

from __future__ import annotations

from PySide6.QtWidgets import QProgressBar, QVBoxLayout, QWidget

from ...core.events import Status
from ...core.text import duration_text, plural
from ..common.widgets import muted
from ..models.training_run import RunState


class RunProgress(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setAccessibleName("Training progress")
        self.bar.setTextVisible(True)
        self.bar.setFormat("")
        self.bar.setValue(0)
        lay.addWidget(self.bar)
        self.stats_label = muted("Ready. Press Train to start; the curves below fill in as the model learns.")
        self.stats_label.setAccessibleName("Training status")
        lay.addWidget(self.stats_label)

    def say(self, text: str) -> None:
        self.stats_label.setText(text)

    def show_preparing(self) -> None:
        self.bar.setRange(0, 0)
        self.bar.setFormat("Preparing…")
        self.say("Preparing the photos…")

    def show_stage(self, run, ev) -> None:
        if ev.total > 0:
            self.bar.setRange(0, ev.total)
            self.bar.setValue(ev.done)
            self.bar.setFormat(f"Preparing: {run.stage_what} %p%")
        if not run.paused:
            self.say(f"Preparing: {run.stage_text}…")

    def show_started(self, run, ev) -> None:
        if not run.paused:
            self.say(f"Training on {ev.n_train:,} photos, checking on {ev.n_val:,} · {run.mode_text} · {run.device}")

    def show_batches(self, run) -> None:
        last, total = run.last_batch, run.epochs_total
        total_steps = max(total * last.steps, 1)
        done = (last.epoch - 1) * last.steps + last.step
        self.bar.setRange(0, total_steps)
        self.bar.setValue(min(done, total_steps))
        self.bar.setFormat(f"Epoch {last.epoch} of {total} · batch {last.step}/{last.steps}")
        if run.state is RunState.RUNNING:
            speed = f"{run.images_per_s:,.0f} images/s" if run.images_per_s else "measuring speed…"
            left = f"about {duration_text(run.eta_s)} left" if run.eta_s is not None else "estimating time left…"
            self.say(f"Epoch {last.epoch} of {total} · batch {last.step} of {last.steps} · "
                     f"{speed} · {left} · {run.device}")

    def show_epoch(self, run, ev) -> None:
        if run.state is RunState.RUNNING:
            self.say(f"Epoch {ev.epoch} of {ev.epochs}: validation accuracy {ev.val_acc * 100:.1f}% · "
                     f"{ev.images_per_s:,.0f} images/s · about {duration_text(ev.eta_s)} left · {run.device}")

    def show_finished(self, fin, done_text: str, device: str) -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(0 if fin.status is Status.FAILED else 1)
        self.bar.setFormat({Status.FAILED: "Failed", Status.CANCELLED: "Stopped"}.get(fin.status, "Done"))
        if fin.status is not Status.FAILED:
            self.say(f"{done_text}. {plural(len(fin.history), 'epoch')} on {device}.")
