"""The Network tab: the current model's layers, LeNet-5 drawn as in the 1998 paper, and what each layer sees.

Why a fourth tab and not a panel of the Training tab: the Training tab is already full (form, live
plots, results) and is about *running* something; this view is for *looking* at a model, and a
teaching view needs the whole width for the Figure 2 diagram, the layer table and the feature-map
grid side by side. As a tab after Prediction it leaves the Dataset -> Training -> Prediction flow
untouched and is reached in one click (Alt+4) whenever a model exists.

A view of the app's :class:`~catdog_gui.gui.models.current_model.CurrentModel` (``NetworkTab(current)``):
it shows the current model's one Predictor (the Prediction tab's too) through
:mod:`catdog_gui.core.inference.explain`, and redraws when the model changes; the layer table is
:func:`catdog_gui.core.models.summary`, the same one ``catdog info`` prints. Reading the layers and
computing feature maps run on :class:`Task`\\ s (:mod:`.analysis`), so switching layers never
freezes the window; a model file that cannot be opened leaves the previous one in place. The layer
table is :mod:`.layer_table`; the painted widgets (the diagram, the tile grids) are in :mod:`.drawing`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QLabel, QScrollArea, QSplitter, QStyle, QTabWidget,
                               QVBoxLayout, QWidget)

from ...core.data.imageio import IMAGE_EXTS
from ...core.inference import explain
from ..common.controls import error_label, open_failed_text, push_button
from ..common.images import gray_image, rgb_image
from ..common.widgets import heading, muted
from ..common.workers import Task, TaskState
from .analysis import Analysis, analyse, feature_maps, kernel_sizes, shape_text
from .drawing import LeNetDiagram, TileGrid
from .explainer_view import ExplainerView
from .layer_table import LayerTable

__all__ = ["NetworkTab", "MAP_CAP"]

#: feature maps shown at first; a "Show all" button shows the rest
MAP_CAP = 64


# ------------------------------------------------------------------------------------------------
# the tab


class NetworkTab(QWidget):
    """The current model's layers, its LeNet-5 diagram and what each layer sees (see the module docstring)."""

    model_shown = Signal(str)  # path of the model whose layers are now shown
    maps_ready = Signal(str)  # the layer whose feature maps are now shown
    status_message = Signal(str)

    def __init__(self, current, parent=None):
        super().__init__(parent)
        self.current = current
        self.shown = None  # the Predictor whose layers are on screen (None until its analysis is in)
        self.layers: list = []
        self.stored_params = 0
        self.image_source = None  # a path (str) or bytes
        self.image_name = ""
        self._image_array: Optional[np.ndarray] = None  # uint8 (3, S, S): what the model sees
        self._maps: dict[str, np.ndarray] = {}  # layer -> uint8 (C, H, W) for the current image
        self._show_all = False
        self._analysis_task: Optional[Task] = None
        self._maps_task: Optional[Task] = None
        self._modules: dict = {}
        self._build()
        self.setAcceptDrops(True)
        self._update_model_label()
        current.changed.connect(self._on_model_changed)
        current.failed.connect(self._on_model_failed)
        current.loading.connect(self._on_model_loading)
        if current.predictor is not None:
            self._on_model_changed(current.predictor)

    @property
    def predictor(self):
        """The Predictor shown (the current model's, once its layers are read)."""
        return self.shown

    @property
    def model_path(self) -> Optional[str]:
        return str(self.shown.path) if self.shown is not None else None

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.model_label = QLabel()
        self.model_label.setTextFormat(Qt.TextFormat.RichText)
        self.model_label.setWordWrap(True)
        self.model_label.setAccessibleName("Model shown")
        self.model_error = error_label("Model error")
        self.photo_label = QLabel()
        self.photo_label.setFixedSize(64, 64)
        self.photo_label.setFrameShape(QFrame.Shape.StyledPanel)
        self.photo_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.photo_label.setAccessibleName("What the model sees")
        self.photo_text = muted("")
        self.photo_text.setMaximumWidth(260)
        self.open_image_button = push_button(
            "Choose photo…", "Pick a photo to see what every layer makes of it (photos you classify in the "
            "Prediction tab show up here too)", self.open_image_dialog, name="Choose photo",
            icon=self.style().standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
        top = QHBoxLayout()
        col = QVBoxLayout()
        col.addWidget(self.model_label)
        col.addWidget(self.model_error)
        top.addLayout(col, 1)
        top.addWidget(self.photo_label)
        top.addWidget(self.photo_text)
        top.addWidget(self.open_image_button, 0, Qt.AlignmentFlag.AlignVCenter)

        self.diagram = LeNetDiagram()
        self.diagram.layer_clicked.connect(self.select_layer)
        self.diagram_note = muted("")
        self.diagram_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.diagram_box = QWidget()
        dl = QVBoxLayout(self.diagram_box)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.diagram)
        dl.addWidget(self.diagram_note)

        self.table = LayerTable()
        self.table.itemSelectionChanged.connect(self._on_table_selection)
        self.totals_label = QLabel()
        self.totals_label.setWordWrap(True)
        self.totals_label.setAccessibleName("Parameter totals")
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.table, 1)
        ll.addWidget(self.totals_label)

        self.layer_heading = heading("")
        self.caption_label = QLabel()
        self.caption_label.setWordWrap(True)
        self.caption_label.setAccessibleName("What this layer does")
        self.maps_heading = heading("Feature maps")
        self.maps_note = muted("")
        self.maps_grid = TileGrid(64)
        self.maps_grid.setAccessibleName("Feature maps")
        self.show_all_button = push_button("", "Show every map of this layer (may be many)", self._on_show_all,
                                           name="Show all feature maps")
        self.show_all_button.hide()
        self.filters_heading = heading("First-layer filters")
        self.filters_note = muted("")
        self.filters_grid = TileGrid(40)
        self.filters_grid.setAccessibleName("First-layer filters")
        right_inner = QWidget()
        rl = QVBoxLayout(right_inner)
        rl.addWidget(self.layer_heading)
        rl.addWidget(self.caption_label)
        rl.addSpacing(6)
        rl.addWidget(self.maps_heading)
        rl.addWidget(self.maps_note)
        rl.addWidget(self.maps_grid)
        rl.addWidget(self.show_all_button, 0, Qt.AlignmentFlag.AlignLeft)
        rl.addSpacing(6)
        rl.addWidget(self.filters_heading)
        rl.addWidget(self.filters_note)
        rl.addWidget(self.filters_grid)
        rl.addStretch(1)
        self.right_scroll = QScrollArea()
        self.right_scroll.setWidgetResizable(True)
        self.right_scroll.setWidget(right_inner)
        self.right_scroll.setFrameShape(QFrame.Shape.NoFrame)

        self.bottom_split = QSplitter(Qt.Orientation.Horizontal)
        self.bottom_split.addWidget(left)
        self.bottom_split.addWidget(self.right_scroll)
        self.bottom_split.setStretchFactor(0, 5)
        self.bottom_split.setStretchFactor(1, 6)
        self.bottom_split.setSizes([560, 700])
        self.main_split = QSplitter(Qt.Orientation.Vertical)
        self.main_split.addWidget(self.diagram_box)
        self.main_split.addWidget(self.bottom_split)
        self.main_split.setStretchFactor(0, 2)
        self.main_split.setStretchFactor(1, 3)
        self.main_split.setChildrenCollapsible(False)

        self.explainer = ExplainerView()
        self.explainer.status_message.connect(self.status_message)
        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        self.pages.addTab(self.main_split, "Layers")
        self.pages.addTab(self.explainer, "Every unit")
        self.pages.setTabToolTip(1, "Every unit of a LeNet-5 for the photo, and how the one you click was "
                                    "computed, number by number")
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.pages, 1)
        self._set_details_visible(False)

    def _set_details_visible(self, on: bool) -> None:
        for w in (self.maps_heading, self.maps_grid, self.filters_heading, self.filters_grid, self.filters_note):
            w.setVisible(on)

    # ---- the model --------------------------------------------------------------------------
    def _on_model_changed(self, predictor) -> None:
        if self._analysis_task is not None:
            self._analysis_task.discard()
            self._analysis_task = None
        if self._maps_task is not None:
            self._maps_task.discard()
            self._maps_task = None
        if predictor is None:
            self.explainer.set_predictor(None)
            self.shown, self.layers, self.stored_params, self._modules = None, [], 0, {}
            self._maps, self._image_array = {}, None
            self.table.setRowCount(0)
            self.totals_label.setText("")
            self.maps_grid.set_images([])
            self.filters_grid.set_images([])
            self._set_details_visible(False)
            self._update_model_label()
            return
        self.model_error.hide()
        task = self._analysis_task = Task(lambda state: analyse(predictor, state), self, "network: read layers")
        task.done.connect(self._on_analysis)
        task.failed.connect(lambda msg: self._on_model_failed(str(predictor.path), msg))
        task.start()

    def _on_analysis(self, res: Analysis) -> None:
        self._analysis_task = None
        if self._maps_task is not None:
            self._maps_task.discard()
            self._maps_task = None
        self.shown, self.layers, self.stored_params = res.predictor, res.layers, res.stored
        self._modules = dict(res.predictor.model.named_modules())
        self._maps = {}
        self._image_array = None
        self.model_error.hide()
        self._update_model_label()
        self._fill_table()
        self._fill_filters(res.filters, res.filters_layer)
        if res.boxes:
            self.diagram.set_boxes(res.boxes, kernel_sizes(res.layers))
            self.diagram.show()
            self.diagram_box.setMaximumHeight(16777215)
            self.diagram_note.setText("LeNet-5 as drawn in Figure 2 of LeCun et al. (1998), computed from this model; "
                                      "click a volume to see its feature maps.")
        else:
            self.diagram.set_boxes([], {})
            self.diagram.hide()
            self.diagram_box.setMaximumHeight(self.diagram_note.sizeHint().height() + 12)
            self.diagram_note.setText(
                f"The Figure 2 style drawing is for LeNet-5 models. This {self._model_title()} has "
                f"{len(self.layers):,} layers: they are all in the table below.")
        self._set_details_visible(True)
        self._set_explainer(res.predictor)
        first = next((l.name for l in self.layers if explain.has_maps(l)), self.layers[0].name if self.layers else "")
        self.select_layer(first)
        if self.image_source is not None:
            self._compute_input_preview()
        self.model_shown.emit(str(res.predictor.path))

    def _set_explainer(self, predictor) -> None:
        """A LeNet-5 is taken apart unit by unit; another model gets the simpler backbone view."""
        from ...core.inference.unit_arithmetic import is_explainable

        self.explainer.set_predictor(predictor)
        if not is_explainable(predictor.model):
            self.explainer.detail.clear_unit(
                f"<p>{self._model_title()} is a pretrained backbone: choose a photo to see its blocks as volumes, "
                "the feature vector, the head's arithmetic for each class and Grad-CAM.</p>")

    def _on_model_loading(self, _path: str) -> None:
        self.model_error.hide()

    def _on_model_failed(self, path: str, msg: str) -> None:
        keep = f" Still showing {Path(self.model_path).name}." if self.shown is not None else ""
        self.model_error.setText(open_failed_text(path, msg, keep))
        self.model_error.show()

    def _model_title(self) -> str:
        from ...core.models import title_of

        return title_of(self.shown.info.model_name) if self.shown is not None else ""

    def _update_model_label(self) -> None:
        if self.shown is None:
            self.model_label.setText(
                "<b>No model yet.</b> Train one in the <b>Training</b> tab or open a model file (Ctrl+Shift+O): "
                "its layers, a drawing of LeNet-5 and what each layer sees in a photo appear here.")
            self.diagram_note.setText("")
            self.diagram.hide()
            self.diagram_box.setMaximumHeight(0)
            return
        info = self.shown.info
        self.model_label.setText(
            f"<b>{self._model_title()}</b> &nbsp;·&nbsp; {Path(self.model_path).name} &nbsp;·&nbsp; "
            f"input {info.image_size}×{info.image_size}×3 &nbsp;·&nbsp; {len(info.classes)} classes: "
            f"{', '.join(info.classes)}<br><span>A ConvNet is a stack of layers: each turns the 3D volume it "
            f"receives (channels × height × width) into a new one.</span>")
        self.model_label.setToolTip(str(self.model_path))

    def _fill_table(self) -> None:
        self.table.fill(self.layers, self._caption)
        lenet = explain.is_lenet(self.layers)
        total = sum(l.params for l in self.layers)
        text = f"<b>{len(self.layers):,} layers · {total:,} parameters</b> (the sum of the column)"
        diff = self.stored_params - total
        if diff > 0:
            if lenet:
                text += (f". The file stores {self.stored_params:,} numbers: the other {diff:,} are C3 weights that "
                         "the paper's connection table (Table I) keeps at zero, so they are not counted.")
            else:
                text += f". The file stores {self.stored_params:,} numbers ({diff:,} in layers not listed)."
        self.totals_label.setText(text)

    def _fill_filters(self, filters: np.ndarray, layer: str) -> None:
        if len(filters) == 0:
            self.filters_grid.set_images([])
            self.filters_note.setText("This model has no convolution reading the image.")
            return
        n, kh, kw, _ = filters.shape
        images = [rgb_image((f * 255 + 0.5).clip(0, 255).astype(np.uint8)) for f in filters]
        self.filters_grid.set_images(images, [f"filter {i + 1} of {n} ({kh}x{kw} x 3 colours)" for i in range(n)],
                                     tile=48 if n <= 16 else 32)
        self.filters_note.setText(
            f"The {n} filters {layer} slides over the photo, {kh}x{kw} pixels x 3 colours each, enlarged: grey is a "
            "zero weight, a colour means that colour at that spot makes the map brighter, its opposite darker.")

    # ---- layers -----------------------------------------------------------------------------
    def _caption(self, l) -> str:
        module = self._modules.get(l.name)
        return explain.caption_for(l, is_output=l is self.layers[-1], module=module)

    def layer(self, name: str):
        return next((l for l in self.layers if l.name == name), None)

    def select_layer(self, name: str) -> None:
        """Select layer ``name`` in the table (and show its maps again when it already is selected)."""
        r = self.table.row_of(name)
        if r < 0:
            return
        if self.table.selected_layer() == name:
            self._on_table_selection()
        else:
            self.table.selectRow(r)
        self.table.scrollToItem(self.table.item(r, 0))

    def _on_table_selection(self) -> None:
        name = self.table.selected_layer()
        l = self.layer(name)
        if l is None:
            return
        self._show_all = False
        self.diagram.set_selected(name)
        label = explain.PAPER_LABELS.get(name, name) if explain.is_lenet(self.layers) else name
        self.layer_heading.setText(f"{label} · {l.kind} · {shape_text(l.out_shape)}")
        self.caption_label.setText(self._caption(l))
        self._request_maps(name)

    # ---- the image and its feature maps -----------------------------------------------------
    def set_image(self, source, model_input: Optional[np.ndarray] = None) -> None:
        """Use a photo (a path or encoded bytes) for the feature maps. ``model_input``: the uint8
        (3, S, S) array the current model saw for it, when the Prediction tab has decoded it already
        (it is then not decoded again here)."""
        fits = (model_input is not None and self.shown is not None
                and tuple(np.shape(model_input)) == (3, self.shown.info.image_size, self.shown.info.image_size))
        if source is not None and source == self.image_source:
            if fits and self._image_array is None:
                self._set_input_array(model_input)
            return
        if isinstance(source, (bytes, bytearray)):
            self.image_source, self.image_name = bytes(source), "pasted image"
        else:
            self.image_source, self.image_name = str(source), Path(source).name
        self._maps = {}
        self._image_array = None
        if fits:
            self._set_input_array(model_input)
        if self.predictor is not None:
            self._compute_input_preview()
            name = self.table.selected_layer()
            if name:
                self._request_maps(name)

    def open_image_dialog(self) -> None:
        start = str(Path(self.image_source).parent) if isinstance(self.image_source, str) else ""
        pattern = " ".join(f"*{e}" for e in sorted(IMAGE_EXTS))
        path, _ = QFileDialog.getOpenFileName(self, "Choose a photo", start, f"Images ({pattern});;All files (*)")
        if path:
            self.set_image(path)

    def _compute_input_preview(self) -> None:
        self.photo_text.setText(f"{self.image_name}<br>as the model sees it")

    def _request_maps(self, name: str) -> None:
        l = self.layer(name)
        if self._maps_task is not None:
            self._maps_task.discard()
            self._maps_task = None
        if l is None or not explain.has_maps(l):
            self.maps_grid.set_images([])
            self.show_all_button.hide()
            self.maps_note.setText("This layer outputs a flat list of numbers, not maps: there are no pictures "
                                   "to show. Pick a convolution or pooling layer.")
            return
        if self.image_source is None:
            self.maps_grid.set_images([])
            self.show_all_button.hide()
            self.maps_note.setText("Choose a photo (or classify one in the Prediction tab) to see what this "
                                   "layer makes of it.")
            return
        if name in self._maps:
            self._show_maps(name)
            return
        predictor, source = self.predictor, self.image_source
        names = [name]
        if explain.is_lenet(self.layers):  # tiny: every volume at once, for the diagram's front planes too
            names = [x.name for x in self.layers if explain.has_maps(x)]
        need_image = self._image_array is None
        array = self._image_array

        def work(state: TaskState):
            return feature_maps(predictor, source, array, names, state)

        self.maps_note.setText(f"Computing the feature maps of {name}…")
        task = self._maps_task = Task(work, self, "network: feature maps")
        task.done.connect(lambda res, name=name, need=need_image: self._on_maps(res, name, need))
        task.failed.connect(self._on_maps_failed)
        task.start()

    def _set_input_array(self, arr: np.ndarray) -> None:
        """Show what the network receives (uint8 (3, S, S)); the maps are computed from it."""
        self._image_array = arr
        img = rgb_image(arr.transpose(1, 2, 0))
        self.photo_label.setPixmap(QPixmap.fromImage(img).scaled(
            60, 60, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
        self.photo_label.setToolTip(f"{self.image_name}: the centre square at {arr.shape[1]}x{arr.shape[2]} "
                                    "pixels, exactly what the network receives")
        self.diagram.set_input_image(img)
        self.explainer.set_photo(arr, self.image_name)

    def _on_maps(self, res, name: str, new_image: bool) -> None:
        self._maps_task = None
        arr, maps = res
        self._maps.update(maps)
        if new_image or self._image_array is None:
            self._set_input_array(arr)
        for layer, m in maps.items():
            if len(m) and m.shape[1] * m.shape[2] > 1:
                self.diagram.set_front(layer, gray_image(m[0]))
        self._show_maps(name)

    def _on_maps_failed(self, msg: str) -> None:
        self._maps_task = None
        self.maps_grid.set_images([])
        self.show_all_button.hide()
        self.maps_note.setText(f"Could not compute the feature maps: {msg}")
        self.status_message.emit(f"Feature maps: {msg}")

    def _show_maps(self, name: str) -> None:
        m = self._maps[name]
        c, h, w = m.shape
        n = c if self._show_all else min(c, MAP_CAP)
        tile = 96 if n <= 8 else 72 if n <= 24 else 56 if n <= 64 else 40
        images = [gray_image(m[i]) for i in range(n)]
        self.maps_grid.set_images(images, [f"map {i + 1} of {c} ({h}x{w})" for i in range(n)], tile=tile)
        shown = f"All {c:,}" if n == c else f"The first {n:,} of {c:,}"
        self.maps_note.setText(
            f"{shown} maps of {h}x{w} for {self.image_name}, each stretched from its darkest (black) to its "
            "brightest (white) value: bright is where the layer's pattern was found.")
        if n < c:
            self.show_all_button.setText(f"Show all {c:,} maps")
            self.show_all_button.show()
        else:
            self.show_all_button.hide()
        self.maps_ready.emit(name)

    def _on_show_all(self) -> None:
        name = self.table.selected_layer()
        if name in self._maps:
            self._show_all = True
            self._show_maps(name)

    # ---- drops: a photo dropped on the tab is explained (model files go on to the window) --------
    @staticmethod
    def _dropped_photo(mime) -> Optional[str]:
        if not mime.hasUrls():
            return None
        return next((u.toLocalFile() for u in mime.urls()
                     if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in IMAGE_EXTS), None)

    def dragEnterEvent(self, e):  # noqa: N802
        if self._dropped_photo(e.mimeData()):
            e.acceptProposedAction()
        else:
            e.ignore()

    def dropEvent(self, e):  # noqa: N802
        path = self._dropped_photo(e.mimeData())
        if path is None:
            e.ignore()
            return
        e.acceptProposedAction()
        self.set_image(path)

    # ---- tasks ------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return any(t.is_running() for t in self.findChildren(Task))

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop every background job and wait for it (call before the window goes away)."""
        self._analysis_task = self._maps_task = None
        self.explainer.shutdown()
        Task.shutdown_all(self, timeout_ms)

    def closeEvent(self, e):  # noqa: N802
        self.shutdown()
        super().closeEvent(e)
