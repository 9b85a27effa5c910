r"""Segmentation: train on one training set of the multi-scale Fashion-MNIST segmentation set, select on its
validation mIoU, count per-class intersections and unions at every object scale; learned σ, receptive field.

Pintea, Tomen, Goes, Loog & van Gemert (2021), "Resolution learning in deep convolutional networks using
scale-space theory", IEEE TIP 30: 8342-8353, Experiments 1.1(B) and 1.2(B):

- loss: cross-entropy weighted by the inverse class frequency of the training masks,
  :math:`w_c = N / (C_\mathrm{present} N_c)` for the classes present (0 for absent ones), with the ignore
  index 255: :math:`\sum_i w_{y_i} (-\log p_{i,y_i}) / \sum_i w_{y_i}` over the non-ignored pixels of a batch
  (summed over its micro-batches and data-parallel shares, divided by the batch's summed weights);
- optimiser (the model cards): Adam, lr 1e-4, betas (0.9, 0.999); batch 1 in the ``paper`` preset (50 epochs),
  batch 4 and 2 epochs in the ``quick`` preset (CPU);
- metric: per object class c = 1..10, :math:`\mathrm{IoU}_c = |P_c \cap G_c| / |P_c \cup G_c|` over the
  non-ignored pixels of a test set, mIoU = mean over the classes with a non-empty union
  (:class:`~scalebench.results.SegmentationScaleResult`); the validation mIoU selects the checkpoint;
- extras: the learned σ per N-Jet layer (each epoch, and of the tested checkpoint) and the receptive field at
  the end of the encoder;
- figures of a run (:func:`scalebench.figures.segmentation.plot_run_figures`): ``miou_vs_scale``, ``sigmas``
  (N-Jet models) and ``triptych`` (input, prediction and ground truth of the first test image per scale),
  with the long ``results.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from scalebench.benchmark.checkpoint import RunState
from scalebench.benchmark.engine import Loop, autocast, evaluation_batches, write_long_csv
from scalebench.benchmark.tasks import Records, Task
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.segmentation import IGNORE_INDEX
from scalebench.figures.curves import MIOU_COLUMNS
from scalebench.results import (
    ModelInfo,
    SegmentationDatasetInfo,
    SegmentationEpoch,
    SegmentationResult,
    SegmentationScaleResult,
    SegmentationTraining,
    build_segmentation_summary,
    metrics,
)
from scalebench.results.recipe import Recipe

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
    present = counts > 0
    w = torch.zeros(counts.numel(), dtype=torch.float64)
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


class WeightedCrossEntropy:
    """Class-weighted cross-entropy summed over a micro-batch; normaliser: the summed weights of a batch's
    non-ignored pixels (so that a step minimises the weighted mean over the batch)."""

    counts_hits = False

    def __init__(self, weights: Tensor) -> None:
        self.weights, self.host_weights = (
            weights,
            weights.detach().cpu().double(),
        )  # the batch's target is on the CPU
        self.info: dict[str, Any] = {"class_weights": [float(w) for w in self.host_weights.float()]}

    def __call__(self, logits: Tensor, target: Tensor) -> tuple[Tensor, int]:
        loss = F.cross_entropy(
            logits.float(), target, weight=self.weights, ignore_index=IGNORE_INDEX, reduction="sum"
        )
        return loss, 0

    def denominator(self, target: Tensor) -> float:
        keep = target != IGNORE_INDEX
        return float(self.host_weights[target[keep].cpu()].sum())


# --- the task ----------------------------------------------------------------------------------------------


class SegmentationRunState(RunState):
    """The ``state.json`` of an interrupted segmentation run: every epoch's record and the best mIoU so far."""

    history: list[SegmentationEpoch]
    best_val_mean_iou: float = Field(ge=0, le=1)


def _learned(model: nn.Module) -> dict[str, Any]:
    sigmas = model.learned_sigmas() if hasattr(model, "learned_sigmas") else []
    field = int(model.encoder_receptive_field()) if hasattr(model, "encoder_receptive_field") else 1
    return {"learned_sigmas": [float(s) for s in sigmas], "encoder_receptive_field": field}


class SegmentationTask(Task):
    """The segmentation task (see the module docstring)."""

    name = "segmentation"
    records = Records(SegmentationResult, SegmentationRunState, "best_val_mean_iou")
    metric, curve_columns = "miou", MIOU_COLUMNS
    channels_last = False  # as the U-Nets were measured

    def make_loss(self, build: Any, train: Any, n: int, recipe: Recipe, device: Any) -> WeightedCrossEntropy:
        """The weights from the masks of ``train[:n]``, read in blocks (a full set's do not fit at once)."""
        counts = torch.zeros(build.num_classes, dtype=torch.int64)
        for a in range(0, n, 64):
            counts += class_counts(train.read_batch(list(range(a, min(n, a + 64))))[1], build.num_classes)
        return WeightedCrossEntropy(weights_from_counts(counts).to(device))

    @torch.inference_mode()
    def evaluate(
        self, model: nn.Module, ds: Any, scale: float, *, n: int, loop: Loop, build: Any,
        extras: dict[str, Any], label: str | None = None,
    ) -> tuple[SegmentationScaleResult, None]:  # fmt: skip
        """Per object class intersection and union counts (:func:`iou_counts`) over ``ds[:n]``, the non-ignored
        pixels and the images, summed over ranks."""
        classes = build.num_classes
        inter = union = torch.zeros(classes - 1, dtype=torch.int64)  # rebound below, never changed in place
        pixels, images = 0, 0
        for xb, yb in evaluation_batches(model, ds, n, loop, label):
            with autocast(loop.device, loop.amp):
                pred = model(xb).argmax(1)
            i, u = iou_counts(pred, yb, classes)
            inter, union = inter + torch.tensor(i), union + torch.tensor(u)
            pixels, images = pixels + int((yb != IGNORE_INDEX).sum()), images + len(yb)
        summed = [int(v) for v in loop.d.sum([*inter.tolist(), *union.tolist(), pixels, images])]
        i, u, (pixels, images) = summed[: classes - 1], summed[classes - 1 : -2], summed[-2:]
        record = SegmentationScaleResult(scale=scale, intersections=i, unions=u, mean_iou=metrics.mean_iou(i, u),
                                         pixels=max(pixels, 1), images=images)  # fmt: skip
        return record, None

    def extras(self, model: nn.Module, card: Any) -> dict[str, Any]:
        """The learned σ per N-Jet layer and the encoder's receptive field."""
        return _learned(model)

    def epoch_record(
        self, *, epoch: int, lr: float, loss: float, accuracy: float | None, val: Any, seconds: float,
        model: nn.Module,
    ) -> dict[str, Any]:  # fmt: skip
        sigmas = _learned(model)["learned_sigmas"]
        return SegmentationEpoch(epoch=epoch, lr=lr, train_loss=loss, val_mean_iou=val.mean_iou, sigmas=sigmas,
                                 seconds=seconds).model_dump()  # fmt: skip

    def result(self, facts: dict[str, Any], model: nn.Module) -> SegmentationResult:
        """The results record of a run from the ``facts`` of :func:`scalebench.benchmark.protocol.run`."""
        per_scale, t, extras = facts["per_scale"], facts["training"], facts["extras"]
        return SegmentationResult(
            **facts["record"],
            model=ModelInfo(**facts["model"]),
            dataset=SegmentationDatasetInfo(**facts["dataset"], train_scales=[float(s) for s in facts["key"]],
                                            ignore_index=IGNORE_INDEX),
            training=SegmentationTraining(preset=t["preset"], recipe=t["recipe"], **t["loss"],
                                          custom=t.get("custom"),
                                          best_epoch=t["best_epoch"], best_val_mean_iou=t["best_val"],
                                          history=[SegmentationEpoch(**h) for h in t["history"]]),
            per_scale=per_scale,
            summary=build_segmentation_summary(per_scale),
            learned_sigmas=extras["learned_sigmas"],
            encoder_receptive_field=extras["encoder_receptive_field"],
        )  # fmt: skip

    @torch.inference_mode()
    def figures(
        self, result: SegmentationResult, run_dir: Path, model: nn.Module, build: Any, loop: Loop
    ) -> None:
        """``results.csv`` and the run's figures; the triptych shows the first test image of every scale."""
        from scalebench.figures.segmentation import plot_run_figures

        write_long_csv([result], run_dir / "results.csv")
        rows = []
        for scale in result.scales:
            x, y = build.dataset("test", scale=scale).read_batch([0])
            prediction = model(x.to(loop.device)).argmax(1).cpu()[0].numpy()
            rows.append((scale, x[0, 0].numpy(), prediction, y[0].numpy()))
        plot_run_figures(result, rows, run_dir)

    def describe(self, result: SegmentationResult) -> list[str]:
        sm = result.summary
        sigmas = ", ".join(f"{s:.3f}" for s in result.learned_sigmas)
        return [
            f"  mean mIoU {sm.mean_miou:.4f} | worst {sm.worst_miou:.4f} at {sm.worst_scale:g} | encoder "
            f"receptive field {result.encoder_receptive_field} px"
            + (f"; learned sigma per layer: {sigmas}" if sigmas else "")
        ]
