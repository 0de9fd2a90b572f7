"""Sample photos: download a public cats-and-dogs archive and unpack it safely (no Qt).

* **Download** (:func:`download`): resumable with HTTP range requests (a ``.part`` file beside the
  archive; a dropped connection resumes where it stopped, a cancelled download continues next
  time), the size and SHA-256 checked where they are known, progress as bytes, speed and ETA.
* **Unpack** (:func:`extract_zip`): every entry's CRC checked (each file is read to its end), no
  absolute paths, no ``..``, no links (link entries are skipped: nothing can point out of the folder),
  a limit on the number of files and on the unpacked bytes (zip bombs), into a temporary folder
  that is renamed into place only when everything is unpacked.
* :func:`get_samples` does both for one of :data:`SAMPLE_SETS` (or a mirror ``url``), into the app's
  data folder (:func:`samples_dir`) or a given folder.

Errors are :class:`SamplesError` with one sentence that says what happened and what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ipaddress
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .errors import CatdogError

MB = 1000 * 1000


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

#: unpacking limits (zip bombs): files and bytes
MAX_FILES = 200_000
MAX_BYTES = int(os.environ.get("CATDOG_SAMPLES_MAX_MB", "4000")) * MB
CHUNK = 1 << 16
#: seconds between two progress reports (the last one always comes)
PROGRESS_INTERVAL = 0.1
USER_AGENT = "catdog-gui (sample photos)"


class SamplesError(CatdogError):
    """Getting the sample photos failed: the message says why and what to do."""


@dataclass(frozen=True)
class Progress:
    """Where a download or an unpacking is: ``stage`` "download" or "extract", bytes done and
    total (None: unknown), speed in bytes per second and the seconds left (None: unknown)."""

    stage: str
    done: int
    total: Optional[int]
    speed: float = 0.0
    eta: Optional[float] = None

    def text(self) -> str:
        verb = "Downloading" if self.stage == "download" else "Unpacking"
        amount = f"{size_text(self.done)} of {size_text(self.total)}" if self.total else size_text(self.done)
        parts = [f"{verb} {amount}"]
        if self.speed > 0:
            parts.append(f"{size_text(self.speed)}/s")
        if self.eta is not None:
            parts.append(f"about {duration_text(self.eta)} left")
        return " · ".join(parts)


ProgressFn = Callable[[Progress], None]


def size_text(n: float) -> str:
    """``68606236`` -> ``68.6 MB`` (decimal units, as browsers and file managers show them)."""
    n = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def duration_text(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class _Meter:
    """Speed over the last few seconds, ETA, and at most ~10 reports a second (the last always)."""

    def __init__(self, stage: str, total: Optional[int], fn: Optional[ProgressFn], start: int = 0):
        self.stage, self.total, self.fn = stage, total, fn
        self._points: list[tuple[float, int]] = [(time.monotonic(), start)]
        self._last = 0.0

    def __call__(self, done: int, force: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        self._points.append((now, done))
        while len(self._points) > 2 and now - self._points[0][0] > 5.0:
            self._points.pop(0)
        t0, d0 = self._points[0]
        speed = (done - d0) / (now - t0) if now > t0 else 0.0
        eta = (self.total - done) / speed if self.total and speed > 0 and done <= self.total else None
        self.fn(Progress(self.stage, done, self.total, max(speed, 0.0), eta))


def _cancelled(cancel: Optional[threading.Event]) -> None:
    if cancel is not None and cancel.is_set():
        from .data import Cancelled

        raise Cancelled("download cancelled")


# ----------------------------------------------------------------------------------------------
# download


def _opener(url: str):
    """urllib's opener; a loopback address never goes through a proxy."""
    host = urllib.parse.urlparse(url).hostname or ""
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    return urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else urllib.request.build_opener()


def _reason(e: BaseException) -> str:
    r = getattr(e, "reason", None) or e
    if isinstance(r, socket.gaierror):
        return "the name could not be looked up"
    if isinstance(r, (socket.timeout, TimeoutError)):
        return "no answer in time"
    if isinstance(r, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(r, ConnectionResetError):
        return "the connection was reset"
    if isinstance(r, OSError) and r.strerror:
        return r.strerror.lower()
    return str(r) or type(r).__name__


@contextlib.contextmanager
def _wake_on_cancel(resp, cancel: Optional[threading.Event]):
    """A read blocked on a stalled connection would see Cancel only at the socket's timeout: while
    in this context, a set ``cancel`` shuts the response's socket down so the read returns now."""
    if cancel is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.2):
                sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except (AttributeError, OSError):
                    pass
                return

    threading.Thread(target=watch, name="catdog-download-cancel", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def _hint(url: str, mirror_hint: str) -> str:
    return f"download {url} in a browser, unzip it and open that folder, or {mirror_hint}"


def download(
    url: str,
    path: Path | str,
    *,
    size: Optional[int] = None,
    sha256: Optional[str] = None,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[threading.Event] = None,
    timeout: float = 20.0,
    attempts: int = 4,
    retry_delay: float = 1.0,
    mirror_hint: str = "use another address (a mirror)",
) -> Path:
    """Download ``url`` to ``path`` through ``path.part``, resuming (HTTP Range) what a previous
    try or a dropped connection left. ``attempts`` failures in a row without new bytes give up.
    The ``.part`` file is kept when cancelled or offline (the next call continues it) and deleted
    when what arrived is wrong (size or checksum)."""
    path = Path(path)
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        have = 0
    failures = 0
    total: Optional[int] = size
    meter: Optional[_Meter] = None
    hint = _hint(url, mirror_hint)

    def failed(e: BaseException) -> None:
        nonlocal failures
        failures += 1
        if isinstance(getattr(e, "reason", None), socket.gaierror):
            failures = attempts  # the name cannot be looked up: offline, no use trying again
        if failures >= attempts:
            if isinstance(e, urllib.error.HTTPError):
                raise SamplesError(f"The server answered {e.code} {e.reason} for {url} {attempts} times: try "
                                   f"again later, or {hint}.") from None
            host = urllib.parse.urlparse(url).hostname or url
            what = ("the connection kept breaking off" if have else f"could not reach {host}")
            raise SamplesError(f"Could not download the sample photos ({what}: {_reason(e)}): check that "
                               f"you are online and try again (it continues where it stopped), or {hint}.") from None
        if cancel is not None:
            if cancel.wait(retry_delay * failures):
                _cancelled(cancel)
        else:
            time.sleep(retry_delay * failures)

    while True:
        _cancelled(cancel)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            resp = _opener(url).open(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 416 and have:  # nothing after `have`: complete if the size agrees, else start over
                if total is None or have == total:
                    break
                have = 0
                continue
            if e.code >= 500 or e.code in (408, 429):
                failed(e)
                continue
            raise SamplesError(f"The server answered {e.code} {e.reason} for {url}: check the address, "
                               f"or {hint}.") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            failed(e)
            continue
        with resp, _wake_on_cancel(resp, cancel):
            length = resp.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if have and resp.status == 206:
                m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    have = 0  # a range we did not ask for: start over
                    continue
                if m.group(3) != "*":
                    got_total = int(m.group(3))
                    if size is not None and got_total != size:
                        _wrong_size(part, url, got_total, size, hint)
                    total = got_total
                mode = "ab"
            else:  # 200: the whole file (a server without range support starts over)
                have, mode = 0, "wb"
                if length is not None:
                    if size is not None and length != size:
                        _wrong_size(part, url, length, size, hint)
                    total = length
            if meter is None:
                meter = _Meter("download", total, progress, have)
            meter.total = total
            before = have
            try:
                f = open(part, mode)
            except OSError as e:
                raise SamplesError(f"Cannot write {part}: {e.strerror or e}") from None
            with f:
                try:
                    while True:
                        _cancelled(cancel)
                        try:
                            chunk = resp.read(CHUNK)
                        except (OSError, http.client.HTTPException) as e:
                            broken: Optional[BaseException] = e
                            break
                        if not chunk:
                            broken = None
                            break
                        f.write(chunk)
                        have += len(chunk)
                        if total is not None and have > total:
                            _wrong_size(part, url, have, total, hint)
                        meter(have)
                except OSError as e:  # writing: the disk, not the network
                    raise SamplesError(f"Cannot write {part}: {e.strerror or e} (is the disk full?)") from None
            if broken is not None:
                if have > before:
                    failures = 0
                failed(broken)
                continue
            if total is not None and have < total:  # the connection ended early: resume
                if have > before:
                    failures = 0
                failed(ConnectionResetError("the connection ended early"))
                continue
            break
    if meter is not None:
        meter(have, force=True)
    if size is not None and have != size:
        _wrong_size(part, url, have, size, hint)
    if sha256:
        h = hashlib.sha256()
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                _cancelled(cancel)
                h.update(block)
        if h.hexdigest().lower() != sha256.lower():
            part.unlink(missing_ok=True)
            raise SamplesError(f"The file downloaded from {url} is not the expected one (its SHA-256 checksum "
                               f"differs) and was deleted: try again, or {hint}.")
    os.replace(part, path)
    return path


def _wrong_size(part: Path, url: str, got: int, want: int, hint: str):
    part.unlink(missing_ok=True)
    raise SamplesError(f"The file at {url} is {got:,} bytes, not the expected {want:,}, so it is not the "
                       f"archive the app knows (nothing was kept): try again later, or {hint}.")


# ----------------------------------------------------------------------------------------------
# safe unpacking


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
    macOS's ``__MACOSX/`` forks). Raises :class:`SamplesError` for an absolute path, a drive,
    ``..`` or a control character."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise SamplesError(f"The archive is unsafe to unpack (the entry {name!r} is an absolute path); "
                           "nothing was unpacked.")
    parts = tuple(p for p in norm.split("/") if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise SamplesError(f"The archive is unsafe to unpack (the entry {name!r} points outside its folder); "
                           "nothing was unpacked.")
    if any(ord(ch) < 32 for p in parts for ch in p):
        raise SamplesError(f"The archive is unsafe to unpack (the entry {name!r} has control characters in "
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
    progress: Optional[ProgressFn] = None,
    cancel: Optional[threading.Event] = None,
) -> Extracted:
    """Unpack ``archive`` into the new folder ``dest`` (which must not exist): all of it or
    nothing. Everything goes to a temporary folder beside ``dest`` first, renamed to ``dest`` at
    the end; an unsafe, damaged or too large archive, or a cancel, leaves nothing behind."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise SamplesError(f"{dest} already exists: choose a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpacking-", dir=dest.parent))
    try:
        result = _extract_into(archive, tmp, max_files, max_bytes, progress, cancel)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Extracted(dest, result.files, result.nbytes, result.skipped_links)


def _damaged(archive: Path, e: BaseException) -> SamplesError:
    return SamplesError(f"The archive {archive.name} is damaged or incomplete ({e}); nothing was unpacked.")


def _extract_into(archive, into: Path, max_files, max_bytes, progress, cancel) -> Extracted:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
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
            raise SamplesError(f"The archive holds {len(files):,} files, more than the {max_files:,} allowed "
                               "(a zip bomb?); nothing was unpacked.")
        total = sum(i.file_size for i, _ in files)
        if total > max_bytes:
            raise SamplesError(f"The archive would unpack to {size_text(total)}, more than the {size_text(max_bytes)} "
                               "allowed (a zip bomb?); nothing was unpacked.")
        meter = _Meter("extract", total, progress)
        written = 0
        root = into.resolve()
        for info, parts in plan:
            _cancelled(cancel)
            target = into.joinpath(*parts)
            if root not in target.resolve().parents:  # belt and braces: never outside the folder
                raise SamplesError(f"The archive is unsafe to unpack (the entry {info.filename!r} points "
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
                            raise SamplesError("The archive unpacks to more than it says (a zip bomb?); "
                                               "nothing was unpacked.")
                        out.write(block)
                        meter(written)
                        _cancelled(cancel)
            except FileExistsError:
                raise SamplesError(f"The archive holds {info.filename!r} twice; nothing was unpacked.") from None
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
                raise _damaged(archive, e) from None
            except OSError as e:
                if isinstance(e, (NotADirectoryError, IsADirectoryError)):
                    raise SamplesError(f"The archive has both a file and a folder named like {info.filename!r}; "
                                       "nothing was unpacked.") from None
                raise SamplesError(f"Cannot unpack into {into.parent}: {e.strerror or e} (is the disk full?)") from None
        meter(written, force=True)
    return Extracted(into, len(files), written, links)


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
    from .runs import app_data_dir

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
    progress: Optional[ProgressFn] = None,
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
        raise SamplesError(f"unknown sample set {set_key!r}: choose one of {', '.join(SAMPLE_SETS)}")
    sset = SAMPLE_SETS[set_key]
    url = (url or "").strip() or sset.url
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise SamplesError(f"{url} is not a web address: give one that starts with https:// (or http://)")
    target = Path(dest).expanduser() if dest is not None else samples_dir() / sset.folder
    if target.exists():
        if not target.is_dir() or any(target.iterdir()):
            raise SamplesError(f"{target} already exists and is not empty: choose a new folder")
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
    except SamplesError:
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
