"""Training on several processes: PyTorch DistributedDataParallel under torchrun.

`torchrun --nproc_per_node N -m texnet.cli train-style ...` starts N processes; each reads its
rank from the environment torchrun sets, joins the process group (gloo on CPUs, nccl on GPUs),
and trains on its share of every global batch. Gradients are averaged across processes, so N
processes with batch B/N each follow the loss curve of one process with batch B. Only rank 0
writes checkpoints, the model and its previews; every rank reads the checkpoint to resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import TexnetError


@dataclass
class Ranks:
    """This process's place in the run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, batch: int) -> slice:
        """This rank's slice of a global batch."""
        if batch % self.world:
            raise TexnetError(f"--batch {batch} does not split evenly over {self.world} processes")
        part = batch // self.world
        return slice(self.rank * part, (self.rank + 1) * part)

    def device(self, requested: torch.device) -> torch.device:
        """Each process on a machine takes its own GPU."""
        if self.distributed and requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return requested

    def average(self, value: float) -> float:
        """The mean of `value` over all processes (what one process with the whole batch sees)."""
        if not self.distributed:
            return value
        total = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(total)
        return float(total) / self.world

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def is_main_process() -> bool:
    """Whether this is the process that reports (rank 0 under torchrun, or the only one)."""
    return int(os.environ.get("RANK", "0")) == 0


def join(device: torch.device) -> Ranks:
    """The ranks torchrun set in the environment; joins the process group when there are several."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def wrap(net: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """The net as the training step should call it: DistributedDataParallel when distributed."""
    if not ranks.distributed:
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
