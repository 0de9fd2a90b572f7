"""Choosing the compute device once: CUDA when available, else Apple MPS, else CPU."""

from __future__ import annotations

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
