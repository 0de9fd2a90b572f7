"""Training events: plain frozen dataclasses handed to callbacks (never the trainer itself).

Hooks follow Lightning's naming in spirit: a run starts, batches and epochs end, checkpoints are
saved, and the run always finishes with exactly one :class:`Finished`, whatever happened.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Optional

#: a long job's progress callback: (done, total), total 0 when unknown
CountProgress = Callable[[int, int], None]


class Status(str, enum.Enum):
    """How a run ended. A ``str`` enum: ``Status.COMPLETED == "completed"`` (model files and JSON keep the text)."""

    COMPLETED = "completed"
    STOPPED_EARLY = "stopped_early"  # early stopping: validation stopped improving
    CANCELLED = "cancelled"  # the user stopped it; the best epoch so far is kept
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    @property
    def words(self) -> str:
        """"stopped early": for sentences."""
        return self.value.replace("_", " ")


#: each preparation stage in words (the window's status line, the CLI's progress bars)
STAGE_WORDS = {"scan": "looking at the photos", "decode": "reading the photos",
               "weights": "loading pretrained weights", "features": "computing features with the pretrained network"}


@dataclass(frozen=True)
class StageProgress:
    """Preparation before the first epoch: "scan", "decode", "weights", "features" (:data:`STAGE_WORDS`)."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class Notice:
    """One line worth telling the user that is neither progress nor a result, e.g. "onnxruntime is
    not available: computing features with PyTorch instead (slower)". Given at most once per cause."""

    text: str


@dataclass(frozen=True)
class DatasetScanned:
    report: object  # catdog_gui.core.data.scan.ScanReport


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
    lr: float = 0.0  # the learning rate of this step (the head's, when groups differ)


@dataclass(frozen=True)
class BatchChunk:
    """The BatchEnd events since the previous chunk: how batches reach a window (about 20 a second)."""

    events: tuple  # of BatchEnd

    @property
    def last(self) -> BatchEnd:
        return self.events[-1]


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
    lr: float = 0.0  # the learning rate of the epoch's last step


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    epoch: int
    val_acc: float


@dataclass(frozen=True)
class Finished:
    status: Status
    reason: str
    best_path: Optional[str] = None
    best_epoch: int = 0
    best_val_acc: float = float("nan")
    history: tuple = field(default_factory=tuple)  # the EpochEnd events
    user_error: bool = True  # False: a bug; ``traceback`` says where
    traceback: str = ""
    #: the best epoch's catdog_gui.core.inference.evaluation.Metrics on the validation images (None if no epoch ended)
    metrics: object = None
    #: some validation photos were training photos of the model this run continued from (another split)
    val_seen: bool = False

    def __post_init__(self):
        object.__setattr__(self, "status", Status(self.status))

    @property
    def ok(self) -> bool:
        return self.status is not Status.FAILED

    @property
    def cancelled(self) -> bool:
        return self.status is Status.CANCELLED
