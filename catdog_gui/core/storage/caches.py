"""The disk caches' common ground: where they live, how a file gets there, how they stay bounded.

Three caches share the user cache folder (``$CATDOG_CACHE_DIR``, else the platform's user cache
folder + ``catdog-gui``), one subfolder each:

* ``decoded``: photos decoded to the model's input size (:func:`catdog_gui.core.data.decode_cache.build_cache`);
* ``features``: a frozen backbone's features per photo (:mod:`catdog_gui.core.inference.features`);
* ``onnx``: frozen backbones exported to ONNX for onnxruntime (:mod:`catdog_gui.core.inference.features`).

Every entry is keyed by what it was made from, files included by *identity*
(:func:`file_identity`: absolute path, size, modification time in ns), so a changed file is a new
key, never a stale hit. Files are written atomically (:func:`write_cache_file`: a temporary file beside
the final one, renamed into place), so a crash or a full disk leaves no half-written entry, and a
cache write that fails only means "not cached": callers catch ``OSError`` and carry on. Each cache is
trimmed to its limit, least recently used first (:func:`trim_lru`); :func:`clear_caches` empties them
(``catdog cache clear``, and the window).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

#: the unit of the cache limits (CATDOG_*_CACHE_MB): binary megabytes; sizes shown to people use
#: decimal units (core.text.size_text)
MIB = 1024 * 1024

#: the caches, by subfolder, with what they hold (in words)
CACHE_KINDS = {
    "decoded": "decoded photos",
    "features": "backbone features",
    "onnx": "backbones exported for onnxruntime",
}

#: temporary files end like this (``.<name>.<random>.tmp``, made by :func:`write_cache_file`)
TMP_SUFFIX = ".tmp"


def cache_root() -> Path:
    """The folder that holds every cache: ``$CATDOG_CACHE_DIR``, else the user cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache``; ``%LOCALAPPDATA%`` on Windows) + ``catdog-gui``."""
    env = os.environ.get("CATDOG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.environ.get("LOCALAPPDATA") if os.name == "nt" else os.path.join(os.path.expanduser("~"), ".cache"))
    return Path(base or tempfile.gettempdir()) / "catdog-gui"


def cache_dir(kind: str) -> Path:
    """The folder of one cache (a key of :data:`CACHE_KINDS`); not created here."""
    if kind not in CACHE_KINDS:
        raise ValueError(f"unknown cache {kind!r}")
    return cache_root() / kind


def file_identity(path: Union[str, Path]) -> Optional[tuple[str, int, int]]:
    """(absolute path, size in bytes, modification time in ns) of a file as it is now; None when it
    cannot be read. Any edit, replacement or move gives another identity."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.path.abspath(os.fspath(path)), st.st_size, st.st_mtime_ns


def identity_text(identity: Sequence) -> str:
    """One identity as text (for keys and index files): ``path\\0size\\0mtime_ns``."""
    path, size, mtime_ns = identity
    return f"{path}\0{int(size)}\0{int(mtime_ns)}"


def write_cache_file(path: Path, data: Union[bytes, Callable]) -> None:
    """Write ``data`` (bytes, or a function that writes into the open binary file) to ``path``
    atomically: :func:`catdog_gui.core.storage.files.atomic_write` (a temporary file in the same folder,
    renamed into place when complete), without its fsync (a cache entry lost in a power cut is only
    computed again). Raises ``OSError`` on any failure (full or read-only disk), the temporary file
    removed."""
    from ..errors import CatdogError
    from .files import atomic_write

    write = data if callable(data) else (lambda f: f.write(data))
    try:
        atomic_write(path, write, durable=False)
    except CatdogError as e:  # atomic_write's words for an OSError
        raise OSError(str(e)) from e


def touch(path: Path) -> None:
    """Mark an entry as just used (its modification time): trimmed last."""
    try:
        os.utime(path)
    except OSError:
        pass


def remove(files: Iterable[Path]) -> int:
    """Delete files (missing ones are fine); the bytes freed."""
    freed = 0
    for f in files:
        try:
            size = f.stat().st_size
            f.unlink()
            freed += size
        except OSError:
            pass
    return freed


@dataclass(frozen=True)
class Entry:
    """One cache entry for :func:`trim_lru`: its files, their bytes, when it was last used."""

    used: float
    files: tuple[Path, ...]
    nbytes: int


def trim_lru(entries: Sequence[Entry], limit: int, keep: Iterable[Path] = ()) -> int:
    """Delete the least recently used entries until the rest fit in ``limit`` bytes (an entry with
    a file in ``keep``, e.g. the one just written, stays); the bytes freed."""
    keep = {Path(p) for p in keep}
    total = sum(e.nbytes for e in entries)
    freed = 0
    for e in sorted(entries, key=lambda e: e.used):
        if total <= limit:
            break
        if keep & set(e.files):
            continue
        freed += remove(e.files)
        total -= e.nbytes
    return freed


def _files_below(folder: Path) -> list[Path]:
    out = []
    for root, _dirs, files in os.walk(folder):
        out.extend(Path(root) / f for f in files)
    return out


@dataclass(frozen=True)
class CacheUsage:
    kind: str  # "decoded", "features", "onnx"
    title: str  # what it holds, in words
    folder: Path
    files: int
    nbytes: int


def cache_info() -> list[CacheUsage]:
    """How many files and bytes each cache holds now."""
    out = []
    for kind, title in CACHE_KINDS.items():
        folder = cache_dir(kind)
        files = _files_below(folder) if folder.is_dir() else []
        nbytes = 0
        for f in files:
            try:
                nbytes += f.stat().st_size
            except OSError:
                pass
        out.append(CacheUsage(kind, title, folder, len(files), nbytes))
    return out


def clear_caches(kinds: Optional[Iterable[str]] = None) -> int:
    """Empty the caches (all of them, or the given kinds); returns the bytes freed. Safe while
    nothing runs; a run in progress only loses what it had not written yet. Only the caches'
    own subfolders are touched, never anything else under the cache root."""
    freed = 0
    for kind in kinds or CACHE_KINDS:
        folder = cache_dir(kind)
        if not folder.is_dir():
            continue
        freed += remove(_files_below(folder))
        for root, dirs, _files in os.walk(folder, topdown=False):
            for d in dirs:
                try:
                    (Path(root) / d).rmdir()
                except OSError:
                    pass
    return freed
