"""Data-parallel runs of the protocol under ``torchrun --nproc_per_node N`` (``scalebench evaluate --distributed``).

Training: the model is wrapped in ``DistributedDataParallel`` (Li et al., 2020, "PyTorch Distributed:
experiences on accelerating data parallel training", VLDB 13(12)). Every rank draws the same seeded order of
the training set (a function of seed and epoch, as in a single process) and takes its contiguous share of each
optimizer batch, which is the partition a ``DistributedSampler`` makes of a batch, without its padding by
repeated images (padding would count an image twice in the gradient). With the summed loss of rank r's share
scaled by W / B (W ranks, B the batch's normaliser summed over ranks: its images for classification, the class
weights of its pixels for segmentation), DDP's mean of the gradients over ranks is the gradient of the loss of
the whole batch, as in a single process:

    (1/W) Σ_r ∇ (W/B) Σ_{i ∈ share_r} ℓ_i = ∇ (1/B) Σ_{i ∈ batch} ℓ_i.

Gradients are all-reduced once per optimizer step (micro-batches accumulate under ``no_sync``). A rank whose
share of the last, short batch is empty runs one image with weight 0, so every rank joins the all-reduce.
Buffers (batch-norm running statistics) are those of rank 0, broadcast after every step (DDP's own rule, done
once per step rather than at every forward, since ranks may run different numbers of micro-batches).

Evaluation: the batches of a split are dealt to the ranks round-robin (each image on exactly one rank), and the
task's counts (correct predictions, totals and scale-selection counts; intersections, unions, pixels and images)
are summed over ranks. Only rank 0 writes files.

Results equal a single-process run up to floating-point summation order for models without batch
normalisation; with batch normalisation, statistics are computed over each rank's micro-batches, which differ
from a single process's unless every micro-batch lies within one rank's share (micro_batch_size dividing B/W),
and the running statistics come from rank 0's micro-batches only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from scalebench.checks import ScalebenchError


@dataclass
class Dist:
    """This process's rank and the world size (1 and 0 in a plain run)."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> tuple[int, int]:
        """Rank's contiguous share ``[lo, hi)`` of ``n`` items (sizes differ by at most one).

        Example:
            >>> [Dist(r, 3).share(7) for r in range(3)]
            [(0, 3), (3, 5), (5, 7)]
        """
        base, extra = divmod(n, self.world)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    def sum(self, values: list[float]) -> list[float]:
        """Sum ``values`` over ranks (float64; exact for counts below 2^53)."""
        if not self.active:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers to every rank (batch-norm running statistics)."""
        if not self.active:
            return
        import torch.distributed as dist

        for buf in model.buffers():
            dist.broadcast(buf, 0)


def _comm_device() -> torch.device:
    import torch.distributed as dist

    return (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group that ``torchrun`` describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

    The backend is NCCL on CUDA, gloo on the CPU. On CUDA each process uses ``cuda:LOCAL_RANK``.
    """
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ScalebenchError(
            f"--distributed needs the environment torchrun sets (missing {', '.join(missing)}). Start it as "
            "`torchrun --nproc_per_node N -m scalebench.cli evaluate ... --distributed`."
        )
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size()), device


def wrap(model: nn.Module, device: torch.device, d: Dist) -> Any:
    """``model`` in DistributedDataParallel (buffers broadcast per step by :meth:`Dist.broadcast_buffers`)."""
    if not d.active:
        return model
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    # No buffer sync at each forward (ranks may run different numbers of micro-batches); newer torch names
    # the switch forward_sync_buffers and deprecates broadcast_buffers.
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = (
        {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    )
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync
    )


def is_main_process() -> bool:
    """False in the ranks other than 0 of a torchrun job (they print and write nothing)."""
    return int(os.environ.get("RANK", "0")) == 0
