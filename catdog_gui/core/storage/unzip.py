"""Unpack a zip archive safely (no Qt).

:func:`extract_zip` checks every entry's CRC (each file is read to its end), refuses absolute paths and
``..``, skips link entries (nothing can point out of the folder), limits the number of files and the
unpacked bytes (zip bombs), and unpacks into a temporary folder renamed into place only when everything
is unpacked.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import DownloadError
from ..text import size_text
from .download import CHUNK, DownloadProgress, _cancelled, _Meter

#: unpacking limits (zip bombs): files and bytes
MAX_FILES = 200_000


MAX_BYTES = int(os.environ.get("CATDOG_SAMPLES_MAX_MB", "4000")) * 1000 * 1000


@dataclass(frozen=True)
class Extracted:
    folder: Path
    files: int
    nbytes: int
    #: link entries left out (a link could point anywhere)
    skipped_links: int = 0


_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_parts(name: str) -> Optional[tuple[str, ...]]:
    """The path components of an archive entry, or None for an entry to leave out (empty names,
    macOS's ``__MACOSX/`` forks). Raises :class:`DownloadError` for an absolute path, a drive,
    ``..`` or a control character."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise DownloadError(f"The archive is unsafe to unpack (the entry {name!r} is an absolute path); "
                           "nothing was unpacked.")
    parts = tuple(p for p in norm.split("/") if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise DownloadError(f"The archive is unsafe to unpack (the entry {name!r} points outside its folder); "
                           "nothing was unpacked.")
    if any(ord(ch) < 32 for p in parts for ch in p):
        raise DownloadError(f"The archive is unsafe to unpack (the entry {name!r} has control characters in "
                           "its name); nothing was unpacked.")
    if not parts or parts[0] == "__MACOSX":
        return None
    return parts


def _is_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def extract_zip(
    archive: Path | str,
    dest: Path | str,
    *,
    max_files: int = MAX_FILES,
    max_bytes: int = MAX_BYTES,
    progress: Optional[DownloadProgress] = None,
    cancel: Optional[threading.Event] = None,
) -> Extracted:
    """Unpack ``archive`` into the new folder ``dest`` (which must not exist): all of it or
    nothing. Everything goes to a temporary folder beside ``dest`` first, renamed to ``dest`` at
    the end; an unsafe, damaged or too large archive, or a cancel, leaves nothing behind."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise DownloadError(f"{dest} already exists: choose a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpacking-", dir=dest.parent))
    try:
        result = _extract_into(archive, tmp, max_files, max_bytes, progress, cancel)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Extracted(dest, result.files, result.nbytes, result.skipped_links)


def _damaged(archive: Path, e: BaseException) -> DownloadError:
    return DownloadError(f"The archive {archive.name} is damaged or incomplete ({e}); nothing was unpacked.")


def _extract_into(archive, into: Path, max_files, max_bytes, progress, cancel) -> Extracted:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise _damaged(archive, e) from None
    with zf:
        plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        links = 0
        for info in zf.infolist():
            parts = safe_parts(info.filename)
            if parts is None:
                continue
            if _is_link(info):
                links += 1
                continue
            plan.append((info, parts))
        files = [(i, p) for i, p in plan if not i.is_dir()]
        if len(files) > max_files:
            raise DownloadError(f"The archive holds {len(files):,} files, more than the {max_files:,} allowed "
                               "(a zip bomb?); nothing was unpacked.")
        total = sum(i.file_size for i, _ in files)
        if total > max_bytes:
            raise DownloadError(f"The archive would unpack to {size_text(total)}, more than the {size_text(max_bytes)} "
                               "allowed (a zip bomb?); nothing was unpacked.")
        meter = _Meter("extract", total, progress)
        written = 0
        root = into.resolve()
        for info, parts in plan:
            _cancelled(cancel)
            target = into.joinpath(*parts)
            if root not in target.resolve().parents:  # belt and braces: never outside the folder
                raise DownloadError(f"The archive is unsafe to unpack (the entry {info.filename!r} points "
                                   "outside its folder); nothing was unpacked.")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as out:  # "x": never through an existing file or link
                    while True:
                        block = src.read(CHUNK)  # the CRC is checked when the entry's end is read
                        if not block:
                            break
                        written += len(block)
                        if written > max_bytes:
                            raise DownloadError("The archive unpacks to more than it says (a zip bomb?); "
                                               "nothing was unpacked.")
                        out.write(block)
                        meter(written)
                        _cancelled(cancel)
            except FileExistsError:
                raise DownloadError(f"The archive holds {info.filename!r} twice; nothing was unpacked.") from None
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
                raise _damaged(archive, e) from None
            except OSError as e:
                if isinstance(e, (NotADirectoryError, IsADirectoryError)):
                    raise DownloadError(f"The archive has both a file and a folder named like {info.filename!r}; "
                                       "nothing was unpacked.") from None
                raise DownloadError(f"Cannot unpack into {into.parent}: {e.strerror or e} (is the disk full?)") from None
        meter(written, force=True)
    return Extracted(into, len(files), written, links)
