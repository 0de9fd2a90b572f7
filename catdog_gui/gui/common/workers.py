"""The one background-work abstraction of the app (after superqt's thread_worker and Orange3's
ConcurrentWidgetMixin).

A :class:`Task` runs ``fn(state)`` on its own QThread. ``fn`` reports through the small
:class:`TaskState` it receives (progress, partial results) and polls ``state.cancelled()``. The
task's signals arrive on the GUI thread: ``progress``, ``partial``, then ``done`` (the return
value), ``cancelled`` (the function stopped because it was asked to) or ``failed`` (a message for
the user), and always ``finished`` last. :meth:`Task.cancel`
asks the function to stop and disconnects nothing by itself; :meth:`Task.discard` also blocks
every later signal, so a stale run's results never reach the screen.

Every signal from the worker thread goes through one private relay signal to the Task (which lives
on the GUI thread) and is re-emitted there only if the task has not been discarded: a signal that
was already queued when :meth:`Task.discard` ran is dropped too, not delivered late.

Progress is throttled: at most one progress signal per ~50 ms (the last one always passes).

Training does not run on a Task: it runs in a child process (:mod:`.training_process`).
"""

from __future__ import annotations

import threading
import time
import traceback
import warnings
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QThread, Signal


def _protect_singletons() -> bool:
    """Work around a PySide6 bug (seen with 6.12.0 on Python 3.11): Qt methods that return nothing
    return ``None`` without taking a reference, and ``SignalInstance.emit`` does the same with
    ``True``. (From Python 3.12 these singletons are immortal, so the bug is harmless there.) On 3.11
    every ``label.setText(...)`` lowers ``None``'s reference count by one, and after a few thousand
    calls the interpreter aborts ("deallocating None"). If a probe shows the bug, give ``None``,
    ``True`` and ``False`` a huge extra reference count (2**40): they can then never reach zero, as
    on 3.12. Returns whether the protection was applied.
    """
    import ctypes
    import sys

    if sys.version_info >= (3, 12):
        return False
    probe = QObject()
    before_none, before_true = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(4):
        probe.setObjectName("probe")  # a void method
    probe.destroyed.emit()
    leaks = sys.getrefcount(None) < before_none or sys.getrefcount(True) < before_true
    if not leaks:
        return False
    for obj in (None, True, False):
        cell = ctypes.c_ssize_t.from_address(id(obj))
        if cell.value + 1 != sys.getrefcount(obj):  # not the layout we expect (a debug build): leave it
            return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    return True


SINGLETON_FIX = _protect_singletons()

#: tasks whose thread is still running: a QThread must never be garbage-collected while it runs
_LIVE: set = set()


def _parent_is(task: "Task", owner: QObject) -> bool:
    try:
        return task.parent() is owner
    except RuntimeError:  # already deleted
        return False


class TaskState:
    """What the background function gets: progress reporting and the cancel flag."""

    def __init__(self, task: "Task"):
        self._task = task
        self.cancel_event = threading.Event()
        self._last_progress = 0.0

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise :class:`catdog_gui.core.errors.Cancelled` if the task was asked to stop."""
        if self.cancel_event.is_set():
            from ...core.errors import Cancelled

            raise Cancelled()

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last_progress >= 0.05:
            self._last_progress = now
            self._task._send("progress", int(done), int(total))

    def emit(self, obj: Any) -> None:
        """Send a partial result (any object) to the GUI thread."""
        self._task._send("partial", obj)


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
    cancelled = Signal()
    failed = Signal(str)
    finished = Signal()
    #: worker thread -> GUI thread (queued): (signal name, args)
    _relay = Signal(str, object)

    def __init__(self, fn: Callable[[TaskState], Any], parent: Optional[QObject] = None, name: str = "task"):
        super().__init__(parent)
        self._fn = fn
        self.name = name
        self.state = TaskState(self)
        self._discarded = False
        #: the outcome (done, failed or cancelled) has been delivered on the GUI thread
        self._ended = False
        self._thread: Optional[_Thread] = None
        #: for failures that are bugs: the traceback, kept for "Details"
        self.traceback = ""
        self._relay.connect(self._deliver)

    def start(self) -> "Task":
        self._thread = _Thread(self)
        _LIVE.add(self)
        self._thread.finished.connect(lambda: _LIVE.discard(self))
        self._thread.start()
        return self

    def is_running(self) -> bool:
        """True from ``start`` until the outcome reaches the GUI thread. The thread itself ends
        before its queued outcome is delivered; a receiver asking in between must not see an idle
        task whose ``failed`` (or ``done``) is still on its way. A discarded task delivers nothing:
        it runs while its thread does."""
        if self._thread is None or self._ended:
            return False
        return self._thread.isRunning() if self._discarded else True

    @property
    def discarded(self) -> bool:
        return self._discarded

    def cancel(self) -> None:
        self.state.cancel_event.set()

    def discard(self) -> None:
        """Cancel and make sure no further signal of this task reaches its receivers."""
        self._discarded = True
        self.cancel()
        with warnings.catch_warnings():  # PySide warns when nothing was connected
            warnings.simplefilter("ignore", RuntimeWarning)
            for sig in (self.progress, self.partial, self.done, self.cancelled, self.failed, self.finished):
                try:
                    sig.disconnect()
                except (RuntimeError, TypeError):  # nothing connected
                    pass

    def wait(self, ms: int = -1) -> bool:
        if self._thread is None:
            return True
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    @staticmethod
    def shutdown_all(owner: QObject, ms: int = 10000) -> bool:
        """Discard every running task whose parent is ``owner`` and wait for their threads."""
        tasks = [t for t in list(_LIVE) if _parent_is(t, owner)]
        for t in tasks:
            t.discard()
        return all(t.wait(ms) for t in tasks)

    # -- on the GUI thread ---------------------------------------------------------------
    def _deliver(self, name: str, args) -> None:
        if not self._discarded:
            if name in ("done", "failed", "cancelled"):
                self._ended = True
            getattr(self, name).emit(*args)

    # -- on the worker thread --------------------------------------------------------------
    def _send(self, name: str, *args) -> None:
        if not self._discarded:
            try:
                self._relay.emit(name, args)
            except RuntimeError:  # the Task's owner (and with it the Task) was deleted: nobody to tell
                self._discarded = True

    def _run(self) -> None:
        from ...core.errors import Cancelled
        from ...core.errors import CatdogError

        try:
            result = self._fn(self.state)
        except Cancelled:
            self._send("cancelled")
        except CatdogError as e:
            self._send("failed", str(e))
        except Exception as e:  # a bug: show it, keep the traceback
            self.traceback = traceback.format_exc()
            self._send("failed", f"internal error: {type(e).__name__}: {e}")
        else:
            self._send("done", result)
        finally:
            self._send("finished")
