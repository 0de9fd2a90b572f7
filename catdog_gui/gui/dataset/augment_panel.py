"""The augmentation panel: the shared :class:`AugmentModel`'s checkbox and strengths, and a preview
of exactly what training will see for one photo (the original, then random versions at the
model's input size). A view in the napari sense: it takes its model in the constructor and redraws
on ``augment.changed``. The Dataset tab shows it beside the scan report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QPushButton, QStyle,
                               QVBoxLayout, QWidget)

from ..models.augment_model import AugmentModel
from ..common.widgets import CollapsibleBox, FlowGrid, Thumb, heading, muted, pil_to_qimage
from ..common.workers import Task
from ..common.widgets import augment_checkbox
from ..common.controls import push_button

PREVIEW_N = 8
PREVIEW_CELL = 140

#: augmentation fields shown in "Advanced": name -> (label, tooltip, step, decimals)
AUG_FIELDS = {
    "crop_scale_min": ("Zoom: smallest part kept", "Random crops keep at least this fraction of the photo "
                       "(1.0 turns cropping off). Lower = stronger zoom.", 0.05, 2),
    "rotation": ("Rotate up to (degrees)", "Each photo is turned by a random angle up to this many degrees "
                 "either way (0 = off).", 1.0, 0),
    "brightness": ("Brightness change", "Random brightness change, as a fraction (0.2 = up to 20% darker or "
                   "brighter).", 0.05, 2),
    "contrast": ("Contrast change", "Random contrast change, as a fraction.", 0.05, 2),
    "saturation": ("Saturation change", "Random colour saturation change, as a fraction.", 0.05, 2),
    "hue": ("Hue shift", "Random shift around the colour wheel (0.5 = half way round). Keep it small.", 0.01, 2),
    "channel_shift": ("Colour cast", "Random tint added to each colour channel, as a fraction of full scale.",
                      0.01, 2),
    "blur": ("Blur up to (pixels)", "Random Gaussian blur, up to this many pixels at the model's input size "
             "(0 = off).", 0.1, 1),
    "noise": ("Noise", "Random grain added to the photo, as a fraction of full scale (0 = off).", 0.01, 2),
}



class AugmentPanel(QWidget):
    """Augmentation settings and their live preview, over the shared :class:`AugmentModel`."""

    def __init__(self, augment: AugmentModel, parent=None):
        super().__init__(parent)
        self.augment = augment
        self.preview_size = 64
        self.preview_seed = 0
        self.preview_path: Optional[str] = None
        self.preview_images: list = []  # QImages of the current preview (tests look at them)
        self._preview_task: Optional[Task] = None
        self._preview_timer = QTimer(self, singleShot=True, interval=120)
        self._preview_timer.timeout.connect(self._start_preview)
        rl = QVBoxLayout(self)
        rl.setContentsMargins(12, 4, 4, 4)
        rl.addWidget(heading("Augmentation"))
        self.augment_check = augment_checkbox(self.augment)
        rl.addWidget(self.augment_check)
        rl.addWidget(muted("Random changes to each training photo, new ones every epoch. "
                           "Here is what the model would see:"))
        self.preview_grid = FlowGrid(PREVIEW_CELL, 6)
        rl.addWidget(self.preview_grid)
        prow = QHBoxLayout()
        self.preview_caption = muted("", wrap=True)
        prow.addWidget(self.preview_caption, 1)
        self.shuffle_button = push_button("New samples", "Draw other random versions of this photo",
                                          self.shuffle_preview, name="New samples",
                                          icon=self.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload))
        prow.addWidget(self.shuffle_button, 0, Qt.AlignmentFlag.AlignTop)
        rl.addLayout(prow)
        self.aug_advanced = CollapsibleBox("Advanced")
        form = QFormLayout(self.aug_advanced.content)
        form.setContentsMargins(12, 0, 0, 0)
        self.aug_controls: dict[str, QWidget] = {}
        from ...core.data.augment import AugmentSettings

        ranges = AugmentSettings._RANGES
        for name in ("hflip", "vflip"):
            cb = QCheckBox({"hflip": "Mirror left-right", "vflip": "Flip upside down"}[name])
            cb.setToolTip({"hflip": "Randomly mirror half of the photos (fine for cats and dogs)",
                           "vflip": "Randomly turn half of the photos upside down (rarely right for photos)"}[name])
            cb.setAccessibleName(cb.text())
            cb.toggled.connect(lambda on, n=name: self.augment.update(**{n: on}))
            form.addRow(cb)
            self.aug_controls[name] = cb
        for name, (label, tip, step, dec) in AUG_FIELDS.items():
            lo, hi, lo_open = ranges[name]
            sb = QDoubleSpinBox()
            sb.setDecimals(dec)
            sb.setSingleStep(step)
            sb.setRange(lo + (step if lo_open else 0), hi)
            sb.setToolTip(tip)
            sb.setAccessibleName(label)
            sb.setKeyboardTracking(False)
            sb.valueChanged.connect(lambda v, n=name: self.augment.update(**{n: float(v)}))
            form.addRow(label, sb)
            self.aug_controls[name] = sb
        reset = QPushButton("Reset to defaults")
        reset.setToolTip("Put every augmentation strength back to its default")
        reset.setAccessibleName("Reset augmentation to defaults")
        reset.clicked.connect(self._reset_augment)
        form.addRow(reset)
        rl.addWidget(self.aug_advanced)
        rl.addStretch(1)
        self._sync_aug_controls(self.augment.settings)
        self.augment.changed.connect(self._on_augment_changed)

    def _sync_aug_controls(self, s) -> None:
        for name, w in self.aug_controls.items():
            v = getattr(s, name)
            w.blockSignals(True)
            if isinstance(w, QCheckBox):
                w.setChecked(bool(v))
            else:
                w.setValue(float(v))
            w.blockSignals(False)

    def _reset_augment(self) -> None:
        from ...core.data.augment import AugmentSettings

        d = AugmentSettings().to_dict()
        d["enabled"] = self.augment.enabled
        self.augment.update(**d)

    def _on_augment_changed(self, s) -> None:
        self._sync_aug_controls(s)
        self.schedule_preview()

    def set_preview_size(self, size: int) -> None:
        """The model's input size: previews show what the model would see."""
        size = int(size)
        if size != self.preview_size:
            self.preview_size = size
            self.schedule_preview()

    def set_preview_image(self, path: str) -> None:
        self.preview_path = str(path)
        self.schedule_preview()

    def shuffle_preview(self) -> None:
        self.preview_seed += 1
        self.schedule_preview()

    def schedule_preview(self) -> None:
        if self.preview_path:
            self._preview_timer.start()

    def _start_preview(self) -> None:
        from dataclasses import replace

        from ...core.data.augment import preview

        if not self.preview_path:
            return
        path, seed, size = self.preview_path, self.preview_seed, self.preview_size
        # the preview shows the augmentation even while the checkbox is off (greyed caption says so)
        settings = replace(self.augment.settings, enabled=True)

        def work(state):
            from ...core.data.imageio import load_rgb

            orig = load_rgb(path, draft_size=256)
            orig.thumbnail((256, 256))
            imgs = preview(path, settings, n=PREVIEW_N, seed=seed, size=size)
            state.check()
            return [pil_to_qimage(orig)] + [pil_to_qimage(im) for im in imgs]

        if self._preview_task is not None:
            self._preview_task.discard()
        task = Task(work, self, name="preview")
        task.done.connect(self._on_preview)
        task.failed.connect(lambda msg: self.preview_caption.setText(f"No preview: {msg}"))
        self._preview_task = task
        task.start()

    def _on_preview(self, images) -> None:
        self.preview_images = images
        self.preview_grid.clear()
        for i, img in enumerate(images):
            t = Thumb(PREVIEW_CELL, tooltip="The original photo" if i == 0 else f"Augmented version {i}")
            t.set_image(img)
            if i == 0:
                t.set_selected(True)
            self.preview_grid.add(t)
        state = "" if self.augment.enabled else " Augmentation is off: training will use the photos as they are."
        self.preview_caption.setText(
            f"First: {Path(self.preview_path).name}; then {PREVIEW_N} random versions at "
            f"{self.preview_size}×{self.preview_size} pixels, the model's input size.{state}")

    def shutdown(self) -> None:
        Task.shutdown_all(self)
