"""Learning-rate schedules (no Qt): the factor the learning rate setting is multiplied by at each step.

* ``constant``: the learning rate throughout.
* ``onecycle`` (Smith & Topin 2017, as fastai's ``fit_one_cycle`` and PyTorch's ``OneCycleLR``): from
  the learning rate / :data:`ONECYCLE_DIV` up to the learning rate over the first
  :data:`ONECYCLE_WARM` of the steps, then down to the learning rate / (:data:`ONECYCLE_DIV` x
  :data:`ONECYCLE_FINAL_DIV`) at the last step, both halves on a cosine.
* ``cosine``: a linear warm-up from ~0 over the first :data:`COSINE_WARM` of the steps (at least
  one step), then a cosine from the learning rate down to 0 at the last step.

The steps are those of a training phase as planned (its epochs x batches per epoch); a run that stops
early ends partway along its curve. :class:`Schedule` sets the optimizer's learning rate before each
step and says which one it set (the loop reports it with every batch and epoch).
"""

from __future__ import annotations

import math

from ..config import SCHEDULES

__all__ = ["SCHEDULES", "Schedule", "lr_factor"]
#: one-cycle: share of the steps spent rising, start divisor, end divisor (PyTorch's OneCycleLR defaults)
ONECYCLE_WARM = 0.3
ONECYCLE_DIV = 25.0
ONECYCLE_FINAL_DIV = 1e4
#: cosine: share of the steps of linear warm-up
COSINE_WARM = 0.05


def _cos(a: float, b: float, t: float) -> float:
    """From ``a`` at t=0 to ``b`` at t=1 on half a cosine."""
    return b + (a - b) * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0))) / 2.0


def lr_factor(schedule: str, step: int, total: int) -> float:
    """The learning-rate multiplier at ``step`` (0-based) of ``total`` steps."""
    if schedule == "constant" or total <= 1:
        return 1.0
    last = total - 1
    if schedule == "onecycle":
        up = max(1, round(ONECYCLE_WARM * last))
        start, end = 1.0 / ONECYCLE_DIV, 1.0 / (ONECYCLE_DIV * ONECYCLE_FINAL_DIV)
        if step <= up:
            return _cos(start, 1.0, step / up)
        return _cos(1.0, end, (step - up) / max(1, last - up))
    if schedule == "cosine":
        warm = max(1, round(COSINE_WARM * total))
        if step < warm:
            return (step + 1) / (warm + 1)
        return _cos(1.0, 0.0, (step - warm + 1) / max(1, total - warm))
    raise ValueError(f"unknown learning-rate schedule {schedule!r} (one of {', '.join(SCHEDULES)})")


class Schedule:
    """Sets ``optimizer``'s learning rates before each step: each parameter group's base rate (its
    rate when the schedule was made) times :func:`lr_factor`."""

    def __init__(self, optimizer, schedule: str, total_steps: int):
        lr_factor(schedule, 0, max(total_steps, 1))  # refuse an unknown name now
        self.optimizer, self.schedule, self.total = optimizer, schedule, max(int(total_steps), 1)
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.step_no = 0

    def before_step(self) -> float:
        """Set the rates for the next step; return the first group's rate."""
        f = lr_factor(self.schedule, min(self.step_no, self.total - 1), self.total)
        for g, base in zip(self.optimizer.param_groups, self.base):
            g["lr"] = base * f
        self.step_no += 1
        return self.base[0] * f
