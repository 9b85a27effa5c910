"""Resuming from damaged epoch checkpoints: one ScalebenchError naming the file and how to start over."""

from __future__ import annotations

import json

import pytest
import torch

from scalebench.benchmark.checkpoint import read_run_state, restore_run_state, save_epoch_checkpoint
from scalebench.checks import ScalebenchError


def _checkpointed(run_dir):
    """A run directory after epoch 2 of a tiny Adam run; returns a fresh model and optimizer to restore into."""
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    run_dir.mkdir()
    for epoch in (1, 2):
        save_epoch_checkpoint(run_dir, model, optimizer, epoch=epoch, better=True, state={"run_hash": "h"})
    fresh = torch.nn.Linear(3, 2)
    return fresh, torch.optim.Adam(fresh.parameters(), lr=0.1)


def _resume(run_dir, model, optimizer):
    state = read_run_state(run_dir, "h", resume=True, epochs=5)
    restore_run_state(state, run_dir, model, optimizer, torch.device("cpu"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "optim-2.safetensors").write_bytes(b"\x00" * 50),
        lambda d: (d / "optim-2.safetensors.json").write_text("{"),
        lambda d: (d / "epoch-2.safetensors").unlink(),
        lambda d: (d / "epoch-2.safetensors").write_bytes(b"\x01" * 30),
    ],
    ids=["optimizer-tensors-truncated", "optimizer-json-truncated", "weights-missing", "weights-corrupt"],
)
def test_a_damaged_checkpoint_file_says_how_to_start_over(tmp_path, damage):
    run_dir = tmp_path / "run"
    model, optimizer = _checkpointed(run_dir)
    _resume(run_dir, model, optimizer)  # intact: restores
    damage(run_dir)
    with pytest.raises(ScalebenchError, match=r"Cannot resume epoch 2 of .*run.* Delete .*run to start over"):
        _resume(run_dir, model, optimizer)


@pytest.mark.parametrize("text", ["[1]", json.dumps({"epoch": 2, "run_hash": "h"})])
def test_a_state_file_of_another_shape_is_one_error(tmp_path, text):
    run_dir = tmp_path / "run"
    _checkpointed(run_dir)
    (run_dir / "state.json").write_text(text)
    with pytest.raises(
        ScalebenchError, match=r"state.json is not a scalebench run state.*delete .*run to start"
    ):
        read_run_state(run_dir, "h", resume=True, epochs=5)
