"""What the app remembers inside a dataset folder (no Qt): one small JSON file, ``.catdog-review.json``,
written atomically, read by every scan (the window, ``catdog scan``/``train``, the API)::

    {"version": 1,
     "keep": ["cat/odd.jpg", ...],                         photos the user said are fine (never suggested again)
     "near_duplicates": [["cat/a.jpg", "cat/a copy.jpg"], ...],   the last review's groups (one side of the split)
     "log": [{"time": ..., "entries": [...]}, ...]}         applied review actions, for undo

Paths are relative to the dataset folder. A file that is damaged or of a newer version is never trusted:
:func:`load_memory` gives an empty memory and says why (``problem``); the next change writes a good file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .files import atomic_write

FILE = ".catdog-review.json"
VERSION = 1


@dataclass
class Memory:
    keep: list = field(default_factory=list)
    near_duplicates: list = field(default_factory=list)
    log: list = field(default_factory=list)
    #: why a file that was there could not be used ("" when it was fine or absent)
    problem: str = ""

    def to_dict(self) -> dict:
        return {"version": VERSION, "keep": self.keep, "near_duplicates": self.near_duplicates, "log": self.log}


def _valid(d) -> Optional[str]:
    """Why ``d`` is not a usable memory (None when it is)."""
    if not isinstance(d, dict):
        return "it is not a table"
    v = d.get("version", 1)
    if not isinstance(v, int) or isinstance(v, bool) or v > VERSION or v < 1:
        return f"it is of version {v!r}; this catdog-gui reads version {VERSION}"
    if not isinstance(d.get("keep", []), list) or not all(isinstance(p, str) for p in d.get("keep", [])):
        return "its kept photos are not a list of paths"
    groups = d.get("near_duplicates", [])
    if not isinstance(groups, list) or not all(
            isinstance(g, list) and all(isinstance(p, str) for p in g) for g in groups):
        return "its near-duplicate groups are not lists of paths"
    log = d.get("log", [])
    if not isinstance(log, list) or not all(
            isinstance(b, dict) and isinstance(b.get("entries"), list)
            and all(isinstance(e, dict) and isinstance(e.get("action"), str) and isinstance(e.get("path"), str)
                    and (e["action"] == "keep" or isinstance(e.get("to"), str)) for e in b["entries"])
            for b in log):
        return "its log of applied actions is damaged"
    return None


def load_memory(root) -> Memory:
    """The memory of dataset folder ``root`` (empty when there is none, or, with ``problem`` saying why,
    when its file is damaged)."""
    path = Path(root) / FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Memory()
    except (OSError, UnicodeDecodeError) as e:
        return Memory(problem=f"{path} cannot be read ({getattr(e, 'strerror', None) or e}): ignored")
    try:
        d = json.loads(text)
    except ValueError:
        return Memory(problem=f"{path} is damaged (not JSON): ignored")
    why = _valid(d)
    if why:
        return Memory(problem=f"{path} is damaged ({why}): ignored")
    return Memory(list(d.get("keep", [])), [list(g) for g in d.get("near_duplicates", [])], list(d.get("log", [])))


def save_memory(root, memory: Memory) -> None:
    """Write ``memory`` into dataset folder ``root``, atomically."""
    text = json.dumps(memory.to_dict(), indent=1)
    atomic_write(Path(root) / FILE, lambda f: f.write(text), mode="w")


def near_duplicate_paths(root) -> tuple[list[list[Path]], str]:
    """The stored near-duplicate groups of ``root`` as absolute paths, and the memory's problem ("" if none)."""
    memory = load_memory(root)
    return [[Path(root) / p for p in g] for g in memory.near_duplicates], memory.problem
