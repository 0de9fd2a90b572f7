"""A training run in a child process, supervised from a QThread: the window never waits on training and
never dies with it.

:class:`TrainingProcess` starts (or takes the warm) child of :mod:`catdog_gui.core.training.child`, sends it
the job, and its supervising thread reads the child's event stream and forwards pause, resume and stop.
The events arrive on the GUI thread as signals carrying the core event dataclasses, in order: ``stage``,
``scanned``, ``started``, ``batches`` (BatchChunk), ``epoch``, ``checkpoint``, ``notice``, then ``result``
(the ``Finished`` event, after success, stop and failure alike) and ``ended`` last. The run is kept in the
run store here, from the same events (:class:`~catdog_gui.core.storage.run_store.RunRecorder`).

A child that dies becomes a failed ``Finished`` in words: killed by a signal (which one; an out-of-memory
kill where the system says so), exited with a code (the end of what it printed, behind Details), or a
Python exception (its traceback). A stop that the child does not act on within :attr:`STOP_TIMEOUT_S`
(stuck in a native call) ends it; the best model it saved before stays, and is reported. :meth:`discard`
ends the child and delivers nothing more.

:class:`ChildPool` keeps one child started ahead (torch imported) so Train starts at once. Children are
started with ``subprocess`` (a fresh interpreter: what ``spawn`` does on every platform; nothing needs fork).
Several processes (``nprocs`` > 1) run through ``torchrun``: rank 0 streams the events.
"""

from __future__ import annotations

import os
import pickle
import queue
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QThread, Signal

from ...core.training import child as child_mod

#: how long a started child may take to connect and import torch
START_TIMEOUT_S = 120.0


def _oom_kills() -> Optional[int]:
    """The kernel's count of out-of-memory kills in this cgroup (Linux, cgroup v2), or None."""
    try:
        for line in Path("/sys/fs/cgroup/memory.events").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def signal_words(sig: int) -> str:
    """``9`` -> ``SIGKILL (Killed)``."""
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    what = signal.strsignal(sig) if hasattr(signal, "strsignal") else None
    return f"{name} ({what})" if what else name


class Child:
    """One started child process and its connection (no Qt)."""

    def __init__(self, nprocs: int = 1, job: Optional[child_mod.Job] = None):
        self.nprocs = nprocs
        self.authkey = secrets.token_bytes(16)
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        port = self._server.getsockname()[1]
        env = dict(os.environ, **{child_mod.ENV_ADDRESS: f"127.0.0.1:{port}",
                                  child_mod.ENV_AUTHKEY: self.authkey.hex()})
        self._job_file = None
        if nprocs > 1:  # every rank reads the job from a file; rank 0 streams
            fd, self._job_file = tempfile.mkstemp(prefix="catdog-job-", suffix=".pkl")
            with os.fdopen(fd, "wb") as f:
                pickle.dump(job, f)
            env[child_mod.ENV_JOB] = self._job_file
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nprocs}",
                   "-m", "catdog_gui.core.training.child"]
        else:
            cmd = [sys.executable, "-m", "catdog_gui.core.training.child"]
        self.log = tempfile.TemporaryFile()  # what the child prints: the end of it explains a crash
        flags = {"start_new_session": True} if os.name == "posix" else {}
        self.oom_before = _oom_kills()
        self.popen = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                      stderr=subprocess.STDOUT, **flags)
        self.conn: Optional[Connection] = None
        self.info: Optional[dict] = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def connect(self, cancelled=lambda: False, timeout: float = START_TIMEOUT_S) -> bool:
        """Wait for the child to connect and say it is ready (False: it died, or ``cancelled()``)."""
        end = time.monotonic() + timeout
        while self.conn is None:
            if self.popen.poll() is not None or cancelled() or time.monotonic() > end:
                return False
            try:
                sock, _ = self._server.accept()
            except socket.timeout:
                continue
            sock.setblocking(True)
            conn = Connection(sock.detach())
            try:
                deliver_challenge(conn, self.authkey)
                answer_challenge(conn, self.authkey)
            except Exception:  # not our child: keep listening
                conn.close()
                continue
            self.conn = conn
        self._server.close()
        while self.info is None:
            if self.popen.poll() is not None or cancelled() or time.monotonic() > end:
                return False
            if self.conn.poll(0.2):
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    return False
                if msg[0] == "ready":
                    self.info = msg[1]
        return True

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, msg) -> bool:
        try:
            self.conn.send(msg)
            return True
        except (OSError, ValueError, AttributeError):
            return False

    def kill(self) -> None:
        """End the child (and, under torchrun, every rank) at once."""
        if self.popen.poll() is None:
            try:
                if os.name == "posix":
                    os.killpg(self.popen.pid, signal.SIGKILL)
                else:
                    self.popen.kill()
            except (ProcessLookupError, PermissionError, OSError):
                pass

    def close(self, grace: float = 5.0) -> Optional[int]:
        """Let the child exit (``grace`` seconds), else end it; its exit code."""
        try:
            rc = self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.popen.wait()
        for thing in (self.conn, self._server):
            try:
                if thing is not None:
                    thing.close()
            except OSError:
                pass
        if self._job_file:
            Path(self._job_file).unlink(missing_ok=True)
        return rc

    def output_tail(self, n: int = 4000) -> str:
        try:
            self.log.seek(0, os.SEEK_END)
            size = self.log.tell()
            self.log.seek(max(0, size - n))
            return self.log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def death_reason(self, rc: int) -> str:
        """Why the child ended without a result, in words."""
        if rc is not None and rc < 0:
            sig = -rc
            oom = _oom_kills()
            if sig == getattr(signal, "SIGKILL", 9) and oom is not None and self.oom_before is not None \
                    and oom > self.oom_before:
                return ("the training process ran out of memory and the system ended it: try a smaller batch size "
                        "or image size, or close other programs")
            return f"the training process was ended by {signal_words(sig)}"
        return f"the training process ended unexpectedly (exit code {rc})"


class ChildPool:
    """One child started ahead, with torch imported, so that Train starts at once. Shared by every window
    of the process; :meth:`shutdown` ends it."""

    _lock = threading.Lock()
    _warm: Optional[Child] = None
    _warming: Optional[threading.Thread] = None
    enabled = True
    #: a window asked for warm children (after each run another one is started)
    wanted = False

    @classmethod
    def prewarm(cls) -> None:
        """Start a child in the background if none is ready or starting."""
        with cls._lock:
            cls.wanted = True
            if not cls.enabled or cls._warming is not None or (cls._warm is not None and cls._warm.alive()):
                return

            def warm():
                c = Child()
                ok = c.connect()
                with cls._lock:
                    cls._warming = None
                    if ok and cls.enabled:
                        cls._warm = c
                        return
                c.kill()
                c.close(0)

            cls._warming = threading.Thread(target=warm, daemon=True, name="warm training process")
            cls._warming.start()

    @classmethod
    def take(cls) -> Optional[Child]:
        """The ready child (None if there is none yet)."""
        with cls._lock:
            c, cls._warm = cls._warm, None
        if c is not None and c.alive() and c.info is not None:
            return c
        if c is not None:
            c.kill()
            c.close(0)
        return None

    @classmethod
    def shutdown(cls) -> None:
        with cls._lock:
            cls.enabled = False
            c, cls._warm = cls._warm, None
            t = cls._warming
        if t is not None:
            t.join(START_TIMEOUT_S)
        with cls._lock:
            c = c or cls._warm
            cls._warm = None
        if c is not None:
            c.send(("exit",))
            c.close(2)


class _Supervisor(QThread):
    """Starts the child, reads its stream, forwards the controls, notices its death."""

    message = Signal(object)  # a message of the child's, or ("died", reason, details)

    def __init__(self, owner: "TrainingProcess"):
        super().__init__()
        self.owner = owner
        self.controls: "queue.Queue[tuple]" = queue.Queue()
        self.child: Optional[Child] = None
        self.discarded = threading.Event()

    def run(self) -> None:
        o = self.owner
        child = ChildPool.take() if o.nprocs == 1 and ChildPool.enabled else None
        if child is None:
            child = Child(o.nprocs, o.job)
        self.child = child
        o.pid = child.pid
        if not child.connect(self.discarded.is_set):
            rc = child.close(0.5) if not self.discarded.is_set() else None
            if not self.discarded.is_set():
                self.message.emit(("died", child.death_reason(rc), child.output_tail()))
            return
        if o.nprocs == 1:
            child.send(("train", o.job))
        finished = False
        stop_at: Optional[float] = None
        heard = time.monotonic()
        while True:
            if self.discarded.is_set():
                child.send(("exit",))
                child.kill()
                child.close(0)
                return
            try:
                ctrl = self.controls.get_nowait()
            except queue.Empty:
                ctrl = None
            if ctrl is not None:
                child.send(ctrl)
                if ctrl[0] == "stop" and stop_at is None:
                    stop_at = time.monotonic()
            got = False
            try:
                if child.conn.poll(0.05):
                    msg = child.conn.recv()
                    got = True
            except (EOFError, OSError):
                msg = None
            if got:
                heard = time.monotonic()
                self.message.emit(msg)
                if msg[0] in ("finished", "error"):
                    finished = True
                    break
                continue
            if not child.alive():
                break
            if stop_at is not None and heard < stop_at and time.monotonic() - stop_at > o.STOP_TIMEOUT_S:
                child.kill()
                child.close(0)
                self.message.emit(("hung", None, child.output_tail()))
                return
        rc = child.close()
        if not finished and not self.discarded.is_set():
            self.message.emit(("died", child.death_reason(rc), child.output_tail()))


class TrainingProcess(QObject):
    """One run of the harness in a child process, as Qt signals (see the module docstring)."""

    stage = Signal(object)
    scanned = Signal(object)
    started = Signal(object)
    batches = Signal(object)
    epoch = Signal(object)
    checkpoint = Signal(object)
    notice = Signal(str)
    result = Signal(object)
    ended = Signal()

    #: seconds a stop may go unanswered (no event from the training) before the child is ended
    STOP_TIMEOUT_S = 10.0

    def __init__(self, config, data, out_path, val_dir=None, resume_from=None, parent=None, *,
                 tensorboard: Optional[str] = None, nprocs: int = 1):
        super().__init__(parent)
        from ...core.storage.run_store import RunRecorder

        self.config = config
        self.out_path = str(out_path) if out_path else None
        self.nprocs = max(1, int(nprocs))
        self.job = child_mod.Job(config, data, self.out_path, str(val_dir) if val_dir else None,
                                 str(resume_from) if resume_from else None,
                                 str(tensorboard) if tensorboard else None)
        #: keeps the run in the run store; ``recorder.record`` is set before ``result`` is emitted
        self.recorder = RunRecorder(source="gui")
        self.pid: Optional[int] = None
        self._paused = False
        self._epochs: list = []
        self._best_epoch = 0
        self._best_acc = float("nan")
        self._accepted = False  # the child took the job (a refused config is not a run)
        self._done = False
        self._sup = _Supervisor(self)
        self._sup.message.connect(self._on_message)
        self._sup.finished.connect(self._on_thread_finished)

    # -- controls (GUI thread) ---------------------------------------------------------------
    def start(self) -> "TrainingProcess":
        self._sup.start()
        return self

    def is_running(self) -> bool:
        return self._sup.isRunning()

    def pause(self) -> None:
        self._paused = True
        self._sup.controls.put(("pause",))

    def resume(self) -> None:
        self._paused = False
        self._sup.controls.put(("resume",))

    @property
    def paused(self) -> bool:
        return self._paused

    def cancel(self) -> None:
        """Stop within one batch; the run ends normally (status "cancelled", best model kept)."""
        self._sup.controls.put(("stop",))

    def discard(self) -> None:
        """End the child and never deliver another signal of this run."""
        self._done = True
        self._sup.discarded.set()
        try:
            self._sup.message.disconnect(self._on_message)
        except (RuntimeError, TypeError):
            pass

    def wait(self, ms: int = -1) -> bool:
        return self._sup.wait() if ms < 0 else self._sup.wait(ms)

    # -- the child's messages (GUI thread) ---------------------------------------------------------
    def _on_message(self, msg) -> None:
        if self._done:
            return
        kind = msg[0]
        if kind == "event":
            self._dispatch(msg[1])
        elif kind == "finished":
            self._finish(msg[1])
        elif kind == "error":
            from ...core.events import Finished, Status

            self._finish(Finished(Status.FAILED, msg[1], user_error=not msg[2], traceback=msg[2]))
        elif kind == "hung":
            self._crashed("the training process stopped answering, so it was ended", msg[2])
        elif kind == "died":
            self._crashed(msg[1], msg[2])

    def _dispatch(self, ev) -> None:
        from ...core import events as E

        self._accepted = True
        if isinstance(ev, E.Finished):  # it comes again as the stream's last message, with the metrics
            return
        self.recorder(ev)
        if isinstance(ev, E.BatchChunk):
            self.batches.emit(ev)
        elif isinstance(ev, E.EpochEnd):
            self._epochs.append(ev)
            if ev.is_best:
                self._best_epoch, self._best_acc = ev.epoch, ev.val_acc
            self.epoch.emit(ev)
        elif isinstance(ev, E.StageProgress):
            self.stage.emit(ev)
        elif isinstance(ev, E.RunStarted):
            self.started.emit(ev)
        elif isinstance(ev, E.DatasetScanned):
            self.scanned.emit(ev)
        elif isinstance(ev, E.CheckpointSaved):
            self.checkpoint.emit(ev)
        elif isinstance(ev, E.Notice):
            self.notice.emit(ev.text)

    def _crashed(self, reason: str, output: str) -> None:
        from ...core.events import Finished, Status

        kept = self.out_path if self.out_path and Path(self.out_path).is_file() and self._best_epoch else None
        if kept:
            reason += f"; the best model so far (epoch {self._best_epoch}) is kept"
        self._finish(Finished(Status.FAILED, reason, kept, self._best_epoch if kept else 0,
                              self._best_acc if kept else float("nan"), tuple(self._epochs), user_error=False,
                              traceback=output))

    def _finish(self, fin) -> None:
        if self._done:
            return
        self._done = True
        if self._accepted:
            self.recorder(fin)
        self.result.emit(fin)

    def _on_thread_finished(self) -> None:
        if not self._done and not self._sup.discarded.is_set():  # the thread ended without a word
            self._crashed("the training process could not be started", "")
        self._done = True
        if ChildPool.wanted:
            ChildPool.prewarm()  # the next run starts at once too
        if not self._sup.discarded.is_set():
            self.ended.emit()


class _CallSupervisor(QThread):
    message = Signal(object)

    def __init__(self, owner: "ProcessTask"):
        super().__init__()
        self.owner = owner
        self.stop = threading.Event()
        self.discarded = threading.Event()

    def run(self) -> None:
        o = self.owner
        child = ChildPool.take() if ChildPool.enabled else None
        child = child or Child()
        o.pid = child.pid
        if not child.connect(self.discarded.is_set):
            rc = child.close(0.5)
            self.message.emit(("error", child.death_reason(rc), child.output_tail()))
            return
        child.send(("call", o.target, o.args, o.kwargs))
        stop_sent = False
        while True:
            if self.discarded.is_set():
                child.kill()
                child.close(0)
                return
            if self.stop.is_set() and not stop_sent:
                child.send(("stop",))
                stop_sent = True
            try:
                msg = child.conn.recv() if child.conn.poll(0.05) else None
            except (EOFError, OSError):
                msg = None
                if child.alive():
                    child.popen.wait(2)
            if msg is not None:
                self.message.emit(msg)
                if msg[0] in ("result", "error", "cancelled"):
                    break
            elif not child.alive():
                rc = child.close(0)
                self.message.emit(("error", child.death_reason(rc), child.output_tail()))
                return
        child.close()


class ProcessTask(QObject):
    """A long job of the window (``module:function`` with picklable arguments) in a child process, with the
    signals of :class:`~.workers.Task`: ``progress(done, total)``, then ``done(value)``, ``cancelled()`` or
    ``failed(message)`` (``traceback`` set for a bug or a crash; ``error_kind`` the class name of the
    CatdogError that said it, e.g. "OverlapError"), and always ``finished()`` last. The
    function gets ``progress`` and ``cancel`` (a ``threading.Event``) when it takes them; :meth:`cancel`
    sets it; :meth:`discard` ends the process and delivers nothing more. A process that dies is a
    ``failed`` in words, and the window carries on."""

    progress = Signal(int, int)
    done = Signal(object)
    cancelled = Signal()
    failed = Signal(str)
    finished = Signal()

    def __init__(self, target: str, *args, parent=None, name: str = "", **kwargs):
        super().__init__(parent)
        self.target, self.args, self.kwargs, self.name = target, args, kwargs, name or target
        self.pid: Optional[int] = None
        self.traceback = ""
        self.error_kind = ""
        self._ended = False
        self._sup = _CallSupervisor(self)
        self._sup.message.connect(self._on_message)
        self._sup.finished.connect(self._on_thread_finished)

    def start(self) -> "ProcessTask":
        self._sup.start()
        return self

    def is_running(self) -> bool:
        return not self._ended and (self._sup.isRunning() or not self._sup.isFinished())

    def cancel(self) -> None:
        self._sup.stop.set()

    def discard(self) -> None:
        self._ended = True
        self._sup.discarded.set()

    def wait(self, ms: int = -1) -> bool:
        return self._sup.wait() if ms < 0 else self._sup.wait(ms)

    @staticmethod
    def shutdown_all(owner: QObject, ms: int = 10000) -> bool:
        """Discard every process task of ``owner`` (its children) and wait for their threads."""
        tasks = owner.findChildren(ProcessTask)
        for t in tasks:
            t.discard()
        return all(t.wait(ms) for t in tasks)

    def _on_message(self, msg) -> None:
        if self._ended:
            return
        kind = msg[0]
        if kind == "progress":
            self.progress.emit(msg[1], msg[2])
            return
        self._ended = True
        if kind == "result":
            self.done.emit(msg[1])
        elif kind == "cancelled":
            self.cancelled.emit()
        else:
            self.traceback = msg[2]
            self.error_kind = msg[3] if len(msg) > 3 else ""
            self.failed.emit(msg[1])
        self.finished.emit()

    def _on_thread_finished(self) -> None:
        if not self._ended and not self._sup.discarded.is_set():
            self._ended = True
            self.failed.emit("the process ended without a result")
            self.finished.emit()
        if ChildPool.wanted:
            ChildPool.prewarm()
