"""Photos the user excluded from training, per dataset folder (no Qt).

One small JSON file in the app's data folder (``exclusions.json``)::

    {"version": 1, "folders": {"/home/me/pets": ["cat/blurry.jpg", "/elsewhere/val/dog/x.jpg"]}}

Paths inside the folder are kept relative to it; others (a separate validation folder) absolute.
The Dataset tab passes :meth:`Exclusions.paths` to ``scan_dataset(exclude=...)``, so an excluded
photo is in neither the training nor the validation set of the Dataset the Training tab trains on.
A damaged file reads as "nothing excluded"; the next change keeps a copy of it
(``exclusions.damaged-<time>.json``) before writing a good one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional

VERSION = 1


def _key(folder) -> str:
    return os.path.abspath(os.fspath(folder))


class Exclusions:
    def __init__(self, path: Optional[Path | str] = None):
        if path is None:
            from .run_store import app_data_dir

            path = app_data_dir() / "exclusions.json"
        self.path = Path(path)

    def _load(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8", errors="surrogateescape"))
            folders = data.get("folders", {}) if isinstance(data, dict) else {}
            return {k: [p for p in v if isinstance(p, str)] for k, v in folders.items()
                    if isinstance(k, str) and isinstance(v, list)}
        except (OSError, ValueError, AttributeError):
            return {}

    def _damaged(self) -> bool:
        """True when the file is there but is not an exclusions file."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8", errors="surrogateescape"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return True
        folders = data.get("folders") if isinstance(data, dict) else None
        return not isinstance(folders, dict) or not all(
            isinstance(v, list) and all(isinstance(p, str) for p in v) for v in folders.values())

    def _save(self, folders: dict[str, list[str]]) -> None:
        import shutil
        import time

        from .files import atomic_write

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._damaged():  # keep what was there: a person may want it back
            try:
                shutil.copy2(self.path, self.path.with_name(f"exclusions.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
                                                            f"-{time.time_ns() % 10**6:06d}.json"))
            except OSError:
                pass
        text = json.dumps({"version": VERSION, "folders": {k: sorted(v) for k, v in folders.items() if v}},
                          indent=1, ensure_ascii=True)
        atomic_write(self.path, lambda f: f.write(text.encode()))

    def paths(self, folder) -> set[Path]:
        """The excluded photos of dataset ``folder``, as absolute paths."""
        root = _key(folder)
        return {Path(p if os.path.isabs(p) else os.path.join(root, p)) for p in self._load().get(root, [])}

    def _stored(self, root: str, path) -> str:
        p = _key(path)
        return os.path.relpath(p, root) if p.startswith(root.rstrip(os.sep) + os.sep) else p

    def set_excluded(self, folder, paths: Iterable, excluded: bool = True) -> int:
        """Exclude (or include again) ``paths`` of dataset ``folder``; returns how many changed."""
        root = _key(folder)
        folders = self._load()
        have = set(folders.get(root, []))
        items = {self._stored(root, p) for p in paths}
        new = have | items if excluded else have - items
        if new == have:
            return 0
        folders[root] = sorted(new)
        self._save(folders)
        return len(new ^ have)

    def clear(self, folder) -> None:
        folders = self._load()
        if folders.pop(_key(folder), None) is not None:
            self._save(folders)
