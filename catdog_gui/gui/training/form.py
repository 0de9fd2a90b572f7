"""The Training tab's settings panel: the model, transfer learning, augmentation, TensorBoard, and
the Advanced form.

The Advanced form is derived from :meth:`TrainConfig.settings() <catdog_gui.core.config.TrainConfig.settings>`:
one spin box per setting declared with ``form=True``, with the declaration's range, step and
decimals, its label and its help as tooltip. Adding a setting to TrainConfig adds it here; changing a
range there changes it here. The panel reads and writes the saved settings
(:meth:`Settings.train_values`) and turns itself into a TrainConfig (:meth:`config`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.config import DEFAULT_PRETRAINED_MODEL, Setting, TrainConfig, make_config
from ..settings import Settings
from ..models.augment_model import AugmentModel
from ..common.widgets import CollapsibleBox, heading, muted
from ..common.widgets import augment_checkbox
from ..common.controls import push_button

#: how long the split (validation fraction, seed) must stay unchanged before the Dataset tab rescans
SPLIT_DELAY_MS = 400
#: the settings that decide the split of a folder into training and validation photos
SPLIT = ("val_fraction", "seed")


def form_settings() -> tuple[Setting, ...]:
    """The settings the Advanced form shows (``form=True`` in TrainConfig), in declaration order."""
    return tuple(s for s in TrainConfig.settings() if s.form)


def _digits(x: Optional[float]) -> int:
    """Decimals needed to show ``x`` exactly enough (1e-6 -> 6, 0.05 -> 2)."""
    if not x:
        return 0
    return max(0, math.ceil(-math.log10(abs(x)) - 1e-9))


def spin_decimals(s: Setting) -> int:
    """The declared decimals, or more when the minimum or step would otherwise round away (a
    QDoubleSpinBox rounds its range to its decimals: 1e-6 with 5 decimals becomes 0)."""
    return max(s.decimals, _digits(s.min), _digits(s.step))


class ChoiceBox(QComboBox):
    """A combo box for a :class:`Setting` with choices, read and set like the spin boxes
    (``value()``, ``setValue()``, ``valueChanged``)."""

    valueChanged = Signal(str)

    def __init__(self, s: Setting, parent=None):
        super().__init__(parent)
        for c in s.choices:
            self.addItem(CHOICE_TITLES.get(c, str(c)), c)
        self.currentIndexChanged.connect(lambda _i: self.valueChanged.emit(self.value()))

    def value(self):
        return self.currentData()

    def setValue(self, value) -> None:
        i = self.findData(value)
        if i >= 0:
            self.setCurrentIndex(i)


#: how a choice reads in the form
CHOICE_TITLES = {"constant": "Constant", "onecycle": "One-cycle", "cosine": "Cosine with warm-up"}


def make_spin(s: Setting) -> QSpinBox | QDoubleSpinBox | ChoiceBox:
    """The form's widget for a :class:`Setting`: a spin box (its range, step, decimals) for a number, a
    combo box for a choice; with its tooltip and name."""
    if s.choices:
        w = ChoiceBox(s)
    elif s.kind is int:
        w = QSpinBox()
        w.setRange(int(s.min) if s.min is not None else -(2**31) + 1, int(s.max) if s.max is not None else 2**31 - 1)
        if s.step:
            w.setSingleStep(int(s.step))
    elif s.kind is float:
        w = QDoubleSpinBox()
        w.setDecimals(spin_decimals(s))
        w.setRange(s.min if s.min is not None else -1e12, s.max if s.max is not None else 1e12)
        w.setSingleStep(s.step or 10 ** -w.decimals())
    else:
        raise TypeError(f"the Advanced form has no widget for {s.name} ({s.kind.__name__}): give it one")
    if s.default is not None:
        w.setValue(s.default)
    w.setToolTip(s.help)
    w.setAccessibleName(s.label)
    return w


class TrainingForm(QWidget):
    """The left column of the Training tab, above the Data heading (see the module docstring)."""

    changed = Signal()  # any setting changed (they are saved already)
    image_size_changed = Signal(int)
    split_changed = Signal(float, int)  # (validation fraction, seed), debounced
    note = Signal(str)  # a note for the status bar (the model changed because...)
    find_lr_requested = Signal()  # "Find…" beside the learning rate

    def __init__(self, augment: AugmentModel, settings: Optional[Settings] = None, parent=None):
        super().__init__(parent)
        self.augment = augment
        self.settings = settings
        self.specs: dict = {}
        self._restoring = False
        self._running = False
        self._next_defaults = True
        self._split_timer = QTimer(self, singleShot=True, interval=SPLIT_DELAY_MS)
        self._split_timer.timeout.connect(lambda: self.split_changed.emit(*self.split()))
        self._build()
        self._restore_split()
        self.update_enabled()

    # ------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        ll = QVBoxLayout(self)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(6)
        ll.addWidget(heading("Model"))
        self.model_combo = QComboBox()
        self.model_combo.setAccessibleName("Model")
        self.model_combo.setToolTip("The network to train. LeNet-5 learns from scratch and is fast; pretrained "
                                    "models reuse what they learned on millions of photos and are far more accurate.")
        self.model_combo.addItem("Loading models…")
        self.model_combo.setEnabled(False)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        ll.addWidget(self.model_combo)
        self.model_desc = muted("")
        ll.addWidget(self.model_desc)

        self.transfer_check = QCheckBox("Start from a pretrained model (transfer learning)")
        self.transfer_check.setAccessibleName("Transfer learning")
        self.transfer_check.setToolTip("Reuse a network already trained on ImageNet and only teach it your classes: "
                                       "much better results from few photos.")
        self.transfer_check.toggled.connect(self._on_transfer_toggled)
        ll.addWidget(self.transfer_check)
        self.transfer_mode = QComboBox()
        self.transfer_mode.addItem("Train only the new last layer (fast)", "frozen")
        self.transfer_mode.addItem("Then fine-tune the last blocks (slower)", "finetune")
        self.transfer_mode.setAccessibleName("Transfer mode")
        self.transfer_mode.setToolTip("Frozen: the pretrained network stays as it is and only a new last layer learns. "
                                      "Fine-tune: afterwards its last blocks also adapt, gently.")
        self.transfer_mode.currentIndexChanged.connect(self._save_settings)
        ll.addWidget(self.transfer_mode)
        #: how long fine-tuning would take here (the Training tab measures it before you commit)
        self.finetune_note = QLabel()
        self.finetune_note.setWordWrap(True)
        self.finetune_note.setProperty("role", "warn")
        self.finetune_note.setAccessibleName("Fine-tuning time")
        self.finetune_note.hide()
        ll.addWidget(self.finetune_note)
        self.model_note = QLabel()
        self.model_note.setWordWrap(True)
        self.model_note.setProperty("role", "warn")
        self.model_note.hide()
        ll.addWidget(self.model_note)
        self.augment_check = augment_checkbox(self.augment)
        self.augment.enabled_changed.connect(self._on_augment_toggled)
        ll.addWidget(self.augment_check)
        self.tensorboard_check = QCheckBox("Log to TensorBoard")
        self.tensorboard_check.setAccessibleName("Log to TensorBoard")
        self.tensorboard_check.setToolTip(
            "Also write loss, accuracy, settings and images for TensorBoard, in the runs/ folder next to the "
            "saved models (needs the tensorboard package: pip install tensorboard)")
        self.tensorboard_check.toggled.connect(self._save_settings)
        ll.addWidget(self.tensorboard_check)

        self.advanced = CollapsibleBox("Advanced")
        form = QFormLayout(self.advanced.content)
        form.setContentsMargins(12, 0, 0, 0)
        #: the form's spin boxes and their labels, by TrainConfig setting name
        self.hyper: dict[str, QSpinBox | QDoubleSpinBox | ChoiceBox] = {}
        self.hyper_labels: dict[str, QLabel] = {}
        for s in form_settings():
            w = make_spin(s)
            w.valueChanged.connect(self._on_hyper_changed)
            label = QLabel(s.label)
            label.setToolTip(s.help)
            label.setBuddy(w)
            if s.name == "lr":  # the learning-rate finder's button beside its setting
                row = QWidget()
                rl = QHBoxLayout(row)
                rl.setContentsMargins(0, 0, 0, 0)
                rl.addWidget(w, 1)
                self.find_lr_button = push_button(
                    "Find…", "Sweep the learning rate on these settings and suggest one (a few seconds to a "
                    "minute; nothing is saved)", self.find_lr_requested.emit, name="Find a learning rate")
                rl.addWidget(self.find_lr_button)
                form.addRow(label, row)
            else:
                form.addRow(label, w)
            self.hyper[s.name] = w
            self.hyper_labels[s.name] = label

        # a torchvision backbone's weights file (computers without internet): its own full-width row
        ws = TrainConfig.setting("weights_path")
        box = self.weights_row = QWidget()
        bl = QVBoxLayout(box)
        bl.setContentsMargins(0, 4, 0, 4)
        bl.setSpacing(2)
        self.weights_label = QLabel(ws.label)
        self.weights_label.setToolTip(ws.help)
        bl.addWidget(self.weights_label)
        rl = QHBoxLayout()
        self.weights_edit = QLineEdit()
        self.weights_edit.setAccessibleName(ws.label)
        self.weights_edit.setPlaceholderText("empty: downloaded once")
        self.weights_edit.setToolTip(f"{ws.help[0].upper()}{ws.help[1:]}. Leave empty to download them once "
                                     "into the cache (needs internet).")
        self.weights_edit.setClearButtonEnabled(True)
        self.weights_edit.textChanged.connect(lambda _t: self._restoring or self._save_settings())
        self.weights_label.setBuddy(self.weights_edit)
        rl.addWidget(self.weights_edit, 1)
        self.weights_button = push_button("Choose…",
                                          f"Choose the {ws.label.lower()} (a .pth file downloaded on another computer)",
                                          self.choose_weights, name=f"Choose the {ws.label.lower()}")
        rl.addWidget(self.weights_button)
        bl.addLayout(rl)
        form.addRow(box)

        self.defaults_button = QPushButton("Use this model's defaults")
        self.defaults_button.setToolTip("Reset epochs, batch size, learning rate, image size and patience to what "
                                        "suits the chosen model")
        self.defaults_button.setAccessibleName("Use this model's defaults")
        self.defaults_button.clicked.connect(lambda: self._apply_model_defaults())
        form.addRow(self.defaults_button)
        ll.addWidget(self.advanced)
        self._update_transfer_widgets()

    # ------------------------------------------------------------------------------ backend
    def set_backend(self, specs) -> None:
        """Called once torch is loaded: fill the model list and restore the saved settings."""
        self.specs = {s.name: s for s in specs}
        self._restoring = True
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for s in specs:
            self.model_combo.addItem(s.title, s.name)
            self.model_combo.setItemData(self.model_combo.count() - 1, s.description or s.title,
                                         Qt.ItemDataRole.ToolTipRole)
        self.model_combo.blockSignals(False)
        stored = self.settings.train_values() if self.settings else {}
        name = stored.get("model") if stored.get("model") in self.specs else "lenet5"
        if name not in self.specs:
            name = specs[0].name
        self.select_model(name, defaults=True)
        spec = self.specs[name]
        for key, value in stored.items():
            if key in self.hyper and value is not None and not (key == "image_size" and spec.fixed_image_size):
                self.hyper[key].setValue(value)
        self.transfer_check.setChecked(bool(stored.get("pretrained")) and spec.is_backbone)
        i = self.transfer_mode.findData(stored.get("transfer_mode", "frozen"))
        self.transfer_mode.setCurrentIndex(max(i, 0))
        self.tensorboard_check.setChecked(bool(stored.get("tensorboard")))
        self.weights_edit.setText(stored.get("weights_path") or "")
        self._restoring = False
        self.model_note.hide()
        self._update_transfer_widgets()
        self.update_enabled()
        self.image_size_changed.emit(self.hyper["image_size"].value())

    @property
    def backend_ready(self) -> bool:
        return bool(self.specs)

    def _restore_split(self) -> None:
        """The split is known before torch loads: the Dataset tab's first scan uses it."""
        stored = self.settings.train_values() if self.settings else {}
        self._restoring = True
        for key in SPLIT:
            if stored.get(key) is not None:
                self.hyper[key].setValue(stored[key])
        self._restoring = False

    # ------------------------------------------------------------------------------ state
    def split(self) -> tuple[float, int]:
        """(validation fraction, seed): how training will split a folder without a validation folder."""
        return float(self.hyper["val_fraction"].value()), int(self.hyper["seed"].value())

    def model_name(self) -> Optional[str]:
        return self.model_combo.currentData()

    def spec(self):
        return self.specs.get(self.model_name())

    def weights_applies(self) -> bool:
        """A weights file is asked for: a torchvision backbone (downloaded weights) with transfer learning."""
        spec = self.spec()
        return spec is not None and spec.pretrained == "download" and self.transfer_check.isChecked()

    def weights_path(self) -> Optional[str]:
        text = self.weights_edit.text().strip()
        return text or None

    def set_running(self, running: bool) -> None:
        self._running = running
        self.update_enabled()

    def update_enabled(self) -> None:
        on = not self._running and self.backend_ready
        for w in [self.model_combo, self.transfer_check, self.transfer_mode, self.defaults_button,
                  self.weights_edit, self.weights_button, self.find_lr_button, *self.hyper.values()]:
            w.setEnabled(on)
        spec = self.spec()
        if spec is not None and spec.fixed_image_size:
            self.hyper["image_size"].setEnabled(False)

    def config(self) -> TrainConfig:
        """The TrainConfig the form describes (made by :func:`~catdog_gui.core.config.make_config`, the
        one builder; the Trainer validates it when the run starts)."""
        name = self.model_name()
        spec = self.specs[name]
        values = {key: w.value() for key, w in self.hyper.items()}
        cfg = make_config(
            name,
            pretrained=self.transfer_check.isChecked() and spec.is_backbone,
            transfer_mode=self.transfer_mode.currentData(),
            weights_path=self.weights_path() if self.weights_applies() else None,
            **values,
        )
        cfg.augment = replace(self.augment.settings)
        return cfg

    # ------------------------------------------------------------------------------ model choice
    def select_model(self, name: str, defaults: bool = True) -> None:
        i = self.model_combo.findData(name)
        if i < 0:
            return
        if i == self.model_combo.currentIndex():
            self._on_model_changed(i, defaults=defaults)
        else:
            self._next_defaults = defaults
            self.model_combo.setCurrentIndex(i)

    def _on_model_changed(self, _i: int, defaults: Optional[bool] = None) -> None:
        spec = self.spec()
        if spec is None:
            return
        if defaults is None:
            defaults = self._next_defaults
        self._next_defaults = True
        self.model_desc.setText(spec.description or "")
        self.model_desc.setVisible(bool(spec.description))
        if defaults:
            self._apply_model_defaults()
        size = self.hyper["image_size"]
        size.setEnabled(not spec.fixed_image_size and not self._running)
        size.setToolTip(TrainConfig.setting("image_size").help + (
            f" {spec.title} always uses {spec.default_image_size} px." if spec.fixed_image_size else ""))
        if spec.fixed_image_size:
            size.setValue(spec.default_image_size)
        if not spec.is_backbone and self.transfer_check.isChecked():
            self.transfer_check.blockSignals(True)
            self.transfer_check.setChecked(False)
            self.transfer_check.blockSignals(False)
            self._note(f"{spec.title} has no pretrained weights, so transfer learning is off: it learns from scratch.")
        else:
            self.model_note.hide()
        self._update_transfer_widgets()
        self._save_settings()

    def _apply_model_defaults(self) -> None:
        spec = self.spec()
        if spec is None:
            return
        for key, w in self.hyper.items():
            if key in spec.defaults:
                w.setValue(spec.defaults[key])
        self.hyper["image_size"].setValue(spec.default_image_size)
        self._apply_augment_epochs()

    def _apply_augment_epochs(self, only_if_default: bool = False) -> Optional[tuple[int, int]]:
        """Epochs and patience for the model's defaults, scaled up when augmentation is on
        (AugmentSettings.recommended_epochs: augmented training learns more slowly).
        ``only_if_default``: leave a field the user changed alone."""
        spec = self.spec()
        if spec is None:
            return None
        plain = (spec.defaults.get("epochs", TrainConfig.setting("epochs").default),
                 spec.defaults.get("patience", TrainConfig.setting("patience").default))
        s = self.augment.settings
        new = s.recommended_epochs(*plain)
        old = replace(s, enabled=not s.enabled).recommended_epochs(*plain)
        for key, value, before in (("epochs", new[0], old[0]), ("patience", new[1], old[1])):
            if not only_if_default or self.hyper[key].value() == before:
                self.hyper[key].setValue(value)
        return self.hyper["epochs"].value(), self.hyper["patience"].value()

    def _on_augment_toggled(self, on: bool) -> None:
        if self._restoring or not self.specs:
            return
        values = self._apply_augment_epochs(only_if_default=True)
        if on and values:
            self._note(f"Augmentation on: {values[0]} epochs, stopping early after {values[1]} without "
                       "improvement. Augmented training learns more slowly (see Advanced).")
        else:
            self.model_note.hide()

    def _on_transfer_toggled(self, on: bool) -> None:
        if self._restoring:
            return
        spec = self.spec()
        if on and spec is not None and not spec.is_backbone:
            target = DEFAULT_PRETRAINED_MODEL if DEFAULT_PRETRAINED_MODEL in self.specs else next(
                (s.name for s in self.specs.values() if s.is_backbone), None)
            if target is None:
                self.transfer_check.setChecked(False)
                return
            self.transfer_check.blockSignals(True)
            self.select_model(target, defaults=True)
            self.transfer_check.setChecked(True)
            self.transfer_check.blockSignals(False)
            self._note(f"{spec.title} has no pretrained weights, so the model is now "
                       f"{self.specs[target].title}, which starts from one trained on ImageNet.")
        else:
            self.model_note.hide()
        self._update_transfer_widgets()
        self._save_settings()

    def _note(self, text: str) -> None:
        self.model_note.setText(text)
        self.model_note.show()
        self.note.emit(text)

    def _update_transfer_widgets(self) -> None:
        self.transfer_mode.setVisible(self.transfer_check.isChecked())
        self.weights_row.setVisible(self.weights_applies())

    def choose_weights(self) -> None:
        spec = self.spec()
        title = spec.title if spec is not None else "the model"
        start = self.weights_path() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, f"Choose the pretrained weights file of {title}", start,
                                              "PyTorch weights (*.pth *.pt);;All files (*)")
        if path:
            self.weights_edit.setText(path)
            self._save_settings()

    # ------------------------------------------------------------------------------ saving
    def _on_hyper_changed(self, *_):
        who = self.sender()
        if who is self.hyper["image_size"]:
            self.image_size_changed.emit(self.hyper["image_size"].value())
        if who in (self.hyper[k] for k in SPLIT) and not self._restoring:
            self._split_timer.start()
        self._save_settings()

    def _save_settings(self, *_):
        if self._restoring or not self.specs:
            return
        if self.settings is not None:
            vals = {k: w.value() for k, w in self.hyper.items()}
            vals["model"] = self.model_name()
            vals["pretrained"] = self.transfer_check.isChecked()
            vals["transfer_mode"] = self.transfer_mode.currentData()
            vals["tensorboard"] = self.tensorboard_check.isChecked()
            vals["weights_path"] = self.weights_path()
            self.settings.set_train_values(vals)
        self.changed.emit()
