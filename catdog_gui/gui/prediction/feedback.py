""""Wrong?" feedback on a result card: copy the photo into the dataset's folder for the right class
(never moving or overwriting anything: :func:`catdog_gui.core.storage.files.add_to_dataset`), and say on
the card what happened.

Which dataset: the one open in the Dataset tab, else the one the current model was trained on (it
is recorded in the model file), else the card asks the user to choose a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from ...core.errors import CatdogError
from ...core.storage.files import add_to_dataset

__all__ = ["Feedback"]


class Feedback(QObject):
    """Feedback from result cards into a dataset folder; see the module docstring."""

    added = Signal(str)  # path of the photo's copy in the dataset
    status_message = Signal(str)

    def __init__(self, current, parent: QWidget):
        super().__init__(parent)
        self.current = current
        self.dataset_root: Optional[str] = None

    def set_dataset_root(self, path: Optional[str]) -> None:
        self.dataset_root = str(path) if path else None

    def root(self) -> tuple[Optional[Path], str]:
        """(dataset folder, how it was chosen: "" or a note for the message), or (None, "")."""
        if self.dataset_root:
            return Path(self.dataset_root), ""
        info = self.current.info
        if info is not None:
            root = (info.metrics.get("dataset") or {}).get("root")
            if root and Path(root).is_dir():
                return Path(root), " (the dataset this model was trained on)"
        return None, ""

    def give(self, card, cls: str) -> Optional[Path]:
        """Copy the card's photo into the dataset as an example of ``cls``; the answer shows on the card."""
        root, why = self.root()
        if root is None:
            card.show_message(
                "Which dataset should this photo go to? Open your dataset in the <b>Dataset</b> tab, or "
                f"<a href='choose:{cls}'>choose the dataset folder…</a>")
            return None
        item = card.item
        try:
            dest, msg = add_to_dataset(item.source, root, cls, name=item.name)
        except CatdogError as e:
            card.show_message(f"Not added: {e}", error=True)
            self.status_message.emit(f"Not added: {e}")
            return None
        card.show_message(f"✓ Added as <b>{cls}</b>{why}. {msg}")
        self.status_message.emit(f"Added {item.name} to the dataset as {cls}: {dest}")
        self.added.emit(str(dest))
        return dest

    def on_card_link(self, card, link: str) -> None:
        if link.startswith("choose:"):
            folder = QFileDialog.getExistingDirectory(self.parent(), "Choose the dataset folder")
            if folder:
                self.set_dataset_root(folder)
                self.give(card, link.split(":", 1)[1])
