"""Find the photos that hurt: likely label errors, "no class fits" outliers and near-duplicates,
from a frozen pretrained backbone's features. No Qt.

- Label errors: out-of-fold probabilities from k-fold cross-validation of a softmax regression
  (a linear head, full-batch L-BFGS in torch) on the cached features, so the whole review takes
  seconds once the features are cached. A photo is a likely label error, as in confident learning
  (Northcutt et al., 2021), when its probability for its given class is under that class's
  threshold (the mean probability the class's own photos get) and another class reaches its own
  threshold; ranked by the normalized margin ``max_{k != y} p_k - p_y`` (worst first).
- Outliers: far from every class centroid in feature space (cosine distance, robust z-score over
  the photos' distance to their own class's centroid) and a low maximum probability.
- Near-duplicates: cosine similarity of the L2-normalised embeddings above
  :data:`NEAR_DUPLICATE_THRESHOLD`, grouped (union-find); also between a training and a test
  folder (leakage).

The review's memory lives in the dataset, ``<dataset>/.catdog-review.json``
(:mod:`catdog_gui.core.storage.dataset_memory`):
the photos the user kept, never suggested again, and the log of applied actions. Acting on a
review (relabel, remove, keep; logged and undoable) is :mod:`.review_plan`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..events import CountProgress
from ..errors import DatasetError
from ..storage.dataset_memory import load_memory, save_memory

#: the review's memory inside the dataset: kept photos and the log of applied actions
#: cosine similarity of two photos' pretrained embeddings above which they are near-duplicates.
#: Measured (tests/benchmarks/bench_review.py's planting, EfficientNet-Lite1 features, the first 450
#: photos of each class of catdog-1800): 30 copies resized to 60-85% and saved again at JPEG quality
#: 55-80 score 0.889 at the lowest (then 0.93, 0.94...); distinct photos' nearest neighbours score at
#: most 0.862, apart from the copies already in the data (>= 0.99) and one pair at 0.955 (the same
#: scene). A second planting (seed 8): copies >= 0.865 (then 0.934), distinct <= 0.859 apart from
#: one pair at 0.919. 0.88 sits between the two.
NEAR_DUPLICATE_THRESHOLD = 0.88

#: summed robust z-scores (distance to the nearest class centroid + peak activation) above which a
#: photo is an outlier ("no class fits"); see :func:`outliers`
OUTLIER_Z = 6.5

#: features(paths, progress, cancel) -> (N, D) float array, one row per path
FeatureFn = Callable[[Sequence[Path], Optional[CountProgress], Optional[threading.Event]], np.ndarray]


# ----------------------------------------------------------------------------------------------
# features


def pretrained_features(model_name: Optional[str] = None, disk_cache: bool = True) -> FeatureFn:
    """The default feature function: the frozen pretrained backbone (onnxruntime on CPU when it
    checks out), images decoded once by ``build_cache`` and features kept in the ``FeatureStore``
    like training's."""

    def features(paths, progress=None, cancel=None):
        import torch

        from ..config import DEFAULT_PRETRAINED_MODEL
        from ..data.layouts import Sample
        from ..data.decode_cache import build_cache, default_cache_dir
        from .features import FeatureExtractor, FeatureStore, store_key, weights_hash
        from ..models import ModelInput, create_model, feature_parts, get_spec

        name = model_name or DEFAULT_PRETRAINED_MODEL
        spec = get_spec(name)
        size = spec.default_image_size
        model = create_model(name, 2, size, pretrained=True)
        backbone, _head = feature_parts(model)
        backbone.eval()
        device = torch.device("cpu")
        digest = weights_hash(backbone)
        extractor = FeatureExtractor(backbone, name, size, device, digest=digest)
        store = FeatureStore(store_key(name, size, digest, spec.mean, spec.std)) if disk_cache else None
        inputs = ModelInput(spec.mean, spec.std, device, channels_last=False)
        n = len(paths)
        half = lambda d, t: progress(d // 2, n) if progress else None
        cache = build_cache([Sample(Path(p), 0) for p in paths], size, half, cancel,
                            disk_cache=default_cache_dir() if disk_cache else None)
        ids = cache.identities
        feats, found = store.lookup(ids) if store is not None else (None, np.zeros(len(cache), bool))
        todo = np.flatnonzero(~found)
        computed = []
        with torch.no_grad():
            for start in range(0, len(todo), 64):
                if cancel is not None and cancel.is_set():
                    from ..errors import Cancelled
                    raise Cancelled()
                idx = todo[start:start + 64]
                xb = inputs(torch.from_numpy(np.ascontiguousarray(cache.array[idx])))
                computed.append(extractor(xb).float().cpu().numpy())
                if progress:
                    progress(n // 2 + (n - n // 2) * min(len(todo), start + 64) // max(1, len(todo)), n)
        if computed:
            new = np.concatenate(computed)
            if store is not None:
                store.save([ids[i] for i in todo], new)
            if feats is None:
                feats = np.empty((len(cache), new.shape[1]), dtype=np.float32)
            feats[todo] = new
        # unreadable photos (dropped by the decode) get a zero row: no neighbour, no suggestion
        out = np.zeros((n, feats.shape[1] if feats is not None else 1), dtype=np.float32)
        row = {os.path.abspath(p): i for i, p in enumerate(cache.paths)}
        for i, p in enumerate(paths):
            j = row.get(os.path.abspath(p))
            if j is not None:
                out[i] = feats[j]
        cache.close()
        return out

    return features


# ----------------------------------------------------------------------------------------------
# finders


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _fit_predict(xtr, ytr, xte, k: int, l2: float = 1e-3, iters: int = 100) -> np.ndarray:
    """Softmax regression (a linear head) by full-batch L-BFGS; probabilities of ``xte``."""
    import torch

    xtr_t, xte_t = torch.from_numpy(xtr), torch.from_numpy(xte)
    y = torch.from_numpy(ytr.astype(np.int64))
    w = torch.zeros(xtr.shape[1], k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr_t @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return torch.softmax(xte_t @ w + b, dim=1).numpy()


def out_of_fold_probs(features: np.ndarray, labels: np.ndarray, n_classes: int, folds: int = 5,
                      seed: int = 0, cancel: Optional[threading.Event] = None) -> np.ndarray:
    """Each photo's class probabilities from a model that never saw it (stratified k-fold)."""
    x = _normalise(features)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=int)
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        fold_of[idx] = np.arange(len(idx)) % folds
    probs = np.zeros((len(labels), n_classes), dtype=np.float32)
    for f in range(folds):
        if cancel is not None and cancel.is_set():
            from ..errors import Cancelled
            raise Cancelled()
        te = fold_of == f
        if not te.any():
            continue
        probs[te] = _fit_predict(x[~te], labels[~te], x[te], n_classes)
    return probs


@dataclass
class Suggestion:
    kind: str  # "label" (likely label error), "outlier", "duplicate" (near-duplicate), "leak"
    path: str
    current: str  # the class it is filed under
    suggested: Optional[str]  # the class it probably is (label), None otherwise
    score: float  # higher is worse
    group: list[str] = field(default_factory=list)  # near-duplicates: every photo of the group
    identity: Optional[tuple[int, int]] = None  # (size, mtime_ns) when reviewed

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Review:
    root: str
    classes: list[str]
    label_errors: list[Suggestion]
    outliers: list[Suggestion]
    duplicate_groups: list[list[str]]  # near-duplicates (exact copies included), as paths
    leaks: list[list[str]] = field(default_factory=list)  # [training photo, test photo, ...]
    seconds: float = 0.0
    #: each listed photo as the review saw it: path -> [size, mtime_ns, sha256] (see :func:`photo_identity`)
    identities: dict = field(default_factory=dict)

    def remember(self, paths) -> None:
        """Record ``paths`` as they are now (photos listed later, e.g. a training run's mistakes)."""
        for p in paths:
            if str(p) not in self.identities:
                ident = photo_identity(p)
                if ident is not None:
                    self.identities[str(p)] = ident

    def items(self) -> list[Suggestion]:
        """Everything, worst first within each kind: label errors, near-duplicates, outliers."""
        dups = [Suggestion("duplicate", g[0], _class_of_path(g[0], self.root), None, float(len(g)), list(g))
                for g in self.duplicate_groups]
        leaks = [Suggestion("leak", g[0], _class_of_path(g[0], self.root), None, float(len(g)), list(g))
                 for g in self.leaks]
        return list(self.label_errors) + dups + leaks + list(self.outliers)

    def to_dict(self, top: Optional[int] = None) -> dict:
        return {"root": self.root, "classes": self.classes, "seconds": round(self.seconds, 2),
                "label_errors": [s.to_dict() for s in self.label_errors[:top]],
                "outliers": [s.to_dict() for s in self.outliers[:top]],
                "near_duplicate_groups": self.duplicate_groups[:top], "leaks": self.leaks[:top]}

    def lines(self, top: Optional[int] = None, leaks: bool = False) -> list[str]:
        """The findings in words (``catdog review``), the ``top`` worst of each kind (None: all);
        ``leaks``: with the test photos that are near-duplicates of training photos."""
        out = [f"Likely label errors ({len(self.label_errors)}), worst first:"]
        out += [f"  {s.score:6.3f}  {s.path}  filed as {s.current}, looks like {s.suggested}"
                for s in self.label_errors[:top]]
        out.append(f"Near-duplicate groups ({len(self.duplicate_groups)}):")
        out += ["  " + "  =  ".join(g) for g in self.duplicate_groups[:top]]
        if leaks:
            out.append(f"Test photos that are near-duplicates of training photos ({len(self.leaks)}):")
            out += ["  " + "  =  ".join(g) for g in self.leaks[:top]]
        out.append(f"No class fits ({len(self.outliers)}):")
        out += [f"  {s.score:6.1f}  {s.path}  (filed as {s.current})" for s in self.outliers[:top]]
        return out


def _class_of_path(path: str, root: str) -> str:
    from ..data.layouts import class_of

    return class_of(root, path) or ""


def label_errors(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confident learning: (flagged mask, normalized-margin score, suggested class) per photo."""
    n, k = probs.shape
    thresholds = np.array([probs[labels == c, c].mean() if (labels == c).any() else 1.0 for c in range(k)])
    given = probs[np.arange(n), labels]
    others = probs.copy()
    others[np.arange(n), labels] = -1.0
    suggested = others.argmax(1)
    margin = others.max(1) - given
    above = probs >= thresholds[None, :]
    above[np.arange(n), labels] = False
    flagged = (given < thresholds[labels]) & above.any(1) & (margin > 0)
    return flagged, margin, suggested


def near_duplicate_groups(features: np.ndarray, threshold: float = NEAR_DUPLICATE_THRESHOLD,
                          other: Optional[np.ndarray] = None) -> list[list[int]]:
    """Groups of rows whose cosine similarity exceeds ``threshold`` (connected components).
    With ``other``: pairs across the two sets only, rows of ``other`` numbered after ``features``."""
    a = _normalise(features)
    b = a if other is None else _normalise(other)
    n, m = len(a), len(b)
    parent = list(range(n + (0 if other is None else m)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    valid_a = np.linalg.norm(features, axis=1) > 0
    valid_b = valid_a if other is None else np.linalg.norm(other, axis=1) > 0
    for start in range(0, n, 512):
        sim = a[start:start + 512] @ b.T
        ii, jj = np.nonzero(sim > threshold)
        for i, j in zip(ii + start, jj):
            if not (valid_a[i] and valid_b[j]):
                continue
            if other is None:
                if j <= i:
                    continue
                parent[find(i)] = find(j)
            else:
                parent[find(i)] = find(n + j)
    comps: dict[int, list[int]] = {}
    for i in range(len(parent)):
        comps.setdefault(find(i), []).append(i)
    groups = [sorted(g) for g in comps.values() if len(g) > 1]
    if other is not None:
        groups = [g for g in groups if g[0] < n <= g[-1]]
    return sorted(groups)


def _robust_z(v: np.ndarray) -> np.ndarray:
    med = np.median(v)
    return (v - med) / (np.median(np.abs(v - med)) * 1.4826 + 1e-9)


def outliers(features: np.ndarray, labels: np.ndarray, probs: np.ndarray, n_classes: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """(flagged mask, score): far from every class centroid in feature space (cosine distance to
    the nearest centroid) and with an unusual peak activation, both as robust z-scores, summed.
    (Measured on the first 300-450 photos per class of catdog-1800 with 10 of the benchmark's generated
    non-animal images, EfficientNet-Lite1: the distance alone overlaps, junk 2.2-4.1 vs photos up to
    2.7; the peak activation, junk 3.3-5.6 vs photos' 99.5th percentile 3.9; the sum, junk 5.3-12 vs
    photos' top scores 8.5, 6.9, 6.3, 6.0: 6.5 flags 8 of 10 junk and 2 of 900 photos. The classifier's maximum probability does not help:
    junk images get 0.77-1.0.) ``probs`` is kept for the ranking's tie-break."""
    x = _normalise(features)
    cents = _normalise(np.stack([x[labels == c].mean(0) if (labels == c).any() else np.zeros(x.shape[1])
                                 for c in range(n_classes)]))
    nearest = (1.0 - x @ cents.T).min(1)  # cosine distance to the nearest class centroid
    peak = np.asarray(features, dtype=np.float32).max(1)
    score = _robust_z(nearest) + _robust_z(peak) + 1e-3 * (1.0 - probs.max(1))
    flagged = score > OUTLIER_Z
    return flagged, score


def review_dataset(root, features: Optional[FeatureFn] = None, *, test_dir=None, folds: int = 5,
                   seed: int = 0, threshold: float = NEAR_DUPLICATE_THRESHOLD,
                   progress: Optional[CountProgress] = None, cancel: Optional[threading.Event] = None,
                   include_kept: bool = False) -> Review:
    """Review the labelled folder ``root``: likely label errors, outliers, near-duplicates (and,
    with ``test_dir``, near-duplicates between the two: leakage). Kept photos are left out."""
    from ..data.layouts import labeled_photos, list_labeled

    t0 = time.perf_counter()
    root = Path(root)
    features = features or pretrained_features()

    def ident(p):
        try:
            st = os.stat(p)
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    _layout, per_class, _ignored = labeled_photos(root, cancel)
    classes = sorted(per_class)
    if len(classes) < 2 or sum(len(v) for v in per_class.values()) < 4:
        found = f"{sum(len(v) for v in per_class.values())} photo(s) in {len(classes)} class(es)"
        raise DatasetError(f"{root} has {found}: a review needs at least two classes with a few photos each "
                           "(one folder per class, or the class in each file name)")
    paths = [p for c in classes for p in sorted(per_class[c])]
    seen = {str(p): ident(p) for p in paths}  # each photo as it was listed, before its features were computed
    labels = np.array([i for i, c in enumerate(classes) for _ in per_class[c]], dtype=int)
    test_paths: list[Path] = []
    if test_dir is not None:
        _l, test_per, _i = list_labeled(Path(test_dir), cancel)
        test_paths = [p for c in sorted(test_per) for p in sorted(test_per[c])]
    feats = features(paths + test_paths, progress, cancel)
    tfeats, feats = feats[len(paths):], feats[:len(paths)]
    memory = load_memory(root)
    kept = set() if include_kept else set(memory.keep)
    probs = out_of_fold_probs(feats, labels, len(classes), folds, seed, cancel)
    flagged, margin, suggested = label_errors(probs, labels)
    out_flag, z = outliers(feats, labels, probs, len(classes))


    def rel(p):
        return os.path.relpath(p, root)

    errs = [Suggestion("label", str(paths[i]), classes[labels[i]], classes[suggested[i]], float(margin[i]),
                       identity=ident(paths[i]))
            for i in np.flatnonzero(flagged & ~out_flag) if rel(paths[i]) not in kept]
    errs.sort(key=lambda s: -s.score)
    outs = [Suggestion("outlier", str(paths[i]), classes[labels[i]], None, float(z[i]), identity=ident(paths[i]))
            for i in np.flatnonzero(out_flag) if rel(paths[i]) not in kept]
    outs.sort(key=lambda s: -s.score)
    groups = [[str(paths[i]) for i in g] for g in near_duplicate_groups(feats, threshold)]
    leaks = []
    if test_paths:
        allp = paths + test_paths
        leaks = [[str(allp[i]) for i in g] for g in near_duplicate_groups(feats, threshold, other=tfeats)]
    # every scan of this folder keeps them on one side of the split (kept groups too: they stay similar); a
    # scan with ``test_dir`` as its validation folder leaves that folder's near-copies of training photos out
    memory.near_duplicates = [[rel(p) for p in g] for g in groups + leaks]
    save_memory(root, memory)
    groups = [g for g in groups if not all(rel(p) in kept for p in g)]
    review = Review(str(root), classes, errs, outs, groups, leaks, time.perf_counter() - t0)
    listed = [s.path for s in errs + outs] + [p for g in groups for p in g]
    review.remember(listed)
    for p in listed:  # a photo edited while the review ran is recorded as listed, so acting on it is refused
        if p in review.identities and seen.get(p) is not None and tuple(review.identities[p][:2]) != seen[p]:
            review.identities[p] = [*seen[p], ""]
    return review


def photo_identity(path) -> Optional[list]:
    """``[size, mtime_ns, sha256 of the bytes]`` of a photo, or None when it cannot be read: what a plan
    checks before it moves the photo (a file replaced by another of the same size and time still differs)."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, digest]


# ----------------------------------------------------------------------------------------------
# the review's memory in the dataset


__all__ = ["NEAR_DUPLICATE_THRESHOLD", "Review", "Suggestion", "label_errors", "near_duplicate_groups",
           "out_of_fold_probs", "outliers", "photo_identity", "pretrained_features", "review_dataset"]
