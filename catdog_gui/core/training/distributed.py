"""Training across processes (``torchrun``) with DistributedDataParallel, on the same Trainer.

Under ``torchrun --nproc_per_node=N -m catdog_gui.cli train ...`` every process reads RANK,
WORLD_SIZE, LOCAL_RANK and the rendezvous address from the environment. Each process:

* scans the same folder with the same seed, so every rank agrees on the split;
* keeps a disjoint shard of the training and validation images (``samples[rank::world]``) and
  decodes only that shard (fixed shards, reshuffled within each epoch; ranks whose shard is one
  image shorter repeat one image so every rank runs the same number of batches);
* trains the same model wrapped in DistributedDataParallel (gradients averaged), with a per-rank
  batch of ``ceil(batch_size / world)`` so the global batch matches a single-process run;
* all-reduces losses and counts, so the printed accuracy is the whole validation set's;
* polls a shared stop flag after every batch, so Ctrl-C / SIGTERM on any rank stops all of them.

Only rank 0 writes the model file (from the unwrapped model: no ``module.`` prefixes) and prints.
Backend: NCCL when CUDA is available, gloo otherwise.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int
    world: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence) -> list:
        return list(items[self.rank::self.world])

    def sum(self, *values: float) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def max(self, value: float) -> float:
        t = torch.tensor([value], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def gather(self, obj: Any) -> list:
        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        dist.barrier()

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")


def in_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(timeout_s: float = 600) -> Optional[DistContext]:
    """Join the process group torchrun set up; None when not started by torchrun."""
    if not in_torchrun():
        return None
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and torch.cuda.device_count() > local
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(rank, world, local, backend, device)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
