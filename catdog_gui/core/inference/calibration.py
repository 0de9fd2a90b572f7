"""Probabilities that mean what they say: temperature scaling (Guo et al., ICML 2017).

A network's softmax is usually over-confident. Dividing its logits by one number, the temperature
``T``, fitted to minimise the negative log-likelihood on validation photos, fixes most of that without
changing any answer (the largest logit stays the largest).

How well it works is measured honestly: :func:`calibrate` fits ``T`` on one half of the validation
photos and scores the other half, then the other way round (2-fold cross-fitting), so the expected
calibration error "after" is measured on photos its temperature never saw. The temperature kept in the
model file is then fitted on all validation photos.

The expected calibration error (ECE): the photos are binned by confidence (the top probability,
:data:`BINS` equal-width bins); ECE is the photo-weighted mean of |accuracy - mean confidence| over the
bins. The reliability diagram shows the same bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: confidence bins of the ECE and the reliability diagram
BINS = 10
#: the temperatures searched (log-spaced), then refined around the best
_T_MIN, _T_MAX = 0.05, 20.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the labels ``y`` under ``softmax(logits / T)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(1, keepdims=True)
    logz = np.log(np.exp(z).sum(1))
    return float(np.mean(logz - z[np.arange(len(y)), np.asarray(y)]))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the NLL of ``y`` (a 1-D search on log T: NLL is smooth and, in
    practice, unimodal in T). 1.0 when there are no photos, only one class, or no mistake: with every
    photo right the NLL keeps falling as T shrinks, and the fit would only say "be surer" without limit."""
    logits, y = np.asarray(logits, dtype=np.float64), np.asarray(y, dtype=np.int64)
    if len(y) == 0 or len(np.unique(y)) < 2 or bool((logits.argmax(1) == y).all()):
        return 1.0
    grid = np.exp(np.linspace(np.log(_T_MIN), np.log(_T_MAX), 81))
    losses = [nll(logits, y, t) for t in grid]
    i = int(np.argmin(losses))
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    for _ in range(40):  # golden-section search between the neighbours of the best grid point
        a, b = lo + (hi - lo) * 0.382, lo + (hi - lo) * 0.618
        if nll(logits, y, np.exp(a)) < nll(logits, y, np.exp(b)):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


@dataclass(frozen=True)
class Bin:
    """One confidence bin: [low, high), its photo count, mean confidence and accuracy."""

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = BINS) -> list[Bin]:
    """The reliability diagram's bins (empty bins included, with count 0)."""
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y)
    conf = probs.max(1) if len(probs) else np.zeros(0)
    right = (probs.argmax(1) == y) if len(probs) else np.zeros(0, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.floor(conf * bins + 1e-9).astype(np.int64), 0, bins - 1)  # [low, high), 1.0 in the last
    out = []
    for b in range(bins):
        m = which == b
        n = int(m.sum())
        out.append(Bin(float(edges[b]), float(edges[b + 1]), n, float(conf[m].mean()) if n else 0.0,
                       float(right[m].mean()) if n else 0.0))
    return out


def ece(probs: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error, a share in [0, 1] (0 for no photos)."""
    table = reliability(probs, y, bins)
    n = sum(b.count for b in table)
    if n == 0:
        return 0.0
    return float(sum(b.count * abs(b.accuracy - b.confidence) for b in table) / n)


def folds(n: int, k: int = 2, seed: int = 0) -> np.ndarray:
    """Each photo's fold (0..k-1): a seeded shuffle, so every fold mixes the classes."""
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n) % k
    return out


def cross_fitted_probs(logits: np.ndarray, y: np.ndarray, k: int = 2, seed: int = 0
                       ) -> tuple[np.ndarray, list[float]]:
    """Calibrated probabilities of every photo, each from a temperature fitted on the other folds
    only (never on the photo itself), and those temperatures."""
    logits, y = np.asarray(logits, dtype=np.float64), np.asarray(y, dtype=np.int64)
    fold = folds(len(y), k, seed)
    probs = np.zeros_like(logits)
    temps = []
    for f in range(k):
        test, fit = fold == f, fold != f
        t = fit_temperature(logits[fit], y[fit])
        temps.append(t)
        if test.any():
            probs[test] = softmax(logits[test], t)
    return probs, temps


@dataclass(frozen=True)
class Calibration:
    """The fitted temperature and how calibrated the validation photos were before and after."""

    temperature: float
    ece_before: float
    ece_after: float  # cross-fitted: each photo scored with a temperature fitted without it
    bins_before: list[Bin]
    bins_after: list[Bin]
    n: int

    def to_meta(self) -> dict:
        def rows(bins):
            return [[b.low, b.high, b.count, b.confidence, b.accuracy] for b in bins]

        return {"temperature": self.temperature, "ece_before": self.ece_before, "ece_after": self.ece_after,
                "bins_before": rows(self.bins_before), "bins_after": rows(self.bins_after), "n": self.n,
                "method": "temperature scaling; ECE after: 2-fold cross-fitted on the validation photos"}

    @staticmethod
    def from_meta(meta) -> "Calibration | None":
        """None for a model file without (usable) calibration."""
        if not isinstance(meta, dict):
            return None
        try:
            t = float(meta["temperature"])
            if not np.isfinite(t) or t <= 0:
                return None

            def bins(rows):
                return [Bin(float(a), float(b), int(c), float(d), float(e)) for a, b, c, d, e in rows]

            return Calibration(t, float(meta["ece_before"]), float(meta["ece_after"]), bins(meta["bins_before"]),
                               bins(meta["bins_after"]), int(meta.get("n", 0)))
        except (KeyError, TypeError, ValueError):
            return None


def calibrate(logits: np.ndarray, y: np.ndarray, seed: int = 0) -> Calibration:
    """Fit the temperature on all validation logits; measure ECE before and (cross-fitted) after."""
    logits, y = np.asarray(logits, dtype=np.float64), np.asarray(y, dtype=np.int64)
    before = softmax(logits)
    after, _temps = cross_fitted_probs(logits, y, 2, seed)
    return Calibration(fit_temperature(logits, y), ece(before, y), ece(after, y), reliability(before, y),
                       reliability(after, y), len(y))
