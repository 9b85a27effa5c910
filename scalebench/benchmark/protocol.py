"""The protocol: train at one scale, select the checkpoint on validation at that scale, test at every scale.

Protocol of Jansson & Lindeberg (2022), "Scale-invariant scale-channel networks: deep networks that generalise
to previously unseen scales", JMIV 64(5): 506-536, and Lindeberg (2022), "Scale-covariant and scale-invariant
Gaussian derivative networks", JMIV 64(3): 223-242: the training and validation data are at one scale only
(``s0``, usually 1); the test set is rescaled by ``s = 2^(k/4)``, k = -4..4, and tested copy by copy.

Guarantees of :func:`run_evaluation`:

- the test sets are opened only after training has finished (the training loop never receives them);
- testing runs in eval mode under ``torch.inference_mode``, and every parameter and buffer (batch-norm
  running statistics included) is compared bit for bit before and after testing: a change is an error;
- data order, augmentation and dropout randomness depend only on (seed, epoch), and the learning rate is a
  pure function of (epoch, step), so a run resumed from an epoch checkpoint ends with the same weights as an
  uninterrupted one (exactly on CPU with a fixed thread count);
- every input is checked before anything is written: the model config (kinds, ranges, and its size on the
  ``meta`` device, :func:`scalebench.models.registry.validate_model_config`), the recipe and the build id;
  the model is built before the run directory is created, so an invalid config leaves no folder behind;
- every epoch is checkpointed (safetensors weights and optimizer tensors, JSON state with their sha256,
  :mod:`scalebench.benchmark.checkpoint`) into a run directory named by a hash of the resolved config;
  ``--resume`` refuses a checkpoint whose digest changed; ``done`` is written last, atomically, after the
  results, and holds their sha256: a finished run is reused only while ``results.json`` still has it
  (:func:`check_done`).

With ``config.distributed`` (under ``torchrun``), training is data-parallel and evaluation is sharded
across ranks and summed; see :mod:`scalebench.benchmark.distributed`. Segmentation (issue 6) is run by
:mod:`scalebench.benchmark.segmentation`, which reuses the device choice, seeds, loader, autocast, optimizer,
schedule, epoch checkpoints and test-time state checks of this module.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import hashlib
import io
import math
import platform
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

import scalebench
from scalebench.benchmark.checkpoint import (
    BEST,
    STATE,  # noqa: F401  (re-exported: the sweep reads a run's state through protocol.STATE)
    RunState,
    load_weights,
    read_run_state,
    restore_run_state,
    save_epoch_checkpoint,
)
from scalebench.benchmark.config import EvalConfig, Recipe, resolve_recipe, run_identity
from scalebench.benchmark.distributed import Dist, init_distributed, wrap
from scalebench.benchmark.progress import Progress
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import find_scale, match_scales
from scalebench.figures.curves import RUN_CURVE_COLUMNS, plot_curves
from scalebench.figures.selection import RUN_SELECTION_COLUMNS, plot_selection
from scalebench.figures.style import RUN_FORMATS
from scalebench.fileio import config_hash, file_digest, write_json_atomic, write_text_atomic
from scalebench.results import (
    ClassificationScaleResult,
    DatasetInfo,
    Environment,
    EpochRecord,
    ModelInfo,
    RunResult,
    Timings,
    TrainingInfo,
    build_scale_selection,
    build_summary,
    load_results,
    save_results,
)

DONE = "done"


class ClassificationRunState(RunState):
    """The ``state.json`` of an interrupted classification run: every epoch's record and the best so far."""

    history: list[EpochRecord]
    best_val_accuracy: float = Field(ge=0, le=1)


@dataclass
class RunOutcome:
    """What :func:`run_evaluation` leaves behind: the result (None if stopped early) and where the files are.

    ``run_hash`` is the hash of the resolved config that names ``run_dir``; ``reused`` says the finished run
    in ``run_dir`` was returned without running again (its ``done`` marker matched ``results.json``).
    """

    run_dir: Path
    result: RunResult | None
    files: dict[str, Path] = field(default_factory=dict)
    reused: bool = False
    stopped_after_epoch: int | None = None
    run_hash: str | None = None


@dataclass
class _Setup:
    """A run with everything resolved, before any training."""

    config: EvalConfig
    device: torch.device
    card: Any
    built: Any
    model_config: dict[str, Any]
    recipe: Recipe
    scales: list[float]
    identity: dict[str, Any]
    run_hash: str
    run_dir: Path


# ---------------------------------------------------------------------------------------------------------
# Resolution and checks (every bad input fails here, before any training)


def select_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu. ``cuda`` without a usable GPU is an error."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if name == "cuda":
            built = "with" if torch.backends.cuda.is_built() else "without"
            raise ScalebenchError(
                f"--device cuda was requested but no CUDA GPU is available (torch {torch.__version__}, built "
                f"{built} CUDA; torch.cuda.is_available() is False). Use --device cpu or --device auto."
            )
        return torch.device("cpu")
    raise ScalebenchError(f"Unknown device {name!r}; use auto, cpu or cuda.")


def check_amp(device: torch.device, amp: bool) -> None:
    """``--amp`` (bf16 autocast, see :func:`_autocast`) is for CUDA only: raise on any other device."""
    if amp and device.type != "cuda":
        raise ScalebenchError(
            "--amp needs --device cuda: bf16 autocast on this CPU made training pathologically slow "
            "(docs/protocol.md). Drop --amp for CPU runs."
        )


def _setup(config: EvalConfig) -> _Setup:
    from scalebench.models import get_model_card
    from scalebench.models.registry import validate_model_config

    device = select_device(config.device)
    check_amp(device, config.amp)
    card = get_model_card(config.model)
    if card.task != "classification":
        raise ScalebenchError(
            f"Model {config.model!r} is a {card.task} model, but dataset {config.dataset!r} is a classification "
            "build; give a segmentation build (e.g. --dataset fashion-mnist-seg-embedded, built by `scalebench "
            "build-datasets --dataset fashion-mnist-seg --embedded`) or a classification model (`scalebench models "
            "list --task classification`)."
        )
    from scalebench.datasets_builders import open_build  # looked up at call time: tests patch it there

    built = open_build(config.dataset, config.root, task="classification")
    scales = match_scales(config.scales, built.test_scales, built.build_id)
    _git_commit()  # pin the code version now, before training
    if find_scale(scales, built.train_scale) is None:
        raise ScalebenchError(
            f"--scales must include the training scale {built.train_scale:g} (accuracy at the training scale is "
            f"part of every result); got {', '.join(f'{s:g}' for s in scales)}."
        )
    # every value checked and the model's size bounded (built on the meta device) before anything is hashed
    model_config = validate_model_config(
        config.model, config.model_config_overrides, quick=config.preset == "quick",
        num_classes=built.num_classes, in_channels=built.channels,
    )  # fmt: skip
    recipe = resolve_recipe(config.preset, card.paper_training, config.recipe_overrides, card.quick_training)
    identity = run_identity(config, recipe, model_config, scales)
    identity["dataset_manifest_sha256"] = built.manifest_sha256
    run_hash = config_hash(identity)
    run_dir = Path(config.out) / f"{config.model}__{built.build_id}__seed{config.seed}__{run_hash}"
    return _Setup(config, device, card, built, model_config, recipe, scales, identity, run_hash, run_dir)


def resolve_run(config: EvalConfig) -> tuple[str, Path]:
    """The run hash and run directory of ``config``: every input checked, nothing trained or written.

    The sweep names its jobs by this hash, so a job and its ``scalebench evaluate`` run are one identity.
    """
    s = _setup(config)
    return s.run_hash, s.run_dir


# ---------------------------------------------------------------------------------------------------------
# Data


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from the run seed and a purpose (e.g. ``"order", epoch``): streams never overlap.

    Example:
        >>> derive_seed(0, "order", 1) != derive_seed(0, "order", 2)
        True
    """
    text = "/".join(str(p) for p in (seed, *parts))
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def _read(ds: Any, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch from a dataset with ``read_batch`` / ``__getitems__``, else item by item."""
    if hasattr(ds, "read_batch"):
        out = ds.read_batch(indices)
    elif hasattr(ds, "__getitems__"):
        out = ds.__getitems__(indices)
    else:
        out = [ds[i] for i in indices]
    if isinstance(out, list):
        xs, ys = zip(*out, strict=True)
        x = torch.stack([torch.as_tensor(v) for v in xs])
        y = torch.as_tensor(np.asarray(ys))
    else:
        x, y = torch.as_tensor(out[0]), torch.as_tensor(out[1])
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    return x.float(), y.long()


class _BatchReader(torch.utils.data.Dataset):
    """Item i is the whole batch ``batches[i]``: workers read batches (lazily opened HDF5) in parallel."""

    def __init__(self, ds: Any, batches: list[list[int]]) -> None:
        self.ds, self.batches = ds, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _read(self.ds, self.batches[i])


def _batches(
    ds: Any, batches: list[list[int]], workers: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    loader = torch.utils.data.DataLoader(
        _BatchReader(ds, batches),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers > 0 else None,
    )
    yield from loader


def _num_workers(config: EvalConfig, n_images: int, device: torch.device) -> int:
    if config.num_workers is not None:
        return config.num_workers
    if n_images < 2048:
        return 0
    return 4 if device.type == "cuda" else 1


def _n(ds: Any, limit: int | None) -> int:
    n = len(ds)
    return min(n, limit) if limit is not None else n


def _augment(x: torch.Tensor, recipe: Recipe, gen: torch.Generator) -> torch.Tensor:
    """Random flips / shifts drawn from ``gen`` (CPU); never a rescaling."""
    if recipe.augmentation == "none":
        return x
    b = x.shape[0]
    if "hflip" in recipe.augmentation:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if "translate" in recipe.augmentation and recipe.translate_pixels > 0:
        p = recipe.translate_pixels
        shifts = torch.randint(-p, p + 1, (b, 2), generator=gen).tolist()
        padded = nn.functional.pad(x, (p, p, p, p))
        h, w = x.shape[-2:]
        x = torch.stack(
            [padded[i, :, p + dy : p + dy + h, p + dx : p + dx + w] for i, (dy, dx) in enumerate(shifts)]
        )
    return x


# ---------------------------------------------------------------------------------------------------------
# Training


def learning_rate(recipe: Recipe, epoch: int, step: int, steps_per_epoch: int) -> float:
    """The learning rate at 0-based ``epoch`` and ``step`` (a pure function: resuming needs no scheduler state).

    Example:
        >>> r = Recipe(epochs=2, batch_size=1, lr=1.0, schedule="cosine")
        >>> learning_rate(r, 0, 0, 10), round(learning_rate(r, 1, 0, 10), 6)
        (1.0, 0.5)
    """
    t = epoch + step / steps_per_epoch
    if recipe.warmup_epochs and t < recipe.warmup_epochs:
        return recipe.lr * (t + 1 / steps_per_epoch) / recipe.warmup_epochs
    if recipe.schedule == "constant":
        return recipe.lr
    if recipe.schedule == "step":
        return recipe.lr * recipe.lr_gamma ** sum(1 for m in recipe.lr_milestones if epoch >= m)
    span = max(recipe.epochs - recipe.warmup_epochs, 1e-12)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * (t - recipe.warmup_epochs) / span))


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=recipe.lr,
            momentum=recipe.momentum,
            nesterov=recipe.nesterov,
            weight_decay=recipe.weight_decay,
        )
    cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def _chunks(n: int, size: int | None) -> list[slice]:
    size = size or n
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ds: Any,
    n: int,
    epoch: int,
    s: _Setup,
    progress: Progress,
    net: nn.Module | None = None,
    d: Dist | None = None,
) -> tuple[float, float]:
    """One epoch (1-based ``epoch``); returns mean training loss and accuracy.

    Distributed (``d.active``, ``net`` the DDP-wrapped ``model``): each rank trains on its share of every batch
    (see :mod:`scalebench.benchmark.distributed`); the loss and accuracy are summed over ranks.
    """
    d = d or Dist()
    net = net if net is not None else model
    recipe, seed = s.recipe, s.config.seed
    order = torch.randperm(
        n, generator=torch.Generator().manual_seed(derive_seed(seed, "order", epoch))
    ).tolist()
    aug_gen = torch.Generator().manual_seed(derive_seed(seed, "augment", epoch))
    torch.manual_seed(derive_seed(seed, "torch", epoch))  # dropout and any other in-model randomness
    batches = [order[i : i + recipe.batch_size] for i in range(0, n, recipe.batch_size)]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing, reduction="sum")
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    progress.start(f"epoch {epoch}/{recipe.epochs}", len(batches))
    augment = recipe.augmentation != "none"
    shares = [d.share(len(b)) for b in batches]
    read = batches  # augmentation draws for the whole batch, so a rank then reads it all and keeps its share
    if d.active and not augment:
        read = [b[lo:hi] if hi > lo else b[:1] for b, (lo, hi) in zip(batches, shares, strict=True)]
    for step, (x, y) in enumerate(_batches(ds, read, _num_workers(s.config, n, s.device), s.device)):
        lr = learning_rate(recipe, epoch - 1, step, len(batches))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = _augment(x, recipe, aug_gen)
        weight, denom = 1.0, float(len(y))
        if d.active:
            lo, hi = shares[step]
            if augment:
                x, y = (x[lo:hi], y[lo:hi]) if hi > lo else (x[:1], y[:1])
            weight, denom = (1.0 if hi > lo else 0.0), len(batches[step]) / d.world
        optimizer.zero_grad(set_to_none=True)
        parts = _chunks(len(y), recipe.micro_batch_size)
        for k, part in enumerate(parts):
            xb = _to_device(x[part], s.device, True)
            yb = y[part].to(s.device, non_blocking=True)
            last = k == len(parts) - 1
            with net.no_sync() if d.active and not last else contextlib.nullcontext():
                with _autocast(s.device, s.config.amp):
                    logits = net(xb)
                    loss = loss_fn(logits.float(), yb)
                (loss / len(y) if not d.active else loss * (weight / denom)).backward()
            if weight:
                total_loss += float(loss.detach())
                correct += int((logits.detach().argmax(1) == yb).sum())
        optimizer.step()
        d.broadcast_buffers(model)
        seen += len(y) if weight else 0
        progress.advance()
    if d.active:
        total_loss, c, n_seen = d.sum([total_loss, correct, seen])
        correct, seen = int(c), int(n_seen)
    if not math.isfinite(total_loss):
        raise ScalebenchError(
            f"Training loss became non-finite in epoch {epoch} ({total_loss}); lower --lr or check the model."
        )
    progress.end(f"loss {total_loss / seen:.4f} acc {correct / seen:.3f}")
    return total_loss / seen, correct / seen


# ---------------------------------------------------------------------------------------------------------
# Testing


def state_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer (batch-norm running statistics included)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def check_state_unchanged(model: nn.Module, before: dict[str, torch.Tensor], during: str) -> None:
    """Raise if any parameter or buffer differs (bit for bit) from ``before``."""
    after = model.state_dict()
    changed = [k for k, v in before.items() if k not in after or not torch.equal(v, after[k])]
    if changed:
        raise ScalebenchError(
            f"The model's state changed during {during}: {', '.join(changed[:8])}"
            f"{' ...' if len(changed) > 8 else ''}. Testing must not update batch-norm running statistics or "
            "any other buffer; the model must be in eval mode and must not write to buffers in forward()."
        )


@torch.inference_mode()
def evaluate_dataset(
    model: nn.Module,
    ds: Any,
    *,
    n: int,
    device: torch.device,
    batch_size: int,
    micro_batch_size: int | None = None,
    workers: int = 0,
    selection_channels: int | None = None,
    amp: bool = False,
    progress: Progress | None = None,
    d: Dist | None = None,
) -> tuple[int, int, list[int] | None]:
    """Correct predictions, total, and winning-channel counts (if ``selection_channels``) on ``ds[:n]``.

    The model must already be in eval mode. Uses ``forward_with_selection`` when ``selection_channels``.
    Distributed (``d.active``): rank r evaluates batches r, r + W, ...; the counts are summed over ranks.
    """
    if model.training:
        raise ScalebenchError("evaluate_dataset needs the model in eval mode (call model.eval()).")
    d = d or Dist()
    batches = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)][d.rank :: d.world]
    correct, total = 0, 0
    counts = torch.zeros(selection_channels, dtype=torch.long) if selection_channels else None
    for x, y in _batches(ds, batches, workers, device):
        for part in _chunks(len(y), micro_batch_size):
            xb = _to_device(x[part], device, True)
            yb = y[part].to(device, non_blocking=True)
            with _autocast(device, amp):
                if counts is not None:
                    logits, winner = model.forward_with_selection(xb)
                    counts += torch.bincount(winner.to("cpu").long(), minlength=selection_channels)
                else:
                    logits = model(xb)
            correct += int((logits.argmax(1) == yb).sum())
            total += len(yb)
        if progress is not None:
            progress.advance()
    if d.active:
        summed = [int(v) for v in d.sum([correct, total, *(counts.tolist() if counts is not None else [])])]
        return summed[0], summed[1], (summed[2:] if counts is not None else None)
    return correct, total, (counts.tolist() if counts is not None else None)


def _selection_info(model: nn.Module, card: Any) -> list[float] | None:
    if not card.reports_scale_selection:
        return None
    if not hasattr(model, "forward_with_selection") or not hasattr(model, "channel_sigmas"):
        raise ScalebenchError(
            f"Model card {card.name!r} sets reports_scale_selection but the model has no forward_with_selection() "
            "or channel_sigmas; fix the card or the model."
        )
    return [float(s) for s in model.channel_sigmas]


# ---------------------------------------------------------------------------------------------------------
# Environment and outputs


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    """The commit of the scalebench checkout that runs, read once per process (at run set-up, so that a
    commit made while a long run trains is not recorded as the code that ran)."""
    repo = Path(scalebench.__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def model_flops(model: nn.Module, input_size: tuple[int, ...], num_classes: int) -> tuple[int, int]:
    """(training, inference) FLOPs per image (:mod:`scalebench.models.flops`), counted on the side: the global
    RNG is forked (dropout draws nothing from the run's stream) and batch-norm statistics are restored."""
    from scalebench.models.flops import inference_flops_per_image, training_flops_per_image

    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        train = training_flops_per_image(model, input_size, num_classes)
        infer = inference_flops_per_image(model, input_size)
    return train, infer


def environment_info(device: torch.device, amp: bool) -> Environment:
    """Where a run (or a verification) happens: versions, platform, device, threads, git commit."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    return Environment(
        scalebench_version=scalebench.__version__,
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        platform=platform.platform(),
        device=device.type,
        device_name=name,
        num_threads=torch.get_num_threads(),
        amp=amp,
        deterministic=device.type == "cpu",
        git_commit=_git_commit(),
    )


def _canvas(canvas: Any) -> tuple[int, int]:
    if isinstance(canvas, (int, np.integer)):
        return int(canvas), int(canvas)
    h, w = canvas
    return int(h), int(w)


def long_csv_rows(result: RunResult) -> list[tuple[str, int, str, str, str]]:
    """Rows (model, seed, scale, metric, value); run-level metrics have an empty scale."""
    m, seed = result.model.name, result.seed
    rows: list[tuple[str, int, str, str, str]] = []
    for r in result.per_scale:
        for metric in ("correct", "total", "accuracy"):
            rows.append((m, seed, repr(r.scale), metric, repr(getattr(r, metric))))
    for metric, value in result.summary.model_dump().items():
        rows.append((m, seed, "", metric, "" if value is None else repr(value)))
    if result.scale_selection is not None:
        sel = result.scale_selection
        for metric in ("spearman_rho", "slope_per_octave"):
            value = getattr(sel, metric)
            rows.append((m, seed, "", f"selection_{metric}", "" if value is None else repr(value)))
    return rows


def write_long_csv(results: Sequence[RunResult], path: str | Path) -> Path:
    """The long-format CSV (model, seed, scale, metric, value) of one or more runs, written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "seed", "scale", "metric", "value"])
    for result in results:
        writer.writerows(long_csv_rows(result))
    write_text_atomic(path, buf.getvalue())
    return Path(path)


def write_outputs(result: RunResult, run_dir: Path) -> dict[str, Path]:
    """results.json, results.csv, the curve and (scale-channel models) the selection heatmap of one run."""
    files = {
        "results": save_results(result, run_dir / "results.json"),
        "csv": write_long_csv([result], run_dir / "results.csv"),
    }
    curve = plot_curves([result], run_dir / "curve", columns=RUN_CURVE_COLUMNS, formats=RUN_FORMATS)
    files.update(curve_png=curve[0], curve_svg=curve[1], curve_csv=curve[2])
    if result.scale_selection is not None:
        sel = plot_selection(
            [result], run_dir / "selection", columns=RUN_SELECTION_COLUMNS, formats=RUN_FORMATS
        )
        files.update(selection_png=sel[0], selection_svg=sel[1], selection_csv=sel[2])
    return files


def existing_files(run_dir: Path) -> dict[str, Path]:
    """The output files a finished run directory holds."""
    names = {
        "results": "results.json",
        "csv": "results.csv",
        "curve_png": "curve.png",
        "curve_svg": "curve.svg",
        "curve_csv": "curve.csv",
        "selection_png": "selection.png",
        "selection_svg": "selection.svg",
        "selection_csv": "selection.csv",
    }
    return {k: run_dir / v for k, v in names.items() if (run_dir / v).is_file()}


# ---------------------------------------------------------------------------------------------------------
# The run


def run_evaluation(config: EvalConfig) -> RunOutcome:
    """Run the protocol for one seed: resolve, train (or resume), select on validation, test every scale, write.

    A finished run directory (``done`` present) is not run again: its results are loaded and returned with
    ``reused=True``. An interrupted one needs ``config.resume``.
    """
    s = _setup(config)
    d = Dist()
    if config.distributed:
        d, s.device = init_distributed(s.device)
    run_dir = s.run_dir
    if (run_dir / DONE).is_file():
        results = check_done(run_dir)
        return RunOutcome(
            run_dir, load_results(results), existing_files(run_dir), reused=True, run_hash=s.run_hash
        )
    state = read_run_state(
        run_dir, s.run_hash, resume=config.resume, epochs=s.recipe.epochs, schema=ClassificationRunState
    )
    t_start = time.perf_counter()

    from scalebench.models import count_parameters, create_model

    torch.manual_seed(derive_seed(config.seed, "init"))
    model = create_model(
        config.model,
        num_classes=s.built.num_classes,
        in_channels=s.built.channels,
        quick=config.preset == "quick",
        **config.model_config_overrides,
    ).to(s.device, memory_format=torch.channels_last)
    optimizer = _optimizer(model, s.recipe)
    if d.main:  # only now: a config that cannot be built leaves no run directory behind
        with writing(run_dir):
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(run_dir / "config.json", {"run_hash": s.run_hash, **s.identity})
    train_ds, val_ds = s.built.dataset("train"), s.built.dataset("val")
    n_train, n_val = _n(train_ds, config.limit), _n(val_ds, config.limit)
    if n_train == 0 or n_val == 0:
        raise ScalebenchError(f"Dataset {s.built.build_id!r} has an empty train or val split; rebuild it.")

    history: list[dict[str, Any]] = []
    best_epoch, best_val, train_seconds, start_epoch = 0, -1.0, 0.0, 1
    if state is not None:
        with writing(run_dir):  # may redo an interrupted copy of best.safetensors
            restore_run_state(state, run_dir, model, optimizer, s.device)
        history, best_epoch, best_val = state["history"], state["best_epoch"], state["best_val_accuracy"]
        train_seconds, start_epoch = state["train_seconds"], state["epoch"] + 1
    earlier_seconds = train_seconds  # spent in earlier, interrupted sessions
    net = wrap(model, s.device, d)

    with Progress(config.progress if d.main else "none") as progress:
        if state is not None:
            unchecked = state.get("sha256") is None
            note = " (its state.json, from an older scalebench, records no checksums: files not verified)"
            progress.log(f"resuming {run_dir.name} after epoch {state['epoch']}{note if unchecked else ''}")
        for epoch in range(start_epoch, s.recipe.epochs + 1):
            t0 = time.perf_counter()
            loss, acc = _train_epoch(model, optimizer, train_ds, n_train, epoch, s, progress, net, d)
            model.eval()
            before_val = state_snapshot(model)
            val_correct, val_total, _ = evaluate_dataset(
                model, val_ds, n=n_val, device=s.device, batch_size=s.recipe.eval_batch_size,
                micro_batch_size=s.recipe.micro_batch_size, workers=_num_workers(config, n_val, s.device),
                amp=config.amp, d=d,
            )  # fmt: skip
            check_state_unchanged(model, before_val, "validation")
            val_acc = val_correct / val_total
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            lr_now = learning_rate(s.recipe, epoch - 1, 0, 1)
            history.append(
                EpochRecord(epoch=epoch, lr=lr_now, train_loss=loss, train_accuracy=acc, val_accuracy=val_acc,
                            seconds=seconds).model_dump()
            )  # fmt: skip
            progress.log(
                f"epoch {epoch}: train loss {loss:.4f} acc {acc:.3f}, val acc {val_acc:.4f} ({seconds:.1f}s)"
            )
            better = val_acc > best_val  # strictly better: the earliest epoch wins ties
            if better:
                best_epoch, best_val = epoch, val_acc
            if d.main:  # every rank holds the same weights; rank 0 writes them
                with writing(run_dir):
                    save_epoch_checkpoint(
                        run_dir, model, optimizer, epoch=epoch, better=better,
                        state={"run_hash": s.run_hash, "history": history, "best_epoch": best_epoch,
                               "best_val_accuracy": best_val, "train_seconds": train_seconds},
                    )  # fmt: skip
            d.barrier()
            if (
                config.stop_after_epoch is not None
                and epoch >= config.stop_after_epoch
                and epoch < s.recipe.epochs
            ):
                progress.log(f"stopped after epoch {epoch}; continue with --resume")
                return RunOutcome(run_dir, None, stopped_after_epoch=epoch)

        # Final evaluation: the best checkpoint, every requested scale, in eval mode; the test sets are opened here.
        load_weights(model, run_dir / BEST)
        checkpoint_sha = file_digest(run_dir / BEST, "sha256")
        model.eval()
        sigmas = _selection_info(model, s.card)
        before = state_snapshot(model)
        t_eval = time.perf_counter()
        per_scale, selection = [], []
        n_test_images = 0
        for scale in s.scales:
            test_ds = s.built.dataset("test", scale)
            n_test = _n(test_ds, config.limit)
            progress.start(f"test scale {scale:.3g}", math.ceil(n_test / s.recipe.eval_batch_size))
            correct, total, counts = evaluate_dataset(
                model, test_ds, n=n_test, device=s.device, batch_size=s.recipe.eval_batch_size,
                micro_batch_size=s.recipe.micro_batch_size, workers=_num_workers(config, n_test, s.device),
                selection_channels=len(sigmas) if sigmas else None, amp=config.amp, progress=progress, d=d,
            )  # fmt: skip
            progress.end(f"acc {correct / total:.4f}")
            per_scale.append(
                ClassificationScaleResult(scale=scale, correct=correct, total=total, accuracy=correct / total)
            )
            selection.append(counts)
            n_test_images += total
        eval_seconds = time.perf_counter() - t_eval
        check_state_unchanged(model, before, "testing")

    n_epochs_images = sum(1 for _ in history) * n_train
    train_flops, infer_flops = model_flops(model, (s.built.channels, *s.built.canvas), s.built.num_classes)
    result = RunResult(
        created_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        model=ModelInfo(
            name=config.model, config=s.model_config, config_hash=s.run_hash,
            card=s.card.model_dump(mode="json"), num_params=count_parameters(model),
            train_flops_per_image=train_flops, inference_flops_per_image=infer_flops,
        ),
        dataset=DatasetInfo(
            name=s.built.name, build_id=s.built.build_id, version=str(s.built.version),
            manifest_sha256=s.built.manifest_sha256, train_scale=float(s.built.train_scale), canvas=_canvas(s.built.canvas),
            channels=int(s.built.channels), num_classes=int(s.built.num_classes), train_size=n_train, val_size=n_val,
            embedded=bool(getattr(s.built, "embedded", False)),
        ),
        seed=config.seed,
        limit=config.limit,
        training=TrainingInfo(
            preset=config.preset, recipe=s.recipe.model_dump(mode="json"), best_epoch=best_epoch,
            best_val_accuracy=best_val, history=[EpochRecord(**h) for h in history],
        ),
        per_scale=per_scale,
        summary=build_summary(per_scale, float(s.built.train_scale)),
        scale_selection=build_scale_selection(s.scales, sigmas, selection) if sigmas else None,
        checkpoint_sha256=checkpoint_sha,
        timings=Timings(
            train_seconds=train_seconds, eval_seconds=eval_seconds,
            total_seconds=earlier_seconds + (time.perf_counter() - t_start),
            train_images_per_second=n_epochs_images / train_seconds if train_seconds > 0 else 0.0,
            eval_images_per_second=n_test_images / eval_seconds if eval_seconds > 0 else 0.0,
        ),
        environment=environment_info(s.device, config.amp),
    )  # fmt: skip
    if not d.main:
        d.barrier()  # rank 0 writes the outputs and ``done``
        return RunOutcome(run_dir, result, {}, run_hash=s.run_hash)
    with writing(run_dir):
        files = write_outputs(result, run_dir)
        write_text_atomic(run_dir / DONE, file_digest(files["results"], "sha256") + "\n")
    d.barrier()
    return RunOutcome(run_dir, result, files, run_hash=s.run_hash)


@contextlib.contextmanager
def writing(folder: Path) -> Iterator[None]:
    """Turn an operating-system error while writing into ``folder`` (read-only, disk full, no permission) into
    one ScalebenchError naming the file, the error and what to do, instead of a traceback."""
    try:
        yield
    except OSError as err:
        code = errno.errorcode.get(err.errno or 0, "")
        raise ScalebenchError(
            f"Cannot write {err.filename or folder}: {err.strerror or err} ({code or 'OSError'}); make {folder} "
            "writable and free some space, or choose another --out (an interrupted run continues with --resume)."
        ) from None


def check_done(run_dir: str | Path) -> Path:
    """The ``results.json`` of a finished run, after checking it against the sha256 its ``done`` marker records.

    Raises:
        ScalebenchError: when the results are missing or were changed after the run finished (restore them,
            or delete the run folder to run again).
    """
    run_dir = Path(run_dir)
    results, done = run_dir / "results.json", run_dir / DONE
    recorded = done.read_text().strip()
    if not results.is_file():
        raise ScalebenchError(
            f"{run_dir} is marked finished ({DONE}) but has no results.json; delete {run_dir} to run again."
        )
    found = file_digest(results, "sha256")
    if found != recorded:
        raise ScalebenchError(
            f"{results} has sha256 {found}, but {done} records {recorded or 'nothing'}: the results were edited "
            f"after the run finished. Restore the original results.json, or delete {run_dir} to run again."
        )
    return results


def run_seeds(config: EvalConfig, seeds: Sequence[int]) -> tuple[list[RunOutcome], dict[str, Path]]:
    """Run several seeds of one config; with more than one, also draw the mean ± std curve over seeds.

    The group's files go to ``<out>/<model>__<dataset>__seeds-<seeds>__<hash>/`` (curve and long CSV).
    """
    outcomes = [run_evaluation(config.model_copy(update={"seed": seed})) for seed in seeds]
    done = [o.result for o in outcomes if o.result is not None]
    files: dict[str, Path] = {}
    if len(seeds) > 1 and len(done) == len(seeds) and all(o.files for o in outcomes):  # not on ranks > 0
        group_hash = config_hash({"runs": [o.run_dir.name for o in outcomes]})
        first = done[0]
        group = Path(config.out) / (
            f"{config.model}__{first.dataset.build_id}__seeds-{'-'.join(str(x) for x in seeds)}__{group_hash}"
        )
        curve = plot_curves(done, group / "curve", columns=RUN_CURVE_COLUMNS, formats=RUN_FORMATS)
        files = {"curve_png": curve[0], "curve_svg": curve[1], "curve_csv": curve[2]}
        files["csv"] = write_long_csv(done, group / "results.csv")
    return outcomes, files


def format_summary(outcome: RunOutcome) -> str:
    """A short terminal summary of one run."""
    r = outcome.result
    if r is None:
        return f"Run stopped after epoch {outcome.stopped_after_epoch}: {outcome.run_dir} (continue with --resume)"
    flag = f", --limit {r.limit}: SMOKE RUN, not comparable" if r.limit else ""
    lines = [
        f"{r.model.name} on {r.dataset.build_id} (seed {r.seed}, {r.training.preset} preset, train scale "
        f"{r.dataset.train_scale:g}, best epoch {r.training.best_epoch}{flag}){' [reused]' if outcome.reused else ''}",
        "  scale    " + " ".join(f"{x.scale:>6.3g}" for x in r.per_scale),
        "  accuracy " + " ".join(f"{x.accuracy:>6.3f}" for x in r.per_scale),
    ]
    sm = r.summary
    ratio = "n/a" if sm.generalisation_ratio is None else f"{sm.generalisation_ratio:.3f}"
    lines.append(
        f"  train-scale acc {sm.train_scale_accuracy:.4f} | mean {sm.mean_accuracy:.4f} | worst "
        f"{sm.worst_accuracy:.4f} at {sm.worst_scale:.3g} | ratio worst/train {ratio}"
    )
    if r.scale_selection is not None:
        sel = r.scale_selection
        rho = "n/a" if sel.spearman_rho is None else f"{sel.spearman_rho:.3f}"
        slope = "n/a" if sel.slope_per_octave is None else f"{sel.slope_per_octave:.2f}"
        lines.append(f"  scale selection: Spearman rho {rho}, slope {slope} channels/octave")
    if outcome.reused:
        lines.append(
            f"  reused: {outcome.run_dir} is a finished run of the same resolved config (run hash "
            f"{outcome.run_hash or r.model.config_hash}) whose results match its done marker; delete that folder "
            "to run again"
        )
    lines.append(f"  results: {outcome.files.get('results', outcome.run_dir / 'results.json')}")
    if "curve_png" in outcome.files:
        lines.append(f"  curve: {outcome.files['curve_png']}")
    if "selection_png" in outcome.files:
        lines.append(f"  selection heatmap: {outcome.files['selection_png']}")
    return "\n".join(lines)
