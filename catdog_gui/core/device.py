"""Choosing the compute device once: CUDA when available, else Apple MPS, else CPU."""

from __future__ import annotations

import contextlib
import threading

import torch

from .errors import CatdogError


def pick_device(preference: str = "auto") -> torch.device:
    pref = (preference or "auto").lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise CatdogError("CUDA was asked for but no CUDA GPU is available; use --device auto or cpu")
    if pref == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CatdogError("MPS was asked for but is not available on this machine")
    try:
        return torch.device(pref)
    except RuntimeError:
        raise CatdogError(f"unknown device {preference!r}; use auto, cpu, cuda or mps") from None


def device_name(device: torch.device) -> str:
    """A short human name: 'CUDA: NVIDIA H100', 'Apple MPS', 'CPU (2 threads)'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n != 1 else ''})"


_threads_lock = threading.Lock()
_threads_users = 0
_threads_base = 0


@contextlib.contextmanager
def cpu_threads(n: int):
    """Run a block with ``n`` torch CPU threads (0: leave as is), safely across threads.

    torch's thread count is process-wide, and the trainer and the predictor may both change it at
    once (the GUI predicts while it trains). The count the process had before the first of them
    started is restored when the last one ends, whatever the order they finish in (a block nested
    in another, on the same thread, gives the outer one its count back).
    """
    global _threads_users, _threads_base
    if not n:
        yield
        return
    with _threads_lock:
        prev = torch.get_num_threads()
        if _threads_users == 0:
            _threads_base = prev
        _threads_users += 1
        if prev != n:
            torch.set_num_threads(n)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            # the last one out restores the process's own count; a nested block restores its outer one
            target = _threads_base if _threads_users == 0 else prev
            if torch.get_num_threads() != target:
                torch.set_num_threads(target)
