"""A resumable HTTP download (no Qt), used for the sample photos.

:func:`download` resumes with HTTP range requests (a ``.part`` file beside the destination: a dropped
connection resumes where it stopped, a cancelled download continues next time), checks the size and
SHA-256 where they are known, reports bytes, speed and time left (:class:`Progress`) at most ~10 times a
second, and turns every network failure into a :class:`~catdog_gui.core.errors.DownloadError` that says
what happened and what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ipaddress
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..errors import DownloadError
from ..text import duration_text, size_text

CHUNK = 1 << 16


#: seconds between two progress reports (the last one always comes)
PROGRESS_INTERVAL = 0.1


USER_AGENT = "catdog-gui (sample photos)"


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


DownloadProgress = Callable[[Progress], None]


class _Meter:
    """Speed over the last few seconds, ETA, and at most ~10 reports a second (the last always)."""

    def __init__(self, stage: str, total: Optional[int], fn: Optional[DownloadProgress], start: int = 0):
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
        from ..errors import Cancelled

        raise Cancelled("download cancelled")


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
    progress: Optional[DownloadProgress] = None,
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
                raise DownloadError(f"The server answered {e.code} {e.reason} for {url} {attempts} times: try "
                                   f"again later, or {hint}.") from None
            host = urllib.parse.urlparse(url).hostname or url
            what = ("the connection kept breaking off" if have else f"could not reach {host}")
            raise DownloadError(f"Could not download the sample photos ({what}: {_reason(e)}): check that "
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
            raise DownloadError(f"The server answered {e.code} {e.reason} for {url}: check the address, "
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
                raise DownloadError(f"Cannot write {part}: {e.strerror or e}") from None
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
                    raise DownloadError(f"Cannot write {part}: {e.strerror or e} (is the disk full?)") from None
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
            raise DownloadError(f"The file downloaded from {url} is not the expected one (its SHA-256 checksum "
                               f"differs) and was deleted: try again, or {hint}.")
    os.replace(part, path)
    return path


def _wrong_size(part: Path, url: str, got: int, want: int, hint: str):
    part.unlink(missing_ok=True)
    raise DownloadError(f"The file at {url} is {got:,} bytes, not the expected {want:,}, so it is not the "
                       f"archive the app knows (nothing was kept): try again later, or {hint}.")
