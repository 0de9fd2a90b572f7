"""The one background-work abstraction of the app (after superqt's thread_worker and Orange3's
ConcurrentWidgetMixin).

A :class:`Task` runs ``fn(state)`` on its own QThread. ``fn`` reports through the small
:class:`TaskState` it receives (progress, partial results) and polls ``state.cancelled()``. The
task's signals arrive on the GUI thread: ``progress``, ``partial``, then ``done`` (the return
value) or ``failed`` (a message for the user), and always ``finished`` last. :meth:`Task.cancel`
asks the function to stop and disconnects nothing by itself; :meth:`Task.discard` also blocks
every later signal, so a stale run's results never reach the screen.

Progress is throttled: at most one progress signal per ~50 ms (the last one always passes).
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QThread, Signal


class TaskState:
    """What the background function gets: progress reporting and the cancel flag."""

    def __init__(self, task: "Task"):
        self._task = task
        self.cancel_event = threading.Event()
        self._last_progress = 0.0

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last_progress >= 0.05:
            self._last_progress = now
            self._task._send(self._task.progress, int(done), int(total))

    def emit(self, obj: Any) -> None:
        """Send a partial result (any object) to the GUI thread."""
        self._task._send(self._task.partial, obj)


class _Thread(QThread):
    def __init__(self, task: "Task"):
        super().__init__()
        self._task = task

    def run(self) -> None:
        self._task._run()


class Task(QObject):
    progress = Signal(int, int)
    partial = Signal(object)
    done = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, fn: Callable[[TaskState], Any], parent: Optional[QObject] = None, name: str = "task"):
        super().__init__(parent)
        self._fn = fn
        self.name = name
        self.state = TaskState(self)
        self._discarded = False
        self._thread: Optional[_Thread] = None
        #: for failures that are bugs: the traceback, kept for "Details"
        self.traceback = ""

    def start(self) -> "Task":
        self._thread = _Thread(self)
        self._thread.start()
        return self

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def cancel(self) -> None:
        self.state.cancel_event.set()

    def discard(self) -> None:
        """Cancel and make sure no further signal of this task reaches its receivers."""
        self._discarded = True
        self.cancel()
        for sig in (self.progress, self.partial, self.done, self.failed, self.finished):
            try:
                sig.disconnect()
            except (RuntimeError, TypeError):  # nothing connected
                pass

    def wait(self, ms: int = -1) -> bool:
        if self._thread is None:
            return True
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    # -- on the worker thread --------------------------------------------------------------
    def _send(self, signal, *args) -> None:
        if not self._discarded:
            signal.emit(*args)

    def _run(self) -> None:
        from ..core.data import Cancelled
        from ..core.errors import CatdogError

        try:
            result = self._fn(self.state)
        except Cancelled:
            self._send(self.failed, "cancelled")
        except CatdogError as e:
            self._send(self.failed, str(e))
        except Exception as e:  # a bug: show it, keep the traceback
            self.traceback = traceback.format_exc()
            self._send(self.failed, f"internal error: {type(e).__name__}: {e}")
        else:
            self._send(self.done, result)
        finally:
            self._send(self.finished)
