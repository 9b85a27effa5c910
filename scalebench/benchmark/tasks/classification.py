"""Classification: train at one scale, select on validation accuracy there, count correct predictions per scale.

Protocol of Jansson & Lindeberg (2022), "Scale-invariant scale-channel networks: deep networks that generalise
to previously unseen scales", JMIV 64(5): 506-536, and Lindeberg (2022), "Scale-covariant and scale-invariant
Gaussian derivative networks", JMIV 64(3): 223-242: the training and validation sets are at one training scale
``s0`` (a build's training set ``(s0,)``), the test sets at every scale.

- loss: cross-entropy (with the recipe's label smoothing), summed over a micro-batch and divided by the images
  of the batch;
- per scale: correct predictions and images (:class:`~scalebench.results.ClassificationScaleResult`); the
  validation accuracy selects the checkpoint;
- scale-channel models (``card.reports_scale_selection``; a model from outside the zoo that follows the
  protocol below): the channel whose logit won, counted per test scale, recorded as
  :class:`~scalebench.results.ScaleSelection` (σ0 of each channel from the model's ``channel_sigmas``).
  The scale-selection protocol: ``channel_sigmas`` (a sequence of S floats) and either
  ``forward_with_selection(x) -> (logits (B, K), winning channel LongTensor[B])`` or
  ``scale_channel_logits(x) -> (S, B, K)``, whose winner is the channel holding the largest logit
  (:func:`scalebench.models.gaussder.winning_scale_channel`);
- FLOPs per image of a training step and of inference (:mod:`scalebench.models.flops`);
- figures of a run: ``curve`` (accuracy against test scale) and, for scale-channel models, ``selection`` (the
  heatmap of winning channels), each as PNG, SVG and CSV, with the long ``results.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from scalebench.benchmark.checkpoint import RunState
from scalebench.benchmark.engine import Loop, autocast, evaluation_batches, write_long_csv
from scalebench.benchmark.tasks import Records, Task
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import find_scale
from scalebench.figures.curves import RUN_CURVE_COLUMNS, plot_curves
from scalebench.figures.selection import RUN_SELECTION_COLUMNS, plot_selection
from scalebench.figures.style import RUN_FORMATS
from scalebench.results import (
    ClassificationResult,
    ClassificationScaleResult,
    DatasetInfo,
    EpochRecord,
    ModelInfo,
    TrainingInfo,
    build_scale_selection,
    build_summary,
)
from scalebench.results.recipe import Recipe


class ClassificationRunState(RunState):
    """The ``state.json`` of an interrupted classification run: every epoch's record and the best so far."""

    history: list[EpochRecord]
    best_val_accuracy: float = Field(ge=0, le=1)


class CrossEntropy:
    """Cross-entropy summed over a micro-batch (label smoothing from the recipe); normaliser: the images."""

    counts_hits = True

    def __init__(self, label_smoothing: float) -> None:
        self.fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing, reduction="sum")
        self.info: dict[str, Any] = {}

    def __call__(self, logits: Tensor, target: Tensor) -> tuple[Tensor, int]:
        return self.fn(logits.float(), target), int((logits.detach().argmax(1) == target).sum())

    def denominator(self, target: Tensor) -> float:
        return float(len(target))


def model_flops(model: nn.Module, input_size: tuple[int, ...], num_classes: int) -> tuple[int, int]:
    """(training, inference) FLOPs per image (:mod:`scalebench.models.flops`), counted on the side: the global
    RNG is forked (dropout draws nothing from the run's stream) and batch-norm statistics are restored."""
    from scalebench.models.flops import inference_flops_per_image, training_flops_per_image

    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        train = training_flops_per_image(model, input_size, num_classes)
        infer = inference_flops_per_image(model, input_size)
    return train, infer


class ClassificationTask(Task):
    """The classification task (see the module docstring)."""

    name = "classification"
    records = Records(ClassificationResult, ClassificationRunState, "best_val_accuracy")
    metric, curve_columns = "accuracy", RUN_CURVE_COLUMNS
    measures_equivariance = True

    def check(self, build: Any, key: tuple[float, ...], scales: list[float]) -> None:
        """The test scales include the training scale (accuracy there is part of every result)."""
        if find_scale(scales, key[0]) is None:
            raise ScalebenchError(
                f"--scales must include the training scale {key[0]:g} (accuracy at the training scale is part "
                f"of every result); got {', '.join(f'{s:g}' for s in scales)}."
            )

    def make_loss(self, build: Any, train: Any, n: int, recipe: Recipe, device: Any) -> CrossEntropy:
        return CrossEntropy(recipe.label_smoothing)

    @torch.inference_mode()
    def evaluate(
        self, model: nn.Module, ds: Any, scale: float, *, n: int, loop: Loop, build: Any,
        extras: dict[str, Any], label: str | None = None,
    ) -> tuple[ClassificationScaleResult, list[int] | None]:  # fmt: skip
        """Correct predictions and images of ``ds[:n]`` at ``scale``, and the winning-channel counts of a
        scale-channel model (``extras["sigmas"]``: through ``forward_with_selection``), summed over ranks."""
        channels = len(extras["sigmas"]) if extras.get("sigmas") else 0
        correct, total = 0, 0
        counts = torch.zeros(channels, dtype=torch.long)
        for xb, yb in evaluation_batches(model, ds, n, loop, label):
            with autocast(loop.device, loop.amp):
                if channels:
                    logits, winner = forward_with_selection(model, xb)
                    winner = winner.to("cpu").long().reshape(-1)
                    if winner.numel() and not 0 <= int(winner.min()) <= int(winner.max()) < channels:
                        raise ScalebenchError(
                            f"{type(model).__name__}: a winning scale channel outside 0..{channels - 1} (the "
                            f"{channels} channel_sigmas); make the selection index channel_sigmas."
                        )
                    counts += torch.bincount(winner, minlength=channels)
                else:
                    logits = model(xb)
            correct += int((logits.argmax(1) == yb).sum())
            total += len(yb)
        correct, total, *winners = (int(v) for v in loop.d.sum([correct, total, *counts.tolist()]))
        record = ClassificationScaleResult(
            scale=scale, correct=correct, total=total, accuracy=correct / total
        )
        return record, (winners if channels else None)

    def extras(self, model: nn.Module, card: Any) -> dict[str, Any]:
        """``sigmas``: σ0 of each scale channel of a model that reports scale selection (its card says so, or
        it comes from outside the zoo and has ``forward_with_selection`` or ``scale_channel_logits``), else
        None."""
        outside = card.family == "external" and selects_scale(model)
        if not (card.reports_scale_selection or outside):
            return {"sigmas": None}
        if not selects_scale(model) or not hasattr(model, "channel_sigmas"):
            raise ScalebenchError(
                f"Model {card.name!r} reports scale selection but has no "
                f"{'channel_sigmas' if outside else 'forward_with_selection() or channel_sigmas'}; add "
                "channel_sigmas (σ0 of each scale channel, one float each) and forward_with_selection(x) or "
                "scale_channel_logits(x) (docs/own-model.md), or drop both."
            )
        sigmas = [float(s) for s in model.channel_sigmas]
        if not sigmas or not all(s > 0 and s < float("inf") for s in sigmas):
            raise ScalebenchError(
                f"Model {card.name!r}: channel_sigmas must be positive finite floats, one per scale channel; "
                f"got {sigmas}."
            )
        return {"sigmas": sigmas}

    def epoch_record(
        self, *, epoch: int, lr: float, loss: float, accuracy: float | None, val: Any, seconds: float,
        model: nn.Module,
    ) -> dict[str, Any]:  # fmt: skip
        return EpochRecord(epoch=epoch, lr=lr, train_loss=loss, train_accuracy=accuracy or 0.0,
                           val_accuracy=val.accuracy, seconds=seconds).model_dump()  # fmt: skip

    def result(self, facts: dict[str, Any], model: nn.Module) -> ClassificationResult:
        """The results record of a run from the ``facts`` of :func:`scalebench.benchmark.protocol.run`."""
        build, key, per_scale, t = facts["build"], facts["key"], facts["per_scale"], facts["training"]
        train_flops, infer_flops = model_flops(model, (build.channels, *build.canvas), build.num_classes)
        sigmas = facts["extras"]["sigmas"]
        result = ClassificationResult(
            **facts["record"],
            model=ModelInfo(**facts["model"], train_flops_per_image=train_flops,
                            inference_flops_per_image=infer_flops),
            dataset=DatasetInfo(**facts["dataset"], train_scale=float(key[0])),
            training=TrainingInfo(preset=t["preset"], recipe=t["recipe"], best_epoch=t["best_epoch"],
                                  custom=t.get("custom"),
                                  best_val_accuracy=t["best_val"],
                                  history=[EpochRecord(**h) for h in t["history"]]),
            per_scale=per_scale,
            summary=build_summary(per_scale, float(key[0])),
            scale_selection=build_scale_selection(facts["scales"], sigmas, facts["aux"]) if sigmas else None,
            equivariance=facts.get("equivariance"), test_channels=facts.get("test_channels"),
        )  # fmt: skip
        if result.scale_selection is None:
            return result
        ripple = result.scale_selection.model_copy(update={"ripple": result.ripple()})
        return result.model_copy(update={"scale_selection": ripple})

    def figures(
        self, result: ClassificationResult, run_dir: Path, model: nn.Module, build: Any, loop: Loop
    ) -> None:
        """``results.csv``, ``curve`` and (scale-channel models) ``selection``: PNG, SVG and CSV each."""
        write_long_csv([result], run_dir / "results.csv")
        plot_curves([result], run_dir / "curve", columns=RUN_CURVE_COLUMNS, formats=RUN_FORMATS)
        if result.scale_selection is not None:
            plot_selection(
                [result], run_dir / "selection", columns=RUN_SELECTION_COLUMNS, formats=RUN_FORMATS
            )

    def describe(self, result: ClassificationResult) -> list[str]:
        sm = result.summary
        ratio = "n/a" if sm.generalisation_ratio is None else f"{sm.generalisation_ratio:.3f}"
        lines = [
            f"  train-scale acc {sm.train_scale_accuracy:.4f} | mean {sm.mean_accuracy:.4f} | worst "
            f"{sm.worst_accuracy:.4f} at {sm.worst_scale:.3g} | ratio worst/train {ratio}"
        ]
        if result.scale_selection is not None:
            sel = result.scale_selection
            rho = "n/a" if sel.spearman_rho is None else f"{sel.spearman_rho:.3f}"
            slope = "n/a" if sel.slope_per_octave is None else f"{sel.slope_per_octave:.2f}"
            ripple = "" if sel.ripple is None else f"; ripple {100 * sel.ripple:.2f} points (trained grid)"
            dense = result.test_channels
            grid = "" if dense is None else f" on {dense.factor}x denser channels ({len(sel.channel_sigmas)})"
            lines.append(
                f"  scale selection{grid}: Spearman rho {rho}, slope {slope} channels/octave{ripple}"
            )
        return lines


def selects_scale(model: nn.Module) -> bool:
    """The model follows the scale-selection protocol (``forward_with_selection`` or
    ``scale_channel_logits``; see the module docstring)."""
    return callable(getattr(model, "forward_with_selection", None)) or callable(
        getattr(model, "scale_channel_logits", None)
    )


def forward_with_selection(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """(logits (B, K), winning scale channel LongTensor[B]) of a model that selects scale: its own
    ``forward_with_selection``, else ``model(x)`` and the channel holding the largest of
    ``scale_channel_logits(x)`` (S, B, K)."""
    if callable(getattr(model, "forward_with_selection", None)):
        return model.forward_with_selection(x)
    from scalebench.models.gaussder import winning_scale_channel

    per_channel = model.scale_channel_logits(x)
    if per_channel.ndim != 3 or per_channel.shape[1] != x.shape[0]:
        raise ScalebenchError(
            f"{type(model).__name__}.scale_channel_logits must return (S, B, K) = (channels, batch, classes); "
            f"got shape {tuple(per_channel.shape)} for a batch of {x.shape[0]}."
        )
    return model(x), winning_scale_channel(per_channel)
