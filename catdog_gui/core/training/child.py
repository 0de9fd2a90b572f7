"""The training process: the window's runs execute the one harness (:func:`.harness.train`) here, in a
child process, and stream their events back (no Qt). The window's other long jobs (a review, a test-folder
evaluation, the fine-tuning estimate) run here too, one call per process (:func:`run_call`).

The window starts ``python -m catdog_gui.core.training.child`` (or, for several GPUs, ``torchrun ... -m
catdog_gui.core.training.child``) with the address of a socket it listens on and a one-time key in the
environment (:data:`ENV_ADDRESS`, :data:`ENV_AUTHKEY`). The child connects (rank 0 only under torchrun),
imports torch, says ``("ready", info)`` and waits for its one job. Messages are pickled tuples over a
:class:`multiprocessing.connection.Connection`:

window -> child: ``("train", Job)`` or ``("call", "module:function", args, kwargs)``, then ``("pause",)``,
``("resume",)``, ``("stop",)``, ``("exit",)``
child -> window: ``("ready", info)``, ``("event", ev)`` for every trainer event in order (batch events
coalesced into :class:`~catdog_gui.core.events.BatchChunk` about 20 times a second, preparation progress
at most as often), ``("finished", Finished)`` last, or ``("error", message, traceback)`` when the job could
not start (a setting the Trainer refuses: ``user_error``; a bug otherwise).

Pause, resume and stop reach the trainer from a control thread, so they act within one batch; the run
ends with its ``Finished`` as in the CLI. The best model is written as it improves (see
:class:`~.model_writer.ModelWriter`), so a child that is killed loses at most its current epoch.
``CATDOG_CHILD_PRELOAD`` names a Python file the child runs before the job (the crash drills in the tests
use it to make a child misbehave).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..events import BatchChunk, BatchEnd, StageProgress

ENV_ADDRESS = "CATDOG_CHILD_ADDRESS"  # "127.0.0.1:PORT"
ENV_AUTHKEY = "CATDOG_CHILD_AUTHKEY"  # hex
ENV_PRELOAD = "CATDOG_CHILD_PRELOAD"
ENV_JOB = "CATDOG_CHILD_JOB"  # under torchrun: a pickled Job every rank reads


@dataclass
class Job:
    """One training run for the child: what :func:`.harness.train` takes."""

    config: Any  # TrainConfig
    data: Any  # a scanned Dataset or a folder
    out: Optional[str]
    val_dir: Optional[str] = None
    resume_from: Optional[str] = None
    tensorboard: Optional[str] = None  # a folder to log the run under


class EventSender:
    """A trainer callback that sends events to ``send`` in order: batch events gathered into one
    :class:`BatchChunk` at most every ``interval`` seconds (and before any other event), preparation
    progress at most that often per stage (its last step always)."""

    def __init__(self, send: Callable[[tuple], None], interval: float = 0.05):
        self._send = send
        self.interval = interval
        self._pending: list = []
        self._last_batch = 0.0
        self._last_stage = ("", 0.0)

    def __call__(self, ev) -> None:
        now = time.monotonic()
        if isinstance(ev, BatchEnd):
            self._pending.append(ev)
            if now - self._last_batch >= self.interval:
                self.flush()
            return
        if isinstance(ev, StageProgress):
            stage, at = self._last_stage
            if ev.stage == stage and ev.done < ev.total and now - at < self.interval:
                return
            self._last_stage = (ev.stage, now)
        self.flush()
        self._send(("event", ev))

    def flush(self) -> None:
        if self._pending:
            self._send(("event", BatchChunk(tuple(self._pending))))
            self._pending = []
            self._last_batch = time.monotonic()


def _connect():
    from multiprocessing.connection import Client

    host, port = os.environ[ENV_ADDRESS].rsplit(":", 1)
    return Client((host, int(port)), authkey=bytes.fromhex(os.environ[ENV_AUTHKEY]))


def _controls(conn, trainer) -> None:
    """The control thread: the window's pause, resume and stop, applied to the trainer at once."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the window is gone: stop, keeping the best model so far
            trainer.cancel()
            return
        kind = msg[0]
        if kind == "pause":
            trainer.pause()
        elif kind == "resume":
            trainer.resume()
        elif kind in ("stop", "exit"):
            trainer.cancel()
            if kind == "exit":
                return


def run_job(job: Job, conn=None, dist=None) -> int:
    """Run ``job`` through the harness, streaming to ``conn`` (None: a rank that only computes)."""
    from ..errors import CatdogError
    from .harness import train
    from .trainer import Trainer

    lock = threading.Lock()

    def send(msg) -> None:
        if conn is None:
            return
        with lock:
            try:
                conn.send(msg)
            except (OSError, ValueError):  # the window is gone; training stops through the control thread
                pass

    try:
        trainer = Trainer(job.config, dist=dist)
    except CatdogError as e:
        send(("error", str(e), ""))
        return 2
    sender = EventSender(send)
    if conn is not None:
        threading.Thread(target=_controls, args=(conn, trainer), daemon=True, name="controls").start()
    fin = train(job.config, job.data, job.out, val_dir=job.val_dir, resume_from=job.resume_from,
                callbacks=[sender], tensorboard=job.tensorboard, interruptible=False, trainer=trainer, dist=dist)
    sender.flush()
    send(("finished", fin))
    return 0


def _warm_up() -> None:
    """What every run needs first, done before the job arrives: the training modules imported, and one
    small augmented training step (PyTorch's first operations set up kernels and thread pools; its first
    optimizer imports the compiler stack)."""
    import torch

    from ..data import augment, decode_cache  # noqa: F401
    from ..models import create_model
    from . import harness, loop, preparation, trainer  # noqa: F401

    model = create_model("lenet5", 2)
    x = augment.BatchAugmenter(augment.AugmentSettings(enabled=True), 32)(torch.zeros(2, 3, 40, 40))
    opt = torch.optim.Adam(model.parameters())  # the first optimizer imports torch._dynamo (~1.5 s)
    model(x).sum().backward()
    opt.step()


def run_call(target: str, args: tuple, kwargs: dict, conn) -> int:
    """Call ``module:function`` with ``args`` (a long job of the window's: a review, a test-folder
    evaluation, an estimate), passing ``progress`` and ``cancel`` when the function takes them; send
    ``("progress", done, total)`` at most ~20 times a second, then ``("result", value)``, ``("cancelled",)``
    or ``("error", message, traceback, kind)`` (``kind``: the CatdogError's class name, "" for a bug).
    ``("stop",)`` from the window sets ``cancel``."""
    import importlib
    import inspect

    from ..errors import Cancelled, CatdogError

    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name)
    cancel = threading.Event()
    lock = threading.Lock()
    last = [0.0]

    def send(msg) -> None:
        with lock:
            try:
                conn.send(msg)
            except (OSError, ValueError):
                cancel.set()

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.05 or done >= total:
            last[0] = now
            send(("progress", int(done), int(total)))

    def controls() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = ("exit",)
            if msg[0] in ("stop", "exit"):
                cancel.set()
                return

    params = inspect.signature(fn).parameters
    kwargs = dict(kwargs)
    if "progress" in params:
        kwargs["progress"] = progress
    if "cancel" in params:
        kwargs["cancel"] = cancel
    threading.Thread(target=controls, daemon=True, name="controls").start()
    try:
        value = fn(*args, **kwargs)
    except Cancelled:
        send(("cancelled",))
    except CatdogError as e:
        send(("error", str(e), "", type(e).__name__))
    except Exception as e:  # a bug: with where
        send(("error", f"internal error: {type(e).__name__}: {e}", traceback.format_exc(), ""))
    else:
        send(("result", value))
    return 0


def main() -> int:
    preload = os.environ.get(ENV_PRELOAD)
    if preload:
        import runpy

        runpy.run_path(preload, run_name="__catdog_preload__")
    from .distributed import in_torchrun, init_from_env

    dist = init_from_env() if in_torchrun() else None
    conn = _connect() if dist is None or dist.is_main else None
    try:
        _warm_up()
        if conn is not None:
            conn.send(("ready", {"pid": os.getpid(), "python": sys.version.split()[0]}))
        if dist is not None:
            import pickle

            job = pickle.loads(Path(os.environ[ENV_JOB]).read_bytes())
        else:
            msg = conn.recv()
            if msg[0] == "call":
                return run_call(msg[1], msg[2], msg[3], conn)
            if msg[0] != "train":
                return 0
            job = msg[1]
        return run_job(job, conn, dist)
    except (EOFError, OSError):
        return 0  # the window went away before the job
    except Exception as e:  # a bug outside the harness: say it, with where
        if conn is not None:
            try:
                conn.send(("error", f"internal error: {type(e).__name__}: {e}", traceback.format_exc()))
            except (OSError, ValueError):
                pass
        return 1
    finally:
        if dist is not None:
            from .distributed import shutdown

            shutdown()


if __name__ == "__main__":
    sys.exit(main())
