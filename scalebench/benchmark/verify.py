"""Verify a results file by re-evaluating its checkpoint: no re-training, so verification stays cheap.

Steps (``scalebench evaluate --verify RUN.json --checkpoint FILE``, and ``submit --checkpoint``):

1. validate ``RUN.json`` against the results schema;
2. check, before anything is computed or allocated, every value the results file and the checkpoint control
   (a submitter controls both): ``dataset.build_id`` is a build id, never a path
   (:func:`scalebench.checks.check_build_id`); ``model.config`` passes
   :func:`scalebench.models.registry.validate_model_config` (known keys, kinds, ranges, size); the recipe passes
   :func:`scalebench.benchmark.config.validate_recipe` (so ``eval_batch_size`` and ``micro_batch_size`` are
   integers >= 1);
3. check that the checkpoint file's sha256 equals ``checkpoint_sha256`` in the results, and that its tensor
   names and shapes, read from the safetensors header, are those of the model built on the ``meta`` device;
4. load the recorded dataset build and check its manifest sha256 equals the recorded one;
5. only then build the model for real from the recorded full config, load the weights, and test every
   recorded scale with the protocol's own test loop (eval mode, ``torch.inference_mode``, buffers checked
   unchanged), on the same number of images per scale as recorded;
6. the run is verified only when every per-scale ``correct`` and ``total`` matches exactly (segmentation
   results, ``task = "segmentation"``: every per-class intersection and union count and the number of
   images per scale); the verified copy of the results has ``evaluated_by = "verified"`` and a
   ``verification`` record: who verified (``$SCALEBENCH_VERIFIER``, else user@host), when, in which
   environment, and the sha256 of the self-reported file it verified.

Exact equality can fail across devices or library versions through floating-point ties in the argmax; the
report then lists the scales that differ, with both counts.
"""

from __future__ import annotations

import getpass
import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from scalebench.benchmark import protocol
from scalebench.benchmark.checkpoint import check_fits, checkpoint_shapes, load_weights
from scalebench.benchmark.config import Recipe, validate_recipe
from scalebench.benchmark.progress import Progress
from scalebench.benchmark.protocol import (
    check_state_unchanged,
    evaluate_dataset,
    select_device,
    state_snapshot,
)
from scalebench.checks import ScalebenchError, check_build_id
from scalebench.datasets_builders.scales import match_scales
from scalebench.fileio import file_digest
from scalebench.results import (
    ALL_TASKS,
    AnyRunResult,
    RunResult,
    SegmentationRunResult,
    Verification,
    load_results,
    metrics,
    save_results,
)


@dataclass
class VerifyReport:
    """The outcome of a verification: the verified result (None if counts differ) and the differences."""

    source: Path
    verified: AnyRunResult | None
    mismatches: list[str]
    written: Path | None = None


def verify_run(
    results_path: str | Path,
    checkpoint: str | Path,
    *,
    root: str | Path | None = None,
    device: str = "auto",
    out: str | Path | None = None,
    progress: str = "auto",
) -> VerifyReport:
    """Re-evaluate ``checkpoint`` on the test sets recorded in ``results_path`` (see the module docstring).

    Dispatches on the results' ``task``: classification compares the per-scale ``correct`` / ``total``,
    segmentation the per-scale, per-class intersection and union counts and the image counts. When every
    count matches, the verified copy is written to ``out`` (default ``<results>.verified.json``; a verified
    copy verified again is rewritten in place).
    """
    results_path = Path(results_path)
    result = load_results(results_path, tasks=ALL_TASKS)
    recipe = check_results_inputs(result, results_path)
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ScalebenchError(
            f"Checkpoint {str(checkpoint)!r} does not exist; pass the best.safetensors that `scalebench evaluate` "
            f"wrote next to {results_path}."
        )
    sha = file_digest(checkpoint, "sha256")
    if sha != result.checkpoint_sha256:
        raise ScalebenchError(
            f"Checkpoint {checkpoint} has sha256 {sha}, but {results_path} records {result.checkpoint_sha256}; "
            "pass the best.safetensors of the run that wrote these results."
        )
    check_fits(_meta_model(result, results_path), checkpoint_shapes(checkpoint), checkpoint)
    dev = select_device(device)
    root = Path(root) if root is not None else None
    if isinstance(result, SegmentationRunResult):
        mismatches = _verify_segmentation(result, recipe, checkpoint, root, dev, progress)
    else:
        mismatches = _verify_classification(result, recipe, checkpoint, root, dev, progress)
    if mismatches:
        return VerifyReport(results_path, None, mismatches)
    verification = Verification(
        verified_by=verifier_name(),
        verified_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        environment=protocol.environment_info(dev, result.environment.amp and dev.type == "cuda"),
        source_results_sha256=file_digest(results_path, "sha256"),
    )
    verified = type(result).model_validate(
        {**result.model_dump(), "evaluated_by": "verified", "verification": verification.model_dump()}
    )
    stem = results_path.name.removesuffix(".json").removesuffix(".verified")  # re-verifying a verified copy
    dest = Path(out) if out is not None else results_path.with_name(stem + ".verified.json")
    save_results(verified, dest)
    return VerifyReport(results_path, verified, [], dest)


def check_results_inputs(result: AnyRunResult, source: str | Path) -> Recipe:
    """Check the values of a results file that verification would use, before anything is computed.

    ``dataset.build_id`` must be a build id (not a path), ``model.config`` must pass
    :func:`~scalebench.models.registry.validate_model_config` for the recorded classes and channels, and
    ``training.recipe`` must pass :func:`~scalebench.benchmark.config.validate_recipe`, which it returns.

    Raises:
        ScalebenchError: one message naming ``source``, the field and what is valid.
    """
    check_build_id(result.dataset.build_id, f"{source}: dataset.build_id")
    _meta_model(result, source)
    return validate_recipe(result.training.recipe, source=f"{source}: training.recipe")


def _meta_model(result: AnyRunResult, source: str | Path) -> torch.nn.Module:
    """The recorded model on the ``meta`` device (checked config, no memory allocated)."""
    from scalebench.models.registry import create_meta_model

    try:
        return create_meta_model(
            result.model.name, result.model.config, num_classes=result.dataset.num_classes,
            in_channels=result.dataset.channels,
        )  # fmt: skip
    except ScalebenchError as err:
        raise ScalebenchError(f"{source}: model.config: {err}") from None


def verifier_name() -> str:
    """Who verifies: ``$SCALEBENCH_VERIFIER`` if set (e.g. a maintainer's name or a CI job), else user@host."""
    named = os.environ.get("SCALEBENCH_VERIFIER", "").strip()
    if named:
        return named[:200]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{platform.node() or 'unknown-host'}"[:200]


def _check_manifest(built_sha: str, result: AnyRunResult) -> None:
    if built_sha != result.dataset.manifest_sha256:
        raise ScalebenchError(
            f"Dataset build {result.dataset.build_id!r} here has manifest sha256 {built_sha}, the results "
            f"record {result.dataset.manifest_sha256}: the test sets differ. Rebuild the recorded dataset version "
            f"({result.dataset.version}) with `scalebench build-datasets`."
        )


def _restored_model(result: AnyRunResult, checkpoint: Path, dev: torch.device, **to: Any) -> torch.nn.Module:
    """The recorded model (full config), with the checkpoint's weights, on ``dev``, in eval mode."""
    from scalebench.models import create_model

    model = create_model(
        result.model.name, num_classes=result.dataset.num_classes, in_channels=result.dataset.channels,
        **result.model.config,
    ).to(dev, **to)  # fmt: skip
    load_weights(model, checkpoint)
    return model.eval()


def _verify_classification(
    result: RunResult, recipe: Recipe, checkpoint: Path, root: Path | None, dev: torch.device, progress: str
) -> list[str]:
    from scalebench.datasets_builders import open_build

    built = open_build(result.dataset.build_id, root, task="classification")
    _check_manifest(built.manifest_sha256, result)
    scales = match_scales(result.scales, built.test_scales, built.build_id)
    model = _restored_model(result, checkpoint, dev, memory_format=torch.channels_last)
    channels = len(result.scale_selection.channel_sigmas) if result.scale_selection is not None else None
    before = state_snapshot(model)
    mismatches: list[str] = []
    with Progress(progress) as bar:
        for scale, recorded in zip(scales, result.per_scale, strict=True):
            ds = built.dataset("test", scale)
            n = len(ds) if result.limit is None else min(len(ds), result.limit)
            bar.start(f"verify scale {scale:.3g}", 1)
            correct, total, _ = evaluate_dataset(
                model, ds, n=n, device=dev, batch_size=recipe.eval_batch_size,
                micro_batch_size=recipe.micro_batch_size, selection_channels=channels,
                amp=result.environment.amp and dev.type == "cuda",
            )  # fmt: skip
            bar.advance()
            bar.end(f"{correct}/{total}")
            if (correct, total) != (recorded.correct, recorded.total):
                mismatches.append(
                    f"scale {scale:g}: recorded {recorded.correct}/{recorded.total}, re-evaluated {correct}/{total}"
                )
    check_state_unchanged(model, before, "verification")
    return mismatches


def _verify_segmentation(
    result: SegmentationRunResult, recipe: Recipe, checkpoint: Path, root: Path | None, dev: torch.device,
    progress: str,
) -> list[str]:  # fmt: skip
    from scalebench.benchmark.segmentation import evaluate_segmentation
    from scalebench.datasets_builders import open_build

    built = open_build(result.dataset.build_id, root, task="segmentation")
    _check_manifest(built.manifest_sha256, result)
    model = _restored_model(result, checkpoint, dev)
    # the batch size the run used: recorded recipes always hold it; 4 for any that did not
    batch_size = recipe.eval_batch_size if "eval_batch_size" in result.training.recipe else 4
    before = state_snapshot(model)
    mismatches: list[str] = []
    with Progress(progress) as bar:
        for recorded in result.per_scale:
            ds = built.dataset("test", scale=recorded.scale)
            n = len(ds) if result.limit is None else min(len(ds), result.limit)
            bar.start(f"verify scale {recorded.scale:g}", 1)
            inter, union, _ = evaluate_segmentation(
                model, ds, n=n, batch_size=batch_size, device=dev,
                num_classes=result.dataset.num_classes, amp=result.environment.amp and dev.type == "cuda",
            )  # fmt: skip
            bar.advance()
            bar.end(f"mIoU {metrics.mean_iou(inter, union):.4f}")
            if (inter, union, n) != (recorded.intersections, recorded.unions, recorded.images):
                mismatches.append(
                    f"scale {recorded.scale:g}: recorded intersections {recorded.intersections}, unions "
                    f"{recorded.unions} ({recorded.images} images); re-evaluated {inter}, {union} ({n} images)"
                )
    check_state_unchanged(model, before, "verification")
    return mismatches


def format_verify_report(report: VerifyReport) -> str:
    """One or a few lines for the terminal."""
    if report.verified is None:
        return f"NOT verified: {report.source}\n  " + "\n  ".join(report.mismatches)
    return f"Verified: every per-scale count of {report.source} matches. Verified copy: {report.written}"
