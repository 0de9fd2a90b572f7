"""Drag and drop as Qt delivers it, for the GUI tests: a drag-enter, then (if accepted) the drop."""

from __future__ import annotations

import warnings

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication


def urls(*paths) -> QMimeData:
    """File URLs for ``paths``, as a file manager puts them on a drag."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def drag_and_drop(widget, mime: QMimeData) -> bool:
    """Drag ``mime`` onto ``widget`` and drop it there; returns whether the widget took the drag."""
    with warnings.catch_warnings():  # PySide6 marks the QPoint constructor deprecated; it is the only one
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                                Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(widget, QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                                              Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    return True


def drop_files(widget, *paths) -> None:
    """Drop files on ``widget``; fails the test if it refuses the drag."""
    assert drag_and_drop(widget, urls(*paths)), f"{type(widget).__name__} refused the drag"
