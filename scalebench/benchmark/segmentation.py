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
``done`` (written last); a finished run is not run again. Also shared with classification:

- epoch checkpoints and ``--resume`` (:mod:`scalebench.benchmark.checkpoint`): data order and in-model
  randomness depend only on (seed, epoch), so a resumed run ends bit for bit like an uninterrupted one on CPU;
- the batch loader (pinned memory and ``non_blocking`` copies on CUDA) and ``--amp`` (bf16 autocast around
  forward and loss, CUDA only);
- several seeds (``--seeds``) give an aggregate with mean ± sample std over seeds and a curve with a band;
- ``scalebench evaluate --verify`` (:mod:`scalebench.benchmark.verify`) re-evaluates a checkpoint.

Not implemented: data-parallel (DDP) training.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalebench.benchmark.checkpoint import (
    BEST,
    load_weights,
    read_run_state,
    restore_run_state,
    save_epoch_checkpoint,
)
from scalebench.benchmark.config import EvalConfig, Recipe, resolve_recipe, run_identity
from scalebench.benchmark.protocol import (
    _autocast,
    _batches,
    _n,
    _num_workers,
    _optimizer,
    _to_device,
    check_amp,
    check_done,
    check_state_unchanged,
    derive_seed,
    environment_info,
    learning_rate,
    select_device,
    state_snapshot,
)
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import match_scales
from scalebench.datasets_builders.segmentation import IGNORE_INDEX
from scalebench.fileio import config_hash, file_digest, write_json_atomic, write_text_atomic
from scalebench.results import (
    ModelInfo,
    SegmentationDatasetInfo,
    SegmentationEpoch,
    SegmentationRunResult,
    SegmentationScaleResult,
    SegmentationTraining,
    Timings,
    build_segmentation_summary,
    load_segmentation_results,
    metrics,
    save_results,
)

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
    return inter[1:].tolist(), union[1:].tolist()  # one device-to-host copy each


# --- the run -----------------------------------------------------------------------------------------------


@dataclass
class SegmentationOutcome:
    """What :func:`run_segmentation` leaves behind: the result (None if stopped early) and where the files are."""

    run_dir: Path
    result: SegmentationRunResult | None
    files: dict[str, Path]
    reused: bool = False
    stopped_after_epoch: int | None = None


def resolve_segmentation_recipe(
    preset: str, paper_training: dict[str, Any], overrides: dict[str, Any]
) -> Recipe:
    """Quick: :data:`SEG_QUICK_RECIPE`; paper: the model card's ``paper_training`` (Adam 1e-4, batch 1, 50 epochs)."""
    if preset == "quick":
        return resolve_recipe("paper", SEG_QUICK_RECIPE, overrides)
    return resolve_recipe("paper", paper_training, overrides)


@torch.inference_mode()
def evaluate_segmentation(
    model: nn.Module, ds: Any, *, n: int, batch_size: int, device: torch.device, num_classes: int,
    amp: bool = False, workers: int = 0,
) -> tuple[list[int], list[int], int]:  # fmt: skip
    """Per object class intersection and union counts (:func:`iou_counts`) summed over ``ds[:n]``, and the
    number of non-ignored pixels. The model must be in eval mode; batches are read by the classification
    protocol's loader (pinned memory on CUDA) and the forward runs under its autocast when ``amp``."""
    if model.training:
        raise ScalebenchError("evaluate_segmentation needs the model in eval mode (call model.eval()).")
    inter = torch.zeros(num_classes - 1, dtype=torch.int64)
    union = torch.zeros(num_classes - 1, dtype=torch.int64)
    pixels = 0
    batches = [list(range(a, min(n, a + batch_size))) for a in range(0, n, batch_size)]
    for x, y in _batches(ds, batches, workers, device):
        yb = y.to(device, non_blocking=True)
        with _autocast(device, amp):
            pred = model(_to_device(x, device, False)).argmax(1)
        i, u = iou_counts(pred, yb, num_classes)
        inter += torch.tensor(i)
        union += torch.tensor(u)
        pixels += int((yb != IGNORE_INDEX).sum())
    return inter.tolist(), union.tolist(), pixels


def _train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, ds: Any, n: int, epoch: int, recipe: Recipe,
    config: EvalConfig, weights: Tensor, device: torch.device, progress: bool,
) -> tuple[float, int, float]:  # fmt: skip
    """One epoch (1-based); returns (mean training loss, images seen, last learning rate).

    Order and in-model randomness depend only on (seed, epoch), as in the classification protocol, so a
    resumed run repeats the epochs it did not finish exactly.
    """
    model.train()
    g = torch.Generator().manual_seed(derive_seed(config.seed, "order", epoch))
    order = torch.randperm(n, generator=g).tolist()
    torch.manual_seed(derive_seed(config.seed, "torch", epoch))
    batches = [order[i : i + recipe.batch_size] for i in range(0, n, recipe.batch_size)]
    total, count, lr = 0.0, 0, recipe.lr
    for step, (x, y) in enumerate(_batches(ds, batches, _num_workers(config, n, device), device)):
        lr = learning_rate(recipe, epoch - 1, step, len(batches))
        for group in optimizer.param_groups:
            group["lr"] = lr
        yb = y.to(device, non_blocking=True)
        with _autocast(device, config.amp):
            loss = segmentation_loss(model(_to_device(x, device, False)).float(), yb, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(y)
        count += len(y)
        if progress and (step % 10 == 0 or step == len(batches) - 1):
            print(f"  epoch {epoch}/{recipe.epochs} step {step + 1}/{len(batches)} loss {total / count:.4f}",
                  flush=True)  # fmt: skip
    if not math.isfinite(total):
        raise ScalebenchError(
            f"Training loss became non-finite in epoch {epoch} ({total}); lower --lr or check the model."
        )
    return total / max(count, 1), count, lr


def _epoch_done(run_dir: Path, epoch: int) -> None:
    """Called after the checkpoint of every epoch is written (a hook: tests interrupt a run here)."""


def run_segmentation(
    config: EvalConfig, train_scales: Sequence[float], *, progress: bool = True
) -> SegmentationOutcome:
    """Train ``config.model`` on the training set of ``train_scales``, test at every built (or requested) scale.

    Every epoch is checkpointed (:func:`scalebench.benchmark.checkpoint.save_epoch_checkpoint`); an interrupted
    run continues with ``config.resume`` and ends with the same weights and metrics as an uninterrupted one
    (bit for bit on CPU). Returns the outcome; writes ``results.json``, ``best.safetensors`` and the figures
    into the run directory, ``done`` last.
    """
    from scalebench.datasets_builders import open_build  # looked up at call time: tests patch it there
    from scalebench.models import count_parameters, create_model, get_model_card, resolve_config

    built = open_build(config.dataset, config.root)
    if built.task != "segmentation":
        raise ScalebenchError(
            f"--train-scales is for the segmentation track, but dataset {config.dataset!r} is not a segmentation "
            "build (fashion-mnist-seg[-embedded][-limit<N>]); drop --train-scales to train a classification model "
            "at the build's training scale."
        )
    card = get_model_card(config.model)
    if card.task != "segmentation":
        raise ScalebenchError(
            f"Model {config.model!r} is a {card.task} model; the segmentation set needs a segmentation model: "
            "unet, njet-unet, ... (`scalebench models list --task segmentation`)."
        )
    if config.distributed:
        raise ScalebenchError(
            "--distributed (DDP) is not implemented for segmentation; run one process per seed instead."
        )
    device = select_device(config.device)
    check_amp(device, config.amp)
    train_ds = built.dataset("train", train_scale=train_scales)
    val_ds = built.dataset("val", train_scale=train_scales)
    scales = match_scales(config.scales, built.test_scales, built.build_id)
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
    run_dir = _group_dir(config, built.build_id, train_scales) / f"seed{config.seed}-{run_hash}"
    if (run_dir / DONE).is_file():
        # ``done`` holds the sha256 of results.json (older runs: the run hash, which is not checked)
        legacy = len((run_dir / DONE).read_text().strip()) != 64
        results = run_dir / "results.json" if legacy else check_done(run_dir)
        result = load_segmentation_results(results)
        return SegmentationOutcome(run_dir, result, _files(run_dir), reused=True)
    state = read_run_state(run_dir, run_hash, resume=config.resume, epochs=recipe.epochs)
    t0 = time.perf_counter()

    torch.manual_seed(derive_seed(config.seed, "init"))
    model = create_model(config.model, num_classes=built.num_classes, in_channels=built.channels,
                         quick=config.preset == "quick", **config.model_config_overrides).to(device)  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)  # only once the config built a model: no folder for a bad one
    write_json_atomic(run_dir / "config.json", {"run_hash": run_hash, **identity})
    optimizer = _optimizer(model, recipe)
    n_train, n_val = _n(train_ds, config.limit), _n(val_ds, config.limit)
    counts = torch.zeros(built.num_classes, dtype=torch.int64)
    for a in range(
        0, n_train, 64
    ):  # in blocks: the masks of a full training set do not fit in memory at once
        counts += class_counts(
            train_ds.read_batch(list(range(a, min(n_train, a + 64))))[1], built.num_classes
        )
    weights = weights_from_counts(counts).to(device)
    history: list[dict[str, Any]] = []
    best_val, best_epoch, train_seconds, seen, start_epoch = -1.0, 0, 0.0, 0, 1
    if state is not None:
        restore_run_state(state, run_dir, model, optimizer, device)
        history, best_val, best_epoch = state["history"], state["best_val_mean_iou"], state["best_epoch"]
        train_seconds, seen, start_epoch = state["train_seconds"], state["seen"], state["epoch"] + 1
        if progress:
            print(f"resuming {run_dir} after epoch {state['epoch']}", flush=True)
    earlier_seconds = train_seconds
    for epoch in range(start_epoch, recipe.epochs + 1):
        te = time.perf_counter()
        loss, n_seen, lr = _train_epoch(model, optimizer, train_ds, n_train, epoch, recipe, config, weights,
                                        device, progress)  # fmt: skip
        seen += n_seen
        model.eval()
        vi, vu, _ = evaluate_segmentation(model, val_ds, n=n_val, batch_size=recipe.eval_batch_size,
                                          device=device, num_classes=built.num_classes, amp=config.amp)  # fmt: skip
        val_miou = metrics.mean_iou(vi, vu)
        sigmas = model.learned_sigmas() if hasattr(model, "learned_sigmas") else []
        seconds = time.perf_counter() - te
        train_seconds += seconds
        history.append(SegmentationEpoch(epoch=epoch, lr=lr, train_loss=loss, val_mean_iou=val_miou,
                                         sigmas=sigmas, seconds=seconds).model_dump())  # fmt: skip
        if progress:
            print(
                f"epoch {epoch}: val mIoU {val_miou:.4f}; sigmas {[round(s, 3) for s in sigmas]}", flush=True
            )
        better = val_miou > best_val  # strictly better: the earliest epoch wins ties
        if better:
            best_val, best_epoch = val_miou, epoch
        save_epoch_checkpoint(
            run_dir, model, optimizer, epoch=epoch, better=better,
            state={"run_hash": run_hash, "history": history, "best_epoch": best_epoch,
                   "best_val_mean_iou": best_val, "train_seconds": train_seconds, "seen": seen},
        )  # fmt: skip
        _epoch_done(run_dir, epoch)
        if config.stop_after_epoch is not None and config.stop_after_epoch <= epoch < recipe.epochs:
            if progress:
                print(f"stopped after epoch {epoch}; continue with --resume", flush=True)
            return SegmentationOutcome(run_dir, None, {}, stopped_after_epoch=epoch)
    load_weights(model, run_dir / BEST)
    sha = file_digest(run_dir / BEST, "sha256")
    model.eval()
    before = state_snapshot(model)
    t1 = time.perf_counter()
    per_scale = []
    n_eval = 0
    for s, ds in test_sets.items():
        n = _n(ds, config.limit)
        i, u, px = evaluate_segmentation(model, ds, n=n, batch_size=recipe.eval_batch_size, device=device,
                                         num_classes=built.num_classes, amp=config.amp)  # fmt: skip
        per_scale.append(SegmentationScaleResult(scale=s, intersections=i, unions=u,
                                                 mean_iou=metrics.mean_iou(i, u), pixels=max(px, 1), images=n))  # fmt: skip
        n_eval += n
    eval_seconds = time.perf_counter() - t1
    check_state_unchanged(model, before, "testing")
    result = SegmentationRunResult(
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
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
            best_epoch=best_epoch,
            best_val_mean_iou=best_val,
            history=[SegmentationEpoch(**h) for h in history],
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
            total_seconds=earlier_seconds + (time.perf_counter() - t0),
            train_images_per_second=seen / train_seconds if train_seconds > 0 else 0.0,
            eval_images_per_second=n_eval / eval_seconds if eval_seconds > 0 else 0.0,
        ),
        environment=environment_info(device, config.amp),
    )
    save_results(result, run_dir / "results.json")
    from scalebench.figures.segmentation import plot_run_figures

    model.eval()
    triptych = []  # input, prediction and ground truth of the first test image at each scale
    with torch.no_grad():
        for scale, ds in sorted(test_sets.items()):
            x, y = ds.read_batch([0])
            prediction = model(x.to(device)).argmax(1).cpu()[0].numpy()
            triptych.append((scale, x[0, 0].numpy(), prediction, y[0].numpy()))
    plot_run_figures(result, triptych, run_dir)
    write_text_atomic(run_dir / DONE, file_digest(run_dir / "results.json", "sha256") + "\n")
    return SegmentationOutcome(run_dir, result, _files(run_dir))


def _group_dir(config: EvalConfig, build_id: str, train_scales: Sequence[float]) -> Path:
    """``<out>/<model>/<build>/train<scales>``: the runs of every seed (and their aggregate) of one model and
    training set."""
    tag = "-".join(f"{s:g}" for s in sorted(train_scales))
    return Path(config.out) / config.model / build_id / f"train{tag}"


def _files(run_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(run_dir.iterdir()) if p.is_file()}


def format_segmentation_summary(outcome: SegmentationOutcome) -> str:
    """One block of text: mIoU per scale, learned σ, receptive field, where the files are."""
    r = outcome.result
    if r is None:
        return f"Run stopped after epoch {outcome.stopped_after_epoch}: {outcome.run_dir} (continue with --resume)"
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


def parse_train_scales(text: str | Sequence[float] | None) -> list[float]:
    """The object scales of a training set as given to ``--train-scales``: comma-separated, or the set's key
    as the results and the leaderboard write it (``1+2+3+4``); ``None`` is the default set ``1``.

    Example:
        >>> parse_train_scales("1+2+3+4"), parse_train_scales("4"), parse_train_scales(None)
        ([1.0, 2.0, 3.0, 4.0], [4.0], [1.0])
    """
    from scalebench.checks import parse_float_list

    if text is None:
        return [1.0]
    return parse_float_list(text.replace("+", ",") if isinstance(text, str) else text, "--train-scales")


def run_segmentation_seeds(
    config: EvalConfig, seeds: Sequence[int], train_scales: str | Sequence[float] | None
) -> tuple[list[SegmentationOutcome], dict[str, Path]]:
    """:func:`run_segmentation` for each seed; ``train_scales`` as given to ``--train-scales`` (default ``1``).

    With several seeds, all finished, also writes the aggregate over seeds into
    ``<out>/<model>/<build>/train<scales>/seeds-<seeds>-<hash>/`` (:func:`write_seed_aggregate`).
    """
    scales = parse_train_scales(train_scales)
    progress = config.progress != "none"
    outcomes = [
        run_segmentation(config.model_copy(update={"seed": s}), scales, progress=progress) for s in seeds
    ]
    done = [o.result for o in outcomes if o.result is not None]
    files: dict[str, Path] = {}
    if len(seeds) > 1 and len(done) == len(seeds):
        group_hash = config_hash({"runs": [o.run_dir.name for o in outcomes]})
        tag = "-".join(str(x) for x in seeds)
        group = _group_dir(config, done[0].dataset.build_id, scales) / f"seeds-{tag}-{group_hash}"
        files = write_seed_aggregate(done, group, [o.run_dir for o in outcomes])
    return outcomes, files


def write_seed_aggregate(
    results: Sequence[SegmentationRunResult], folder: Path, run_dirs: Sequence[Path] = ()
) -> dict[str, Path]:
    """``aggregate.json`` (mean and sample std over seeds of the mIoU per scale and of the mean mIoU, by
    :func:`scalebench.figures.curves.curve_rows` and :func:`metrics.mean_std`, as the classification
    curve over seeds) and ``miou_vs_scale`` (.png/.svg/.csv, mean ± std band) of the seeds of one config."""
    from scalebench.figures.curves import MIOU_COLUMNS, curve_rows, plot_curves
    from scalebench.figures.style import RUN_FORMATS
    from scalebench.results import seedless_config_hash

    keys = {seedless_config_hash(r) for r in results}
    if len(keys) != 1:
        raise ScalebenchError(f"An aggregate over seeds needs runs of one configuration, got {len(keys)}.")
    first = results[0]
    mean, std = metrics.mean_std([r.summary.mean_miou for r in results])
    doc = {
        "task": "segmentation",
        "model": first.model.name,
        "build_id": first.dataset.build_id,
        "train_scales": first.dataset.train_scales,
        "config_hash": keys.pop(),
        "seeds": [r.seed for r in results],
        "runs": [str(p) for p in run_dirs],
        "per_scale": [
            {"scale": s, "mean_iou": m, "std_iou": sd, "n_seeds": n} for s, m, sd, n in curve_rows(results)
        ],
        "mean_miou": {"mean": mean, "std": std},
    }
    folder.mkdir(parents=True, exist_ok=True)
    files = {"aggregate": folder / "aggregate.json"}
    write_json_atomic(files["aggregate"], doc)
    png, svg, csv_path = plot_curves(
        results, folder / "miou_vs_scale", metric="miou", columns=MIOU_COLUMNS, formats=RUN_FORMATS
    )
    files.update(miou_png=png, miou_svg=svg, miou_csv=csv_path)
    return files


def format_seed_aggregate(files: dict[str, Path]) -> str:
    """One block of text: mean ± std over seeds per scale, and where the aggregate files are."""
    doc = json.loads(files["aggregate"].read_text())
    cells = ", ".join(f"s={p['scale']:g}: {p['mean_iou']:.4f} ± {p['std_iou']:.4f}" for p in doc["per_scale"])
    m = doc["mean_miou"]
    return (
        f"Over seeds {doc['seeds']}: mean mIoU {m['mean']:.4f} ± {m['std']:.4f} (sample std)\n"
        f"  mIoU per scale: {cells}\n  aggregate: {files['aggregate']}; curve: {files['miou_png']}"
    )
