"""How long fine-tuning would take on this computer, said before the user commits to it.

With "Then fine-tune the last blocks" chosen and a dataset open, :class:`FinetuneEstimate` times
the fine-tuning phase's forward and backward pass in a process of its own (a
:class:`~catdog_gui.gui.common.training_process.ProcessTask` running
:func:`catdog_gui.core.training.estimate.estimate_finetune_seconds`), once per setting, and writes the
result under the choice in the Training tab's form: about how long it would take here.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QObject

from ...core.text import duration_text
from ..common.training_process import ProcessTask


class FinetuneEstimate(QObject):
    def __init__(self, form, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.form = form
        self._known: dict = {}  # (model, size, epochs, n_train, n_val, device) -> seconds
        self._task: Optional[ProcessTask] = None
        self._device = ""

    def update(self, dataset, device: str) -> None:
        """Show (measuring first if needed) or hide the note, for the form's current settings."""
        f = self.form
        note = f.finetune_note
        self._device = device
        wanted = (bool(device) and dataset is not None and f.transfer_check.isChecked()
                  and f.transfer_mode.currentData() == "finetune")
        if not wanted:
            note.hide()
            return
        try:
            cfg = f.config()
        except Exception:  # the form is mid-change (an invalid value): say nothing yet
            note.hide()
            return
        r = dataset.report
        key = (cfg.model, cfg.image_size, cfg.finetune_epochs, r.n_train, r.n_val, cfg.device)
        if key in self._known:
            self._show(key, self._known[key])
            return
        note.setText("Measuring how long fine-tuning would take on this computer…")
        note.show()
        if self._task is not None:
            self._task.discard()

        task = self._task = ProcessTask("catdog_gui.core.training.estimate:estimate_finetune_seconds", cfg,
                                        r.n_train, r.n_val, cfg.device, parent=self, name="fine-tuning estimate")
        task.done.connect(lambda secs, key=key: (self._known.__setitem__(key, secs), self._show(key, secs)))
        task.failed.connect(lambda msg: note.setText(f"Could not estimate the fine-tuning time: {msg}"))
        task.start()

    def _show(self, key, seconds: float) -> None:
        f = self.form
        if f.transfer_mode.currentData() != "finetune" or not f.transfer_check.isChecked():
            return
        _model, _size, epochs, n_train, _n_val, _dev = key
        how_long = duration_text(seconds)
        s = "s" if epochs != 1 else ""
        where = "on this computer's CPU" if self._device.upper().startswith("CPU") else "here"
        text = (f"Fine-tuning {where}: about {how_long} for its {epochs} epoch{s} on {n_train:,} photos "
                "(measured just now), after the new last layer has trained, which takes under a minute.")
        f.finetune_note.setText(text)
        f.finetune_note.show()

    def shutdown(self) -> None:
        ProcessTask.shutdown_all(self)
