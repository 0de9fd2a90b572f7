"""Progress bars for the terminal and for notebooks, driven by the trainer's events.

:class:`TqdmProgress` is an ordinary trainer callback (like Lightning's progress bar, it is just a
callback): one ``tqdm.auto`` bar per preparation stage (checking files, decoding, downloading
weights, computing features) and one per epoch, and one summary line per epoch that stays on
screen. ``tqdm.auto`` draws a widget in Jupyter (when ``ipywidgets`` is installed) and text in a
terminal. The ``catdog train`` command and :func:`catdog_gui.api.train` both use it.
"""

from __future__ import annotations

from typing import Callable, Optional

from ..events import (
    STAGE_WORDS,
    BatchEnd,
    CheckpointSaved,
    DatasetScanned,
    EpochEnd,
    Finished,
    Notice,
    RunStarted,
    StageProgress,
)



def _print(line: str) -> None:
    print(line, flush=True)


def epoch_line(ev: EpochEnd) -> str:
    """``epoch   3/30  train loss 0.6012 acc  67.2%  val loss ...``: one line per epoch."""
    star = " *" if ev.is_best else ""
    return (f"epoch {ev.epoch:3d}/{ev.epochs}  train loss {ev.train_loss:.4f} acc {ev.train_acc * 100:5.1f}%  "
            f"val loss {ev.val_loss:.4f} acc {ev.val_acc * 100:5.1f}%  {ev.images_per_s:7.0f} img/s  "
            f"{ev.seconds:5.1f}s{star}")


class TqdmProgress:
    """Trainer callback: tqdm bars per stage and per epoch, and a summary line per epoch.

    ``bars=False`` keeps the text lines and draws no bar (``catdog train --quiet``);
    ``report=False`` leaves out the dataset report and the run's first line; ``write`` receives
    every text line (default: ``print``). ``tqdm_kwargs`` go to every bar (e.g. ``file=``).
    """

    def __init__(self, bars: bool = True, report: bool = True, write: Optional[Callable[[str], None]] = None,
                 **tqdm_kwargs):
        self.bars = bars
        self.report = report
        self.write = write or _print
        self.tqdm_kwargs = {"leave": False, "disable": None, "dynamic_ncols": True} | tqdm_kwargs
        self._bar = None
        self._stage = None
        self.lines: list[str] = []  # every line written, in order

    def _line(self, text: str) -> None:
        self._close()
        self.lines.append(text)
        self.write(text)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._stage = None

    def _open(self, key, total: int, desc: str, unit: str) -> None:
        from tqdm.auto import tqdm

        self._close()
        self._bar = tqdm(total=total, desc=desc, unit=unit, **self.tqdm_kwargs)
        self._stage = key

    def __call__(self, ev) -> None:
        if isinstance(ev, StageProgress):
            if not self.bars:
                return
            if self._stage != ev.stage or self._bar is None:
                self._open(ev.stage, ev.total, STAGE_WORDS.get(ev.stage, ev.stage), "img")
            self._bar.total = ev.total
            self._bar.n = ev.done
            self._bar.refresh()
        elif isinstance(ev, BatchEnd):
            if not self.bars:
                return
            if self._stage != ("epoch", ev.epoch):
                what = "fine-tune epoch" if ev.phase == "finetune" else "epoch"
                self._open(("epoch", ev.epoch), ev.steps, f"{what} {ev.epoch}", "batch")
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{ev.loss:.3f}", refresh=False)
        elif isinstance(ev, DatasetScanned):
            if self.report:
                for line in ev.report.lines():
                    self._line(line)
            else:
                self._close()
        elif isinstance(ev, RunStarted):
            if self.report:
                model = ev.config.get("model", "model")
                self._line(f"Training {model} ({ev.mode}) on {ev.device}: {ev.n_train} training, "
                           f"{ev.n_val} validation images, classes {', '.join(ev.classes)}")
            else:
                self._close()
        elif isinstance(ev, EpochEnd):
            self._line(epoch_line(ev))
        elif isinstance(ev, Notice):
            self._line(f"Note: {ev.text}")
        elif isinstance(ev, CheckpointSaved):
            self._line(f"Saved {ev.path} (epoch {ev.epoch}, validation accuracy {ev.val_acc * 100:.1f}%)")
        elif isinstance(ev, Finished):
            self._close()
