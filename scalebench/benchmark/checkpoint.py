"""Checkpoints without pickles: model and optimizer tensors in safetensors, everything else in JSON.

``torch.load`` of a pickled checkpoint can run arbitrary code (PyTorch added ``weights_only`` for this
reason), so scalebench never pickles. The optimizer's ``state_dict()`` is split into its tensors
(``state.<param index>.<name>``, stored with safetensors) and its JSON-able rest (param groups and non-tensor
state values). Every file is written atomically; the JSON state file of an epoch is written after the tensor
files it names, so a state file never points at a half-written checkpoint.

Epoch checkpoints of a run directory (both protocols, classification and segmentation): after every epoch
:func:`save_epoch_checkpoint` writes ``epoch-<k>.safetensors`` (weights), ``optim-<k>.safetensors`` (+ JSON),
copies the weights to ``best.safetensors`` when the epoch is the best so far, then writes ``state.json``
(the epoch, the file names, and the protocol's own history and best-so-far) and deletes the files of epoch
k - 1. :func:`read_run_state` and :func:`restore_run_state` resume from it. No RNG state is stored: both
protocols draw every random stream from (seed, purpose, epoch) (``protocol.derive_seed``), so the epoch
number is the whole RNG state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from scalebench.checks import ScalebenchError
from scalebench.fileio import atomic_path, file_digest, write_json_atomic

STATE = "state.json"
BEST = "best.safetensors"


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's full state (parameters and buffers) as contiguous CPU tensors, shared storage duplicated."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def save_weights(model: torch.nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> str:
    """Write the model's state dict to a safetensors file atomically; return the file's sha256."""
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(model_tensors(model), str(tmp), metadata=metadata or {})
    return file_digest(path, "sha256")


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load a safetensors state dict into ``model`` (strict: every key must match, with the same shapes)."""
    path = Path(path)
    if not path.is_file():
        raise ScalebenchError(f"Checkpoint {str(path)!r} does not exist.")
    try:
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ScalebenchError(f"Checkpoint {path} is not a readable safetensors file ({err}).") from None
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    wrong = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        raise ScalebenchError(
            f"Checkpoint {path} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatch {wrong[:5]}. Was it saved from the same model and config?"
        )
    model.load_state_dict(tensors, strict=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    raise TypeError(f"cannot store {type(value).__name__} in a JSON checkpoint state")


def save_optimizer(optimizer: torch.optim.Optimizer, path: str | Path) -> None:
    """Write ``optimizer.state_dict()`` as ``<path>`` (safetensors tensors) plus ``<path>.json`` (the rest)."""
    path = Path(path)
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = value.detach().to("cpu").contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[name] = _jsonable(value)
    meta = {"param_groups": _jsonable(sd["param_groups"]), "scalars": scalars}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp))
    with atomic_path(path.with_name(path.name + ".json")) as tmp:
        tmp.write_text(json.dumps(meta, sort_keys=True, allow_nan=False))


def load_optimizer(optimizer: torch.optim.Optimizer, path: str | Path, device: torch.device) -> None:
    """Restore an optimizer saved by :func:`save_optimizer` (tensors moved to ``device``)."""
    path = Path(path)
    meta_path = path.with_name(path.name + ".json")
    if not path.is_file() or not meta_path.is_file():
        raise ScalebenchError(
            f"Optimizer checkpoint {path} (or its .json) is missing; cannot resume exactly."
        )
    try:
        tensors = load_file(str(path))
        meta = json.loads(meta_path.read_text())
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ScalebenchError(
            f"Optimizer checkpoint {path} (or its .json) is not readable ({err}); cannot resume exactly."
        ) from None
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        # Adam's "step" lives on the CPU even for CUDA parameters; everything else follows the parameters.
        state.setdefault(int(idx), {})[name] = value if name == "step" else value.to(device)
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def read_run_state(run_dir: Path, run_hash: str, *, resume: bool, epochs: int) -> dict[str, Any] | None:
    """The ``state.json`` of an interrupted run in ``run_dir`` (None if there is none).

    Raises when one exists but ``resume`` is off (the message says how many epochs are checkpointed and how to
    continue or start over), and when it belongs to another config hash.
    """
    state_path = Path(run_dir) / STATE
    if not state_path.is_file():
        return None
    try:
        state = json.loads(state_path.read_text())
    except ValueError as err:
        raise ScalebenchError(
            f"{state_path} is not valid JSON ({err}); delete {run_dir} to start over."
        ) from None
    if not isinstance(state, dict) or not {"epoch", "weights", "optimizer"} <= state.keys():
        raise ScalebenchError(
            f"{state_path} is not a scalebench run state (an object with 'epoch', 'weights' and 'optimizer'); "
            f"delete {run_dir} to start over."
        )
    if not resume:
        raise ScalebenchError(
            f"An interrupted run of this config exists in {run_dir} ({state.get('epoch', 0)} of {epochs} epochs "
            "checkpointed). Pass --resume to continue it, or delete that folder to start over."
        )
    if state.get("run_hash") != run_hash:
        raise ScalebenchError(
            f"{state_path} belongs to another config (hash {state.get('run_hash')}); delete it."
        )
    return state


def restore_run_state(
    state: dict[str, Any], run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> None:  # fmt: skip
    """Load the weights and optimizer state that ``state`` (from :func:`read_run_state`) names.

    A missing or unreadable file raises one ScalebenchError that says how to start over.
    """
    try:
        load_weights(model, Path(run_dir) / state["weights"])
        load_optimizer(optimizer, Path(run_dir) / state["optimizer"], device)
    except ScalebenchError as err:
        raise ScalebenchError(
            f"Cannot resume epoch {state['epoch']} of {run_dir}: {err} Delete {run_dir} to start over."
        ) from None


def save_epoch_checkpoint(
    run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, epoch: int, better: bool,
    state: dict[str, Any],
) -> None:  # fmt: skip
    """Checkpoint epoch ``epoch`` (1-based) into ``run_dir`` (see the module docstring).

    ``state`` holds what the protocol needs to continue (run hash, history, best so far, time spent); the
    epoch and the file names are added. ``state.json`` is written after every file it names.
    """
    run_dir = Path(run_dir)
    weights, optim = f"epoch-{epoch}.safetensors", f"optim-{epoch}.safetensors"
    save_weights(model, run_dir / weights)
    save_optimizer(optimizer, run_dir / optim)
    if better:
        shutil.copyfile(run_dir / weights, run_dir / f".{BEST}.tmp")
        os.replace(run_dir / f".{BEST}.tmp", run_dir / BEST)
    write_json_atomic(run_dir / STATE, {**state, "epoch": epoch, "weights": weights, "optimizer": optim})
    for old in (f"epoch-{epoch - 1}.safetensors", f"optim-{epoch - 1}.safetensors",
                f"optim-{epoch - 1}.safetensors.json"):  # fmt: skip
        with contextlib.suppress(FileNotFoundError):
            (run_dir / old).unlink()
