"""Persistent settings: a typed, forgiving wrapper around QSettings.

Every read states its type, default and allowed range; a value that is missing, unreadable or out
of range gives the default (a corrupt settings store never crashes the app). The store is
injectable: ``Settings(path)`` uses an ini file (tests, portable installs); ``Settings()`` uses the
file named by ``$CATDOG_SETTINGS`` if set, else the platform's native store.

Training settings are not declared here: each is read and checked through its TrainConfig
:class:`~catdog_gui.core.config.Setting` (``coerce`` then ``check``), so the form, the CLI and the
saved settings share one declaration of type, range and choices.
"""

from __future__ import annotations

import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QByteArray, QSettings

from ..core.config import TrainConfig

ORG = "catdog-gui"
APP = "catdog-gui"
MAX_RECENT = 8
#: the Prediction tab says "looks like neither ..." for photos unlike the training photos (on by default)
FLAG_UNFAMILIAR_KEY = "prediction/flag_unfamiliar"

#: training settings stored besides the form's (TrainConfig settings with ``form=True``)
TRAIN_EXTRA = ("model", "pretrained", "transfer_mode", "weights_path")


def _to_bool(v: Any) -> Optional[bool]:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return v.strip().lower() in ("true", "1", "yes", "on")
    return None


class Settings:
    def __init__(self, path: Optional[str | os.PathLike] = None):
        path = path or os.environ.get("CATDOG_SETTINGS") or None
        if path:
            self.q = QSettings(str(Path(path)), QSettings.Format.IniFormat)
        else:
            self.q = QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, ORG, APP)
        self.corrupt = self.q.status() != QSettings.Status.NoError
        if self.corrupt:  # unreadable store: start from defaults, overwrite it on the next save
            try:
                self.q.clear()
            except Exception:  # pragma: no cover
                pass

    @property
    def path(self) -> str:
        return self.q.fileName()

    # -- typed access ----------------------------------------------------------------------
    def _raw(self, key: str) -> Any:
        try:
            return self.q.value(key)
        except Exception:  # a value Qt cannot decode
            return None

    def get_int(self, key: str, default: int, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
        v = self._raw(key)
        try:
            if isinstance(v, bool):
                raise ValueError
            f = float(v)
            if not math.isfinite(f) or f != int(f):
                raise ValueError
            i = int(f)
        except (TypeError, ValueError, OverflowError):
            return default
        if (lo is not None and i < lo) or (hi is not None and i > hi):
            return default
        return i

    def get_float(self, key: str, default: float, lo: Optional[float] = None, hi: Optional[float] = None) -> float:
        v = self._raw(key)
        try:
            if isinstance(v, bool):
                raise ValueError
            f = float(v)
        except (TypeError, ValueError, OverflowError):
            return default
        if not math.isfinite(f) or (lo is not None and f < lo) or (hi is not None and f > hi):
            return default
        return f

    def get_bool(self, key: str, default: bool) -> bool:
        b = _to_bool(self._raw(key))
        return default if b is None else b

    def get_str(self, key: str, default: str = "", choices=None) -> str:
        v = self._raw(key)
        if not isinstance(v, str) or (choices is not None and v not in choices):
            return default
        return v

    def get_list(self, key: str) -> list[str]:
        v = self._raw(key)
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)):
            return []
        return [x for x in v if isinstance(x, str) and x]

    def get_bytes(self, key: str) -> Optional[QByteArray]:
        v = self._raw(key)
        if isinstance(v, (QByteArray, bytes)) and len(v):
            return QByteArray(v)
        return None

    def set(self, key: str, value: Any) -> None:
        self.q.setValue(key, value)

    def sync(self) -> None:
        self.q.sync()

    # -- recent items ----------------------------------------------------------------------
    def recent(self, kind: str) -> list[str]:
        return self.get_list(f"recent/{kind}")[:MAX_RECENT]

    def add_recent(self, kind: str, path: str) -> list[str]:
        items = [path] + [p for p in self.recent(kind) if p != path]
        items = items[:MAX_RECENT]
        self.set(f"recent/{kind}", items)
        return items

    def clear_recent(self, kind: str) -> None:
        self.q.remove(f"recent/{kind}")

    # -- training settings -----------------------------------------------------------------
    @staticmethod
    def train_settings() -> tuple:
        """The TrainConfig settings kept here: the Advanced form's, plus :data:`TRAIN_EXTRA`."""
        return tuple(s for s in TrainConfig.settings() if s.form or s.name in TRAIN_EXTRA)

    def train_values(self) -> dict:
        """The stored training settings that are present and valid: each is converted and checked
        by its TrainConfig :class:`~catdog_gui.core.config.Setting`; a missing, unreadable or
        out-of-range one is left out (the tab then uses the model's default). ``tensorboard`` (not a
        TrainConfig setting) is always there."""
        out: dict[str, Any] = {}
        for st in self.train_settings():
            key = f"train/{st.name}"
            if not self.q.contains(key):
                continue
            raw = self._raw(key)
            if isinstance(raw, (list, tuple, dict)) or (isinstance(raw, bool) and st.kind is not bool):
                continue
            try:
                v = st.coerce(raw)
            except (TypeError, ValueError, OverflowError):
                continue
            if st.check(v) is None:  # also refuses nan and inf
                out[st.name] = v
        if not out.get("model"):
            out.pop("model", None)
        if not out.get("weights_path"):
            out.pop("weights_path", None)
        out["tensorboard"] = self.get_bool("train/tensorboard", False)
        return out

    def set_train_values(self, values: dict) -> None:
        """Store the given training settings (None, "no value", is stored as empty text)."""
        for k, v in values.items():
            self.set(f"train/{k}", "" if v is None else v)

    def augment_settings(self):
        """The stored AugmentSettings; each invalid field falls back to its default."""
        from ..core.data.augment import AugmentSettings

        s = AugmentSettings()
        for f in fields(AugmentSettings):
            key = f"augment/{f.name}"
            if not self.q.contains(key):
                continue
            default = getattr(s, f.name)
            if isinstance(default, bool):
                v = self.get_bool(key, default)
            else:
                v = self.get_float(key, default)
            old = default
            setattr(s, f.name, v)
            try:
                s.validate()
            except Exception:
                setattr(s, f.name, old)
        return s

    def set_augment_settings(self, s) -> None:
        for k, v in s.to_dict().items():
            self.set(f"augment/{k}", v)
