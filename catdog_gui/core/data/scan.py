"""Scan a dataset (no Qt): list its photos (:mod:`.layouts`), check each one can be read, find exact
duplicates, split (:mod:`.split`) and report the dataset's health (:class:`ScanReport`: counts per class,
unreadable files, duplicates, imbalance, classes too small). Unchanged files' checks are remembered
between scans (:data:`FILE_MEMO`)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence


from ..errors import DatasetError, ImageError
from .imageio import check_header
from ..errors import Cancelled
from .layouts import Sample, _check_folder, list_labeled, split_layout
from .split import stratified_split
from ..events import CountProgress
from ..storage.dataset_memory import near_duplicate_paths



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
            like = ("identical to a training photo or a near-copy of one (found by the review)"
                    if self.near_duplicate_groups else "identical to a training image")
            out.append(f"Dropped {self.removed_from_val} validation image(s) {like}, "
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


def _check_files(paths: Sequence[Path], progress: Optional[CountProgress], cancel, offset: int, total: int):
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


def file_hash(path: Path, ident=_MISSING) -> Optional[str]:
    """A photo's bytes as a 128-bit BLAKE2b hex digest (None when unreadable), remembered for unchanged files."""
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
            digest = file_hash(p, ident)
            if digest is not None:
                by_hash[digest].append(p)
        groups.extend(sorted(g) for g in by_hash.values() if len(g) > 1)
    return sorted(groups)


# ----------------------------------------------------------------------------------------------
# scanning and splitting


def scan_folder(
    folder: Path | str,
    progress: Optional[CountProgress] = None,
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
    progress: Optional[CountProgress] = None,
    cancel: Optional[threading.Event] = None,
    exclude: Optional[Iterable[Path | str]] = None,
    extra_groups: Optional[Iterable[Sequence[Path | str]]] = None,
) -> Dataset:
    """Scan ``train_dir`` (and ``val_dir``), check every file, find duplicates, split.

    ``exclude``: photos left out as if they were not there (the Dataset tab's "Exclude from
    training"); they are listed in the report's ``excluded``.

    ``extra_groups``: more groups of photos that must stay on one side of the split, like identical
    files; the last review's near-duplicate groups, kept in the dataset folder
    (:mod:`catdog_gui.core.storage.dataset_memory`), are always added.

    Raises :class:`DatasetError` when the data cannot train a classifier (no images, one class,
    no validation images), with a message that says what to change.
    """
    train_dir = root = _check_folder(Path(train_dir), "Training folder")
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
    stored, memory_problem = near_duplicate_paths(root)  # the last review's groups, kept with the dataset
    if memory_problem:
        warnings.append(memory_problem)
    extra_groups = [*stored, *(extra_groups or [])]
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


# ----------------------------------------------------------------------------------------------
# decode-once cache


