"""The Photos page's background work: classifying photos and drawing their Grad-CAM heat maps.

Both run on :class:`~catdog_gui.gui.common.workers.Task` threads (:mod:`.classify` does the work),
so the window never waits. Each classification batch is its own Task; one heat-map Task at a
time (a new request discards the one in flight). :meth:`CardJobs.discard` drops everything in
flight when the model changes, so an answer from the previous model never lands on a card;
:meth:`CardJobs.discard_classification` drops the batches only (the cards are cleared).
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QObject, Signal

from ..common.workers import Task, TaskState
from .classify import ImageItem, ItemResult, cam_for, classify_item


class CardJobs(QObject):
    """Signals: ``result(ItemResult)`` per photo and ``classified()`` after each batch (``failed(msg)``
    when a batch breaks); ``cam(item_id, picture, error)`` per heat map and ``cams_done()``."""

    result = Signal(object)
    classified = Signal()
    failed = Signal(str)
    cam = Signal(int, object, object)
    cams_done = Signal()

    def __init__(self, parent: Optional[QObject] = None):
        super().__init__(parent)
        self._batches = QObject(self)  # parent of the classification Tasks: discarded together
        self._cam_task: Optional[Task] = None

    def classify(self, predictor, items: list[ImageItem], want_cam: bool) -> None:
        """Classify ``items`` with ``predictor`` (and draw their heat maps when ``want_cam``)."""

        def work(state: TaskState):
            for i, item in enumerate(items):
                if state.cancelled():
                    break
                state.emit(classify_item(predictor, item, want_cam))
                state.progress(i + 1, len(items))
            return len(items)

        task = Task(work, self._batches, "classify")
        task.partial.connect(self.result)
        task.failed.connect(self.failed)
        task.finished.connect(self.classified)
        task.start()

    def compute_cams(self, predictor, results: list[ItemResult]) -> None:
        """Heat maps for ``results`` (answers of ``predictor``), from the arrays kept when they were
        classified: nothing is decoded again."""
        if self._cam_task is not None:
            self._cam_task.discard()

        def work(state: TaskState):
            for res in results:
                if state.cancelled():
                    break
                done = cam_for(predictor, ItemResult(res.item_id, prediction=res.prediction,
                                                     model_input=res.model_input, square=res.square,
                                                     predictor=res.predictor))
                state.emit((res.item_id, done.cam_picture, done.cam_error))

        task = self._cam_task = Task(work, self, "grad-cam")
        task.partial.connect(lambda payload: self.cam.emit(*payload))
        task.finished.connect(self.cams_done)
        task.start()

    def discard_classification(self) -> None:
        """Drop the classification batches in flight: none of their results arrives."""
        for t in self._batches.findChildren(Task):
            t.discard()

    def discard(self) -> None:
        """Drop every job in flight, heat maps too."""
        self.discard_classification()
        if self._cam_task is not None:
            self._cam_task.discard()
            self._cam_task = None

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop every job and wait for it."""
        self._cam_task = None
        Task.shutdown_all(self._batches, timeout_ms)
        Task.shutdown_all(self, timeout_ms)
