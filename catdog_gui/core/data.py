"""Datasets: scan image folders, report their health, split them, and decode them once.

Layouts accepted for a folder:

* **one subfolder per class** (``cat/``, ``dog/``; images may sit in nested folders below them);
* **flat, class in the file name** as in Kaggle's dogs-vs-cats ``train/``: ``cat.123.jpg``,
  ``dog_45.png`` (the class is the name before the first dot, or before a trailing number);
* a folder holding ``train/`` and ``val/`` (or ``valid``/``validation``) subfolders, each in one of
  the layouts above.

A separate validation folder may be given; otherwise a stratified, seeded split takes
``val_fraction`` of each class. Exact duplicates (same bytes) always land on the same side.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from .cachefiles import MB, Entry, cache_dir, file_identity, identity_text, remove, touch, trim_lru, write_atomic
from .errors import CatdogError, DatasetError, ImageError
from .imageio import check_header, is_image_name, load_square_array
from .files import walk_files

ProgressFn = Callable[[int, int], None]
VAL_NAMES = ("val", "valid", "validation")
#: how a split is drawn (model files and run records keep it): 1, before 2026-12, one seeded
#: permutation over the classes in turn; 2, each photo's side from a hash of the seed and its name
SPLIT_VERSION = 2


class Cancelled(CatdogError):
    """The user cancelled a long operation."""

    def __init__(self, what: str = "cancelled"):
        super().__init__(what)


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int


@dataclass(frozen=True)
class BadFile:
    path: Path
    reason: str


@dataclass
class ScanReport:
    """What a scan found: shown by the CLI before training and by the Dataset tab."""

    root: Path
    val_root: Optional[Path]
    layout: str  # "folders" or "names"
    classes: list[str]
    train_counts: dict[str, int]
    val_counts: dict[str, int]
    val_source: str  # "split" (val_fraction of train) or "folder"
    bad_files: list[BadFile] = field(default_factory=list)
    duplicate_groups: list[list[Path]] = field(default_factory=list)
    removed_from_val: int = 0  # validation images identical to a training image, dropped
    ignored: int = 0  # files that are not images by extension
    warnings: list[str] = field(default_factory=list)
    #: the split that made the validation set (val_source "split"): TrainConfig's val_fraction and seed
    val_fraction: Optional[float] = None
    split_seed: Optional[int] = None
    #: photos left out on purpose (scan_dataset's ``exclude``)
    excluded: list[Path] = field(default_factory=list)
    #: scan_dataset's ``extra_groups`` (the review's near-duplicates) that held two or more of its photos
    near_duplicate_groups: list[list[Path]] = field(default_factory=list)

    def split_matches(self, val_fraction: float, seed: int) -> bool:
        """Whether this scan's validation set is the one ``val_fraction`` and ``seed`` give
        (always true for a separate validation folder)."""
        return self.val_source != "split" or (self.val_fraction == val_fraction and self.split_seed == seed)

    @property
    def n_train(self) -> int:
        return sum(self.train_counts.values())

    @property
    def n_val(self) -> int:
        return sum(self.val_counts.values())

    def lines(self) -> list[str]:
        """The report as plain sentences."""
        out = [f"Dataset: {self.root} ({'one folder per class' if self.layout == 'folders' else 'class from file names'})"]
        width = max(len(c) for c in self.classes) if self.classes else 5
        for c in self.classes:
            out.append(f"  {c:<{width}}  {self.train_counts.get(c, 0):6d} train  {self.val_counts.get(c, 0):6d} validation")
        src = f"from {self.val_root}" if self.val_source == "folder" else "held out from the training folder"
        out.append(f"  {'total':<{width}}  {self.n_train:6d} train  {self.n_val:6d} validation ({src})")
        if self.bad_files:
            kinds = Counter(_reason_kind(b.reason) for b in self.bad_files)
            detail = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
            out.append(f"Skipped {len(self.bad_files)} unreadable file(s) ({detail}):")
            for b in self.bad_files[:10]:
                out.append(f"  {b.reason}")
            if len(self.bad_files) > 10:
                out.append(f"  ... and {len(self.bad_files) - 10} more")
        if self.duplicate_groups:
            n = sum(len(g) - 1 for g in self.duplicate_groups)
            out.append(f"Found {len(self.duplicate_groups)} group(s) of identical files ({n} extra copies); "
                       "copies are kept on the same side of the train/validation split.")
        if self.near_duplicate_groups:
            out.append(f"{len(self.near_duplicate_groups)} group(s) of near-duplicate photos (from the review) "
                       "are kept on the same side of the train/validation split.")
        if self.removed_from_val:
            out.append(f"Dropped {self.removed_from_val} validation image(s) identical to a training image, "
                       "so validation accuracy is measured on unseen photos only.")
        if self.ignored:
            out.append(f"Ignored {self.ignored} file(s) that are not images.")
        if self.excluded:
            out.append(f"Left out {len(self.excluded)} photo(s) excluded from training.")
        out.extend(f"Warning: {w}" for w in self.warnings)
        return out

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "val_root": str(self.val_root) if self.val_root else None,
            "layout": self.layout,
            "classes": list(self.classes),
            "train_counts": dict(self.train_counts),
            "val_counts": dict(self.val_counts),
            "val_source": self.val_source,
            "bad_files": [{"path": str(b.path), "reason": b.reason} for b in self.bad_files],
            "duplicate_groups": [[str(p) for p in g] for g in self.duplicate_groups],
            "near_duplicate_groups": [[str(p) for p in g] for g in self.near_duplicate_groups],
            "removed_from_val": self.removed_from_val,
            "ignored": self.ignored,
            "warnings": list(self.warnings),
        }


def _reason_kind(reason: str) -> str:
    r = reason.lower()
    if "0 bytes" in r or "empty" in r:
        return "empty"
    if "truncated" in r:
        return "truncated"
    if "bomb" in r:
        return "too large"
    if "not found" in r:
        return "missing"
    if "permission" in r:
        return "unreadable"
    return "not images"


@dataclass
class Dataset:
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    report: ScanReport


# ----------------------------------------------------------------------------------------------
# listing files

_TRAILING_NUMBER = re.compile(r"[._\- ]*\d+$")


def class_from_name(name: str) -> Optional[str]:
    """``cat.123.jpg`` -> ``cat``; ``golden_retriever_12.png`` -> ``golden_retriever``; else None."""
    stem = Path(name).stem
    if "." in stem:
        label = stem.split(".", 1)[0]
    else:
        label = _TRAILING_NUMBER.sub("", stem)
        if label == stem:
            return None
    label = label.strip(" ._-")
    return label or None


#: the folder inside a dataset where the review (core.review) moves removed photos; never scanned
REMOVED_DIR = "_removed"


def _walk_files(folder: Path, cancel: Optional[threading.Event]) -> Iterable[Path]:
    """All files below ``folder`` (sorted, hidden skipped, symlinked folders not followed: no loops);
    the one walk of :func:`catdog_gui.core.files.walk_files`."""
    return walk_files(folder, cancel)


def _check_folder(folder: Path, what: str) -> Path:
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DatasetError(f"{what} {folder} does not exist (was it moved, renamed or unplugged?)")
    if not folder.is_dir():
        raise DatasetError(f"{what} {folder} is a file, not a folder")
    try:
        with os.scandir(folder) as entries:
            next(entries, None)
    except PermissionError:
        raise DatasetError(f"{what} {folder} cannot be read (permission denied)") from None
    except OSError as e:
        raise DatasetError(f"{what} {folder} cannot be read ({e.strerror or e})") from None
    return folder


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and p.name != REMOVED_DIR
                      and not _links_back(p, folder))
    except OSError as e:
        raise DatasetError(f"cannot list {folder}: {e.strerror or e}") from None


def _links_back(d: Path, folder: Path) -> bool:
    """A symlinked folder pointing at ``folder`` itself or above it: a loop that would list every
    class again as one more class."""
    if not d.is_symlink():
        return False
    try:
        target, here = d.resolve(strict=True), folder.resolve(strict=True)
    except (OSError, RuntimeError):
        return True
    return target == here or target in here.parents


def _has_images(folder: Path) -> bool:
    for _root, _dirs, files in os.walk(folder):
        if any(is_image_name(f) for f in files):
            return True
    return False


def split_layout(root: Path) -> tuple[Path, Optional[Path]]:
    """If ``root`` holds ``train/`` and ``val/`` folders, return them; else (root, None)."""
    subs = {p.name.lower(): p for p in _subdirs(root)}
    if "train" in subs:
        for v in VAL_NAMES:
            if v in subs and set(subs) <= {"train", "test", *VAL_NAMES}:
                return subs["train"], subs[v]
    return root, None


def list_labeled(
    folder: Path, cancel: Optional[threading.Event] = None
) -> tuple[str, dict[str, list[Path]], int]:
    """Find the images of ``folder`` and their classes: (layout, {class: [paths]}, n_ignored)."""
    folder = _check_folder(folder, "Folder")
    per_class: dict[str, list[Path]] = defaultdict(list)
    ignored = 0
    class_dirs = [d for d in _subdirs(folder) if _has_images(d)]
    if class_dirs:
        for d in class_dirs:
            for f in _walk_files(d, cancel):
                if is_image_name(f):
                    per_class[d.name].append(f)
                else:
                    ignored += 1
        # loose images next to class folders have no class: say so by counting them as ignored
        ignored += sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return "folders", dict(per_class), ignored
    removed = folder / REMOVED_DIR
    for f in _walk_files(folder, cancel):
        if removed in f.parents:  # photos the review removed (core.review) are not in the dataset
            continue
        label = class_from_name(f.name) if is_image_name(f) else None
        if label is None:
            ignored += 1
        else:
            per_class[label].append(f)
    return "names", dict(per_class), ignored


# ----------------------------------------------------------------------------------------------
# checking and hashing


class _FileMemo:
    """What a scan learnt about each file, kept for the next scan in this process: keyed by path,
    valid while the file's size, modification and change times (ns) and inode are the same. A
    rescan after a camera burst then reads only the new photos' headers (and hashes), not the whole
    folder's (25,000 photos: 0.6 s instead of 2 s, ``tests/benchmarks/bench_rescan.py``). Bounded:
    cleared when it holds ``limit`` entries. Safe for scans on several threads (each access is one
    dict operation)."""

    def __init__(self, limit: int = 200_000):
        self.limit = limit
        self._d: dict[str, tuple] = {}

    @staticmethod
    def identity(path: Path) -> Optional[tuple[int, ...]]:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino

    def get(self, kind: str, path: Path, ident: Optional[tuple[int, ...]]):
        """The remembered ``kind`` ("header" or "hash") of ``path`` at ``ident``, or ``_MISSING``."""
        if ident is None:
            return _MISSING
        hit = self._d.get(f"{kind}\0{os.fspath(path)}")
        return hit[1] if hit is not None and hit[0] == ident else _MISSING

    def put(self, kind: str, path: Path, ident: Optional[tuple[int, ...]], value) -> None:
        if ident is None:
            return
        if len(self._d) >= self.limit:
            self._d.clear()
        self._d[f"{kind}\0{os.fspath(path)}"] = (ident, value)

    def clear(self) -> None:
        self._d.clear()


_MISSING = object()
#: the scans' memory of unchanged files (see :class:`_FileMemo`)
FILE_MEMO = _FileMemo()


def _check_files(paths: Sequence[Path], progress: Optional[ProgressFn], cancel, offset: int, total: int):
    bad: dict[Path, str] = {}
    step = max(1, total // 200)
    for i, p in enumerate(paths):
        if cancel is not None and cancel.is_set():
            raise Cancelled("scan cancelled")
        ident = FILE_MEMO.identity(p)
        reason = FILE_MEMO.get("header", p, ident)
        if reason is _MISSING:
            try:
                check_header(p)
                reason = None
            except ImageError as e:
                reason = str(e)
            FILE_MEMO.put("header", p, ident, reason)
        if reason is not None:
            bad[p] = reason
        if progress and (i % step == 0 or i == len(paths) - 1):
            progress(offset + i + 1, total)
    return bad


def _hash(path: Path, ident=_MISSING) -> Optional[str]:
    if ident is _MISSING:
        ident = FILE_MEMO.identity(path)
    digest = FILE_MEMO.get("hash", path, ident)
    if digest is not _MISSING:
        return digest
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    digest = h.hexdigest()
    FILE_MEMO.put("hash", path, ident, digest)
    return digest


def duplicate_groups(paths: Sequence[Path]) -> list[list[Path]]:
    """Groups of byte-identical files (only files of equal size are read)."""
    by_size: dict[int, list[tuple[Path, tuple]]] = defaultdict(list)
    for p in paths:
        ident = FILE_MEMO.identity(p)
        if ident is not None:
            by_size[ident[0]].append((p, ident))
    groups: list[list[Path]] = []
    for same in by_size.values():
        if len(same) < 2:
            continue
        by_hash: dict[str, list[Path]] = defaultdict(list)
        for p, ident in same:
            digest = _hash(p, ident)
            if digest is not None:
                by_hash[digest].append(p)
        groups.extend(sorted(g) for g in by_hash.values() if len(g) > 1)
    return sorted(groups)


# ----------------------------------------------------------------------------------------------
# scanning and splitting


def scan_folder(
    folder: Path | str,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[threading.Event] = None,
    check: bool = True,
) -> tuple[list[str], list[Sample], ScanReport]:
    """Scan one labelled folder (no split): classes, readable samples and a report."""
    folder = Path(folder)
    layout, per_class, ignored = list_labeled(folder, cancel)
    all_paths = [p for ps in per_class.values() for p in ps]
    bad = _check_files(all_paths, progress, cancel, 0, len(all_paths)) if check else {}
    _check_folder(folder, "Folder")  # still there after the check?
    classes = sorted(per_class)
    samples = [Sample(p, i) for i, c in enumerate(classes) for p in per_class[c] if p not in bad]
    report = ScanReport(
        root=folder, val_root=None, layout=layout, classes=classes,
        train_counts=dict(Counter(classes[s.label] for s in samples)), val_counts={}, val_source="none",
        bad_files=[BadFile(p, r) for p, r in sorted(bad.items())], ignored=ignored,
    )
    return classes, samples, report


def scan_dataset(
    train_dir: Path | str,
    val_dir: Optional[Path | str] = None,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[threading.Event] = None,
    exclude: Optional[Iterable[Path | str]] = None,
    extra_groups: Optional[Iterable[Sequence[Path | str]]] = None,
) -> Dataset:
    """Scan ``train_dir`` (and ``val_dir``), check every file, find duplicates, split.

    ``exclude``: photos left out as if they were not there (the Dataset tab's "Exclude from
    training"); they are listed in the report's ``excluded``.

    ``extra_groups``: more groups of photos that must stay on one side of the split, like identical
    files (the review's near-duplicate groups, :func:`catdog_gui.core.review.near_duplicate_groups`).

    Raises :class:`DatasetError` when the data cannot train a classifier (no images, one class,
    no validation images), with a message that says what to change.
    """
    train_dir = _check_folder(Path(train_dir), "Training folder")
    if val_dir is None:
        train_dir, val_dir = split_layout(train_dir)
    else:
        val_dir = _check_folder(Path(val_dir), "Validation folder")
    if not 0.0 < val_fraction < 1.0 and val_dir is None:
        raise DatasetError("the validation fraction must be between 0 and 1 (for example 0.2)")

    layout, per_class, ignored = list_labeled(train_dir, cancel)
    val_per_class: dict[str, list[Path]] = {}
    if val_dir is not None:
        _vlayout, val_per_class, vignored = list_labeled(val_dir, cancel)
        ignored += vignored
    excluded: list[Path] = []
    if exclude:
        left_out = {os.path.abspath(p) for p in exclude}
        for d in (per_class, val_per_class):
            for c in list(d):
                keep = [p for p in d[c] if os.path.abspath(p) not in left_out]
                excluded.extend(p for p in d[c] if os.path.abspath(p) in left_out)
                if keep:
                    d[c] = keep
                else:
                    del d[c]
    all_paths = [p for ps in per_class.values() for p in ps] + [p for ps in val_per_class.values() for p in ps]
    if not all_paths:
        raise DatasetError(
            f"no images found in {train_dir}. Put each class in its own subfolder "
            "(cat/, dog/) or name files like cat.1.jpg and dog.1.jpg"
        )
    bad = _check_files(all_paths, progress, cancel, 0, len(all_paths))
    # a folder unplugged, moved or deleted during the check: say so (not "only one class")
    _check_folder(train_dir, "Training folder")
    if val_dir is not None:
        _check_folder(val_dir, "Validation folder")
    warnings: list[str] = []
    classes = sorted(c for c, ps in per_class.items() if any(p not in bad for p in ps))
    for c in sorted(set(per_class) - set(classes)):
        warnings.append(f"class '{c}' has no readable image and was left out")
    if len(classes) < 2:
        found = f"only one class ('{classes[0]}')" if classes else "no readable images"
        raise DatasetError(
            f"{found} in {train_dir}: a classifier needs at least two classes. Put each class in its "
            "own subfolder (for example cat/ and dog/) or name files like cat.1.jpg and dog.1.jpg"
        )
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(val_per_class) - set(classes))
    if unknown:
        raise DatasetError(
            f"the validation folder has classes the training folder lacks: {', '.join(unknown)}. "
            f"Training classes: {', '.join(classes)}"
        )

    groups = duplicate_groups([p for p in all_paths if p not in bad])
    group_of: dict[Path, int] = {p: gi for gi, g in enumerate(groups) for p in g}
    near: list[list[Path]] = []
    if extra_groups:
        usable = {p for p in all_paths if p not in bad}
        by_abs = {os.path.abspath(p): p for p in usable}
        near = [m for m in ([by_abs[a] for a in dict.fromkeys(os.path.abspath(p) for p in g) if a in by_abs]
                            for g in extra_groups) if len(m) > 1]
        group_of = _merge_groups(group_of, near, usable)
    for g in groups:
        labels = {_label_of(p, per_class, val_per_class) for p in g}
        if len(labels) > 1:
            warnings.append(f"the same photo is filed under different classes ({', '.join(sorted(labels))}): "
                            + ", ".join(str(p) for p in g[:3]))

    train_samples = [Sample(p, index[c]) for c in classes for p in per_class[c] if p not in bad]
    removed = 0
    if val_dir is not None:
        train_groups = {group_of[s.path] for s in train_samples if s.path in group_of}
        val_samples = []
        for c, ps in sorted(val_per_class.items()):
            for p in ps:
                if p in bad:
                    continue
                if p in group_of and group_of[p] in train_groups:
                    removed += 1
                    continue
                val_samples.append(Sample(p, index[c]))
        val_source = "folder"
    else:
        train_samples, val_samples = stratified_split(train_samples, val_fraction, seed, group_of)
        val_source = "split"

    train_counts = Counter(classes[s.label] for s in train_samples)
    val_counts = Counter(classes[s.label] for s in val_samples)
    if not val_samples:
        raise DatasetError("no images left for validation: add more photos or a validation folder")
    for c in classes:
        if train_counts[c] < 2:
            raise DatasetError(f"class '{c}' has {train_counts[c]} training image(s): add at least a few more photos")
        if train_counts[c] < 20:
            warnings.append(f"class '{c}' has only {train_counts[c]} training images: results will be unreliable")
        if val_dir is not None and val_counts[c] == 0:
            warnings.append(f"the validation folder has no '{c}' images")
    counts = [train_counts[c] for c in classes]
    if max(counts) > 1.5 * min(counts):
        big = max(classes, key=lambda c: train_counts[c])
        small = min(classes, key=lambda c: train_counts[c])
        warnings.append(
            f"classes are imbalanced ({train_counts[big]} '{big}' vs {train_counts[small]} '{small}'): "
            "check per-class recall, not only accuracy"
        )
    report = ScanReport(
        root=train_dir, val_root=val_dir, layout=layout, classes=classes,
        train_counts={c: train_counts[c] for c in classes}, val_counts={c: val_counts[c] for c in classes},
        val_source=val_source, bad_files=[BadFile(p, r) for p, r in sorted(bad.items())],
        duplicate_groups=groups, removed_from_val=removed, ignored=ignored, warnings=warnings,
        val_fraction=val_fraction if val_source == "split" else None,
        split_seed=seed if val_source == "split" else None,
        excluded=sorted(excluded), near_duplicate_groups=near,
    )
    return Dataset(classes, train_samples, val_samples, report)


def _merge_groups(group_of: dict[Path, int], extra: Iterable[Sequence[Path | str]], known: set) -> dict[Path, int]:
    """``group_of`` with the ``extra`` groups joined in (groups that share a photo become one)."""
    by_abs = {os.path.abspath(p): p for p in known}
    parent: dict[object, object] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p, gi in group_of.items():
        parent[find(p)] = find(("exact", gi))
    for g in extra:
        members = [by_abs[a] for a in (os.path.abspath(p) for p in g) if a in by_abs]
        for p in members[1:]:
            parent[find(p)] = find(members[0])
    roots: dict[object, int] = {}
    out: dict[Path, int] = {}
    for p in list(parent):
        if isinstance(p, Path):
            out[p] = roots.setdefault(find(p), len(roots))
    return out


def _label_of(p: Path, per_class: dict, val_per_class: dict) -> str:
    for d in (per_class, val_per_class):
        for c, ps in d.items():
            if p in ps:
                return c
    return "?"


def _split_rank(seed: int, unit: Sequence[Sample]) -> tuple[bytes, str]:
    """Where a unit (a photo, or identical copies) falls in its class's seeded order: a hash of the
    seed and the unit's ``folder/name``, so a photo keeps its place whatever else the class holds,
    and wherever the dataset folder is moved."""
    first = min(f"{s.path.parent.name}/{s.path.name}" for s in unit)
    digest = hashlib.blake2b(f"{seed}\0{first}".encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return digest, min(str(s.path) for s in unit)


def stratified_split(
    samples: Sequence[Sample], val_fraction: float, seed: int, group_of: dict[Path, int] | None = None
) -> tuple[list[Sample], list[Sample]]:
    """Per class, put about ``val_fraction`` of the images in validation; identical files
    (same ``group_of`` id) move together. Seeded: the same input gives the same split.

    Stable as a dataset grows: each photo's place in its class's order depends only on the seed
    and its own name (:func:`_split_rank`), not on the other photos. Photos added to one class
    (a camera burst) leave every other class's split exactly as it was, and move at most as many
    of that class's photos as were added (more only when a group of identical copies, which moves
    as one, is displaced)."""
    group_of = group_of or {}
    train: list[Sample] = []
    val: list[Sample] = []
    by_label: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_label[s.label].append(s)
    for label in sorted(by_label):
        units: dict[object, list[Sample]] = defaultdict(list)
        for s in by_label[label]:
            units[group_of.get(s.path, s.path)].append(s)
        ordered = sorted(units.values(), key=lambda u: _split_rank(seed, u))
        n_total = len(by_label[label])
        want = int(round(n_total * val_fraction))
        if n_total >= 2:
            want = min(max(want, 1), n_total - 1)
        taken = 0
        for unit in ordered:
            if taken < want and taken + len(unit) <= want + (1 if taken == 0 else 0):
                val.extend(unit)
                taken += len(unit)
            else:
                train.extend(unit)
    # a duplicate group whose copies carry different labels must still stay on one side
    if group_of:
        train_groups = {group_of[s.path] for s in train if s.path in group_of}
        moved = [s for s in val if s.path in group_of and group_of[s.path] in train_groups]
        if moved:
            val = [s for s in val if s not in moved]
            train.extend(moved)
    train.sort(key=lambda s: (s.label, str(s.path)))
    val.sort(key=lambda s: (s.label, str(s.path)))
    return train, val


# ----------------------------------------------------------------------------------------------
# decode-once cache

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
DISK_CACHE_LIMIT = int(os.environ.get("CATDOG_DISK_CACHE_MB", "4096")) * MB
#: the version of the decoded pixels: bump it when decoding changes (later caches built on the
#: pixels, such as the backbone features, include it in their keys)
_CACHE_VERSION = 1
DECODE_VERSION = _CACHE_VERSION


def _cache_key(samples: Sequence[Sample], size: int, identities: Sequence) -> Optional[str]:
    """Identifies a list of files *as they are now*: any changed, added or removed file gives a new key."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"v{_CACHE_VERSION}:{size}:{len(samples)}".encode())
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
        keep = meta["keep"]
        expected = len(keep) * 3 * size * size
        if data_path.stat().st_size != expected:
            return None
        arr = np.memmap(data_path, dtype=np.uint8, mode="c", shape=(len(keep), 3, size, size)) if keep else \
            np.empty((0, 3, size, size), np.uint8)
        touch(meta_path)  # recently used: trimmed last
    except (OSError, ValueError, KeyError, TypeError):
        return None
    labels = np.array([samples[i].label for i in keep], dtype=np.int64)
    bad = [BadFile(Path(p), r) for p, r in meta.get("bad", [])]
    return ImageCache(arr, labels, [samples[i].path for i in keep], bad,
                      identities=[identities[i] for i in keep])


def _save_disk_cache(folder: Path, key: str, cache: ImageCache, samples: Sequence[Sample]) -> None:
    import json

    data_path = folder / f"{key}.u8"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        index = {p: i for i, p in enumerate(s.path for s in samples)}
        keep = [index[p] for p in cache.paths]
        write_atomic(data_path, lambda f: np.ascontiguousarray(cache.array).tofile(f))
        meta = json.dumps({"keep": keep, "bad": [[str(b.path), b.reason] for b in cache.bad]})
        try:
            write_atomic(folder / f"{key}.json", meta.encode())  # last: the entry is complete
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
    progress: Optional[ProgressFn] = None,
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
