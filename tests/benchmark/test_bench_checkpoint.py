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
        state = {"run_hash": "h", "history": [{}] * epoch, "best_epoch": epoch, "train_seconds": 1.0}
        save_epoch_checkpoint(run_dir, model, optimizer, epoch=epoch, better=True, state=state)
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


def _without_digests(run_dir):
    """Turn state.json into one written before digests were recorded (no sha256, no best_sha256)."""
    state = json.loads((run_dir / "state.json").read_text())
    state.pop("sha256"), state.pop("best_sha256")
    (run_dir / "state.json").write_text(json.dumps(state))


def _flip(path, offset=-20, data=b"\x00" * 8):
    """Overwrite bytes of ``path`` in place: the file stays readable but its content changes (a silent damage)."""
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data) or None] = data
    path.write_bytes(bytes(raw))


def test_state_records_the_digest_of_every_file_it_names(tmp_path):
    from scalebench.fileio import file_digest

    run_dir = tmp_path / "run"
    _checkpointed(run_dir)
    state = json.loads((run_dir / "state.json").read_text())
    names = ["epoch-2.safetensors", "optim-2.safetensors", "optim-2.safetensors.json"]
    assert state["sha256"] == {n: file_digest(run_dir / n, "sha256") for n in names}
    assert state["best_sha256"] == file_digest(run_dir / "best.safetensors", "sha256")


@pytest.mark.parametrize("name", ["epoch-2.safetensors", "optim-2.safetensors", "optim-2.safetensors.json"])
def test_a_silently_changed_checkpoint_file_is_refused(tmp_path, name):
    run_dir = tmp_path / "run"
    model, optimizer = _checkpointed(run_dir)
    if name.endswith(".json"):
        path = run_dir / name
        path.write_text(path.read_text().replace('"lr": 0.1', '"lr": 0.2'))
    else:
        _flip(run_dir / name)  # still a readable safetensors file: only the digest tells
    with pytest.raises(
        ScalebenchError,
        match=rf"Cannot resume epoch 2 of .*run: Checkpoint file .*{name} has sha256 [0-9a-f]{{64}}, but state.json "
        r"records [0-9a-f]{64}: it changed after it was written .* Delete .*run to start over",
    ):
        _resume(run_dir, model, optimizer)


def test_a_state_without_digests_still_resumes(tmp_path):
    """States written before the digests were recorded are resumed without the check (documented choice)."""
    run_dir = tmp_path / "run"
    model, optimizer = _checkpointed(run_dir)
    _without_digests(run_dir)
    _resume(run_dir, model, optimizer)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"epoch": "x"}, r"epoch: Input should be a valid integer \(got 'x'\)"),
        ({"history": None}, r"history: "),
        ({"best_epoch": 7}, r"best_epoch 7 is after the last checkpointed epoch 2"),
        ({"history": [{}]}, r"history holds 1 epochs, but epoch is 2"),
        ({"train_seconds": "soon"}, r"train_seconds: "),
        ({"weights": "/etc/passwd"}, r"weights: String should match pattern"),  # N8: plain names only
        ({"optimizer": "../other/optim-2.safetensors"}, r"optimizer: String should match pattern"),
        ({"sha256": {"epoch-2.safetensors": "00"}}, r"sha256"),
    ],
)
def test_a_damaged_state_file_is_one_error_naming_it(tmp_path, edit, message):
    run_dir = tmp_path / "run"
    _checkpointed(run_dir)
    state = json.loads((run_dir / "state.json").read_text())
    state.update(edit)
    if edit.get("history", 0) is None:
        del state["history"]
    (run_dir / "state.json").write_text(json.dumps(state))
    with pytest.raises(
        ScalebenchError, match=rf"state.json is not a scalebench run state \(.*{message}.*delete .*run"
    ):
        read_run_state(run_dir, "h", resume=True, epochs=5)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "optim-2.safetensors.json").write_text("{}"), r"param_groups: Field required"),
        (
            lambda d: (d / "optim-2.safetensors").write_bytes((d / "epoch-2.safetensors").read_bytes()),
            r"holds tensor 'bias' of shape \(2,\), which is not the state of a parameter of this model",
        ),
        (
            lambda d: (d / "optim-2.safetensors.json").write_text(
                json.dumps({"param_groups": [{"params": [0]}], "scalars": {}})
            ),
            r"describes 1 parameter group\(s\) of 1 parameters, the model has 1 of 2",
        ),
    ],
    ids=["metadata-empty", "weights-as-optimizer", "other-model"],
)
def test_damaged_optimizer_metadata_or_tensors_are_one_error(tmp_path, damage, message):
    run_dir = tmp_path / "run"
    model, optimizer = _checkpointed(run_dir)
    _without_digests(
        run_dir
    )  # an old state: only the schema and shape checks stand between the file and torch
    damage(run_dir)
    with pytest.raises(
        ScalebenchError, match=rf"Cannot resume epoch 2 of .*{message}.* Delete .*run to start over"
    ):
        _resume(run_dir, model, optimizer)


def test_best_is_repaired_after_a_kill_between_state_and_copy(tmp_path, monkeypatch):
    """N7: state.json is written before best.safetensors is replaced; a kill in between is repaired on resume."""
    from scalebench.benchmark import checkpoint

    run_dir = tmp_path / "run"
    model, optimizer = _checkpointed(run_dir)
    best_1 = (run_dir / "best.safetensors").read_bytes()

    def killed(src, dest):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "_copy_atomic", killed)
    state = {"run_hash": "h", "history": [{}] * 3, "best_epoch": 3, "train_seconds": 1.0}
    with pytest.raises(KeyboardInterrupt):
        save_epoch_checkpoint(run_dir, model, optimizer, epoch=3, better=True, state=state)
    monkeypatch.undo()
    assert (run_dir / "best.safetensors").read_bytes() == best_1  # the copy did not happen
    _resume_epoch_3 = read_run_state(run_dir, "h", resume=True, epochs=5)
    restore_run_state(_resume_epoch_3, run_dir, model, optimizer, torch.device("cpu"))
    assert (run_dir / "best.safetensors").read_bytes() == (run_dir / "epoch-3.safetensors").read_bytes()


def test_a_best_checkpoint_that_is_not_the_recorded_one_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    model, optimizer = _checkpointed(run_dir)
    torch.nn.init.zeros_(model.weight)  # epoch 3 is not better: best stays the weights of epoch 2
    state = {"run_hash": "h", "history": [{}] * 3, "best_epoch": 2, "train_seconds": 1.0}
    save_epoch_checkpoint(run_dir, model, optimizer, epoch=3, better=False, state=state)
    _flip(run_dir / "best.safetensors")
    with pytest.raises(
        ScalebenchError, match=r"best.safetensors is not the checkpoint of the best epoch .* Delete"
    ):
        _resume(run_dir, model, optimizer)


def test_a_checkpoint_that_does_not_fit_allocates_nothing(tmp_path):
    """load_weights compares the names and shapes of the file's header before loading any tensor."""
    from scalebench.benchmark.checkpoint import checkpoint_shapes, load_weights, save_weights

    big = torch.nn.Linear(300, 200)
    save_weights(big, tmp_path / "big.safetensors")
    assert checkpoint_shapes(tmp_path / "big.safetensors") == {"weight": (200, 300), "bias": (200,)}
    with torch.device("meta"):
        small = torch.nn.Linear(3, 2)
    with pytest.raises(
        ScalebenchError, match=r"does not fit the model: .*shape mismatch \['bias \(200,\) \(model"
    ):
        load_weights(
            small, tmp_path / "big.safetensors"
        )  # a meta model: any real load would fail differently
