"""What one :meth:`Trainer.fit <.trainer.Trainer.fit>` call builds and changes (:class:`FitState`,
a new one for every call, so the config passed to the trainer is never changed) and the exception
that ends a fit early with a status (:class:`StopFit`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..config import TrainConfig
from ..data.augment import BatchAugmenter
from ..data.decode_cache import ImageCache
from ..events import Status
from ..inference.features import FeatureExtractor, FeatureStore
from ..models import ModelInput, TrainPhase


class StopFit(Exception):
    """Ends the fit with ``status`` (cancelled by the user, or failed: the loss diverged); the best
    epoch so far is still kept and saved."""

    def __init__(self, status: Status, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class FitState:
    """Everything one ``fit`` call builds and changes; a new one for every call."""

    config: TrainConfig  # the effective config (on resume: the resumed model's name and size)
    out_path: Optional[Path]
    history: list = field(default_factory=list)  # EpochEnd events
    best_state: Optional[dict] = None
    best_epoch: int = 0
    best_val_acc: float = float("nan")
    best_loss: float = math.inf
    lowest_loss: float = math.inf
    saved_path: Optional[str] = None
    first_epoch: Optional[tuple] = None  # (epoch, weights) of the first saved epoch, kept for small models
    #: some validation photos were training photos of the model continued from (another split)
    val_seen: bool = False
    mode: str = "scratch"
    meta: dict = field(default_factory=dict)  # classes, size, mean, std for the model file
    inputs: Optional[ModelInput] = None
    augmenter: Optional[BatchAugmenter] = None
    aug_gen: Optional[torch.Generator] = None
    shuffle_gen: Optional[torch.Generator] = None
    train_cache: Optional[ImageCache] = None
    val_cache: Optional[ImageCache] = None
    xtrain: Optional[torch.Tensor] = None
    ytrain: Optional[torch.Tensor] = None
    xval: Optional[torch.Tensor] = None
    yval: Optional[torch.Tensor] = None
    ftrain: Optional[torch.Tensor] = None  # cached features (mode "features")
    fval: Optional[torch.Tensor] = None
    phase: Optional[TrainPhase] = None
    extractor: Optional[FeatureExtractor] = None  # mode "features": the frozen extractor's runner
    feature_store: Optional[FeatureStore] = None  # ... and the features kept on disk (disk_cache)
    train_model: Optional[nn.Module] = None  # what the training step calls (DDP-wrapped under torchrun)
    train_head: Optional[nn.Module] = None

    def free(self) -> None:
        """Drop the images and features (after running out of memory)."""
        self.xtrain = self.xval = self.ftrain = self.fval = None
