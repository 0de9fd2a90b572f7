"""The Network tab's layer table: every layer of the model in order, one row each.

Columns: name (the paper's label for LeNet-5, e.g. ``C1 (conv1)``), type, kernel, stride, output
volume and learned parameters; each row's tooltip says what the layer does. A row keeps its
layer's name (``Qt.UserRole`` of its first cell), which :meth:`LayerTable.selected_layer` and
:meth:`LayerTable.row_of` read.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ...core.inference import explain
from .analysis import shape_text

COLUMNS = ("Layer", "Type", "Kernel", "Stride", "Output (C x H x W)", "Parameters")


class LayerTable(QTableWidget):
    """One row per layer, single selection (see the module docstring)."""

    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setStretchLastSection(True)
        self.setAccessibleName("Layers")
        self.setToolTip("Every layer in order: what it is, its window (kernel) and step (stride), the volume "
                        "it outputs and how many numbers it learns. Select one to see its feature maps.")

    def fill(self, layers: list, caption: Callable[[object], str]) -> None:
        """One row per layer (no selection signal while filling); ``caption(layer)`` is the tooltip."""
        self.blockSignals(True)
        self.clearSelection()
        self.setRowCount(len(layers))
        lenet = explain.is_lenet(layers)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, l in enumerate(layers):
            name = f"{explain.PAPER_LABELS[l.name]} ({l.name})" if lenet else l.name
            cells = (name, l.kind, l.kernel or "-", l.stride or "-", shape_text(l.out_shape), f"{l.params:,}")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 5:
                    item.setTextAlignment(right)
                if c == 0:
                    item.setData(Qt.ItemDataRole.UserRole, l.name)
                item.setToolTip(caption(l))
                self.setItem(r, c, item)
        self.blockSignals(False)

    def selected_layer(self) -> str:
        """The name of the selected layer ("" when none is)."""
        rows = self.selectionModel().selectedRows() if self.selectionModel() else []
        if not rows:
            return ""
        item = self.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item else ""

    def row_of(self, name: str) -> int:
        """The row of layer ``name`` (-1 when it is not in the table)."""
        for r in range(self.rowCount()):
            item = self.item(r, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == name:
                return r
        return -1
