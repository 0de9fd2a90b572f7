"""The one training harness: what every caller of :class:`~.training.Trainer` needs around ``fit``.

``catdog train`` (cli.py), :func:`catdog_gui.api.train` and the GUI's training worker all go
through :func:`train`. It checks the output file's folder, adds the progress bars
(:class:`~.progress.TqdmProgress`) and the TensorBoard logger when asked, turns the first Ctrl-C
(SIGINT, and SIGTERM) into a cooperative cancel (the run ends normally with status ``cancelled``
and the best epoch saved; a second Ctrl-C aborts), and returns the ``Finished`` event, which
carries the best epoch's metrics.

No Qt here; torch is imported only when a run starts.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

from ..config import TrainConfig
from ..errors import CatdogError

PathLike = Union[str, Path]


def check_output(out: PathLike) -> Path:
    """The model file to write, or CatdogError when its folder does not exist."""
    out = Path(out).expanduser()
    if not out.parent.is_dir():
        raise CatdogError(f"cannot write {out}: folder {out.parent} does not exist")
    return out


@contextlib.contextmanager
def cancel_on_interrupt(trainer, say: Callable[[str], None] = None, signals=(signal.SIGINT, signal.SIGTERM)):
    """While inside: the first SIGINT/SIGTERM cancels ``trainer`` after its current batch (the run
    still saves its best epoch); the handler then steps aside, so a second one aborts as usual.
    Outside the main thread (a worker thread, a GUI) it does nothing: signals are the main thread's."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def restore(sig):
        prev = previous.get(sig)
        signal.signal(sig, prev if prev is not None else signal.SIG_DFL)

    def on_signal(sig, _frame):
        if say is not None:
            say("\nStopping after this batch (Ctrl-C again to abort)...")
        restore(sig)
        trainer.cancel()

    try:
        for s in signals:
            previous[s] = signal.getsignal(s)
            signal.signal(s, on_signal)
    except (ValueError, TypeError, OSError):  # not allowed here (an embedded interpreter)
        for s in list(previous):
            restore(s)
        previous.clear()
    try:
        yield
    finally:
        for s in list(previous):
            restore(s)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train(
    config: TrainConfig,
    data,
    out: Optional[PathLike] = None,
    *,
    val_dir: Optional[PathLike] = None,
    resume_from: Optional[PathLike] = None,
    callbacks: Iterable[Callable[[object], None]] = (),
    progress=None,
    tensorboard: Optional[PathLike] = None,
    interruptible: bool = True,
    trainer=None,
    dist=None,
    recorder=None,
):
    """Run one training and return its ``Finished`` event (``.status``, ``.metrics``, ``.best_path``).

    ``data``: a folder or a scanned Dataset. ``out``: the model file (its folder must exist).
    ``progress``: None for no bars, True for :class:`~.progress.TqdmProgress`, or a callback to use
    as the progress display. ``tensorboard``: a folder to log the run under, or a TensorBoardLogger
    (CatdogError with the install command when the package is missing). ``interruptible``: Ctrl-C cancels cooperatively
    (main thread only). ``trainer``: an existing Trainer (whose pause and cancel another thread
    holds), else one is made. ``recorder``: a :class:`~.runs.RunRecorder` that keeps the run in the
    run store (``catdog runs``). Never raises for training problems: a failed run is a ``Finished``
    with ``status == Status.FAILED``; a bad output folder or setting raises CatdogError before
    anything starts.
    """
    from .trainer import Trainer

    out_path = check_output(out) if out is not None else None
    cbs = list(callbacks)
    if progress is True:
        from .progress import TqdmProgress

        progress = TqdmProgress()
    if progress:
        cbs.append(progress)
    if recorder is not None:
        cbs.append(recorder)
    if trainer is None:
        trainer = Trainer(config, dist=dist)
    trainer.callbacks.extend(cbs)
    if tensorboard is not None:
        from .tensorboard import TensorBoardLogger

        logger = tensorboard if isinstance(tensorboard, TensorBoardLogger) else TensorBoardLogger(tensorboard)
        logger.attach(trainer)
    if isinstance(data, (str, Path)):
        data = Path(data).expanduser()
    guard = cancel_on_interrupt(trainer, _stderr) if interruptible else contextlib.nullcontext()
    with guard:
        return trainer.fit(data, val_dir=val_dir, out_path=out_path, resume_from=resume_from)


def find_learning_rate(config: TrainConfig, data: Union[str, Path, object], val_dir=None, resume_from=None,
                       steps: Optional[int] = None, progress: Optional[Callable[[int, int], None]] = None,
                       cancel: Optional[threading.Event] = None):
    """The learning-rate finder (:mod:`.lr_find`) with ``config`` on ``data`` (a folder or a scanned
    Dataset), at most ``steps`` batches (default :data:`.lr_find.STEPS`); ``cancel`` stops it
    (``Cancelled``). Changes no file and no setting."""
    from .lr_find import STEPS
    from .trainer import Trainer

    trainer = Trainer(config)
    done = threading.Event()

    def watch() -> None:  # the caller's cancel reaches the trainer's controls
        while not done.is_set():
            if cancel.wait(0.1):
                trainer.cancel()
                return

    if cancel is not None:
        threading.Thread(target=watch, daemon=True, name="lr-find-cancel").start()
    try:
        return trainer.find_lr(data, val_dir, resume_from, steps or STEPS, progress=progress)
    finally:
        done.set()
