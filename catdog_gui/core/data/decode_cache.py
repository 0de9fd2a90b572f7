"""Decode a dataset's photos once (no Qt): :func:`build_cache` gives every photo as a uint8 array
of the model's input size, in RAM or in a memory-mapped file beyond a budget, and keeps it on disk
between runs, keyed by each file's identity, so a second run decodes nothing."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import Cancelled, ImageError
from ..events import CountProgress
from ..storage.caches import (
    MIB,
    Entry,
    cache_dir,
    file_identity,
    identity_text,
    remove,
    touch,
    trim_lru,
    write_cache_file,
)
from .imageio import load_square_array
from .layouts import Sample
from .scan import BadFile

#: above this many bytes the cache lives in a memory-mapped temp file instead of RAM
CACHE_RAM_BUDGET = int(os.environ.get("CATDOG_CACHE_RAM_MB", "2048")) * 1024 * 1024


class ImageCache:
    """All images of a list decoded once to ``size`` x ``size`` uint8, channels first.

    ``array`` is (N, 3, size, size) uint8: in RAM when it fits ``CACHE_RAM_BUDGET``, otherwise a
    memory-mapped temporary file (deleted when the cache is), so memory stays bounded for any N.
    ``labels`` and ``paths`` follow the same order; files that failed to decode are in ``bad``.
    ``identities`` (same order) are the files' :func:`~.cachefiles.file_identity` taken *before*
    they were decoded (None for a file that could not be looked at): what later caches key on, so a
    file edited during or after decoding never passes for the version that was decoded.
    """

    def __init__(self, array: np.ndarray, labels: np.ndarray, paths: list[Path], bad: list[BadFile], tmp=None,
                 identities: Optional[list] = None):
        self.array = array
        self.labels = labels
        self.paths = paths
        self.bad = bad
        self._tmp = tmp
        self.identities = identities if identities is not None else [None] * len(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def close(self) -> None:
        if self._tmp is not None:
            self.array = None
            self._tmp.close()
            self._tmp = None


def default_cache_dir() -> Path:
    """Where decoded images are kept between runs: the ``decoded`` folder of the user cache
    folder (:func:`~.cachefiles.cache_root`: ``$CATDOG_CACHE_DIR``, else the platform's)."""
    return cache_dir("decoded")


#: the disk cache of decoded images is trimmed (oldest first) to this many bytes
DISK_CACHE_LIMIT = int(os.environ.get("CATDOG_DISK_CACHE_MB", "4096")) * MIB


#: the version of the decoded pixels: bump it when decoding changes (later caches built on the
#: pixels, such as the backbone features, include it in their keys)
DECODE_VERSION = 1


def _cache_key(samples: Sequence[Sample], size: int, identities: Sequence) -> Optional[str]:
    """Identifies a list of files *as they are now*: any changed, added or removed file gives a new key."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"v{DECODE_VERSION}:{size}:{len(samples)}".encode())
    for s, ident in zip(samples, identities):
        if ident is None:
            return None  # a file vanished: decode (and report it) instead of trusting the cache
        h.update(f"\0{s.label}\0{identity_text(ident)}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _load_disk_cache(folder: Path, key: str, samples: Sequence[Sample], size: int,
                     identities: Sequence) -> Optional[ImageCache]:
    meta_path = folder / f"{key}.json"
    data_path = folder / f"{key}.u8"
    try:
        import json

        meta = json.loads(meta_path.read_text())
        keep, bad_files = meta["keep"], meta.get("bad", [])
        if (not isinstance(keep, list) or len(set(keep)) != len(keep)
                or not all(type(i) is int and 0 <= i < len(samples) for i in keep)
                or not isinstance(bad_files, list)
                or not all(isinstance(b, list) and len(b) == 2 and all(isinstance(x, str) for x in b)
                           for b in bad_files)):
            return None  # damaged: decode again
        expected = len(keep) * 3 * size * size
        if data_path.stat().st_size != expected:
            return None
        arr = np.memmap(data_path, dtype=np.uint8, mode="c", shape=(len(keep), 3, size, size)) if keep else \
            np.empty((0, 3, size, size), np.uint8)
        touch(meta_path)  # recently used: trimmed last
    except (OSError, ValueError, KeyError, TypeError):
        return None
    labels = np.array([samples[i].label for i in keep], dtype=np.int64)
    bad = [BadFile(Path(p), r) for p, r in bad_files]
    return ImageCache(arr, labels, [samples[i].path for i in keep], bad,
                      identities=[identities[i] for i in keep])


def _save_disk_cache(folder: Path, key: str, cache: ImageCache, samples: Sequence[Sample]) -> None:
    import json

    data_path = folder / f"{key}.u8"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        index = {p: i for i, p in enumerate(s.path for s in samples)}
        keep = [index[p] for p in cache.paths]
        write_cache_file(data_path, lambda f: np.ascontiguousarray(cache.array).tofile(f))
        meta = json.dumps({"keep": keep, "bad": [[str(b.path), b.reason] for b in cache.bad]})
        try:
            write_cache_file(folder / f"{key}.json", meta.encode())  # last: the entry is complete
        except OSError:
            remove([data_path])  # no data file (possibly gigabytes) that nothing points at
            raise
        _trim_disk_cache(folder)
    except OSError:
        pass  # a cache is an optimisation: a full or read-only disk must not fail training


def _trim_disk_cache(folder: Path) -> None:
    entries = []
    for meta in folder.glob("*.json"):
        data = meta.with_suffix(".u8")
        try:
            entries.append(Entry(meta.stat().st_mtime, (meta, data), data.stat().st_size))
        except OSError:
            continue
    trim_lru(entries, DISK_CACHE_LIMIT)


def build_cache(
    samples: Sequence[Sample],
    size: int,
    progress: Optional[CountProgress] = None,
    cancel: Optional[threading.Event] = None,
    workers: Optional[int] = None,
    disk_cache: Optional[Path | str] = None,
) -> ImageCache:
    """Decode every sample once (in parallel threads: PIL releases the GIL while decoding).

    With ``disk_cache`` (a folder), the decoded array is also kept on disk, keyed by every file's
    path, size and modification time, so the next run on unchanged files memory-maps it instead of
    decoding again.
    """
    key = None
    identities = [file_identity(s.path) for s in samples]  # before decoding: see ImageCache.identities
    if disk_cache is not None and samples:
        key = _cache_key(samples, size, identities)
        if key is not None:
            hit = _load_disk_cache(Path(disk_cache), key, samples, size, identities)
            if hit is not None:
                if progress:
                    progress(len(samples), len(samples))
                return hit
    cache = _decode_all(samples, size, progress, cancel, workers)
    index = {p: i for i, p in enumerate(s.path for s in samples)}
    cache.identities = [identities[index[p]] for p in cache.paths]
    if key is not None:
        _save_disk_cache(Path(disk_cache), key, cache, samples)
    return cache


def _decode_all(samples, size, progress, cancel, workers) -> ImageCache:
    n = len(samples)
    nbytes = n * 3 * size * size
    tmp = None
    if nbytes > CACHE_RAM_BUDGET:
        tmp = tempfile.NamedTemporaryFile(prefix="catdog-cache-", suffix=".u8")
        arr = np.memmap(tmp.name, dtype=np.uint8, mode="w+", shape=(n, 3, size, size))
    else:
        arr = np.empty((n, 3, size, size), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    bad: list[BadFile] = []
    lock = threading.Lock()
    done = [0]
    step = max(1, n // 200)

    def work(i: int) -> None:
        if cancel is not None and cancel.is_set():
            return
        try:
            arr[i] = load_square_array(samples[i].path, size).transpose(2, 0, 1)
            ok[i] = True
        except ImageError as e:
            with lock:
                bad.append(BadFile(samples[i].path, str(e)))
        with lock:
            done[0] += 1
            d = done[0]
        if progress and (d % step == 0 or d == n):
            progress(d, n)

    workers = workers or min(32, os.cpu_count() or 1)  # every core decodes (a GPU machine has many to feed)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, range(n)))
    if cancel is not None and cancel.is_set():
        if tmp is not None:
            tmp.close()
        raise Cancelled("decoding cancelled")
    labels = np.array([s.label for s in samples], dtype=np.int64)
    paths = [s.path for s in samples]
    if not ok.all():
        keep = np.flatnonzero(ok)
        if tmp is None:
            arr = arr[keep]
        else:  # compact in place: keep order, no second full-size copy
            for dst, src in enumerate(keep):
                if dst != src:
                    arr[dst] = arr[src]
            arr = arr[: len(keep)]
        labels = labels[keep]
        paths = [paths[i] for i in keep]
    bad.sort(key=lambda b: str(b.path))
    return ImageCache(arr, labels, paths, bad, tmp)
