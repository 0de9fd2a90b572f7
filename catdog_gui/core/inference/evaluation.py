"""Accuracy, per-class precision/recall/F1, confusion matrix, and the list of mistakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


@dataclass
class Mistake:
    """One validation image's verdict (a mistake when ``true != predicted``)."""

    path: str
    true: str
    predicted: str
    confidence: float


@dataclass
class Metrics:
    classes: list[str]
    n: int
    accuracy: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    mistakes: list[Mistake] = field(default_factory=list)  # most confident first
    #: the images predicted right, least confident first (needs ``paths`` in compute_metrics)
    correct: list[Mistake] = field(default_factory=list)
    #: how many of the scored photos are the model's training photos (None: the model file cannot say)
    overlap: Optional[int] = None
    #: expected calibration error of the model's (calibrated) probabilities on these photos, and of
    #: the same probabilities before temperature scaling; None where not measured
    ece: Optional[float] = None
    ece_uncalibrated: Optional[float] = None
    temperature: Optional[float] = None
    #: photos flagged as unlike the training photos (None: the model file has no statistics, or off)
    unfamiliar: Optional[int] = None
    #: a training run's calibration on its validation photos (Calibration.to_meta(): the temperature,
    #: ECE and reliability bins before and after); None for a folder evaluation
    calibration: Optional[dict] = None

    def cell(self, true: str, predicted: str) -> list[Mistake]:
        """The images of one confusion-matrix cell: the least confident first for a diagonal
        (correct) cell, the most confident first for mistakes (the ones to look at first)."""
        items = self.correct if true == predicted else self.mistakes
        return [x for x in items if x.true == true and x.predicted == predicted]

    def to_dict(self, with_mistakes: bool = True) -> dict:
        d = {"classes": self.classes, "n": self.n, "accuracy": self.accuracy,
             "per_class": self.per_class, "confusion": self.confusion, "overlap": self.overlap,
             "ece": self.ece, "ece_uncalibrated": self.ece_uncalibrated, "temperature": self.temperature,
             "unfamiliar": self.unfamiliar}
        if with_mistakes:
            d["mistakes"] = [m.__dict__ for m in self.mistakes]
        return d

    def lines(self) -> list[str]:
        width = max(8, *(len(c) for c in self.classes))
        out = [f"Accuracy {self.accuracy * 100:.1f}% on {self.n} images"
               + (f" ({self.overlap:,} of them photos the model trained on: this accuracy reads high)"
                  if self.overlap else ""), "",
               f"{'class':<{width}}  precision  recall     F1  images"]
        for c in self.classes:
            m = self.per_class[c]
            out.append(f"{c:<{width}}  {m['precision'] * 100:8.1f}%  {m['recall'] * 100:5.1f}%  "
                       f"{m['f1'] * 100:5.1f}%  {int(m['support']):6d}")
        out += ["", "confusion matrix (rows: true class, columns: predicted)",
                " " * (width + 2) + "  ".join(f"{c[:8]:>8}" for c in self.classes)]
        for c, row in zip(self.classes, self.confusion):
            out.append(f"{c:<{width}}  " + "  ".join(f"{v:8d}" for v in row))
        if self.ece is not None:
            out += ["", f"Calibration error (ECE) {self.ece * 100:.2f}% "
                    + (f"(temperature {self.temperature:.2f}; {self.ece_uncalibrated * 100:.2f}% without it)"
                       if self.temperature not in (None, 1.0) and self.ece_uncalibrated is not None
                       else "(the model file has no temperature)")]
        if self.unfamiliar is not None:
            out.append(f"Unfamiliar: {self.unfamiliar:,} of {self.n:,} photos look unlike the training photos")
        return out


def compute_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    classes: Sequence[str],
    confidence: Optional[Sequence[float]] = None,
    paths: Optional[Sequence[Path | str]] = None,
) -> Metrics:
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = len(classes)
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (y_true, y_pred), 1)
    per_class = {}
    for i, c in enumerate(classes):
        tp = conf[i, i]
        fp = conf[:, i].sum() - tp
        fn = conf[i, :].sum() - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                        "support": int(conf[i, :].sum())}
    n = int(len(y_true))
    acc = float((y_true == y_pred).mean()) if n else 0.0
    mistakes, correct = [], []
    if paths is not None:
        wrong = np.flatnonzero(y_true != y_pred)
        for i in wrong:
            mistakes.append(Mistake(str(paths[i]), classes[y_true[i]], classes[y_pred[i]],
                                    float(confidence[i]) if confidence is not None else float("nan")))
        mistakes.sort(key=lambda m: -m.confidence)
        right = np.flatnonzero(y_true == y_pred)
        for i in right:
            correct.append(Mistake(str(paths[i]), classes[y_true[i]], classes[y_pred[i]],
                                   float(confidence[i]) if confidence is not None else float("nan")))
        correct.sort(key=lambda m: m.confidence)
    return Metrics(list(classes), n, acc, per_class, conf.tolist(), mistakes, correct)


def evaluate_folder(predictor, folder, progress=None, cancel=None, allow_overlap: bool = False) -> tuple[Metrics, int]:
    """Score a model (a :class:`~.inference.Predictor`) on a labelled folder in any layout the scan
    accepts: (metrics, number of files skipped as unreadable). Its classes must be the model's.
    ``progress(done, total)`` follows the check of the files, then the predictions (``total`` is
    twice the number of files); ``cancel`` (a ``threading.Event``) stops it with ``Cancelled``.
    Photos the model trained on (their bytes hashed in the model file) are counted in
    ``metrics.overlap``; with any, DatasetError says so unless ``allow_overlap``."""
    from ..errors import Cancelled
    from ..data.scan import scan_folder
    from ..errors import DatasetError, OverlapError

    scan_progress = (lambda d, t: progress(d, 2 * t)) if progress else None
    classes, samples, report = scan_folder(Path(folder).expanduser(), scan_progress, cancel)
    unknown = sorted(set(classes) - set(predictor.classes))
    if unknown:
        raise DatasetError(f"{folder} has classes the model does not know: {', '.join(unknown)} "
                           f"(the model knows {', '.join(predictor.classes)})")
    if not samples:
        raise DatasetError(f"no readable images in {folder}")
    trained = (predictor.info.metrics or {}).get("train_hashes")
    overlap = None
    if isinstance(trained, list):
        from ..data.scan import file_hash

        known = set(trained)
        overlap = sum(1 for s in samples if file_hash(s.path) in known)
        if overlap and not allow_overlap:
            raise OverlapError(
                f"{overlap:,} of the {len(samples):,} photos in {folder} are photos this model trained on: a score "
                "on them reads high. Choose a folder of other photos, or score anyway (catdog evaluate "
                "--allow-overlap; \"Score anyway\" in the window)", overlap, len(samples))
    index = {c: i for i, c in enumerate(predictor.classes)}
    n_files = len(samples) + len(report.bad_files)
    preds = predictor.predict_many([s.path for s in samples], cancel=cancel,
                                   progress=(lambda d, t: progress(n_files + d, 2 * n_files)) if progress else None)
    if cancel is not None and cancel.is_set():
        raise Cancelled("evaluation cancelled")
    ok = [(s, p) for s, p in zip(samples, preds) if p.ok]
    metrics = compute_metrics([index[classes[s.label]] for s, _ in ok], [index[p.label] for _, p in ok],
                              predictor.classes, [p.confidence for _, p in ok], [s.path for s, _ in ok])
    metrics.overlap = overlap
    _calibration_and_unfamiliar(metrics, predictor, [index[classes[s.label]] for s, _ in ok], [p for _, p in ok])
    return metrics, len(report.bad_files) + (len(preds) - len(ok))


def _calibration_and_unfamiliar(metrics: Metrics, predictor, y: list[int], preds: list) -> None:
    """ECE of the predictions (and of the same logits at temperature 1), and the unfamiliar count."""
    from .calibration import ece, softmax

    if not preds:
        return
    col = {c: i for i, c in enumerate(predictor.classes)}
    probs = np.zeros((len(preds), len(col)))
    for r, p in enumerate(preds):
        for c, v in p.probabilities:
            probs[r, col[c]] = v
    t = float(getattr(predictor, "temperature", 1.0))
    metrics.ece, metrics.temperature = ece(probs, y), t
    # softmax(T * log p) = softmax(logits): the probabilities before temperature scaling
    metrics.ece_uncalibrated = ece(softmax(t * np.log(np.clip(probs, 1e-300, None))), y)
    flags = [p.unfamiliar for p in preds]
    metrics.unfamiliar = None if any(f is None for f in flags) else int(sum(flags))


def measured_on(n: int, seen: bool = False) -> str:
    """What a validation accuracy was measured on, in words: "361 photos the model did not train
    on", or, for a model continued on another split than it was trained with, that some of them
    were its training photos (so the number reads high)."""
    if seen:
        return (f"{n:,} validation photos, some of which the model it continued from trained on: "
                "this accuracy reads high")
    return f"{n:,} photos the model did not train on"


def evaluate_model_file(model_path, folder, device: str = "auto", progress=None, cancel=None,
                        allow_overlap: bool = False) -> tuple[Metrics, int]:
    """:func:`evaluate_folder` for the model file ``model_path`` (loaded here: a process of its own scores it)."""
    from .predictor import Predictor

    return evaluate_folder(Predictor(str(model_path), device), folder, progress, cancel, allow_overlap)
