"""The augmentation setting the Dataset and Training tabs share (no widgets): one object, edited by
both tabs' checkboxes and the Dataset tab's panel, announced with ``changed`` and ``enabled_changed``."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject, Signal


class AugmentModel(QObject):
    """THE augmentation setting of the app: both tabs' checkboxes and the panel edit this one object."""

    changed = Signal(object)  # AugmentSettings
    enabled_changed = Signal(bool)

    def __init__(self, settings=None, parent=None):
        super().__init__(parent)
        from ...core.data.augment import AugmentSettings

        self._s = settings or AugmentSettings()

    @property
    def settings(self):
        return self._s

    @property
    def enabled(self) -> bool:
        return self._s.enabled

    def set_enabled(self, on: bool) -> None:
        on = bool(on)
        if on != self._s.enabled:
            self._s = replace(self._s, enabled=on)
            self.enabled_changed.emit(on)
            self.changed.emit(self._s)

    def update(self, **values) -> None:
        new = replace(self._s, **values)
        try:
            new.validate()
        except Exception:
            return
        if new != self._s:
            was = self._s.enabled
            self._s = new
            if new.enabled != was:
                self.enabled_changed.emit(new.enabled)
            self.changed.emit(new)

    def set_settings(self, s) -> None:
        self.update(**s.to_dict())
