"""Small building blocks the views share: a push button set up in one call, the red line that says a
model file would not open, and the dialog that picks a video file for a camera page.

A button of the app carries a tooltip and, for screen readers, an accessible name:
:func:`push_button` takes them with the text, the icon and the slot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtWidgets import QFileDialog, QLabel, QPushButton, QWidget


def push_button(text: str, tip: str = "", slot=None, *, name: Optional[str] = None, icon=None,
                primary: bool = False, enabled: bool = True) -> QPushButton:
    """A QPushButton: ``tip`` as its tooltip, ``name`` as its accessible name (None: Qt's default,
    the text), ``icon`` (a QIcon, e.g. ``widget.style().standardIcon(...)``), ``slot`` connected to
    ``clicked``; ``primary`` styles it as the page's main action."""
    b = QPushButton(text)
    if icon is not None:
        b.setIcon(icon)
    if tip:
        b.setToolTip(tip)
    if name is not None:
        b.setAccessibleName(name)
    if primary:
        b.setObjectName("primary")
    if not enabled:
        b.setEnabled(False)
    if slot is not None:
        b.clicked.connect(slot)
    return b


def error_label(name: str) -> QLabel:
    """A hidden, word-wrapped label in the "bad" colour, ``name`` for screen readers."""
    label = QLabel()
    label.setWordWrap(True)
    label.setProperty("role", "bad")
    label.setAccessibleName(name)
    label.hide()
    return label


def open_failed_text(path, message: str, keep: str = "") -> str:
    """``Could not open m.pt: <why>. <keep>`` for a model file that would not open; ``keep`` says
    which model is still in use."""
    return f"Could not open {Path(path).name}: {message}.{keep}".replace("..", ".")


def choose_video_file(parent: QWidget) -> str:
    """Ask for a video file (starting in the home folder); "" when the user cancels."""
    path, _ = QFileDialog.getOpenFileName(parent, "Choose a video file", str(Path.home()),
                                          "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.mjpeg);;All files (*)")
    return path
