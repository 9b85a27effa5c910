"""Checkpoints without pickles: model and optimizer tensors in safetensors, everything else in JSON.

``torch.load`` of a pickled checkpoint can run arbitrary code (PyTorch added ``weights_only`` for this
reason), so scalebench never pickles. The optimizer's ``state_dict()`` is split into its tensors
(``state.<param index>.<name>``, stored with safetensors) and its JSON-able rest (param groups and non-tensor
state values). Every file is written atomically; the JSON state file of an epoch is written after the tensor
files it names, so a state file never points at a half-written checkpoint.

Epoch checkpoints of a run directory (the protocol of every task): after every epoch
:func:`save_epoch_checkpoint` writes ``epoch-<k>.safetensors`` (weights), ``optim-<k>.safetensors`` (+ JSON),
then ``state.json`` (the epoch, the file names and their sha256, the sha256 that ``best.safetensors`` must
have, and the protocol's own history and best-so-far), then copies the weights to ``best.safetensors`` when
the epoch is the best so far, and deletes the files of epoch k - 1. :func:`read_run_state` and
:func:`restore_run_state` resume from it. No RNG state is stored: every random stream is drawn from
(seed, purpose, epoch) (``engine.derive_seed``), so the epoch number is the whole RNG state.

Integrity on resume:

- ``state.json`` is validated against :class:`RunState` (a task passes a subclass with its own fields):
  a damaged file is one error naming it, and the file names it holds must be plain names inside the run
  folder;
- the sha256 of every file ``state.json`` names is compared with the recorded one (safetensors has no
  checksum of its own), so a silently damaged checkpoint is refused instead of changing the results.
  State files written before the digests were recorded (no ``sha256`` field) are still resumed, without this
  check;
- ``best.safetensors`` must have the recorded ``best_sha256``. Because ``state.json`` is written before the
  copy, the only way they differ after a kill is a best epoch whose copy did not happen: the copy is then
  redone from that epoch's weights, which are still on disk;
- the optimizer's metadata and tensor names are validated, and every tensor shape is compared with the
  parameters it belongs to, before the state is loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Annotated, Any, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from scalebench.checks import ScalebenchError
from scalebench.fileio import atomic_path, file_digest, write_json_atomic

STATE = "state.json"
BEST = "best.safetensors"

#: A plain file name inside the run folder: no folder part, not hidden, not ``.`` or ``..``.
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class RunState(BaseModel):
    """The ``state.json`` of an interrupted run, as :func:`save_epoch_checkpoint` writes it.

    Protocols add their own fields (kept as they are) or subclass it to check them too. ``sha256`` and
    ``best_sha256`` are absent from state files written before they were recorded.
    """

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    run_hash: StrictStr
    epoch: StrictInt = Field(ge=1)
    weights: FileName
    optimizer: FileName
    history: list[dict[str, Any]]
    best_epoch: StrictInt = Field(ge=1)
    train_seconds: float = Field(ge=0)
    sha256: dict[FileName, Sha256] | None = Field(
        default=None, description="sha256 of the weights file, the optimizer file and its .json"
    )
    best_sha256: Sha256 | None = Field(default=None, description="the sha256 best.safetensors must have")

    @model_validator(mode="after")
    def _consistent(self) -> RunState:
        if self.best_epoch > self.epoch:
            raise ValueError(
                f"best_epoch {self.best_epoch} is after the last checkpointed epoch {self.epoch}"
            )
        if len(self.history) != self.epoch:
            raise ValueError(f"history holds {len(self.history)} epochs, but epoch is {self.epoch}")
        missing = sorted(set(state_files(self.weights, self.optimizer)) - set(self.sha256 or {}))
        if self.sha256 is not None and missing:
            raise ValueError(f"sha256 lists no digest of {', '.join(missing)}")
        return self


def state_files(weights: str, optimizer: str) -> tuple[str, str, str]:
    """The files an epoch's state names: weights, optimizer tensors, optimizer JSON."""
    return weights, optimizer, optimizer + ".json"


class _OptimizerMeta(BaseModel):
    """The JSON half of an optimizer checkpoint (:func:`save_optimizer`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    param_groups: list[dict[str, Any]]
    scalars: dict[Annotated[str, Field(pattern=r"^[0-9]+$")], dict[str, Any]]


_OPTIMIZER_TENSOR = re.compile(r"state\.([0-9]+)\.([A-Za-z_][A-Za-z0-9_]*)")
_Model = TypeVar("_Model", bound=BaseModel)


def _problems(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "the file"
        shown = e["loc"] and e.get("type") not in ("missing", "value_error") and "input" in e
        got = f" (got {e['input']!r:.60})" if shown else ""
        parts.append(f"{loc}: {e['msg']}{got}")
    return "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")


def _json(path: Path, label: str, fix: str) -> Any:
    """The JSON value in ``path``; else one ScalebenchError: ``<label> is not valid JSON (...); <fix>.``"""
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ScalebenchError(f"{label} is not valid JSON ({err}); {fix}.") from None


def _validated(schema: type[_Model], raw: Any, label: str, what: str, fix: str) -> _Model:
    """``raw`` validated by ``schema``; else one ScalebenchError: ``<label> is not <what> (problems); <fix>.``"""
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise ScalebenchError(f"{label} is not {what} ({_problems(err)}); {fix}.") from None


def checkpoint_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of a safetensors file, read from its header (no tensor data is loaded).

    Raises:
        ScalebenchError: when the file is missing or its header is not a safetensors header.
    """
    path = Path(path)
    if not path.is_file():
        raise ScalebenchError(f"Checkpoint {str(path)!r} does not exist.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ScalebenchError(f"Checkpoint {path} is not a readable safetensors file ({err}).") from None


def check_fits(model: torch.nn.Module, shapes: dict[str, tuple[int, ...]], path: str | Path) -> None:
    """Raise unless ``shapes`` (from :func:`checkpoint_shapes`) has exactly the model's state-dict names and
    shapes. ``model`` may live on the ``meta`` device: nothing is allocated."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected = sorted(set(own) - set(shapes)), sorted(set(shapes) - set(own))
    wrong = sorted(k for k in set(own) & set(shapes) if own[k] != shapes[k])
    if missing or unexpected or wrong:
        shown = [f"{k} {shapes[k]} (model {own[k]})" for k in wrong[:5]]
        raise ScalebenchError(
            f"Checkpoint {path} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatch {shown}. Was it saved from the same model and config?"
        )


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's full state (parameters and buffers) as contiguous CPU tensors, shared storage duplicated."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def save_weights(model: torch.nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> str:
    """Write the model's state dict to a safetensors file atomically; return the file's sha256."""
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(model_tensors(model), str(tmp), metadata=metadata or {})
    return file_digest(path, "sha256")


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load a safetensors state dict into ``model`` (strict: every key must match, with the same shapes).

    The names and shapes are compared from the file's header first, so a file that does not fit allocates
    nothing.
    """
    path = Path(path)
    check_fits(model, checkpoint_shapes(path), path)
    try:
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for corrupt data
        raise ScalebenchError(f"Checkpoint {path} is not a readable safetensors file ({err}).") from None
    model.load_state_dict(tensors, strict=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    raise TypeError(f"cannot store {type(value).__name__} in a JSON checkpoint state")


def save_optimizer(optimizer: torch.optim.Optimizer, path: str | Path) -> dict[str, str]:
    """Write ``optimizer.state_dict()`` as ``<path>`` (safetensors tensors) plus ``<path>.json`` (the rest).

    Returns the sha256 of both files by file name.
    """
    path = Path(path)
    meta_path = path.with_name(path.name + ".json")
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
    with atomic_path(meta_path) as tmp:
        tmp.write_text(json.dumps(meta, sort_keys=True, allow_nan=False))
    return {path.name: file_digest(path, "sha256"), meta_path.name: file_digest(meta_path, "sha256")}


def load_optimizer(optimizer: torch.optim.Optimizer, path: str | Path, device: torch.device) -> None:
    """Restore an optimizer saved by :func:`save_optimizer` (tensors moved to ``device``).

    The JSON is validated (``param_groups`` and ``scalars``), every tensor name must be
    ``state.<param index>.<name>`` of a parameter of ``optimizer``, and every tensor other than ``step`` must have
    that parameter's shape; any mismatch is one ScalebenchError naming the file.
    """
    path = Path(path)
    meta_path = path.with_name(path.name + ".json")
    if not path.is_file() or not meta_path.is_file():
        raise ScalebenchError(
            f"Optimizer checkpoint {path} (or its .json) is missing; cannot resume exactly."
        )
    shapes = checkpoint_shapes(path)
    label, fix = f"Optimizer metadata {meta_path}", "cannot resume exactly"
    meta = _validated(_OptimizerMeta, _json(meta_path, label, fix), label, "an optimizer checkpoint's", fix)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    saved = [i for group in meta.param_groups for i in group.get("params", [])]
    if len(meta.param_groups) != len(optimizer.param_groups) or len(saved) != len(params):
        raise ScalebenchError(
            f"Optimizer metadata {meta_path} describes {len(meta.param_groups)} parameter group(s) of {len(saved)} "
            f"parameters, the model has {len(optimizer.param_groups)} of {len(params)}; it was saved from another "
            "model or config, so the run cannot resume exactly."
        )
    by_index = dict(zip(saved, params, strict=True)) if all(type(i) is int for i in saved) else {}
    for key, shape in shapes.items():
        m = _OPTIMIZER_TENSOR.fullmatch(key)
        param = by_index.get(int(m.group(1))) if m else None
        if param is None or (m.group(2) != "step" and shape != tuple(param.shape)):
            raise ScalebenchError(
                f"Optimizer checkpoint {path} holds tensor {key!r} of shape {shape}, which is not the state of a "
                "parameter of this model (names are state.<param index>.<name>, shaped like the parameter); it "
                "was saved from another model or is not an optimizer file, so the run cannot resume exactly."
            )
    try:
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for corrupt data
        raise ScalebenchError(
            f"Optimizer checkpoint {path} is not readable ({err}); cannot resume exactly."
        ) from None
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)  # checked above
        # Adam's "step" lives on the CPU even for CUDA parameters; everything else follows the parameters.
        state.setdefault(int(idx), {})[name] = value if name == "step" else value.to(device)
    for idx, values in meta.scalars.items():
        if int(idx) not in by_index:
            raise ScalebenchError(
                f"Optimizer metadata {meta_path} holds state of parameter {idx}, which this model does not have; "
                "it was saved from another model or config, so the run cannot resume exactly."
            )
        state.setdefault(int(idx), {}).update(values)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta.param_groups})
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise ScalebenchError(
            f"Optimizer checkpoint {path} does not fit this optimizer ({type(err).__name__}: {err}); cannot resume "
            "exactly."
        ) from None


def read_run_state(
    run_dir: Path, run_hash: str, *, resume: bool, epochs: int, schema: type[RunState] = RunState
) -> dict[str, Any] | None:
    """The ``state.json`` of an interrupted run in ``run_dir`` (None if there is none), validated by ``schema``.

    Raises when the file is not a valid run state (naming it and its problems), when one exists but ``resume``
    is off (the message says how many epochs are checkpointed and how to continue or start over), and when it
    belongs to another config hash.
    """
    run_dir = Path(run_dir)
    state_path = run_dir / STATE
    if not state_path.is_file():
        return None
    raw = _json(state_path, str(state_path), f"delete {run_dir} to start over")
    state = _validated(schema, raw, str(state_path), "a scalebench run state",
                       f"it is damaged: delete {run_dir} to start over")  # fmt: skip
    if not resume:
        raise ScalebenchError(
            f"An interrupted run of this config exists in {run_dir} ({state.epoch} of {epochs} epochs "
            "checkpointed). Pass --resume to continue it, or delete that folder to start over."
        )
    if state.run_hash != run_hash:
        raise ScalebenchError(f"{state_path} belongs to another config (hash {state.run_hash}); delete it.")
    return state.model_dump()


def restore_run_state(
    state: dict[str, Any], run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> None:  # fmt: skip
    """Load the weights and optimizer state that ``state`` (from :func:`read_run_state`) names.

    First compares the sha256 of every named file with the recorded one (states that record none are
    resumed without this check) and makes ``best.safetensors`` agree with ``best_sha256`` (see the module
    docstring). A missing, damaged or unreadable file raises one ScalebenchError that says how to start over.
    """
    run_dir = Path(run_dir)
    try:
        _check_digests(state, run_dir)
        load_weights(model, run_dir / state["weights"])
        load_optimizer(optimizer, run_dir / state["optimizer"], device)
    except ScalebenchError as err:
        raise ScalebenchError(
            f"Cannot resume epoch {state['epoch']} of {run_dir}: {err} Delete {run_dir} to start over (the files "
            "of earlier epochs are not kept, so the run restarts from epoch 1)."
        ) from None


def _check_digests(state: dict[str, Any], run_dir: Path) -> None:
    digests = state.get("sha256")
    if digests is None:
        return  # a state file written before the digests were recorded
    for name in state_files(state["weights"], state["optimizer"]):
        path = run_dir / name
        if not path.is_file():
            raise ScalebenchError(f"Checkpoint file {path} is missing.")
        found = file_digest(path, "sha256")
        if found != digests[name]:
            raise ScalebenchError(
                f"Checkpoint file {path} has sha256 {found}, but {STATE} records {digests[name]}: it changed after "
                "it was written (disk corruption or an edit), and resuming from it would change the results."
            )
    best_sha = state.get("best_sha256")
    best = run_dir / BEST
    if best_sha is None or (best.is_file() and file_digest(best, "sha256") == best_sha):
        return
    if digests[state["weights"]] == best_sha:  # killed between state.json and the copy of the best epoch
        _copy_atomic(run_dir / state["weights"], best)
        return
    raise ScalebenchError(
        f"{best} is {'missing' if not best.is_file() else 'not the checkpoint of the best epoch'} (sha256 "
        f"{best_sha} recorded in {STATE}, for epoch {state.get('best_epoch')}), and that epoch's weights are no "
        "longer kept."
    )


def _copy_atomic(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def save_epoch_checkpoint(
    run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, epoch: int, better: bool,
    state: dict[str, Any], metadata: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """Checkpoint epoch ``epoch`` (1-based) into ``run_dir`` (see the module docstring).

    ``state`` holds what the protocol needs to continue (run hash, history, best so far, time spent); the
    epoch, the file names and their sha256, and the sha256 ``best.safetensors`` must have are added.
    ``state.json`` is written after every file it names and before ``best.safetensors`` is replaced, so that
    after a kill the two never disagree silently (:func:`restore_run_state` redoes an interrupted copy).
    ``metadata`` goes into the weights' safetensors header (the model, its code reference and its config:
    :func:`scalebench.api.load_model` rebuilds the model from a checkpoint alone).
    """
    run_dir = Path(run_dir)
    weights, optim = f"epoch-{epoch}.safetensors", f"optim-{epoch}.safetensors"
    digests = {
        weights: save_weights(model, run_dir / weights, metadata),
        **save_optimizer(optimizer, run_dir / optim),
    }
    best = run_dir / BEST
    best_sha = digests[weights] if better else (file_digest(best, "sha256") if best.is_file() else None)
    write_json_atomic(
        run_dir / STATE,
        {
            **state,
            "epoch": epoch,
            "weights": weights,
            "optimizer": optim,
            "sha256": digests,
            "best_sha256": best_sha,
        },
    )
    if better:
        _copy_atomic(run_dir / weights, best)
    for old in state_files(f"epoch-{epoch - 1}.safetensors", f"optim-{epoch - 1}.safetensors"):
        with contextlib.suppress(FileNotFoundError):
            (run_dir / old).unlink()
