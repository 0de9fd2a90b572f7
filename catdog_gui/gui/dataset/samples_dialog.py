"""The "Get sample photos" dialog: pick a sample set (or a mirror address), download it with a
progress bar (bytes, speed, time left) and Cancel, then hand the unpacked folder to the Dataset tab.

The work is :func:`catdog_gui.core.data.sample_photos.get_samples` on a :class:`Task`; a cancelled or broken
download keeps what arrived, and the next "Download" continues from there (HTTP range requests).
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QRadioButton, QVBoxLayout)

from ..common.widgets import heading, muted, set_role, shown_path
from ..common.workers import Task
from ..common.controls import push_button

MIRROR_HINT = "paste another address (a mirror) under \"Download from\""


def url_key(set_key: str) -> str:
    """The settings key of a sample set's mirror address (empty: the default address)."""
    return f"samples/url_{set_key}"


class SamplesDialog(QDialog):
    #: the folder of unpacked sample photos (str), once they are there
    samples_ready = Signal(str)

    def __init__(self, settings=None, parent=None):
        super().__init__(parent)
        from ...core.data.sample_photos import DEFAULT_SET, SAMPLE_SETS, samples_dir
        from ...core.text import size_text

        self.settings = settings
        self.task: Optional[Task] = None
        self.last_progress = None
        self.setWindowTitle("Get sample photos")
        self.setAccessibleName("Get sample photos")
        lay = QVBoxLayout(self)
        lay.addWidget(heading("Photos of cats and dogs to try the app with"))
        self.set_buttons: dict[str, QRadioButton] = {}
        group = QButtonGroup(self)
        for key, s in SAMPLE_SETS.items():
            size = f", {size_text(s.size)}" if s.size else ""
            b = QRadioButton(f"{s.title}: {s.photos}{size}")
            b.setAccessibleName(s.title)
            b.setToolTip(s.url)
            b.setChecked(key == DEFAULT_SET)
            b.toggled.connect(lambda on, key=key: on and self._load_url(key))
            group.addButton(b)
            self.set_buttons[key] = b
            lay.addWidget(b)
        form = QFormLayout()
        self.url_edit = QLineEdit()
        self.url_edit.setAccessibleName("Download from")
        self.url_edit.setToolTip("Leave empty for the usual address, or paste a mirror's address of the same "
                                 "zip archive (kept for next time)")
        form.addRow("Download from:", self.url_edit)
        lay.addLayout(form)
        lay.addWidget(muted(f"Saved in {shown_path(samples_dir())}; the archive is deleted once unpacked."))
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Download progress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        lay.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Download status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.status)
        row = QHBoxLayout()
        row.addStretch(1)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("primary")
        self.download_button.setDefault(True)
        self.download_button.setAccessibleName("Download sample photos")
        self.download_button.setToolTip("Download and unpack the photos, then open them in the Dataset tab")
        self.download_button.clicked.connect(self.start)
        row.addWidget(self.download_button)
        self.cancel_button = push_button("Close",
                                         "Stop the download (what arrived is kept for next time) or close",
                                         self._cancel_or_close, name="Cancel download")
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self._load_url(DEFAULT_SET)
        self.resize(620, self.sizeHint().height())

    # ------------------------------------------------------------------------------------------
    def set_key(self) -> str:
        return next(k for k, b in self.set_buttons.items() if b.isChecked())

    def _load_url(self, key: str) -> None:
        self.url_edit.setText(self.settings.get_str(url_key(key), "") if self.settings is not None else "")
        from ...core.data.sample_photos import SAMPLE_SETS

        self.url_edit.setPlaceholderText(SAMPLE_SETS[key].url)

    def is_running(self) -> bool:
        return self.task is not None and self.task.is_running()

    def start(self) -> None:
        """Download (or continue downloading) the chosen set."""
        from ...core.data.sample_photos import get_samples, installed

        if self.is_running():
            return
        key, url = self.set_key(), self.url_edit.text().strip()
        if self.settings is not None:
            self.settings.set(url_key(key), url)
        have = installed(key)
        if have is not None:  # got before: open it
            self.accept()
            self.samples_ready.emit(str(have))
            return
        self._set_running(True)
        self.status.setText("Connecting…")
        set_role(self.status, "")
        self.progress.setRange(0, 0)
        task = Task(lambda st: get_samples(set_key=key, url=url or None, progress=st.emit,
                                           cancel=st.cancel_event, mirror_hint=MIRROR_HINT),
                    self, name="samples")
        task.partial.connect(self._on_progress)
        task.done.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.cancelled.connect(self._on_cancelled)
        self.task = task
        task.start()

    def cancel(self) -> None:
        if self.is_running():
            self.task.cancel()
            self.status.setText("Stopping…")
            self.cancel_button.setEnabled(False)

    def _cancel_or_close(self) -> None:
        if self.is_running():
            self.cancel()
        else:
            self.reject()

    def _set_running(self, on: bool) -> None:
        self.download_button.setEnabled(not on)
        for b in self.set_buttons.values():
            b.setEnabled(not on)
        self.url_edit.setEnabled(not on)
        self.cancel_button.setText("Cancel" if on else "Close")
        self.cancel_button.setEnabled(True)

    def _on_progress(self, p) -> None:
        self.last_progress = p
        if self.task is not None and self.task.state.cancelled():
            return  # "Stopping…" stays
        if p.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(p.done, p.total) / p.total))
        else:
            self.progress.setRange(0, 0)
        self.status.setText(p.text())

    def _on_done(self, result) -> None:
        self._set_running(False)
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        self.status.setText(f"{result.files:,} files unpacked into {shown_path(result.folder)}")
        self.accept()
        self.samples_ready.emit(str(result.folder))

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status.setText(message)
        set_role(self.status, "bad")
        self.download_button.setText("Try again")

    def _on_cancelled(self) -> None:
        from ...core.text import size_text

        self._set_running(False)
        self.progress.setRange(0, 1000)
        p = self.last_progress
        kept = f"the {size_text(p.done)} downloaded so far are kept, and " if p is not None and \
            p.stage == "download" and p.done else ""
        self.status.setText(f"Cancelled: {kept}Download continues from there.")
        set_role(self.status, "")
        self.download_button.setText("Download")

    def reject(self) -> None:  # Esc, the window's close button, "Close"
        self.cancel()
        super().reject()

    def shutdown(self) -> None:
        Task.shutdown_all(self)
