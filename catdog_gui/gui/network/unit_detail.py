"""The explainer's detail view: how the selected unit got its value, with the real numbers.

Shows the HTML fragments of :mod:`catdog_gui.core.inference.explain_html` (the same ones the exported
page holds): a convolution unit's input patches, kernel, products, sums, bias and activation; a
subsampling, max-pooling or fully connected unit's arithmetic; the softmax; or, side by side, the same
unit after the first saved epoch and at the best one.
"""

from __future__ import annotations

from PySide6.QtWidgets import QTextBrowser

from ...core.inference import explain_html

__all__ = ["UnitDetail"]

_PLACEHOLDER = ("<p>Click a unit in the overview (or move with the arrow keys) to see how its value was "
                "computed, number by number.</p>")


class UnitDetail(QTextBrowser):
    """One unit's arithmetic as rich text."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setAccessibleName("How the selected unit was computed")
        self.unit = None
        self.clear_unit()

    def clear_unit(self, text: str = _PLACEHOLDER) -> None:
        self.unit = None
        self.setHtml(text)

    def show_unit(self, unit, first=None, epochs: tuple[int, int] = (0, 0), brief: bool = False) -> None:
        """Show ``unit``; with ``first`` (the same unit at the first saved epoch), both side by side;
        ``brief``: a convolution's sums and total without its grids (while the animation plays)."""
        self.unit = unit
        bar = self.verticalScrollBar().value()
        if first is not None:
            self.setHtml(explain_html.training_change_html(first, unit, *epochs))
        else:
            self.setHtml(explain_html.unit_html(unit, compact=True, brief=brief))
        self.verticalScrollBar().setValue(bar)

    def shown_text(self) -> str:
        """The text on screen (what a reader sees, for tests and the status bar)."""
        return self.toPlainText()
