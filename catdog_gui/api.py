"""Use catdog-gui from Python: notebooks (Jupyter, Colab), scripts, headless GPU boxes.

A thin layer over :mod:`catdog_gui.core`, the same engine as the window and the ``catdog``
command. It needs no display and never imports Qt::

    from catdog_gui import api as catdog

    data = catdog.scan("pets")                       # pets/cat/*.jpg, pets/dog/*.jpg
    run = catdog.train("pets", epochs=10, augment=True, out="lenet.pt")
    run.metrics.accuracy, run.history[-1]["val_acc"]
    run.predict("photo.jpg")                         # Prediction: label, confidence, probabilities
    catdog.evaluate("lenet.pt", "more_pets")         # Metrics: accuracy, per class, confusion
    catdog.preview_augmentation("photo.jpg")         # a PIL image: shows itself in a notebook

Problems with the input (a missing folder, an unreadable photo, a bad setting) raise
:class:`~catdog_gui.core.errors.CatdogError` with a message that says what to change.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

from .core.data.augment import AugmentSettings
from .core.config import TrainConfig, make_config
from .core.errors import CatdogError

__all__ = ["scan", "train", "evaluate", "predict", "load", "preview_augmentation", "Run", "TrainConfig",
           "AugmentSettings", "CatdogError", "models"]

PathLike = Union[str, os.PathLike]


def models() -> list[str]:
    """The architecture names ``train(model=...)`` accepts."""
    from .core.models import list_specs

    return [s.name for s in list_specs()]


def scan(folder: PathLike, val: Optional[PathLike] = None, *, val_fraction: float = 0.2, seed: int = 0,
         show: bool = True):
    """Check a dataset folder (classes, unreadable files, duplicates) and split it as training will.

    Returns a :class:`~catdog_gui.core.data.scan.Dataset` (``.classes``, ``.train``, ``.val``,
    ``.report``); ``show`` prints the report. Raises ``DatasetError`` when it cannot train a model.
    """
    from .core.data.scan import scan_dataset

    ds = scan_dataset(folder, val, val_fraction=val_fraction, seed=seed)
    if show:
        print("\n".join(ds.report.lines()))
    return ds


@dataclass
class Run:
    """What :func:`train` returns: the model file, the epochs, and the best epoch's metrics."""

    status: str  # "completed", "stopped_early" or "cancelled"
    reason: str
    model_path: Optional[str]
    best_epoch: int
    val_accuracy: float
    history: list[dict]  # one dict per epoch: epoch, train_loss, train_acc, val_loss, val_acc, ...
    metrics: object  # core.evaluation.Metrics of the best epoch on the validation images (or None)
    config: object  # the TrainConfig used
    classes: list[str] = field(default_factory=list)
    tensorboard_dir: Optional[str] = None  # this run's TensorBoard folder, if logged
    run_id: Optional[str] = None  # its entry in the run store (`catdog runs show ID`)
    _predictor: object = field(default=None, repr=False, compare=False)

    def predictor(self, device: str = "auto"):
        """A :class:`~catdog_gui.core.inference.predictor.Predictor` for the saved model (loaded once)."""
        if self.model_path is None:
            raise CatdogError("this run saved no model (it stopped before the first epoch ended)")
        if self._predictor is None:
            from .core.inference.predictor import Predictor

            self._predictor = Predictor(self.model_path, device)
        return self._predictor

    def predict(self, images):
        """Classify one image (path, bytes or PIL image) -> Prediction, or a list / a folder -> list."""
        return _predict(self.predictor(), images)

    def evaluate(self, folder: PathLike, allow_overlap: bool = False):
        """Accuracy, per-class precision/recall/F1 and confusion matrix on another labelled folder (CatdogError
        when some of its photos are this model's training photos, unless ``allow_overlap``)."""
        return _evaluate(self.predictor(), folder, allow_overlap)

    def __str__(self) -> str:
        acc = f"{self.val_accuracy * 100:.1f}%" if self.val_accuracy == self.val_accuracy else "n/a"
        return (f"Run({self.status}: best epoch {self.best_epoch} of {len(self.history)}, validation accuracy {acc}, "
                f"model {self.model_path})")

    def _repr_pretty_(self, p, cycle):  # IPython shows the short form
        p.text(str(self))


def _augment_settings(augment) -> AugmentSettings:
    if isinstance(augment, AugmentSettings):
        return augment
    if isinstance(augment, dict):
        return AugmentSettings.from_dict({"enabled": True, **augment})
    return AugmentSettings(enabled=bool(augment))


def train(
    folder: Union[PathLike, object],
    *,
    val: Optional[PathLike] = None,
    model: Optional[str] = None,
    epochs: Optional[int] = None,
    augment: Union[bool, dict, AugmentSettings] = False,
    pretrained: bool = False,
    finetune: bool = False,
    out: Optional[PathLike] = None,
    progress: bool = True,
    tensorboard: Optional[PathLike] = None,
    config=None,
    callbacks: Iterable[Callable[[object], None]] = (),
    **settings,
) -> Run:
    """Train a classifier on ``folder`` (one subfolder per class, or files named ``cat.1.jpg``).

    ``model``: an architecture name (see :func:`models`; default ``lenet5``, or
    ``efficientnet_lite1`` with ``pretrained=True``). ``augment``: True for the default augmentation,
    a dict of :class:`AugmentSettings` fields, or an ``AugmentSettings``. ``finetune``: with
    ``pretrained``, also train the backbone's last blocks once the new head has converged.
    ``out``: the model file to write (default: a new file in a temporary folder, see
    ``Run.model_path``). ``progress``: tqdm bars and one line per epoch. ``tensorboard``: a folder
    to log the run to (needs ``pip install tensorboard``). Any other
    :class:`~catdog_gui.core.config.TrainConfig` field can be passed by name (``lr=3e-4``,
    ``batch_size=64``, ``seed=1``, ``patience=0``, ``device="cuda"`` ...), or a whole ``config``.
    ``folder`` may also be the Dataset that :func:`scan` returned.

    Interrupting (Ctrl-C, or the notebook's stop button) stops after the current batch and keeps
    the best epoch so far (``status == "cancelled"``); a second interrupt aborts. Raises
    ``CatdogError`` when the data or a setting is unusable.
    """
    from .core.training import harness as run

    if config is not None:
        cfg = TrainConfig.from_dict(config.to_dict() if isinstance(config, TrainConfig) else config)
        if model:
            cfg.model = model
        for k, v in dict(epochs=epochs, **settings).items():
            if v is not None:
                if not hasattr(cfg, k):
                    raise CatdogError(f"unknown setting {k!r}")
                setattr(cfg, k, v)
        if pretrained:
            cfg.pretrained = True
        if finetune:
            cfg.transfer_mode = "finetune"
        if augment is not False:
            cfg.augment = _augment_settings(augment)
    else:
        # augmentation on: epochs and patience not given follow AugmentSettings.recommended_epochs
        cfg = make_config(model, pretrained=pretrained, finetune=finetune, augment=_augment_settings(augment),
                          epochs=epochs, **settings)

    if out is None:
        out = Path(tempfile.mkdtemp(prefix="catdog-")) / f"{cfg.model}.pt"
    logger = None
    if tensorboard is not None:
        from .core.training.tensorboard import TensorBoardLogger

        logger = TensorBoardLogger(tensorboard)
    from .core.storage.run_store import RunRecorder

    recorder = RunRecorder(source="api")
    finished = run.train(cfg, folder, out, val_dir=val, callbacks=callbacks, progress=bool(progress),
                         tensorboard=logger, recorder=recorder)
    if not finished.ok:
        if finished.user_error:
            raise CatdogError(finished.reason)
        raise RuntimeError(f"training failed with an internal error (a bug):\n{finished.traceback}")
    m = finished.metrics
    return Run(
        status=str(finished.status), reason=finished.reason, model_path=finished.best_path,
        best_epoch=finished.best_epoch, val_accuracy=finished.best_val_acc,
        history=[asdict(e) for e in finished.history], metrics=m, config=cfg,
        classes=list(m.classes) if m is not None else [],
        tensorboard_dir=str(logger.run_dir) if logger is not None and logger.run_dir else None,
        run_id=recorder.record.id if recorder.record is not None and recorder.error is None else None,
    )


# ------------------------------------------------------------------------------------------------
def load(model_path: PathLike, device: str = "auto", unfamiliar_check: bool = True):
    """Load a model file once for many predictions: a :class:`~catdog_gui.core.inference.predictor.Predictor`
    (``.classes``, ``.predict(image)``, ``.predict_many(images)``). ``unfamiliar_check=False``: no
    "neither cat nor dog" flag (``Prediction.unfamiliar`` is then None)."""
    from .core.inference.predictor import Predictor

    return Predictor(Path(model_path).expanduser(), device, unfamiliar_check=unfamiliar_check)


def _image_paths(folder: Path) -> list[Path]:
    from .core.data.layouts import list_images

    return list_images(folder)[0]


def _predict(predictor, images):
    from PIL import Image

    single = isinstance(images, (str, os.PathLike, bytes, bytearray, Image.Image))
    if single and not isinstance(images, (bytes, bytearray, Image.Image)) and Path(images).is_dir():
        found = _image_paths(Path(images))
        if not found:
            raise CatdogError(f"no images found in {images}")
        return predictor.predict_many(found)
    if single:
        return predictor.predict(images)
    return predictor.predict_many(list(images))


def predict(model_path: PathLike, images, device: str = "auto", unfamiliar_check: bool = True):
    """Classify images with a model file.

    ``images``: one image (a path, bytes or a PIL image) -> one
    :class:`~catdog_gui.core.inference.predictor.Prediction` (raises ``ImageError`` if unreadable); a list,
    or a folder (searched recursively) -> a list of Predictions (unreadable ones have ``.error``).
    A Prediction has ``.label``, ``.confidence``, ``.probabilities`` (calibrated: the model file's
    temperature applied), ``.describe()`` ("95.1% dog, 4.9% cat") and ``.unfamiliar``: True when the
    photo is unlike every training photo ("neither cat nor dog"; ``.unfamiliar_score`` above
    ``.unfamiliar_threshold``), None when the model file has no statistics for it or the check is off.
    """
    return _predict(load(model_path, device, unfamiliar_check), images)


def _evaluate(predictor, folder: PathLike, allow_overlap: bool = False):
    from .core.inference.evaluation import evaluate_folder

    return evaluate_folder(predictor, folder, allow_overlap=allow_overlap)[0]


def evaluate(model_path: PathLike, folder: PathLike, device: str = "auto", allow_overlap: bool = False):
    """Evaluate a model file on a labelled folder (one subfolder per class, or class in the names).
    Photos of the folder that the model trained on make it a CatdogError (the score would read high),
    unless ``allow_overlap``; ``.overlap`` says how many there were.

    Returns :class:`~catdog_gui.core.inference.evaluation.Metrics`: ``.accuracy``, ``.per_class``
    (precision, recall, F1, support), ``.confusion`` (rows: true class), ``.mistakes`` (most
    confident first), ``.ece`` (expected calibration error on the folder), ``.unfamiliar`` (photos
    flagged as unlike the training photos) and ``.lines()`` for a printable report.
    """
    return _evaluate(load(model_path, device), folder, allow_overlap)


def preview_augmentation(image, n: int = 8, seed: int = 0, settings: Union[bool, dict, AugmentSettings, None] = None,
                         model: str = "lenet5", size: Optional[int] = None, cell: int = 128,
                         columns: Optional[int] = None):
    """A PIL image: ``image`` as the model sees it, then ``n`` augmented versions, in a grid.

    ``settings``: ``None`` for the default augmentation, a dict of :class:`AugmentSettings` fields or
    an ``AugmentSettings``. The pictures are made at ``size`` (default: ``model``'s input size, 32 for
    LeNet-5) exactly as training makes them, then enlarged to ``cell`` pixels. The same ``seed``
    gives the same pictures. In a notebook the returned image shows itself; elsewhere ``.save(path)``.
    """
    from .core.data.augment import preview
    from .core.data.imageio import load_square_array
    from .core.training.tensorboard import image_grid

    from PIL import Image

    s = _augment_settings(True if settings is None else settings)
    if size is None:
        from .core.models import get_spec

        size = get_spec(model).default_image_size
    original = Image.fromarray(load_square_array(image, size), "RGB")
    pictures = [original] + preview(image, s, n=n, seed=seed, size=size)
    captions = ["original"] + [f"#{i + 1}" for i in range(n)]
    return image_grid(pictures, columns=columns or min(len(pictures), 9),
                      captions=captions, cell=max(cell, size))
