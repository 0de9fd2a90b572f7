"""The Network tab's explainer: every unit of the model for one photo, and the arithmetic of the one clicked.

In the manner of CNN Explainer (Wang et al., IEEE VIS 2020), for the LeNet-5 the user trained, on their
own photo: :class:`~.unit_overview.UnitOverview` on top, :class:`~.unit_detail.UnitDetail` below with
the :class:`~.kernel_animation.KernelAnimation` controls, a Softmax button, "Compare with the first
epoch" (when the model file kept its first saved epoch), and exports of the view as a PNG and as the
self-contained HTML page ``catdog explain`` writes. Every number comes from
:mod:`catdog_gui.core.inference.unit_arithmetic`, computed on a :class:`Task`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QBuffer, QIODevice, Qt, QUrl, Signal
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import CatdogError
from ...core.inference import explainer
from ...core.inference.backbone_view import (
    BackboneExplanation,
    backbone_html,
    explain_backbone,
)
from ...core.inference.explain_html import page_shell, unit_title
from ...core.inference.unit_arithmetic import is_explainable
from ...core.storage.files import atomic_write
from ..common.controls import push_button
from ..common.images import rgb_image
from ..common.widgets import muted
from ..common.workers import Task, TaskState
from ..models.current_model import model_lock
from .kernel_animation import KernelAnimation
from .unit_detail import UnitDetail
from .unit_overview import UnitOverview

__all__ = ["ExplainerView"]


def _explain(predictor, array, name, state: Optional[TaskState] = None):
    """A LeNet-5's :class:`~catdog_gui.core.inference.explainer.Explanation`, or a backbone model's
    :class:`~catdog_gui.core.inference.backbone_view.BackboneExplanation`."""
    if state is not None:
        state.check()
    with model_lock(predictor):
        if is_explainable(predictor.model):
            return explainer.explain_photo(predictor, array, name)
        return explain_backbone(predictor, array, name)


class ExplainerView(QWidget):
    """Every unit of a LeNet-5 for one photo, and how the clicked one was computed."""

    explained = Signal()  # a photo's units are on screen
    unit_shown = Signal(str)  # the layer whose unit the detail now explains ("softmax" too)
    status_message = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.predictor = None
        self.explanation: Optional[explainer.Explanation] = None
        self.backbone: Optional[BackboneExplanation] = None  # the simpler view of a pretrained backbone
        self._photo: Optional[tuple[np.ndarray, str]] = None
        self._task: Optional[Task] = None
        self.overview = UnitOverview()
        self.overview.unit_selected.connect(self.show_unit)
        self.detail = UnitDetail()
        self.animation = KernelAnimation()
        self.animation.frame.connect(self._on_frame)
        self.animation.stopped.connect(self._on_animation_stopped)
        self.note = muted("")
        self.softmax_button = push_button("Softmax", "Show how the output scores become the probabilities",
                                          lambda: self.overview.select("softmax", 0, 0, 0), name="Show softmax")
        self.compare_box = QCheckBox("Compare with the first epoch")
        self.compare_box.setToolTip("Show the same unit with the weights after the first saved epoch beside the "
                                    "best epoch's: what training changed")
        self.compare_box.toggled.connect(lambda _on: self._refresh_detail())
        self.png_button = push_button("Export PNG…", "Save the overview and the detail as a picture",
                                      self.export_png_dialog, name="Export PNG")
        self.html_button = push_button("Export HTML…", "Save a self-contained web page of this explanation "
                                       "(opens in any browser, no network needed)", self.export_html_dialog,
                                       name="Export HTML")
        bar = QHBoxLayout()
        bar.addWidget(self.animation, 1)
        bar.addWidget(self.softmax_button)
        bar.addWidget(self.compare_box)
        bar.addWidget(self.png_button)
        bar.addWidget(self.html_button)
        lower = QWidget()
        ll = QVBoxLayout(lower)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(bar)
        ll.addWidget(self.detail, 1)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.overview)
        self.split.addWidget(lower)
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 3)
        self.split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.addWidget(self.note)
        lay.addWidget(self.split, 1)
        self._set_enabled(False)
        self.note.setText("Choose a photo (or classify one in the Prediction tab): every unit of every layer "
                          "appears here, and a click shows how its value was computed.")

    def _set_enabled(self, on: bool) -> None:
        for w in (self.overview, self.softmax_button, self.png_button, self.html_button, self.animation):
            w.setEnabled(on)
        self.compare_box.setEnabled(on and self.explanation is not None and self.explanation.first is not None)

    # ---- input ------------------------------------------------------------------------------
    def set_predictor(self, predictor) -> None:
        """The model to explain (None: none); until a photo comes (:meth:`set_photo`) nothing is shown."""
        self.predictor = predictor
        self.explanation = self.backbone = None
        self._photo = None  # the tab sends the photo again as the new model sees it
        self.overview.selected = None
        self.overview.trace = None
        self.overview.update()
        self._discard()
        if predictor is None:
            self.detail.clear_unit()
        self.overview.setVisible(predictor is None or is_explainable(predictor.model))
        self._set_enabled(False)

    def set_photo(self, array: np.ndarray, name: str) -> None:
        """Explain the uint8 (3, S, S) ``array`` (what the model sees of photo ``name``)."""
        self._photo = (np.array(array), name)
        if self.predictor is None:
            return
        self._discard()
        self.animation.pause()
        predictor, arr = self.predictor, self._photo[0]
        task = self._task = Task(lambda state: _explain(predictor, arr, name, state), self, "network: explain units")
        task.done.connect(self._on_explained)
        task.failed.connect(self._on_failed)
        task.start()

    def _discard(self) -> None:
        if self._task is not None:
            self._task.discard()
            self._task = None

    def _on_explained(self, ex) -> None:
        self._task = None
        if isinstance(ex, BackboneExplanation):
            self._on_backbone(ex)
            return
        self.explanation = ex
        keep = self.overview.selected
        self.overview.set_trace(ex.trace, ex.model)
        first = "" if ex.first is None else (f" Tick 'Compare with the first epoch' to see a unit after epoch "
                                             f"{ex.first[0]} beside the best epoch, {ex.best_epoch}.")
        mirrored = explainer.mirrored_note(ex)
        self.note.setText(f"<b>{ex.photo_name}</b>: {ex.prediction_text}. Every unit of every layer, one colour "
                          f"scale per layer (blue negative, white zero, orange positive); click one.{first}"
                          + (f" {mirrored}" if mirrored else ""))
        self._set_enabled(True)
        if keep is None or not self.overview.select(*keep):  # C3's first map: it reads three of S2's six
            self.overview.select("c3", 0, 0, 0)
        self.explained.emit()

    def _on_backbone(self, bx: BackboneExplanation) -> None:
        """A pretrained backbone: its blocks, features, head, softmax and Grad-CAM in the detail."""
        from ...core.inference.gradcam import overlay

        self.backbone = bx
        doc = self.detail.document()
        doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl("catdog:gradcam.png"),
                        rgb_image(overlay(bx.photo, bx.cam)))
        self.detail.unit = None
        self.detail.setHtml(backbone_html(bx, "catdog:gradcam.png"))
        self.note.setText(f"<b>{bx.photo_name}</b>: a pretrained backbone is shown by its blocks, its feature "
                          "vector, the head's arithmetic per class and Grad-CAM (no unit-by-unit view).")
        for w in (self.png_button, self.html_button):
            w.setEnabled(True)
        self.explained.emit()

    def _on_failed(self, msg: str) -> None:
        self._task = None
        self.explanation = None
        self.overview.trace = None
        self.overview.update()
        self._set_enabled(False)
        self.detail.clear_unit(f"<p>{msg}.</p>")
        self.note.setText(msg)

    # ---- the unit ---------------------------------------------------------------------------
    def show_unit(self, layer: str, c: int, y: int, x: int) -> None:
        ex = self.explanation
        if ex is None:
            return
        self.overview.set_fill(None)
        stage = None if layer == "softmax" else ex.trace.stage(layer)
        if stage is not None and not stage.flat:
            _n, h, w = stage.out.shape
            self.animation.set_target(h, w, start=y * w + x + 1)
        else:
            self.animation.set_target(0, 0, note="" if layer == "softmax" else None)
        self._refresh_detail()

    def _refresh_detail(self, brief: bool = False) -> None:
        ex, sel = self.explanation, self.overview.selected
        if ex is None or sel is None:
            return
        unit = ex.unit(*sel)
        first = None
        if self.compare_box.isChecked() and ex.first is not None and sel[0] != "softmax":
            first = ex.first_unit(*sel)
        self.detail.show_unit(unit, first, (ex.first[0], ex.best_epoch) if first is not None else (0, 0),
                              brief=brief and first is None)
        self.status_message.emit(unit_title(unit))
        self.unit_shown.emit(sel[0])

    def _on_frame(self, y: int, x: int, done: int) -> None:
        sel = self.overview.selected
        if sel is None or self.explanation is None:
            return
        layer, c = sel[0], sel[1]
        self.overview.select(layer, c, y, x, emit=False)
        self.overview.set_fill((layer, c, done))
        # playing: the sums and the value (every product's grid would take longer than a frame to lay out)
        self._refresh_detail(brief=self.animation.playing)

    def _on_animation_stopped(self) -> None:
        """Paused: the detail shows every product again; a finished map is shown whole."""
        h, w = self.animation.shape
        if self.animation.done >= h * w:
            self.overview.set_fill(None)
        self._refresh_detail()

    # ---- export -----------------------------------------------------------------------------
    def export_html(self, path) -> Path:
        """Write the self-contained page for the current photo, starting with the selected unit."""
        if self.backbone is not None:
            bx = self.backbone
            return explainer.write_page(path, page_shell(f"{bx.photo_name} through a pretrained backbone", "",
                                                         backbone_html(bx)))
        if self.explanation is None:
            raise CatdogError("nothing to export yet: choose a photo first")
        sel = self.overview.selected
        return explainer.write_page(path, explainer.page_for(self.explanation, sel))

    def export_png(self, path) -> Path:
        if self.explanation is None and self.backbone is None:
            raise CatdogError("nothing to export yet: choose a photo first")
        img = self.split.grab().toImage()
        buf = QBuffer()
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        img.save(buf, "PNG")
        data = bytes(buf.data())
        return atomic_write(path, lambda f: f.write(data))

    def _export_dialog(self, kind: str, pattern: str, write) -> None:
        ex = self.explanation
        stem = Path(ex.photo_name).stem if ex is not None else "explained"
        path, _ = QFileDialog.getSaveFileName(self, f"Export the explanation as {kind}",
                                              f"{stem}-explained.{kind.lower()}", pattern)
        if not path:
            return
        try:
            done = write(path)
        except (CatdogError, OSError) as e:
            self.status_message.emit(f"Could not export: {e}")
            return
        self.status_message.emit(f"Saved {done}")

    def export_png_dialog(self) -> None:
        self._export_dialog("PNG", "PNG pictures (*.png)", self.export_png)

    def export_html_dialog(self) -> None:
        self._export_dialog("HTML", "Web pages (*.html)", self.export_html)

    def shutdown(self) -> None:
        self.animation.pause()
        self._discard()

