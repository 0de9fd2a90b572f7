"""Persistent settings: a typed, forgiving wrapper around QSettings.

Every read states its type, default and allowed range; a value that is missing, unreadable or out
of range gives the default (a corrupt settings store never crashes the app). The store is
injectable: ``Settings(path)`` uses an ini file (tests, portable installs); ``Settings()`` uses the
file named by ``$CATDOG_SETTINGS`` if set, else the platform's native store.
"""

from __future__ import annotations

import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QByteArray, QSettings

ORG = "catdog-gui"
APP = "catdog-gui"
MAX_RECENT = 8

#: training settings: key -> (type, default, low, high); model-dependent defaults are applied by the tab
TRAIN_FIELDS: dict[str, tuple[type, Any, Any, Any]] = {
    "epochs": (int, 30, 1, 1000),
    "batch_size": (int, 32, 1, 4096),
    "lr": (float, 1e-3, 1e-6, 10.0),
    "image_size": (int, 32, 16, 1024),
    "seed": (int, 0, 0, 2**31 - 1),
    "patience": (int, 8, 0, 1000),
}


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
    def train_values(self) -> dict:
        """The stored training settings that are present and valid (missing ones are left out)."""
        out: dict[str, Any] = {}
        for key, (typ, default, lo, hi) in TRAIN_FIELDS.items():
            if not self.q.contains(f"train/{key}"):
                continue
            sentinel = object()
            getter = self.get_int if typ is int else self.get_float
            v = getter(f"train/{key}", sentinel, lo, hi)  # type: ignore[arg-type]
            if v is not sentinel:
                out[key] = v
        model = self.get_str("train/model", "")
        if model:
            out["model"] = model
        out["pretrained"] = self.get_bool("train/pretrained", False)
        out["transfer_mode"] = self.get_str("train/transfer_mode", "frozen", ("frozen", "finetune"))
        out["tensorboard"] = self.get_bool("train/tensorboard", False)
        return out

    def set_train_values(self, values: dict) -> None:
        for k, v in values.items():
            self.set(f"train/{k}", v)

    def augment_settings(self):
        """The stored AugmentSettings; each invalid field falls back to its default."""
        from ..core.augment import AugmentSettings

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
