"""Data-parallel training over processes started by ``torchrun`` (one or many machines).

``torchrun --nproc_per_node N -m napari_scalespace train ...`` starts N copies of the same
command with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous in the environment;
:func:`from_environment` joins them into one process group (NCCL on GPUs, gloo on CPUs).
Each rank then

- builds the same initial networks (same seed; rank 0's parameters are broadcast anyway);
- draws its own share of every batch (``batch / world`` views) with its own random numbers,
  reseeded every step from ``(seed, rank, step)``: a resumed run draws exactly what the
  uninterrupted run would have, with no per-rank state to checkpoint;
- averages gradients over all ranks before every optimiser step (:meth:`Dist.average_grads`,
  one flat all-reduce per network) and the generator's running statistics after it, so all
  ranks hold identical weights, optimiser states and EMA generators at every step;
- lets rank 0 alone write the run directory (config, checkpoints, logs); the others wait.

Gradients are averaged by hand rather than with ``DistributedDataParallel``'s module wrapper:
every step runs the discriminator twice before one backward pass and the lazy R1 penalty
differentiates through a gradient (double backward), neither of which the wrapper supports. The
reduction is the same one DDP performs (mean over ranks of each gradient).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["Dist", "from_environment", "rank_seed"]


@dataclass(frozen=True)
class Dist:
    """This process's place in the process group."""

    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        dist.barrier()

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers to every rank."""
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)

    def average_grads(self, module: torch.nn.Module) -> None:
        """Mean over ranks of every parameter's gradient (a missing one counts as zero)."""
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p, g in zip(params, grads, strict=True):
            n = g.numel()
            p.grad = flat[offset: offset + n].view_as(p).clone()
            offset += n

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Mean over ranks of the floating-point buffers (running statistics)."""
        bufs = [b for b in module.buffers() if b.is_floating_point()]
        if not bufs:
            return
        flat = torch.cat([b.reshape(-1) for b in bufs])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for b in bufs:
            b.copy_(flat[offset: offset + b.numel()].view_as(b))
            offset += b.numel()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if ``flag`` is true on any (e.g. stop: cancelled or out of time)."""
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def gather(self, value: object) -> list:
        """``value`` of every rank, in rank order, on every rank (small JSON-like values)."""
        out: list = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def from_environment(device: str = "auto") -> Dist | None:
    """Join the process group described by torchrun's environment variables, or ``None`` when
    this process was not started as one of several (``WORLD_SIZE`` unset or 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank=rank, world=world, local_rank=local, backend=backend)


def rank_seed(seed: int, rank: int, step: int) -> np.random.SeedSequence:
    """The seed of rank ``rank``'s random draws at step ``step``."""
    return np.random.SeedSequence([int(seed), int(rank), int(step)])
