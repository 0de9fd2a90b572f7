"""The learning-rate finder (Smith 2015/2017; fastai's ``lr_find``), no Qt.

On the run's own settings (model, data, augmentation, optimizer, batch size) it trains the first
training phase for up to :data:`STEPS` batches while the learning rate grows exponentially from
:data:`START_LR` to :data:`END_LR`, records each batch's loss, and stops once the smoothed loss has
diverged (more than :data:`DIVERGED` times its lowest). The suggestion (:data:`RULE`) is fastai's
"valley": two thirds of the way down the longest stretch over which the smoothed loss keeps falling, a
rate the loss still falls quickly at, well short of where it blows up; the rate at the lowest smoothed
loss divided by 10 is computed beside it (:data:`RULES`). The model's weights are put back afterwards (a model being continued is unchanged), and no
file is written: the finder only reads.

:class:`LRFinder` is mixed into :class:`~.trainer.Trainer` (it uses the trainer's preparation and
forward pass); :func:`~.harness.find_learning_rate` is the call the CLI and the window's process make.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..device import cpu_threads
from ..errors import Cancelled
from .fit_state import FitState, StopFit

STEPS = 200
START_LR = 1e-7
END_LR = 10.0
#: the sweep stops when the smoothed loss exceeds this many times its lowest value
DIVERGED = 4.0
#: smoothing of the loss curve (an exponential moving average, bias-corrected, as fastai does)
BETA = 0.98
#: the rule the suggestion follows (a key of RULES), chosen by measurement (docs/performance.md, "The
#: learning-rate finder"): on LeNet-5 the valley's rate trained within 0.4 points of the best of a 6-rate grid
#: while "min/10" once fell to 1e-6 (a curve whose lowest point was its start) and lost 5 points
RULE = "valley"


@dataclass
class LRFinding:
    """What a sweep found: each step's learning rate, loss and smoothed loss, and the suggestion."""

    lrs: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    smoothed: list = field(default_factory=list)
    suggestion: float = 0.0
    #: the learning rate at the lowest smoothed loss
    lr_at_min: float = 0.0
    #: the learning rate where the smoothed loss falls fastest (shown beside the suggestion)
    steepest: float = 0.0
    diverged: bool = False
    rule: str = RULE
    #: what every rule suggests ({rule: learning rate}), for comparison
    by_rule: dict = field(default_factory=dict)
    model: str = ""
    current_lr: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The sweep in words (``catdog lr-find``)."""
        out = [f"Swept the learning rate of {self.model} from {self.lrs[0]:.1e} to {self.lrs[-1]:.1e} over "
               f"{len(self.lrs)} batches" + (" (stopped: the loss diverged)" if self.diverged else "") + ".",
               f"{'learning rate':>14}  {'smoothed loss':>13}"]
        picks = sorted(set(np.linspace(0, len(self.lrs) - 1, min(12, len(self.lrs))).round().astype(int)))
        for i in picks:
            out.append(f"{self.lrs[i]:14.2e}  {self.smoothed[i]:13.4f}")
        out.append(f"Lowest smoothed loss at {self.lr_at_min:.2e}; falls fastest at {self.steepest:.2e}.")
        out.append(f"Suggested learning rate: {self.suggestion:.2e} ({RULES[self.rule]}); now {self.current_lr:g}.")
        return out


def valley(lrs, losses) -> float:
    """fastai's ``valley`` rule: the longest stretch over which the loss keeps falling, and the learning
    rate two thirds of the way down it."""
    n = len(losses)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
        if lds[max_end] < lds[i]:
            max_end, max_start = i, i - lds[i]
    third = (max_end - max_start) / 3
    return float(lrs[min(n - 1, max_start + int(third) + int(third / 2))])


#: how the suggestion is chosen, by name: the rule and its words
RULES = {
    "valley": "two thirds of the way down the longest stretch over which the smoothed loss keeps falling "
              "(fastai's valley)",
    "min/10": "the learning rate at the lowest smoothed loss, divided by 10",
}


def suggest(lrs, smoothed, rule: str = RULE) -> tuple[float, float, float]:
    """(suggestion by ``rule``, learning rate at the lowest smoothed loss, learning rate of the steepest fall)."""
    lrs, smoothed = np.asarray(lrs, dtype=float), np.asarray(smoothed, dtype=float)
    i_min = int(np.argmin(smoothed))
    lr_min = float(lrs[i_min])
    steep = lr_min
    skip = len(lrs) // 10  # the first steps' smoothing is still settling
    if i_min - skip >= 2:
        grad = np.gradient(smoothed[skip: i_min + 1], np.log(lrs[skip: i_min + 1]))
        steep = float(lrs[skip + int(np.argmin(grad))])
    value = valley(lrs, smoothed) if rule == "valley" else lr_min / 10.0
    lo, hi = TrainConfig.setting("lr").min, TrainConfig.setting("lr").max
    return float(min(max(value, lo), hi)), lr_min, steep


class LRFinder:
    """The sweep, as a method of :class:`~.trainer.Trainer`."""

    def find_lr(self, data, val_dir=None, resume_from=None, steps: int = STEPS, start_lr: float = START_LR,
                end_lr: float = END_LR, progress: Optional[Callable[[int, int], None]] = None) -> LRFinding:
        """Sweep (see the module docstring). Raises CatdogError for bad data, Cancelled when cancelled."""
        self._state = FitState(replace(self.config), None)
        self.feature_stats = {"computed": 0, "cached": 0, "path": None}
        try:
            with cpu_threads(self._thread_hint()):
                model, phases, _resumed = self._prepare(data, val_dir, resume_from)
                before = {k: v.detach().clone() for k, v in model.state_dict().items()}
                try:
                    return self._sweep(model, phases[0], steps, start_lr, end_lr, progress)
                finally:
                    model.load_state_dict(before)
        except StopFit as stop:
            raise Cancelled(stop.reason) from None
        finally:
            self._state.free()

    def _sweep(self, model, phase, steps, start_lr, end_lr, progress) -> LRFinding:
        state, cfg = self._state, self._state.config
        self._enter_phase(model, phase, cfg.augment.enabled)
        opt = self._optimizer(phase.params, start_lr)
        loss_fn = nn.CrossEntropyLoss()
        n, bs = len(state.ytrain), min(cfg.batch_size, len(state.ytrain))
        mult = (end_lr / start_lr) ** (1.0 / max(steps - 1, 1))
        found = LRFinding(model=cfg.model, current_lr=cfg.lr)
        avg, best = 0.0, math.inf
        order, pos = torch.randperm(n, generator=state.shuffle_gen), 0
        self._set_train_mode(model, True)
        for i in range(steps):
            if pos + bs > n:
                order, pos = torch.randperm(n, generator=state.shuffle_gen), 0
            idx = order[pos:pos + bs]
            pos += bs
            lr = start_lr * mult ** i
            for g in opt.param_groups:
                g["lr"] = lr
            logits = self._logits(model, idx, True, "train")
            loss = loss_fn(logits, state.ytrain[idx.to(state.ytrain.device)])
            value = loss.item()
            if not math.isfinite(value):
                found.diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            avg = BETA * avg + (1 - BETA) * value
            smooth = avg / (1 - BETA ** (i + 1))
            found.lrs.append(lr)
            found.losses.append(value)
            found.smoothed.append(smooth)
            best = min(best, smooth)
            if progress is not None:
                progress(i + 1, steps)
            self._check_controls()
            if i >= 10 and smooth > DIVERGED * best:
                found.diverged = True
                break
        if len(found.lrs) < 3:
            from ..errors import CatdogError

            raise CatdogError("the loss diverged at once: the sweep found no learning rate to suggest "
                              "(check the photos, or try another optimizer)")
        found.suggestion, found.lr_at_min, found.steepest = suggest(found.lrs, found.smoothed, RULE)
        found.by_rule = {r: suggest(found.lrs, found.smoothed, r)[0] for r in RULES}
        return found
