""""Neither a cat nor a dog": how far a photo is from everything the model was trained on.

A softmax must pick one of the classes it knows, so a photo of a car gets "dog, 93%". Each model
file therefore carries an :class:`Unfamiliarity`: a score (higher = less like the training photos)
and a threshold, set on the validation photos so that :data:`TARGET_PASS` of them (95%) pass.

The score reads the model's *embedding*: the input of its last linear layer (a pretrained backbone's
frozen features, LeNet-5's 84 F6 units), captured with :func:`capture_embedding`. Methods:

* ``"mahalanobis"`` (Lee et al., NeurIPS 2018): distance to the nearest class mean under the shared
  within-class covariance. Stored as the class means and a probabilistic-PCA form of the covariance
  (the top :data:`PCA_RANK` directions exactly, the rest as one average variance), so a 1,280-wide
  embedding costs ~1.3 MB instead of a 6.5 MB precision matrix;
* ``"knn"`` (Sun et al., ICML 2022): cosine distance to the k-th nearest training embedding (up to
  :data:`KNN_KEEP` of them kept, float16: 3.7 MB for 1,280-wide features);
* ``"energy"`` (Liu et al., NeurIPS 2020): ``-logsumexp(logits)``; ``"msp"`` (Hendrycks & Gimpel, ICLR
  2017): minus the top softmax probability, the baseline.

:data:`METHOD_FOR` says which one each model kind gets, chosen by measurement (docs/performance.md,
"Unfamiliar photos"; tests/benchmarks/bench_unfamiliar.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np
import torch
from torch import nn

#: share of the validation photos that must pass as familiar; the threshold is their quantile
TARGET_PASS = 0.95
#: exact directions of the Mahalanobis covariance (the rest share one variance)
PCA_RANK = 256
#: k of the k-th nearest neighbour, and how many training embeddings the model file keeps
KNN_K, KNN_KEEP = 5, 1500
METHODS = ("mahalanobis", "knn", "energy", "msp")
#: the method per model kind ("backbone": a pretrained feature extractor; "lenet": LeNet-5 and
#: lenet5_modern), chosen by AUROC on catdog-1800's validation split against 63 packaged and generated
#: unfamiliar images (bench_unfamiliar.py): EfficientNet-Lite1 kNN 0.999 (flags 100%, 3.9% of held-out
#: familiar photos), Mahalanobis 0.995 (98.4%, 5.0%), energy 0.969, MSP 0.965; LeNet-5 (8 epochs) energy
#: 0.574, MSP 0.490, kNN 0.429, Mahalanobis 0.401: LeNet-5's features barely tell them apart
METHOD_FOR = {"backbone": "knn", "lenet": "energy"}
#: what a person reads when a photo is flagged
VERDICT = "Looks like neither {classes}: unlike the photos this model was trained on"
NOT_AVAILABLE = "unfamiliar-photo check not available for this model file (trained before it existed)"


def _neither(classes) -> str:
    names = list(classes)
    return " nor ".join(names) if len(names) == 2 else ", ".join(names[:-1]) + " nor " + names[-1]


def verdict(classes) -> str:
    """'Looks like neither cat nor dog: unlike the photos this model was trained on'"""
    return VERDICT.format(classes=_neither(classes))


def short_verdict(classes) -> str:
    """'Neither cat nor dog?' (a table cell, a camera overlay)"""
    return f"Neither {_neither(classes)}?"


def last_linear(model: nn.Module) -> Optional[nn.Linear]:
    """The model's final linear layer (its classifier), whose input is the embedding."""
    found = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            found = m
    return found


@contextlib.contextmanager
def capture_embedding(model: nn.Module) -> Iterator[list]:
    """While inside, every forward pass through the model's last linear layer appends its input
    (the embedding, float32 on the CPU) to the yielded list."""
    layer = last_linear(model)
    seen: list = []
    if layer is None:
        yield seen
        return

    def hook(_module, inputs):
        seen.append(inputs[0].detach().float().cpu())

    handle = layer.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class Unfamiliarity:
    """A fitted unfamiliarity score and its threshold (score > threshold: unfamiliar)."""

    method: str
    threshold: float
    arrays: dict = field(default_factory=dict)  # name -> np.ndarray (the statistics)
    target_pass: float = TARGET_PASS
    val_pass: float = float("nan")  # the share of validation photos that passed when it was fitted
    n_fit: int = 0  # training photos the statistics came from
    n_val: int = 0  # validation photos the threshold came from
    _module: Optional[nn.Module] = field(default=None, repr=False, compare=False)

    def scores(self, embeddings: Optional[np.ndarray], logits: np.ndarray) -> np.ndarray:
        """One score per photo: higher is less like the training photos. The distances are computed by
        the same PyTorch module the ONNX export runs (float32), so the app and an exported file agree."""
        if self.method in ("msp", "energy"):  # from the logits alone: numpy is quicker for a few photos
            z = np.asarray(logits, dtype=np.float64)
            m = z.max(1)
            lse = m + np.log(np.exp(z - m[:, None]).sum(1))
            return -np.exp(m - lse) if self.method == "msp" else -lse
        module = self._module
        if module is None:
            module = self._module = _TorchScore(self)
        z = torch.as_tensor(np.asarray(logits, dtype=np.float32))
        e = (torch.zeros((len(z), 0)) if embeddings is None
             else torch.as_tensor(np.asarray(embeddings, dtype=np.float32)))
        with torch.no_grad():
            return module(e, z).double().numpy()

    def torch_module(self) -> nn.Module:
        """The score as a PyTorch module of (embeddings, logits), float32: what the ONNX export runs."""
        return _TorchScore(self)

    def flags(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) > self.threshold

    # -- the model file ------------------------------------------------------------------------
    def to_meta(self) -> tuple[dict, dict]:
        """(plain metadata, tensors) for the model file."""
        meta = {"method": self.method, "threshold": float(self.threshold), "target_pass": self.target_pass,
                "val_pass": float(self.val_pass), "n_fit": self.n_fit, "n_val": self.n_val,
                "arrays": sorted(self.arrays)}
        tensors = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in self.arrays.items()}
        return meta, tensors

    @staticmethod
    def from_meta(meta, tensors) -> "Optional[Unfamiliarity]":
        """None for a model file without (usable) statistics."""
        if not isinstance(meta, dict) or meta.get("method") not in METHODS:
            return None
        try:
            arrays = {k: tensors[k].numpy() for k in meta.get("arrays", [])}
            u = Unfamiliarity(meta["method"], float(meta["threshold"]), arrays, float(meta["target_pass"]),
                              float(meta["val_pass"]), int(meta.get("n_fit", 0)), int(meta.get("n_val", 0)))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        needed = {"mahalanobis": {"means", "basis", "variances", "rest_variance"}, "knn": {"bank", "k"}}
        if not needed.get(u.method, set()) <= set(arrays) or not np.isfinite(u.threshold):
            return None
        return u


class _TorchScore(nn.Module):
    """:meth:`Unfamiliarity.scores` in PyTorch (float32), for exporting."""

    def __init__(self, u: Unfamiliarity):
        super().__init__()
        self.method = u.method
        for name, v in u.arrays.items():
            if name != "k":
                self.register_buffer(name, torch.as_tensor(np.asarray(v, dtype=np.float32)))
        self.kth = int(u.arrays["k"]) if "k" in u.arrays else 0

    def forward(self, emb: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if self.method == "msp":
            return -torch.softmax(logits, 1).max(1).values
        if self.method == "energy":
            return -torch.logsumexp(logits, 1)
        if self.method == "knn":
            e = emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-12)
            sims = e @ self.bank.t()
            k = min(self.kth, self.bank.shape[0])
            return 1.0 - sims.topk(k, dim=1).values[:, k - 1]
        dists = []
        for i in range(self.means.shape[0]):
            d = emb - self.means[i]
            proj = d @ self.basis
            rest_part = d - proj @ self.basis.t()
            resid = (rest_part * rest_part).sum(1)
            dists.append((proj * proj / self.variances).sum(1) + resid / self.rest_variance)
        return torch.stack(dists, 1).min(1).values


def fit_statistics(method: str, train_emb: Optional[np.ndarray], train_y: Optional[np.ndarray],
                   seed: int = 0) -> dict:
    """The statistics ``method`` needs, from the training photos' embeddings and labels."""
    if method in ("msp", "energy"):
        return {}
    x = np.asarray(train_emb, dtype=np.float64)
    if method == "knn":
        if len(x) > KNN_KEEP:
            x = x[np.random.default_rng(seed).choice(len(x), KNN_KEEP, replace=False)]
        return {"bank": _normalise(x).astype(np.float16), "k": np.array(KNN_K, dtype=np.int64)}
    if method != "mahalanobis":
        raise ValueError(f"unknown unfamiliarity method {method!r}")
    y = np.asarray(train_y)
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(0) for c in classes])
    centred = x - means[np.searchsorted(classes, y)]
    cov = centred.T @ centred / max(len(x) - len(classes), 1)
    vals, vecs = np.linalg.eigh(cov)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    rank = min(PCA_RANK, len(vals) - 1, max(len(x) - len(classes) - 1, 1))
    floor = max(float(vals[0]) * 1e-6, 1e-12)
    rest = max(float(vals[rank:].mean()) if rank < len(vals) else floor, floor)
    return {"means": means.astype(np.float32), "basis": np.ascontiguousarray(vecs[:, :rank]).astype(np.float32),
            "variances": np.maximum(vals[:rank], floor).astype(np.float32),
            "rest_variance": np.array(rest, dtype=np.float64)}


def fit(method: str, train_emb, train_y, val_emb, val_logits, target: float = TARGET_PASS,
        seed: int = 0) -> Unfamiliarity:
    """Statistics from the training photos; the threshold from the validation photos, so that
    ``target`` of them score at or below it."""
    u = Unfamiliarity(method, 0.0, fit_statistics(method, train_emb, train_y, seed), target,
                      n_fit=0 if train_emb is None else len(train_emb), n_val=len(val_logits))
    u.threshold = threshold_for(u.scores(val_emb, val_logits), target)
    s = u.scores(val_emb, val_logits)
    u.val_pass = float(np.mean(s <= u.threshold)) if len(s) else float("nan")
    return u


def threshold_for(scores: np.ndarray, target: float = TARGET_PASS) -> float:
    """The threshold passing ``target`` of ``scores`` (at least): halfway between the highest score
    that passes and the next, so a photo scored again (in float32, by an export) stays on its side."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if not len(s):
        return float("inf")
    i = min(int(np.ceil(target * len(s) - 1e-9)) - 1, len(s) - 1)
    i = max(i, 0)
    if i + 1 < len(s):
        return float((s[i] + s[i + 1]) / 2)
    return float(s[i] + max(abs(s[i]) * 1e-3, 1e-6))


def auroc(familiar: np.ndarray, unfamiliar: np.ndarray) -> float:
    """Probability that an unfamiliar photo scores above a familiar one (ties count half)."""
    f, u = np.asarray(familiar, dtype=np.float64), np.asarray(unfamiliar, dtype=np.float64)
    if not len(f) or not len(u):
        return float("nan")
    allv = np.concatenate([f, u])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    ru = ranks[len(f):].sum()
    return float((ru - len(u) * (len(u) + 1) / 2) / (len(f) * len(u)))


def model_kind(model_name: str) -> str:
    return "lenet" if model_name.startswith("lenet") else "backbone"
