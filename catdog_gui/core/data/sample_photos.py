"""Sample photos (no Qt): the catalogue of public cats-and-dogs archives (:data:`SAMPLE_SETS`) and
:func:`get_samples`, which downloads one (:func:`~catdog_gui.core.storage.download.download`) and unpacks it
(:func:`~catdog_gui.core.storage.unzip.extract_zip`) into the app's data folder (:func:`samples_dir`) or a
given folder.

Errors are :class:`~catdog_gui.core.errors.DownloadError` with one sentence that says what happened and
what to do.
"""

from __future__ import annotations

import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..storage.download import DownloadProgress, download
from ..errors import DownloadError
from ..storage.unzip import extract_zip



@dataclass(frozen=True)
class SampleSet:
    key: str
    title: str
    url: str
    #: the archive's size in bytes, when known for certain (checked after the download)
    size: Optional[int]
    #: its SHA-256, when known for certain (none of the public archives publishes one)
    sha256: Optional[str]
    #: what is inside, in words
    photos: str
    #: the folder it is unpacked to (under :func:`samples_dir`)
    folder: str

    @property
    def filename(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name or f"{self.key}.zip"


SAMPLE_SETS: dict[str, SampleSet] = {
    # the archive TensorFlow's image-classification tutorials use: 68,606,236 bytes in every
    # published download log; train/ and validation/, each with cats/ and dogs/
    "small": SampleSet(
        "small", "Cats and dogs (small)",
        "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
        68_606_236, None,
        "3,000 photos: 2,000 for training and 1,000 for validation, in cats/ and dogs/", "cats_and_dogs_filtered"),
    # Microsoft's Asirra set behind Kaggle's dogs-vs-cats: PetImages/Cat and PetImages/Dog, a few
    # unreadable files among them (the scan reports and skips them). Size not recorded: CRCs only.
    "large": SampleSet(
        "large", "Cats and dogs (large, Microsoft PetImages)",
        "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
        "kagglecatsanddogs_5340.zip",
        None, None,
        "about 25,000 photos in Cat/ and Dog/ (about 800 MB; a few are unreadable on purpose)", "PetImages"),
}
DEFAULT_SET = "small"


# ----------------------------------------------------------------------------------------------
# download


# ----------------------------------------------------------------------------------------------
# safe unpacking


def dataset_root(folder: Path) -> Path:
    """The folder inside an unpacked archive that holds the photos: down through folders that
    hold exactly one visible folder and no image (``cats_and_dogs_filtered/``, ``PetImages/``)."""
    from .imageio import is_image_name

    while True:
        try:
            entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        except OSError:
            return folder
        dirs = [p for p in entries if p.is_dir() and not p.is_symlink()]
        if len(dirs) != 1 or any(is_image_name(p.name) for p in entries if p.is_file()):
            return folder
        folder = dirs[0]


# ----------------------------------------------------------------------------------------------
# the whole thing


def samples_dir() -> Path:
    """Where the window keeps sample photos: ``samples/`` in the app's data folder."""
    from ..storage.run_store import app_data_dir

    return app_data_dir() / "samples"


def installed(set_key: str = DEFAULT_SET) -> Optional[Path]:
    """The folder of sample set ``set_key`` if it was unpacked before (the rename makes it
    all-or-nothing), else None."""
    p = samples_dir() / SAMPLE_SETS[set_key].folder
    return p if p.is_dir() else None


@dataclass(frozen=True)
class SamplesResult:
    folder: Path
    files: int
    nbytes: int
    url: str


def get_samples(
    dest: Optional[Path | str] = None,
    *,
    set_key: str = DEFAULT_SET,
    url: Optional[str] = None,
    sha256: Optional[str] = None,
    progress: Optional[DownloadProgress] = None,
    cancel: Optional[threading.Event] = None,
    mirror_hint: str = "use another address (a mirror)",
    **download_options,
) -> SamplesResult:
    """Download sample set ``set_key`` (from ``url`` when given: a mirror) and unpack it into
    ``dest`` (default: :func:`samples_dir`), which must not exist or be empty. The folder that
    holds the photos becomes ``dest`` itself (``dest/train``, ``dest/validation``); the archive is
    deleted once unpacked. The known size of the default archive is checked only for its own
    address (a mirror may hold a repacked copy); ``sha256`` is checked when given."""
    if set_key not in SAMPLE_SETS:
        raise DownloadError(f"unknown sample set {set_key!r}: choose one of {', '.join(SAMPLE_SETS)}")
    sset = SAMPLE_SETS[set_key]
    url = (url or "").strip() or sset.url
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise DownloadError(f"{url} is not a web address: give one that starts with https:// (or http://)")
    target = Path(dest).expanduser() if dest is not None else samples_dir() / sset.folder
    if target.exists():
        if not target.is_dir() or any(target.iterdir()):
            raise DownloadError(f"{target} already exists and is not empty: choose a new folder")
        target.rmdir()
    target.parent.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.parse.urlparse(url).path).name or sset.filename
    archive = target.parent / f".{target.name}.{name}"
    size = sset.size if url == sset.url else None
    if not archive.is_file():  # there already when unpacking was cancelled: downloaded and checked
        download(url, archive, size=size, sha256=sha256 or (sset.sha256 if url == sset.url else None),
                 progress=progress, cancel=cancel, mirror_hint=mirror_hint, **download_options)
    try:
        staging = target.parent / f".{target.name}.unpacked-{os.getpid()}-{threading.get_ident()}"
        shutil.rmtree(staging, ignore_errors=True)
        result = extract_zip(archive, staging, progress=progress, cancel=cancel)
    except DownloadError:
        archive.unlink(missing_ok=True)  # damaged or unsafe: the next try downloads it again
        raise
    try:
        root = dataset_root(staging)
        if root != staging:  # keep the licence and readme files that sit above the photos
            for p in staging.iterdir():
                if p.is_file() and not (root / p.name).exists() and root.parent == staging:
                    os.replace(p, root / p.name)
        os.replace(root, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive.unlink(missing_ok=True)
    return SamplesResult(target, result.files, result.nbytes, url)
