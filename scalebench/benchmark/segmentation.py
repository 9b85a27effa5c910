r"""The segmentation protocol (issue 6): train on one training set of the multi-scale Fashion-MNIST segmentation
set, select on its validation set, test at every object scale; mIoU per scale, learned σ per layer, receptive
field at the end of the encoder.

Pintea, Tomen, Goes, Loog & van Gemert (2021), "Resolution learning in deep convolutional networks using
scale-space theory", IEEE TIP 30: 8342-8353, Experiments 1.1(B) and 1.2(B):

- loss: cross-entropy weighted by the inverse class frequency of the training masks,
  :math:`w_c = N / (C_\mathrm{present} N_c)` for the classes present (0 for absent ones), with the ignore
  index 255 (ignored pixels contribute neither to the loss nor to its normalisation);
- optimiser: Adam, lr 1e-4, betas (0.9, 0.999); batch 1 in the ``paper`` preset (50 epochs), batch 4 and
  2 epochs in the ``quick`` preset (CPU);
- metric: per object class c = 1..10, :math:`\mathrm{IoU}_c = |P_c \cap G_c| / |P_c \cup G_c|` over the
  non-ignored pixels of a test set, mIoU = mean over the classes with a non-empty union.

It reuses the classification protocol's pieces: :class:`~scalebench.benchmark.config.EvalConfig` and
:class:`~scalebench.benchmark.config.Recipe`, the run hash, seeds, device choice, safetensors checkpoints and
the environment record. A run directory ``<out>/<model>/<build>/train<scales>/seed<k>-<hash>/`` holds
``config.json``, ``best.safetensors``, ``results.json`` (:class:`SegmentationRunResult`), the figures and
``done`` (written last); a finished run is not run again.

Not implemented: resuming an interrupted segmentation run, multi-seed curves, ``--verify``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalebench.benchmark import metrics
from scalebench.benchmark.checkpoint import load_weights, save_weights
from scalebench.benchmark.config import EvalConfig, Recipe, resolve_recipe, run_identity
from scalebench.benchmark.protocol import _environment, _optimizer, derive_seed, learning_rate, select_device
from scalebench.benchmark.results import (
    ModelInfo,
    SegmentationDatasetInfo,
    SegmentationEpoch,
    SegmentationRunResult,
    SegmentationScaleResult,
    SegmentationTraining,
    Timings,
    build_segmentation_summary,
    load_segmentation_results,
    save_results,
)
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.segmentation import IGNORE_INDEX, SegmentationBuild, load_segmentation
from scalebench.fileio import config_hash, write_json_atomic, write_text_atomic

#: Quick preset (CPU): the paper's optimiser and learning rate, small batches, two epochs.
SEG_QUICK_RECIPE: dict[str, Any] = {
    "epochs": 2,
    "batch_size": 4,
    "eval_batch_size": 4,
    "optimizer": "adam",
    "lr": 1e-4,
    "weight_decay": 0.0,
    "schedule": "constant",
}
DONE = "done"


# --- loss and metrics --------------------------------------------------------------------------------------


def class_weights(masks: Tensor | np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Inverse class frequency weights w_c = N / (C_present N_c), 0 for absent classes; ignored pixels skipped.

    Example:
        >>> class_weights(torch.tensor([[0, 0, 0, 1, 255]]), 3).tolist()
        [0.6666666865348816, 2.0, 0.0]
    """
    return weights_from_counts(class_counts(masks, num_classes, ignore_index))


def class_counts(masks: Tensor | np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Pixel count per class (int64, length ``num_classes``), ignored pixels skipped."""
    m = torch.as_tensor(np.asarray(masks)).reshape(-1).long()
    m = m[m != ignore_index]
    if m.numel() and (int(m.min()) < 0 or int(m.max()) >= num_classes):
        raise ScalebenchError(f"Mask labels must lie in 0..{num_classes - 1} or be {ignore_index}.")
    return torch.bincount(m, minlength=num_classes)


def weights_from_counts(counts: Tensor) -> Tensor:
    """w_c = N / (C_present N_c) for the classes present, 0 for the others (float32)."""
    counts = counts.double()
    num_classes = counts.numel()
    present = counts > 0
    w = torch.zeros(num_classes, dtype=torch.float64)
    if present.any():
        w[present] = counts.sum() / (int(present.sum()) * counts[present])
    return w.float()


def segmentation_loss(logits: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted cross-entropy with ignore index 255: sum_i w_{y_i} (-log p_{i,y_i}) / sum_i w_{y_i}.

    Shapes: logits (B, C, H, W), target (B, H, W) int64.
    """
    return F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE_INDEX)


def iou_counts(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> tuple[list[int], list[int]]:
    """Per object class c = 1..C-1: (|P_c ∩ G_c|, |P_c ∪ G_c|) over pixels whose target is not ignored.

    Example:
        >>> pred = torch.tensor([[1, 1, 0, 2]]); target = torch.tensor([[1, 0, 255, 2]])
        >>> iou_counts(pred, target, 3)
        ([1, 1], [2, 1])
    """
    keep = target != ignore_index
    p = pred[keep].long()
    t = target[keep].long()
    conf = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )
    inter = conf.diag()
    union = conf.sum(0) + conf.sum(1) - inter
    return [int(v) for v in inter[1:]], [int(v) for v in union[1:]]


# --- the run -----------------------------------------------------------------------------------------------


@dataclass
class SegmentationOutcome:
    run_dir: Path
    result: SegmentationRunResult
    files: dict[str, Path]
    reused: bool = False


def resolve_segmentation_recipe(
    preset: str, paper_training: dict[str, Any], overrides: dict[str, Any]
) -> Recipe:
    """Quick: :data:`SEG_QUICK_RECIPE`; paper: the model card's ``paper_training`` (Adam 1e-4, batch 1, 50 epochs)."""
    if preset == "quick":
        return resolve_recipe("paper", SEG_QUICK_RECIPE, overrides)
    return resolve_recipe("paper", paper_training, overrides)


def _evaluate(
    model: nn.Module, ds: Any, n: int, batch: int, device: torch.device, num_classes: int
) -> tuple[list[int], list[int], int]:
    model.eval()
    inter = np.zeros(num_classes - 1, np.int64)
    union = np.zeros(num_classes - 1, np.int64)
    pixels = 0
    with torch.no_grad():
        for a in range(0, n, batch):
            x, y = ds.read_batch(list(range(a, min(n, a + batch))))
            pred = model(x.to(device)).argmax(1).cpu()
            i, u = iou_counts(pred, y, num_classes)
            inter += i
            union += u
            pixels += int((y != IGNORE_INDEX).sum())
    return inter.tolist(), union.tolist(), pixels


def run_segmentation(
    config: EvalConfig, train_scales: Sequence[float], *, progress: bool = True
) -> SegmentationOutcome:
    """Train ``config.model`` on the training set of ``train_scales``, test at every built (or requested) scale.

    Returns the outcome; writes ``results.json``, ``best.safetensors`` and the figures into the run directory.
    """
    from scalebench.models import count_parameters, create_model, get_model_card, resolve_config

    card = get_model_card(config.model)
    if card.task != "segmentation":
        raise ScalebenchError(
            f"Model {config.model!r} is a {card.task} model; the segmentation set needs a segmentation model: "
            "unet, njet-unet, ... (`scalebench models list --task segmentation`)."
        )
    built: SegmentationBuild = load_segmentation(config.dataset, root=config.root)
    train_ds = built.dataset("train", train_scales=train_scales)
    val_ds = built.dataset("val", train_scales=train_scales)
    scales = sorted(float(s) for s in (config.scales or built.test_scales))
    test_sets = {s: built.dataset("test", scale=s) for s in scales}
    recipe = resolve_segmentation_recipe(config.preset, card.paper_training, config.recipe_overrides)
    model_cfg = resolve_config(config.model, config.model_config_overrides, quick=config.preset == "quick")
    identity = {
        **run_identity(config, recipe, model_cfg, scales),
        "task": "segmentation",
        "train_scales": sorted(float(s) for s in train_scales),
        "dataset_manifest": built.manifest_sha256,
    }
    run_hash = config_hash(identity)
    tag = "-".join(f"{s:g}" for s in sorted(train_scales))
    run_dir = (
        Path(config.out) / config.model / built.build_id / f"train{tag}" / f"seed{config.seed}-{run_hash}"
    )
    if (run_dir / DONE).is_file():
        result = load_segmentation_results(run_dir / "results.json")
        return SegmentationOutcome(run_dir, result, _files(run_dir), reused=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "config.json", {"run_hash": run_hash, **identity})
    device = select_device(config.device)
    t0 = time.perf_counter()

    torch.manual_seed(derive_seed(config.seed, "init"))
    model = create_model(config.model, num_classes=built.num_classes, in_channels=built.channels,
                         quick=config.preset == "quick", **config.model_config_overrides).to(device)  # fmt: skip
    optimizer = _optimizer(model, recipe)
    lim = config.limit
    n_train = min(len(train_ds), lim) if lim else len(train_ds)
    n_val = min(len(val_ds), lim) if lim else len(val_ds)
    counts = torch.zeros(built.num_classes, dtype=torch.int64)
    for a in range(
        0, n_train, 64
    ):  # in blocks: the masks of a full training set do not fit in memory at once
        counts += class_counts(
            train_ds.read_batch(list(range(a, min(n_train, a + 64))))[1], built.num_classes
        )
    weights = weights_from_counts(counts).to(device)
    steps = math.ceil(n_train / recipe.batch_size)
    history: list[SegmentationEpoch] = []
    best = (-1.0, 0)
    best_path = run_dir / "best.safetensors"
    sha = ""
    seen = 0
    for epoch in range(1, recipe.epochs + 1):
        te = time.perf_counter()
        model.train()
        g = torch.Generator().manual_seed(derive_seed(config.seed, "order", epoch))
        order = torch.randperm(n_train, generator=g).tolist()
        total, count = 0.0, 0
        for step in range(steps):
            lr = learning_rate(recipe, epoch - 1, step, steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            x, y = train_ds.read_batch(idx)
            loss = segmentation_loss(model(x.to(device)), y.to(device), weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            seen += len(idx)
            if progress and (step % 10 == 0 or step == steps - 1):
                print(
                    f"  epoch {epoch}/{recipe.epochs} step {step + 1}/{steps} loss {total / count:.4f}",
                    flush=True,
                )
        vi, vu, _ = _evaluate(model, val_ds, n_val, recipe.eval_batch_size, device, built.num_classes)
        val_miou = metrics.mean_iou(vi, vu)
        sigmas = model.learned_sigmas() if hasattr(model, "learned_sigmas") else []
        history.append(SegmentationEpoch(epoch=epoch, lr=lr, train_loss=total / max(count, 1),
                                         val_mean_iou=val_miou, sigmas=sigmas,
                                         seconds=time.perf_counter() - te))  # fmt: skip
        if progress:
            print(
                f"epoch {epoch}: val mIoU {val_miou:.4f}; sigmas {[round(s, 3) for s in sigmas]}", flush=True
            )
        if val_miou > best[0]:
            best = (val_miou, epoch)
            sha = save_weights(model, best_path, {"model": config.model, "epoch": str(epoch)})
    train_seconds = time.perf_counter() - t0
    load_weights(model, best_path)
    model.to(device)
    t1 = time.perf_counter()
    per_scale = []
    n_eval = 0
    for s, ds in test_sets.items():
        n = min(len(ds), lim) if lim else len(ds)
        i, u, px = _evaluate(model, ds, n, recipe.eval_batch_size, device, built.num_classes)
        per_scale.append(SegmentationScaleResult(scale=s, intersections=i, unions=u,
                                                 mean_iou=metrics.mean_iou(i, u), pixels=max(px, 1), images=n))  # fmt: skip
        n_eval += n
    eval_seconds = time.perf_counter() - t1
    total_s = time.perf_counter() - t0
    result = SegmentationRunResult(
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        model=ModelInfo(
            name=config.model,
            config=model_cfg,
            config_hash=run_hash,
            card=card.model_dump(mode="json"),
            num_params=count_parameters(model),
        ),
        dataset=SegmentationDatasetInfo(
            name=built.name,
            build_id=built.build_id,
            version=built.version,
            manifest_sha256=built.manifest_sha256,
            train_scales=sorted(float(s) for s in train_scales),
            canvas=built.canvas,
            channels=built.channels,
            num_classes=built.num_classes,
            ignore_index=IGNORE_INDEX,
            train_size=n_train,
            val_size=n_val,
            embedded=built.embedded,
        ),
        seed=config.seed,
        limit=config.limit,
        training=SegmentationTraining(
            preset=config.preset,
            recipe=recipe.model_dump(mode="json"),
            class_weights=[float(w) for w in weights.cpu()],
            best_epoch=best[1],
            best_val_mean_iou=best[0],
            history=history,
        ),
        per_scale=per_scale,
        summary=build_segmentation_summary(per_scale),
        learned_sigmas=model.learned_sigmas() if hasattr(model, "learned_sigmas") else [],
        encoder_receptive_field=int(model.encoder_receptive_field())
        if hasattr(model, "encoder_receptive_field")
        else 1,
        checkpoint_sha256=sha,
        timings=Timings(
            train_seconds=train_seconds,
            eval_seconds=eval_seconds,
            total_seconds=total_s,
            train_images_per_second=seen / train_seconds if train_seconds > 0 else 0.0,
            eval_images_per_second=n_eval / eval_seconds if eval_seconds > 0 else 0.0,
        ),
        environment=_environment(device, False),
    )
    save_results(result, run_dir / "results.json")
    from scalebench.benchmark.segmentation_figures import plot_run_figures

    plot_run_figures(result, model, test_sets, run_dir, device=device)
    write_text_atomic(run_dir / DONE, run_hash + "\n")
    return SegmentationOutcome(run_dir, result, _files(run_dir))


def _files(run_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(run_dir.iterdir()) if p.is_file()}


def format_segmentation_summary(outcome: SegmentationOutcome) -> str:
    """One block of text: mIoU per scale, learned σ, receptive field, where the files are."""
    r = outcome.result
    lines = [
        f"{r.model.name} on {r.dataset.build_id} (train scales {', '.join(f'{s:g}' for s in r.dataset.train_scales)}), "
        f"seed {r.seed}{' (reused)' if outcome.reused else ''}: mean mIoU {r.summary.mean_miou:.4f}",
        "  mIoU per scale: " + ", ".join(f"s={p.scale:g}: {p.mean_iou:.4f}" for p in r.per_scale),
        f"  encoder receptive field {r.encoder_receptive_field} px"
        + (
            f"; learned sigma per layer: {', '.join(f'{s:.3f}' for s in r.learned_sigmas)}"
            if r.learned_sigmas
            else ""
        ),
        f"  results: {outcome.run_dir / 'results.json'}",
    ]
    return "\n".join(lines)


def run_segmentation_seeds(
    config: EvalConfig, seeds: Sequence[int], train_scales: str | Sequence[float] | None
) -> list[SegmentationOutcome]:
    """:func:`run_segmentation` for each seed; ``train_scales`` as given to ``--train-scales`` (default ``1``)."""
    from scalebench.checks import parse_float_list

    scales = parse_float_list(train_scales, "--train-scales") if train_scales is not None else [1.0]
    progress = config.progress != "none"
    return [run_segmentation(config.model_copy(update={"seed": s}), scales, progress=progress) for s in seeds]
