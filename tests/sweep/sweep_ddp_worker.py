"""A tiny scale-channel model without batch normalisation, and the per-rank body of the gloo DDP test.

Without batch normalisation a data-parallel run equals a single-process one up to floating-point summation
order (see ``scalebench.benchmark.distributed``), so the test can compare counts exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from scalebench.models import ModelCard, register_model

MODEL = "_sweep_tiny_nobn"


class TinyNoBNScaleNet(nn.Module):
    """Shared conv applied to the input blurred at several σ; max over channels; reports the winner."""

    def __init__(self, *, num_classes: int, in_channels: int, width: int = 4, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)
        self.channel_sigmas = [2.0 ** (i / 2) for i in range(channels)]

    def forward_with_selection(self, x):
        outs = []
        for s in self.channel_sigmas:
            k = max(1, round(s))
            h = F.relu(self.conv(F.avg_pool2d(x, 2 * k + 1, stride=1, padding=k)))
            outs.append(self.head(h.amax(dim=(2, 3))))
        stacked = torch.stack(outs, dim=1)
        return stacked.amax(dim=1), stacked.amax(dim=2).argmax(dim=1)

    def forward(self, x):
        return self.forward_with_selection(x)[0]


register_model(
    ModelCard(
        name=MODEL,
        family="test",
        paper="none (test stand-in)",
        bibtex_key="none",
        default_config={"width": 4, "channels": 3},
        quick_config={},
        input_size=(1, 16, 16),
        num_classes=10,
        num_params=sum(p.numel() for p in TinyNoBNScaleNet(num_classes=10, in_channels=1).parameters()),
        scale_covariant=True,
        reports_scale_selection=True,
        paper_training={"source": "test"},
    )
)(TinyNoBNScaleNet)

#: batch 5 on 16 images: the last batch has 1 image, so rank 1's share of it is empty (weight-0 image).
RECIPE = {
    "epochs": 2,
    "batch_size": 5,
    "micro_batch_size": 2,
    "eval_batch_size": 5,
    "optimizer": "sgd",
    "lr": 0.05,
}


def config_fields(root: Path, out: Path, distributed: bool) -> dict:
    return {"model": MODEL, "dataset": "fashion-mnist", "root": root, "out": out, "device": "cpu",
            "distributed": distributed, "recipe_overrides": RECIPE, "progress": "none", "num_workers": 0}  # fmt: skip


def seg_config_fields(root: Path, dataset: str, out: Path, distributed: bool) -> dict:
    """A U-Net (no batch normalisation) on a segmentation build: batch 3 on 4 training images, so rank 1's share
    of the last batch is empty; the training set 4 (a set other than the default)."""
    recipe = {"epochs": 2, "batch_size": 3, "micro_batch_size": 2, "eval_batch_size": 2, "lr": 1e-3}
    return {"model": "unet", "dataset": dataset, "root": root, "out": out, "device": "cpu", "train_scale": [4.0],
            "distributed": distributed, "recipe_overrides": recipe, "model_config_overrides": {"width": 2},
            "scales": [1.0, 4.0], "progress": "none", "num_workers": 0}  # fmt: skip


def rank_main(rank: int, world: int, port: int, fields: dict) -> None:
    """One rank of a gloo job (what torchrun would start): environment, then ``run`` of ``fields``."""
    import torch.distributed as dist

    from scalebench.benchmark.config import make_config
    from scalebench.benchmark.protocol import run

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    try:
        outcome = run(make_config(**fields))
        assert outcome.result is not None
        assert bool(outcome.files) == (rank == 0), "only rank 0 writes files"
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
