"""Training events: plain frozen dataclasses handed to callbacks (never the trainer itself).

Hooks follow Lightning's naming in spirit: a run starts, batches and epochs end, checkpoints are
saved, and the run always finishes with exactly one :class:`Finished`, whatever happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class StageProgress:
    """Preparation before the first epoch: "scan", "decode", "weights", "features"."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class DatasetScanned:
    report: object  # catdog_gui.core.data.ScanReport


@dataclass(frozen=True)
class RunStarted:
    device: str
    classes: tuple[str, ...]
    n_train: int
    n_val: int
    config: dict
    mode: str  # "scratch", "features" (frozen backbone on cached features), "frozen", "finetune"


@dataclass(frozen=True)
class BatchEnd:
    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    steps: int
    loss: float
    phase: str = "train"  # "train", or "finetune" for the fine-tuning phase


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    images_per_s: float
    seconds: float
    eta_s: float
    best_epoch: int
    is_best: bool
    phase: str = "train"


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    epoch: int
    val_acc: float


@dataclass(frozen=True)
class Finished:
    status: str  # "completed", "cancelled", "stopped_early", "failed"
    reason: str
    best_path: Optional[str] = None
    best_epoch: int = 0
    best_val_acc: float = float("nan")
    history: tuple = field(default_factory=tuple)  # the EpochEnd events
    user_error: bool = True  # False: a bug; ``traceback`` says where
    traceback: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "stopped_early", "cancelled")
