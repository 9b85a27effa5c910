"""The machinery every task's run shares: devices, seeds, batches, the training step, evaluation batches, state
checks, the environment record and the run directory's files.

:mod:`scalebench.benchmark.protocol` runs the one loop of every task with these parts; a task
(:mod:`scalebench.benchmark.tasks`) adds its loss, its per-scale counts and its extras. What the parts
guarantee:

- every random stream is drawn from (seed, purpose, epoch) (:func:`derive_seed`) and the learning rate is a
  pure function of (epoch, step) (:func:`learning_rate`), so the epoch number is a run's whole RNG state and a
  resumed run repeats the epochs it did not finish exactly (on CPU with a fixed thread count);
- :func:`train_epoch` normalises a task's summed loss by the batch's normaliser (images, or summed class
  weights of pixels), so that micro-batches (gradient accumulation) and data-parallel shares
  (:mod:`scalebench.benchmark.distributed`) give the update of the whole batch;
- :func:`evaluation_batches` refuses a model in training mode, and :func:`check_state_unchanged` compares every
  parameter and buffer bit for bit around validation and testing;
- a run directory is written through :func:`writing` (an operating-system error is one line naming the file),
  and ``done`` (:data:`DONE`) is written last and holds the sha256 of ``results.json`` (:func:`check_done`).

Augmentation (flips, shifts; never a rescaling) moves a segmentation mask with its image, the mask's new pixels
being background (0), as the image's are black.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import scalebench
from scalebench.benchmark.distributed import Dist
from scalebench.checks import ScalebenchError
from scalebench.fileio import file_digest, write_text_atomic
from scalebench.progress import Progress
from scalebench.results import AnyRunResult, Environment
from scalebench.results.recipe import Recipe

DONE = "done"
#: The run's identity (run hash, model, config, recipe, build, scales, seed), written when it starts.
CONFIG = "config.json"


# ---------------------------------------------------------------------------------------------------------
# Devices and seeds


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
    """``--amp`` (bf16 autocast, see :func:`autocast`) is for CUDA only: raise on any other device."""
    if amp and device.type != "cuda":
        raise ScalebenchError(
            "--amp needs --device cuda: bf16 autocast on this CPU made training pathologically slow "
            "(docs/protocol.md). Drop --amp for CPU runs."
        )


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from the run seed and a purpose (e.g. ``"order", epoch``): streams never overlap.

    Example:
        >>> derive_seed(0, "order", 1) != derive_seed(0, "order", 2)
        True
    """
    text = "/".join(str(p) for p in (seed, *parts))
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``amp``, else nothing."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """``x`` on ``device`` (non-blocking), channels-last when asked and 4-D."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def model_to_device(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """``model`` on ``device``, its 4-D parameters and buffers channels-last when asked.

    ``Module.to(memory_format=torch.channels_last)`` refuses a model with any 5-D tensor (DSS keeps its
    scale-convolution kernels as (out, in, scales, k, k)), so only the 4-D tensors are converted, in place, as
    ``Module.to`` itself would convert them; a model's function does not depend on the memory format.
    """
    model = model.to(device)
    if channels_last:
        with torch.no_grad():
            for t in [*model.parameters(), *model.buffers()]:
                if t.dim() == 4:
                    t.data = t.data.contiguous(memory_format=torch.channels_last)
    return model


def chunks(n: int, size: int | None) -> list[slice]:
    """Slices of at most ``size`` (all of ``n`` when None): the micro-batches of a batch.

    Example:
        >>> chunks(5, 2)
        [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    size = size or n
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


# ---------------------------------------------------------------------------------------------------------
# Batches


def read_batch(ds: Any, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch from a dataset with ``read_batch`` / ``__getitems__``, else item by item; uint8 images become
    floats in [0, 1], labels (class indices or masks) int64."""
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


class BatchReader(torch.utils.data.Dataset):
    """Item i is the whole batch ``batches[i]``: workers read batches (lazily opened HDF5) in parallel."""

    def __init__(self, ds: Any, batches: list[list[int]]) -> None:
        self.ds, self.batches = ds, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return read_batch(self.ds, self.batches[i])


def load_batches(
    ds: Any, batches: list[list[int]], workers: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of ``ds`` in order, read by ``workers`` DataLoader processes (pinned memory on CUDA)."""
    loader = torch.utils.data.DataLoader(
        BatchReader(ds, batches),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers > 0 else None,
    )
    yield from loader


def num_workers(requested: int | None, n_images: int, device: torch.device) -> int:
    """DataLoader workers: ``requested``, else none for small sets, 1 on CPU, 4 on CUDA."""
    if requested is not None:
        return requested
    if n_images < 2048:
        return 0
    return 4 if device.type == "cuda" else 1


def limited(ds: Any, limit: int | None) -> int:
    """How many images of ``ds`` a run uses (``--limit``)."""
    n = len(ds)
    return min(n, limit) if limit is not None else n


def missing_classes(ds: Any, n: int) -> list[int]:
    """The classes of a classification split (``ds.labels``, one per image) absent from its first ``n`` images:
    what ``--limit`` (the first N images, not a stratified sample) leaves out. Empty for other datasets."""
    labels = getattr(ds, "labels", None)
    if labels is None or np.ndim(labels) != 1 or n >= len(labels):
        return []
    return sorted(set(np.unique(labels).tolist()) - set(np.unique(labels[:n]).tolist()))


class Custom:
    """A non-standard training (Python API): ``loss(logits, target) -> mean loss`` replaces the task's loss,
    ``optimizer(params) -> optimizer`` the recipe's optimizer, and ``scheduler(optimizer) -> scheduler`` the
    recipe's schedule (stepped once after each epoch; the recipe's per-step learning rate is then not set)."""

    def __init__(self, loss: Any = None, optimizer: Any = None, scheduler: Any = None) -> None:
        self.loss, self.optimizer, self.scheduler = loss, optimizer, scheduler

    def info(self) -> dict[str, Any]:
        """What the results record of it: each callable's name and source sha256."""
        from scalebench.api import callable_info

        return {k: callable_info(getattr(self, k)) for k in ("loss", "optimizer", "scheduler")}


class CustomLoss:
    """A user's loss ``fn(logits, target) -> mean loss over the micro-batch`` as a task loss (summed over the
    micro-batch, normalised by the images; correct predictions counted by argmax)."""

    counts_hits = True

    def __init__(self, fn: Any) -> None:
        self.fn, self.info = fn, {}

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
        loss = self.fn(logits, target)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise ScalebenchError("loss_fn must return a scalar tensor (the mean loss of the micro-batch).")
        return loss * len(target), int((logits.detach().argmax(1) == target).sum())

    def denominator(self, target: torch.Tensor) -> float:
        return float(len(target))


@dataclass
class Loop:
    """How one process runs batches: the recipe, the seed, the device, AMP, the memory format, workers, the
    data-parallel rank and the progress display."""

    recipe: Recipe
    device: torch.device
    seed: int = 0
    amp: bool = False
    channels_last: bool = True
    workers: int | None = None
    d: Dist = field(default_factory=Dist)
    progress: Progress = field(default_factory=lambda: Progress("none"))
    #: a custom scheduler sets the learning rate (the recipe's per-step rate is then not set)
    own_schedule: bool = False


def evaluation_batches(
    model: nn.Module, ds: Any, n: int, loop: Loop, label: str | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The (input, target) micro-batches on the device of ``ds[:n]`` in eval batches (``eval_batch_size``);
    distributed, rank r takes batches r, r + W, ... (the caller sums its counts over ranks). With ``label``,
    the batches are a progress phase (the caller ends it). The model must be in eval mode."""
    if model.training:
        raise ScalebenchError("Evaluation needs the model in eval mode (call model.eval()).")
    size, d = loop.recipe.eval_batch_size, loop.d
    batches = [list(range(i, min(i + size, n))) for i in range(0, n, size)][d.rank :: d.world]
    if label is not None:
        loop.progress.start(label, len(batches))
    for x, y in load_batches(ds, batches, num_workers(loop.workers, n, loop.device), loop.device):
        for part in chunks(len(y), loop.recipe.micro_batch_size):
            yield (
                to_device(x[part], loop.device, loop.channels_last),
                y[part].to(loop.device, non_blocking=True),
            )
        loop.progress.advance()


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


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimizer over the trainable parameters."""
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


def _scale_augment(
    x: torch.Tensor, y: torch.Tensor, recipe: Recipe, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image rescaled about its centre by a factor drawn log-uniformly from ``recipe.scale_augmentation``
    (:func:`scalebench.models.rescaling_peers.zoom_keep_size`: sizes kept to the canvas parity, anti-aliased
    when shrinking, zero fill; a mask with nearest interpolation, so its labels stay labels)."""
    from scalebench.models.rescaling_peers import zoom_keep_size  # the one centred zoom of the package

    lo, hi = recipe.scale_augmentation or (1.0, 1.0)
    logs = torch.empty(x.shape[0]).uniform_(math.log(lo), math.log(hi), generator=gen)
    factors = logs.exp().tolist()
    mode = recipe.scale_augmentation_interpolation
    x = torch.cat([zoom_keep_size(img[None], f, mode=mode, antialias=mode != "nearest")
                   for img, f in zip(x, factors, strict=True)])  # fmt: skip
    if y.dim() == 3:
        y = torch.cat([zoom_keep_size(m[None, None].float(), f, mode="nearest")[0].to(y.dtype)
                       for m, f in zip(y, factors, strict=True)])  # fmt: skip
    return x, y


def augment(
    x: torch.Tensor, y: torch.Tensor, recipe: Recipe, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips / shifts drawn from ``gen`` (CPU), and the random rescaling of ``recipe.scale_augmentation``
    (the augmented track) first when the recipe has one. A mask ``y`` (B, H, W) moves with its image, its new
    pixels background (0); class labels are left as they are."""
    if recipe.scale_augmentation is not None:
        x, y = _scale_augment(x, y, recipe, gen)
    if recipe.augmentation == "none":
        return x, y
    b, mask = x.shape[0], y.dim() == 3
    if "hflip" in recipe.augmentation:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None], y.flip(-1), y) if mask else y
    if "translate" in recipe.augmentation and recipe.translate_pixels > 0:
        p = recipe.translate_pixels
        shifts = torch.randint(-p, p + 1, (b, 2), generator=gen).tolist()
        h, w = x.shape[-2:]

        def shift(t: torch.Tensor) -> torch.Tensor:
            padded = nn.functional.pad(t, (p, p, p, p))
            return torch.stack([padded[i, ..., p + dy : p + dy + h, p + dx : p + dx + w]
                                for i, (dy, dx) in enumerate(shifts)])  # fmt: skip

        x, y = shift(x), (shift(y) if mask else y)
    return x, y


def train_epoch(
    model: nn.Module, net: nn.Module, optimizer: torch.optim.Optimizer, ds: Any, n: int, epoch: int,
    loss_fn: Any, loop: Loop,
) -> tuple[float, float | None]:  # fmt: skip
    """One epoch (1-based ``epoch``) of ``loss_fn`` (a task's :class:`~scalebench.benchmark.tasks.Loss`); returns
    the mean training loss and accuracy (None for a task without one).

    Each optimizer step's gradient is that of the summed loss of the batch over its normaliser
    (``loss_fn.denominator``): micro-batches accumulate, and distributed (``loop.d.active``, ``net`` the
    DDP-wrapped ``model``) each rank trains on its share of every batch with the normaliser summed over ranks
    (see :mod:`scalebench.benchmark.distributed`); loss and counts are summed over ranks.
    """
    recipe, d, device = loop.recipe, loop.d, loop.device
    order = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(loop.seed, "order", epoch)))
    aug_gen = torch.Generator().manual_seed(derive_seed(loop.seed, "augment", epoch))
    torch.manual_seed(derive_seed(loop.seed, "torch", epoch))  # dropout and any other in-model randomness
    batches = [order[i : i + recipe.batch_size].tolist() for i in range(0, n, recipe.batch_size)]
    model.train()
    sums = {"loss": 0.0, "norm": 0.0, "hits": 0, "seen": 0}
    loop.progress.start(f"epoch {epoch}/{recipe.epochs}", len(batches))
    augmenting = recipe.augmentation != "none" or recipe.scale_augmentation is not None
    shares = [d.share(len(b)) for b in batches]
    read = batches  # augmentation draws for the whole batch, so a rank then reads it all and keeps its share
    if d.active and not augmenting:
        read = [b[lo:hi] if hi > lo else b[:1] for b, (lo, hi) in zip(batches, shares, strict=True)]
    for step, (x, y) in enumerate(load_batches(ds, read, num_workers(loop.workers, n, device), device)):
        if not loop.own_schedule:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(recipe, epoch - 1, step, len(batches))
        x, y = augment(x, y, recipe, aug_gen)
        weight = 1.0
        if d.active:
            lo, hi = shares[step]
            if augmenting:
                x, y = (x[lo:hi], y[lo:hi]) if hi > lo else (x[:1], y[:1])
            weight = 1.0 if hi > lo else 0.0
        _step(model, net, optimizer, x, y, loss_fn, loop, weight, sums)
        loop.progress.advance()
    if d.active:
        sums = dict(zip(sums, d.sum(list(sums.values())), strict=True))
    if not math.isfinite(sums["loss"]):
        raise ScalebenchError(
            f"Training loss became non-finite in epoch {epoch} ({sums['loss']}); lower --lr or check the model."
        )
    loss = sums["loss"] / sums["norm"] if sums["norm"] > 0 else 0.0
    accuracy = sums["hits"] / sums["seen"] if loss_fn.counts_hits and sums["seen"] else None
    loop.progress.end(f"loss {loss:.4f}" + (f" acc {accuracy:.3f}" if accuracy is not None else ""))
    return loss, accuracy


def _step(
    model: nn.Module, net: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
    loss_fn: Any, loop: Loop, weight: float, sums: dict[str, float],
) -> None:  # fmt: skip
    """One optimizer step on a batch (this rank's share of it, with ``weight`` 0 for a stand-in image)."""
    d, device = loop.d, loop.device
    local = float(loss_fn.denominator(y)) * weight
    norm = d.sum([local])[0] / d.world if d.active else local  # DDP averages the ranks' gradients
    optimizer.zero_grad(set_to_none=True)
    parts = chunks(len(y), loop.recipe.micro_batch_size)
    for k, part in enumerate(parts):
        xb = to_device(x[part], device, loop.channels_last)
        yb = y[part].to(device, non_blocking=True)
        with net.no_sync() if d.active and k < len(parts) - 1 else contextlib.nullcontext():
            with autocast(device, loop.amp):
                loss, hits = loss_fn(net(xb), yb)
            if norm > 0:
                (loss / norm if not d.active else loss * (weight / norm)).backward()
        if weight:
            sums["loss"] += float(loss.detach())
            sums["hits"] += hits
    optimizer.step()
    d.broadcast_buffers(model)
    sums["norm"] += local
    sums["seen"] += len(y) if weight else 0


# ---------------------------------------------------------------------------------------------------------
# State checks


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


# ---------------------------------------------------------------------------------------------------------
# Environment


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
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
        git_commit=git_commit(),
    )


# ---------------------------------------------------------------------------------------------------------
# The run directory


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


def write_done(run_dir: Path) -> Path:
    """Write ``done`` last, atomically: the sha256 of the run's ``results.json``."""
    return write_text_atomic(run_dir / DONE, file_digest(run_dir / "results.json", "sha256") + "\n")


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


def run_files(run_dir: Path) -> dict[str, Path]:
    """The files a run directory holds, by name (results, figures, checkpoints, ``done``)."""
    return {p.name: p for p in sorted(run_dir.iterdir()) if p.is_file() and not p.name.startswith(".")}


def long_csv_rows(result: AnyRunResult) -> list[tuple[str, int, str, str, str]]:
    """Rows (model, seed, scale, metric, value): every number of each per-scale record, then the summary (and a
    classification run's scale-selection statistics) with an empty scale."""
    m, seed = result.model.name, result.seed
    rows: list[tuple[str, int, str, str, str]] = []
    for r in result.per_scale:
        for metric, value in r.model_dump().items():
            if metric != "scale" and not isinstance(value, list):
                rows.append((m, seed, repr(r.scale), metric, repr(value)))
    for metric, value in result.summary.model_dump().items():
        rows.append((m, seed, "", metric, "" if value is None else repr(value)))
    selection = getattr(result, "scale_selection", None)
    if selection is not None:
        for metric in ("spearman_rho", "slope_per_octave"):
            value = getattr(selection, metric)
            rows.append((m, seed, "", f"selection_{metric}", "" if value is None else repr(value)))
    return rows


def write_long_csv(results: Sequence[AnyRunResult], path: str | Path) -> Path:
    """The long-format CSV (model, seed, scale, metric, value) of one or more runs, written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "seed", "scale", "metric", "value"])
    for result in results:
        writer.writerows(long_csv_rows(result))
    write_text_atomic(path, buf.getvalue())
    return Path(path)
