"""The current model: the open model file and its one :class:`~catdog_gui.core.inference.predictor.Predictor`.

Owned by the main window and handed to every view that needs a model (``PredictionTab(current)``,
``NetworkTab(current)``, the Training tab's "Continue training"). Views never load a model file
themselves: they call :meth:`CurrentModel.open` and redraw on its signals.

* :meth:`open` loads in the background (a :class:`~catdog_gui.gui.common.workers.Task`); a newer
  :meth:`open` discards the one in flight, so a stale load never becomes current.
* ``loading(path)`` when a load starts, ``changed(predictor)`` once it is the current model
  (``changed(None)`` after :meth:`clear`), ``failed(path, message)`` when a file cannot be opened:
  the previous model then stays current, nothing is lost.

One model, many users on worker threads: :func:`model_lock` gives the lock that every GUI job
holds while it runs the model. Predictions, Grad-CAM, feature maps and the layer summary all run
forward passes with hooks on the same ``nn.Module``; one at a time, a hook never sees another
job's images.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal

from ..common.workers import Task

_LOCKS: "weakref.WeakKeyDictionary[object, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(predictor) -> threading.RLock:
    """The lock to hold while running ``predictor``'s model on a worker thread."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(predictor)
        if lock is None:
            lock = _LOCKS[predictor] = threading.RLock()
        return lock


def _load(path: str, device: str):
    """Open a model file and warm it up (on a worker thread): the first photo is then fast."""
    import numpy as np

    from ...core.inference.predictor import Predictor

    predictor = Predictor(path, device)
    s = predictor.info.image_size
    predictor.probabilities(np.zeros((1, 3, s, s), np.uint8))
    return predictor


class CurrentModel(QObject):
    """The open model file and its Predictor; see the module docstring."""

    loading = Signal(str)  # path being opened
    changed = Signal(object)  # the new current Predictor (None after clear())
    failed = Signal(str, str)  # (path, message for the user): the previous model stays current

    def __init__(self, device: str = "auto", parent: Optional[QObject] = None):
        super().__init__(parent)
        self.device = device
        self._predictor = None
        self._path: Optional[str] = None
        self._task: Optional[Task] = None
        self._pending: Optional[str] = None

    # ---- state ----------------------------------------------------------------------------
    @property
    def predictor(self):
        """The current Predictor, or None."""
        return self._predictor

    @property
    def path(self) -> Optional[str]:
        """The current model file (only ever one that loaded), or None."""
        return self._path

    @property
    def pending(self) -> Optional[str]:
        """The file being opened, or None."""
        return self._pending

    def is_loading(self) -> bool:
        return self._pending is not None

    @property
    def info(self):
        """The model file's description (:class:`~catdog_gui.core.storage.modelfile.ModelInfo`), or None."""
        return self._predictor.info if self._predictor is not None else None

    @property
    def classes(self) -> list[str]:
        return list(self._predictor.classes) if self._predictor is not None else []

    @property
    def model_name(self) -> str:
        """The architecture's registry name ("lenet5", "resnet18"...), or ""."""
        return self._predictor.info.model_name if self._predictor is not None else ""

    @property
    def title(self) -> str:
        """The architecture's human title ("LeNet-5 (1998)"...), or ""."""
        if self._predictor is None:
            return ""
        from ...core.models import title_of

        return title_of(self._predictor.info.model_name)

    @property
    def file_name(self) -> str:
        return Path(self._path).name if self._path else ""

    # ---- loading ----------------------------------------------------------------------------
    def open(self, path) -> Task:
        """Load ``path`` in the background; the current model stays current until it is ready (and
        stays current if the file cannot be opened)."""
        path = str(path)
        if self._task is not None:
            self._task.discard()
        self._pending = path
        task = self._task = Task(lambda _state: _load(path, self.device), self, "open model")
        task.done.connect(lambda p, path=path: self._set(p, path))
        task.failed.connect(lambda msg, path=path: self._fail(path, msg))
        task.finished.connect(lambda t=task: self._finished(t))
        self.loading.emit(path)
        return task.start()

    def open_now(self, path):
        """Load ``path`` on this thread (scripts and tests): emits the same signals as :meth:`open`;
        returns the Predictor or raises :class:`~catdog_gui.core.errors.CatdogError`."""
        from ...core.errors import CatdogError

        path = str(path)
        if self._task is not None:
            self._task.discard()
            self._task = None
        self._pending = path
        self.loading.emit(path)
        try:
            predictor = _load(path, self.device)
        except CatdogError as e:
            self._fail(path, str(e))
            raise
        self._set(predictor, path)
        return predictor

    def clear(self) -> None:
        """No current model (an open in flight is dropped)."""
        if self._task is not None:
            self._task.discard()
            self._task = None
        self._pending = None
        self._predictor, self._path = None, None
        self.changed.emit(None)

    def shutdown(self, ms: int = 10000) -> None:
        """Stop a load in flight and wait for its thread (the window is closing)."""
        self._task = None
        self._pending = None
        Task.shutdown_all(self, ms)

    # ---- on the GUI thread -----------------------------------------------------------------
    def _set(self, predictor, path: str) -> None:
        self._pending = None
        self._predictor, self._path = predictor, path
        self.changed.emit(predictor)

    def _fail(self, path: str, message: str) -> None:
        self._pending = None
        self.failed.emit(path, message)

    def _finished(self, task: Task) -> None:
        if self._task is task:
            self._task = None
