"""Dataset folder layouts: which files are a dataset's photos, and of which class (no Qt).

* **one subfolder per class** (``cat/``, ``dog/``; images may sit in nested folders below them);
* **flat, class in the file name** as in Kaggle's dogs-vs-cats ``train/``: ``cat.123.jpg``,
  ``dog_45.png`` (the class is the name before the first dot, or before a trailing number);
* a folder holding ``train/`` and ``val/`` (or ``valid``/``validation``) subfolders, each in one of
  the layouts above (:func:`split_layout`).

:func:`walk_files` is the one "files below a folder" walk (sorted, hidden files and folders skipped,
symlinked folders not followed); the scan, the Prediction tab's folder mode and the API use it.
"""

from __future__ import annotations

import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

from ..errors import DatasetError
from .imageio import is_image_name


VAL_NAMES = ("val", "valid", "validation")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int


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
            for f in walk_files(d, cancel):
                if is_image_name(f):
                    per_class[d.name].append(f)
                else:
                    ignored += 1
        # loose images next to class folders have no class: say so by counting them as ignored
        ignored += sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return "folders", dict(per_class), ignored
    removed = folder / REMOVED_DIR
    for f in walk_files(folder, cancel):
        if removed in f.parents:  # photos the review removed (core.review) are not in the dataset
            continue
        label = class_from_name(f.name) if is_image_name(f) else None
        if label is None:
            ignored += 1
        else:
            per_class[label].append(f)
    return "names", dict(per_class), ignored


def walk_files(folder: Union[str, os.PathLike], cancel: Optional[threading.Event] = None) -> Iterator[Path]:
    """All files below ``folder``: sorted (folder by folder, files before subfolders), hidden files
    and folders skipped, symlinked folders not followed (no loops).

    Raises :class:`catdog_gui.core.errors.Cancelled` when ``cancel`` is set.
    """
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False, onerror=None):
        if cancel is not None and cancel.is_set():
            from ..errors import Cancelled

            raise Cancelled("scan cancelled")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith("."):
                yield Path(dirpath) / f


def list_images(folder: Union[str, os.PathLike], cancel: Optional[threading.Event] = None) -> tuple[list[Path], int]:
    """Image files below ``folder`` (in :func:`walk_files` order) and how many other files were
    ignored. When ``cancel`` is set the walk stops and returns what it found so far."""
    from ..errors import Cancelled

    images: list[Path] = []
    others = 0
    try:
        for f in walk_files(folder, cancel):
            if is_image_name(f):
                images.append(f)
            else:
                others += 1
    except Cancelled:
        pass
    return images, others


def labeled_photos(root, cancel: Optional[threading.Event] = None) -> tuple[str, dict[str, list[Path]], int]:
    """:func:`list_labeled` over a whole dataset folder: with ``train/`` and ``val/`` inside, the photos of
    both parts by their real classes (``train/cats/a.jpg`` and ``validation/cats/b.jpg`` are both "cats")."""
    train, val = split_layout(Path(root))
    layout, per_class, ignored = list_labeled(train, cancel)
    if val is not None:
        _layout, val_per_class, val_ignored = list_labeled(val, cancel)
        for c, paths in val_per_class.items():
            per_class.setdefault(c, []).extend(paths)
        ignored += val_ignored
    return layout, per_class, ignored


def _check_class_name(cls) -> None:
    if (not isinstance(cls, str) or not cls.strip() or cls.startswith(".") or cls == REMOVED_DIR
            or any(ch in cls for ch in '/\\\0:*?"<>|')):
        raise DatasetError(f"{cls!r} cannot be a class name (a folder name without slashes)")


def _takes_class_from_names(part: Path) -> bool:
    """True when ``part`` (a dataset folder, or its training or validation folder) names each photo's
    class in its file name (``cat.1.jpg``) instead of holding one folder per class."""
    if any(_has_images(d) for d in _subdirs(part)):
        return False
    try:
        return any(f.is_file() and is_image_name(f) and class_from_name(f.name) for f in part.iterdir())
    except OSError:
        return False


def _class_dir(part: Path, cls: str) -> Path:
    """The folder of class ``cls`` in ``part``: an existing one of that name (exact, else any case),
    else a new one."""
    subdirs = _subdirs(part) if part.is_dir() else []
    match = [d for d in subdirs if d.name == cls] or [d for d in subdirs if d.name.lower() == cls.lower()]
    return match[0] if match else part / cls


def place_for(root, photo, cls: str) -> Path:
    """Where ``photo`` of dataset folder ``root`` belongs as a photo of class ``cls``, in the same part of the
    dataset (training or validation) and the same layout: ``validation/dogs/x.jpg`` ->
    ``validation/cats/x.jpg`` (sub-folders below the class folder kept); in a folder that takes classes from
    file names, ``cat.12.jpg`` -> ``dog.12.jpg`` beside it. DatasetError when ``cls`` is not a usable class
    name, the photo is not in the dataset, or its name carries no class to change."""
    root, photo = Path(root), Path(photo)
    _check_class_name(cls)
    train, val = split_layout(root)
    part = val if val is not None and val in photo.parents else train
    if part not in photo.parents:
        raise DatasetError(f"{photo} is not in the dataset {root}")
    if not _takes_class_from_names(part):
        rest = photo.relative_to(part).parts[1:]
        return _class_dir(part, cls).joinpath(*rest)
    old = class_from_name(photo.name)
    if old is None or not photo.name.startswith(old):
        raise DatasetError(f"{photo.name} has no class in its name to change: rename it by hand")
    return photo.with_name(cls + photo.name[len(old):])


def place_new(root, cls: str, name: str) -> Path:
    """Where a new photo called ``name`` goes as a photo of class ``cls`` in dataset folder ``root``:
    the training part, in the dataset's layout: ``<train>/<cls>/<name>`` (an existing class folder of
    that name in any case is reused), or ``<train>/<cls>.<name>`` in a folder that takes classes from
    file names. The camera and "Wrong?" add photos through it; the caller makes the name unique.
    DatasetError when ``cls`` is not a usable class name."""
    _check_class_name(cls)
    train, _val = split_layout(Path(root))
    if _takes_class_from_names(train):
        return train / f"{cls}.{name}"
    return _class_dir(train, cls) / name


def class_of(root, photo) -> Optional[str]:
    """The class of ``photo`` in dataset folder ``root`` by its place (its class folder, or its name),
    whatever the layout; None when it has none."""
    root, photo = Path(root), Path(photo)
    train, val = split_layout(root)
    part = val if val is not None and val in photo.parents else train
    if part not in photo.parents:
        return None
    if any(_has_images(d) for d in _subdirs(part)):
        rel = photo.relative_to(part).parts
        return rel[0] if len(rel) > 1 else None
    return class_from_name(photo.name)
