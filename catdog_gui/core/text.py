"""How numbers read in the window, the CLI and the reports: one function per kind of number."""

from __future__ import annotations

import math
from typing import Optional


def probability_text(p: float) -> str:
    """A probability as a percentage with one decimal that never claims more certainty than the model
    gave: 0.9996 is ">99.9%", not "100.0%", and 0.0004 is "<0.1%"; only exactly 1 and 0 print as
    100% and 0%."""
    if 0.999 < p < 1.0 and round(p * 100, 1) >= 100.0:
        return ">99.9%"
    if 0.0 < p < 0.001 and round(p * 100, 1) <= 0.0:
        return "<0.1%"
    return f"{p * 100:.1f}%"


def duration_text(s: Optional[float]) -> str:
    """``42`` -> ``42 s``, ``185`` -> ``3 min 05 s``, ``7300`` -> ``2 h 01 min``; "?" when unknown."""
    if s is None or not math.isfinite(s) or s < 0:
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def size_text(n: float) -> str:
    """``68606236`` -> ``68.6 MB`` (decimal units, as browsers and file managers show them)."""
    n = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def count_text(n: int) -> str:
    """``1802`` -> ``1,802``."""
    return f"{n:,}"


def plural(n: int, word: str, many: str = "") -> str:
    """"1 photo", "1,802 photos", "2 epochs" (``many``: the plural when it is not ``word`` + s)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
