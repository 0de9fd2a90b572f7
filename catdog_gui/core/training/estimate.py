"""How long the fine-tuning phase of a config would take on this computer
(:func:`estimate_finetune_seconds`): the window says it when fine-tuning is chosen, before the
user starts training."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional

import torch
from torch import nn

from ..config import TrainConfig
from ..device import pick_device
from ..models import create_model, get_spec, prefers_channels_last, training_phases


def estimate_finetune_seconds(config: TrainConfig, n_train: int, n_val: int, device: str = "auto",
                              batch: Optional[int] = None) -> float:
    """Seconds the fine-tuning phase of ``config`` would take on ``device`` for ``n_train``
    training and ``n_val`` validation photos, timed here on a batch of the run's size (the second
    of two tries): a training step (forward, backward, optimizer) through the part of the model
    that learns, a forward pass for validation, and, where the model splits at the blocks that
    learn (:meth:`~.models.backbones.EfficientNetLite.finetune_split`), one pass of every photo
    through the frozen part below, which training computes once (through onnxruntime on a CPU,
    faster than the PyTorch pass timed here; a second run finds it in the feature cache). The
    phase before it (the head on cached features) takes seconds and is left out. A one-off
    measurement on this machine at this load."""
    cfg = replace(config, pretrained=True, transfer_mode="finetune")
    spec = get_spec(cfg.model)
    size = cfg.image_size or spec.default_image_size
    dev = pick_device(device)
    model = create_model(cfg.model, 2, size, pretrained=False).to(dev)
    if prefers_channels_last(model):
        model.to(memory_format=torch.channels_last)
    phases = [p for p in training_phases(model, cfg) if p.name == "finetune"]
    if not phases:
        return 0.0
    phase = phases[0]
    batch = batch or cfg.batch_size
    learn = {id(p) for p in phase.params}
    for p in model.parameters():
        p.requires_grad_(id(p) in learn)
    x = torch.randn(batch, 3, size, size, device=dev)
    if prefers_channels_last(model):
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(batch, dtype=torch.long, device=dev)
    model.eval()
    phase.learning.train()

    def timed(fn) -> float:
        fn()  # the first call pays one-off costs
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    below_s = 0.0
    if phase.frozen is not None:
        with torch.no_grad():
            below_s = timed(lambda: phase.frozen(x))
            inputs = phase.frozen(x)
        forward = phase.head
    else:
        inputs, forward = x, model
    opt = torch.optim.Adam(phase.params, lr=phase.lr)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(forward(inputs), y).backward()
        opt.step()

    train_s = timed(step)
    model.eval()
    with torch.no_grad():
        eval_s = timed(lambda: forward(inputs))
    per_epoch = (n_train * train_s + n_val * eval_s) / batch
    return float((n_train + n_val) * below_s / batch + cfg.finetune_epochs * per_epoch)
