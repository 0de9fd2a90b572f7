"""Files the user cares about, without Qt: image files under a folder, copying a photo into a
dataset, and the predictions CSV.

* :func:`walk_files` / :func:`list_images`: the one "files below a folder" walk (sorted, hidden
  files and folders skipped, symlinked folders not followed). The dataset scan, the Prediction
  tab's folder mode and ``catdog_gui.api.predict(model, folder)`` all use it.
* :func:`add_to_dataset`: copy a photo into a dataset as an example of a class; never moves or
  overwrites anything.
* :func:`write_predictions_csv`: one row per readable image, written atomically.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from ..errors import CatdogError
from ..data.imageio import IMAGE_EXTS, is_image_name

Source = Union[str, os.PathLike, bytes]

__all__ = ["unique_path", "image_suffix", "add_to_dataset", "write_predictions_csv"]


# ------------------------------------------------------------------------------------------------
# listing


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once, at import (umask can only be read by setting it)


def atomic_write(path: Path | str, write: Callable[[Any], None], mode: str = "wb", durable: bool = True) -> Path:
    """Write ``path`` through a temp file in the same folder, fsync, rename into place.

    ``durable=False`` skips the fsync: for caches, where a file lost in a power cut costs only its
    recomputation, and waiting for the disk (a decoded-photo cache is hundreds of MB) would not."""
    path = Path(path).expanduser()
    folder = path.parent
    if not folder.exists():
        raise CatdogError(f"cannot save {path}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes owner-only files; give the result the permissions a normal new file gets
        # (or those of the file it replaces)
        try:
            perms = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_UMASK
            os.chmod(tmp, perms)
        except OSError:
            pass
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise CatdogError(f"cannot save {path}: {e.strerror or e}") from None
        raise
    return path


# ------------------------------------------------------------------------------------------------
# copying a photo into a dataset


def unique_path(path: Path) -> Path:
    """``path`` if it is free, else the first free ``<stem>_2<suffix>``, ``<stem>_3<suffix>``..."""
    if not path.exists():
        return path
    for i in itertools.count(2):
        cand = path.with_name(f"{path.stem}_{i}{path.suffix}")
        if not cand.exists():
            return cand
    raise AssertionError  # unreachable


def image_suffix(source: Source) -> str:
    """The file suffix a photo should keep: its own if it has an image name, else from its format."""
    if not isinstance(source, (bytes, bytearray)) and is_image_name(source):
        return Path(source).suffix
    try:
        from PIL import Image

        src = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        with Image.open(src) as im:
            fmt = (im.format or "png").lower()
    except Exception:
        fmt = "png"
    ext = {"jpeg": ".jpg", "tiff": ".tif"}.get(fmt, f".{fmt}")
    return ext if ext in IMAGE_EXTS else ".png"


def add_to_dataset(source: Source, dataset_root: Union[str, os.PathLike], cls: str,
                   name: Optional[str] = None) -> tuple[Path, str]:
    """Copy a photo (a file, or encoded bytes) into ``dataset_root`` as an example of ``cls``;
    return (new file, a sentence saying what happened).

    Never moves or overwrites: an existing name gets a ``_2``, ``_3``... suffix. Class-per-folder
    datasets get the copy in ``<root>/<cls>/`` (or ``<root>/train/<cls>/``); datasets that take the
    class from the file name (``cat.1.jpg``) get it next to the others, named ``<cls>.<name>``.
    ``name``: the photo's name (default the file's; bytes get ``pasted-<date>-<time>``).
    """
    from ..data.layouts import place_new

    is_file = not isinstance(source, (bytes, bytearray))
    root = Path(dataset_root).expanduser()
    if not root.is_dir():
        raise CatdogError(f"the dataset folder {root} does not exist (was it moved or unplugged?)")
    if is_file:
        stem = Path(name or Path(source).name).stem
    else:
        stem = time.strftime("pasted-%Y%m%d-%H%M%S")
    place = place_new(root, cls, f"{stem}{image_suffix(source)}")
    folder, new_name = place.parent, place.name
    if new_name != f"{stem}{place.suffix}":
        how = (f"This dataset takes the class from the file name, so the copy is called {new_name} "
               f"in {folder}.")
    else:
        how = f"Copied into {folder}."
    try:
        folder.mkdir(parents=True, exist_ok=True)
        dest = unique_path(place)
        if is_file:
            shutil.copy2(source, dest)  # dest did not exist: nothing is overwritten
        else:
            atomic_write(dest, lambda f: f.write(bytes(source)))
    except OSError as e:
        raise CatdogError(f"could not copy the photo into {folder}: {e.strerror or e}") from None
    msg = how if dest.name == new_name else f"{how} (as {dest.name}: the name was taken)"
    if is_file:
        try:
            inside = Path(source).resolve().is_relative_to(root.resolve())
        except OSError:
            inside = False
        if inside:
            msg += (" The original is still in the dataset under its old class: remove it there, or the "
                    "dataset holds the same photo under two classes.")
    return dest, msg + " Continue training to learn from it."


# ------------------------------------------------------------------------------------------------
# the predictions CSV


def write_predictions_csv(path: Union[str, os.PathLike], predictions: Iterable, classes: Sequence[str]) -> int:
    """One row per readable image: file, class, confidence, one probability column per class, then
    whether the photo is unlike the training photos ("yes"/"no"; empty when the model file has no
    check) and its unfamiliarity score. Written atomically (temp file + rename); returns the number of rows."""

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "class", "confidence", *[f"p_{c}" for c in classes], "unfamiliar", "unfamiliar_score"])
    n = 0
    for p in predictions:
        if not p.ok:
            continue
        probs = dict(p.probabilities)
        flag = getattr(p, "unfamiliar", None)
        score = getattr(p, "unfamiliar_score", None)
        w.writerow([p.source, p.label, f"{p.confidence:.6f}", *[f"{probs.get(c, 0.0):.6f}" for c in classes],
                    "" if flag is None else ("yes" if flag else "no"), "" if score is None else f"{score:.6g}"])
        n += 1
    # surrogateescape: a file name that is not valid UTF-8 is written as its own bytes
    atomic_write(Path(path), lambda f: f.write(buf.getvalue().encode("utf-8", "surrogateescape")))
    return n
