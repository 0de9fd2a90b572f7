"""Pretrained weights: download once into torch's hub cache, or load a file the user picked.

Downloads go where ``torch.hub`` puts them (``torch.hub.get_dir()/checkpoints/<file name from the
URL>``), so weights that torchvision already fetched on this computer are reused, and the other way
round. A download is written to a temporary file beside the final one and renamed into place only
when complete (and, where the file name carries a SHA-256 prefix as torchvision's do, only when the
content matches), so an interrupted download never looks like a cached file.

Every failure a person can act on is a :class:`CatdogError`; "no network and not cached" is a
:class:`WeightsUnavailableError` that names the file, the folder to put it in and where to get it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union
from urllib.parse import urlparse

import torch
from torch import nn

from ..errors import CatdogError, WeightsUnavailableError
from ..events import CountProgress

#: seconds to wait for the server to answer (and between two chunks of data)
CONNECT_TIMEOUT = 15.0
_CHUNK = 256 * 1024
#: torch.hub's convention: "name-<first hex digits of the SHA-256>.pth"
_HASH_RE = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")


def hub_checkpoints_dir() -> Path:
    """The folder where torch.hub (and torchvision) keep downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def file_name_of(url: str) -> str:
    return os.path.basename(urlparse(url).path)


@dataclass(frozen=True)
class WeightsInfo:
    url: str
    file_name: str
    cache_path: Path

    @property
    def cached(self) -> bool:
        return self.cache_path.is_file()


def weights_info(url: str) -> WeightsInfo:
    name = file_name_of(url)
    return WeightsInfo(url, name, hub_checkpoints_dir() / name)


def _open_url(url: str, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "catdog-gui"})
    return urllib.request.urlopen(request, timeout=timeout)


def _unavailable(title: str, info: WeightsInfo, reason: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"The pretrained {title} weights are not on this computer and could not be downloaded "
        f"({reason}).\n"
        f"To use them without internet, download\n  {info.url}\n"
        f"on another computer and put the file, named exactly\n  {info.file_name}\n"
        f"into the folder\n  {info.cache_path.parent}\n"
        f"Or choose the downloaded file as the weights file: in the app under Training > Advanced > "
        f"Pretrained weights file, or with catdog train --weights FILE."
    )


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"the server answered HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        if isinstance(e.reason, BaseException):
            e = e.reason
        else:
            return str(e.reason) or "no connection"
    if isinstance(e, TimeoutError):
        return "no answer from the server (timed out)"
    return str(e) or type(e).__name__


def download(
    url: str,
    dest: Union[str, os.PathLike],
    progress: Optional[CountProgress] = None,
    timeout: float = CONNECT_TIMEOUT,
    title: str = "model",
) -> Path:
    """Download ``url`` to ``dest`` (atomically), reporting ``progress(bytes_done, bytes_total)``.

    ``bytes_total`` is 0 when the server does not say. Network problems raise
    :class:`WeightsUnavailableError`; a content that does not match the hash in the file name raises
    :class:`CatdogError`. Whatever ``progress`` raises (a cancel) goes through, leaving nothing behind.
    """
    dest = Path(dest)
    info = WeightsInfo(url, dest.name, dest)
    m = _HASH_RE.search(dest.name)
    expected = m.group(1) if m else None
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".partial", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        sha = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                response = _open_url(url, timeout)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise _unavailable(title, info, _reason(e)) from None
            with response:
                try:
                    total = int(response.headers.get("Content-Length") or 0)
                except ValueError:
                    total = 0
                done = 0
                if progress:
                    progress(0, total)
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (urllib.error.URLError, OSError) as e:
                        raise _unavailable(title, info, f"the download broke off: {_reason(e)}") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    sha.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        if total and done != total:
            raise _unavailable(title, info, f"the download broke off after {done:,} of {total:,} bytes")
        if expected and not sha.hexdigest().startswith(expected):
            raise CatdogError(
                f"The downloaded {title} weights are corrupt (their SHA-256 does not start with {expected} "
                f"as the file name {dest.name} says). Try again; if it keeps failing, download\n  {url}\n"
                f"by hand and put it into\n  {dest.parent}"
            )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def fetch(url: str, title: str, progress: Optional[CountProgress] = None, timeout: float = CONNECT_TIMEOUT) -> Path:
    """The cached file for ``url``, downloading it first when it is not in the hub cache yet."""
    info = weights_info(url)
    if info.cached:
        return info.cache_path
    try:
        return download(url, info.cache_path, progress=progress, timeout=timeout, title=title)
    except PermissionError as e:
        raise CatdogError(f"cannot write the {title} weights into {info.cache_path.parent}: {e.strerror}") from None


def load_state_dict_file(path: Union[str, os.PathLike], title: str) -> dict[str, torch.Tensor]:
    """Read a state dict (raw, or under a ``"state_dict"``/``"model"`` key) with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CatdogError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, truncated, or a pickle with code in it
        why = str(e).strip().split("\n")[0][:200] or type(e).__name__
        raise CatdogError(
            f"{path.name} is not a {title} weights file (PyTorch could not read it safely: {why})"
        ) from None
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CatdogError(f"{path.name} is not {title} weights (it holds no PyTorch state dict)")
    sd = dict(obj)
    if all(k.startswith("module.") for k in sd):  # saved from DataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor], title: str, source: str) -> None:
    """``model.load_state_dict(state_dict, strict=True)``, with a readable error when it does not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [k for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of its {len(own)} tensors missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unknown tensors (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} tensors of the wrong shape (e.g. {k}: {tuple(state_dict[k].shape)}, "
                f"expected {tuple(own[k].shape)})"
            )
        raise CatdogError(f"{source} is not {title} weights: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)
