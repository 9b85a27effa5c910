"""Verify a results file by re-evaluating its checkpoint: no re-training, so verification stays cheap.

Steps (``scalebench evaluate --verify RUN.json --checkpoint FILE``, and ``submit --checkpoint``):

1. validate ``RUN.json`` against the results schema;
2. check, before anything is computed or allocated, every value the results file and the checkpoint control
   (a submitter controls both): ``dataset.build_id`` is a build id, never a path
   (:func:`scalebench.checks.check_build_id`); ``model.config`` passes
   :func:`scalebench.models.registry.validate_model_config` (known keys, kinds, ranges, size); the recipe passes
   :func:`scalebench.results.recipe.validate_recipe` (so ``eval_batch_size`` and ``micro_batch_size`` are
   integers >= 1);
3. check that the checkpoint file's sha256 equals ``checkpoint_sha256`` in the results, and that its tensor
   names and shapes, read from the safetensors header, are those of the model built on the ``meta`` device;
4. open the recorded dataset build and check that the digest of its manifest restricted to the run's training
   set and test scales (``Build.view_sha256``, what the run recorded) equals the recorded one;
5. only then build the model for real from the recorded full config, load the weights, and test every
   recorded scale with the task's own evaluation (:meth:`scalebench.benchmark.tasks.Task.evaluate`: eval mode,
   ``torch.inference_mode``, buffers checked unchanged), on the same number of images per scale as recorded;
6. the run is verified only when every per-scale record equals the recorded one exactly (classification:
   ``correct`` and ``total``; segmentation: every per-class intersection and union count, the pixels and
   the images); the verified copy of the results has ``evaluated_by = "verified"`` and a
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from scalebench.benchmark.checkpoint import check_fits, checkpoint_shapes, load_weights
from scalebench.benchmark.engine import (
    Loop,
    check_state_unchanged,
    environment_info,
    model_to_device,
    select_device,
    state_snapshot,
)
from scalebench.benchmark.tasks import task_of
from scalebench.checks import ScalebenchError, check_build_id
from scalebench.datasets_builders.scales import match_scales
from scalebench.fileio import file_digest
from scalebench.progress import Progress
from scalebench.results import ALL_TASKS, AnyRunResult, Verification, load_results, save_results, train_key
from scalebench.results.recipe import Recipe, validate_recipe


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
    trust_model_code: bool = False,
) -> VerifyReport:
    """Re-evaluate ``checkpoint`` on the test sets recorded in ``results_path`` (see the module docstring).

    A run whose model lives outside scalebench (``model.source``: a file, a module or an installed package) is
    verified only with ``trust_model_code``: its code is then imported from the recorded reference, and its
    sha256 must equal the recorded one.

    The task of the results re-evaluates and its per-scale records are compared with the recorded ones. When
    every record matches, the verified copy is written to ``out`` (default ``<results>.verified.json``; a
    verified copy verified again is rewritten in place).
    """
    results_path = Path(results_path)
    result = load_results(results_path, tasks=ALL_TASKS)
    rebuild_outside_model(result, results_path, trust=trust_model_code)
    # Every value verification uses is checked before anything is computed (see the module docstring, step 2).
    check_build_id(result.dataset.build_id, f"{results_path}: dataset.build_id")
    meta = _meta_model(result, results_path)
    recipe = validate_recipe(result.training.recipe, source=f"{results_path}: training.recipe")
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
    check_fits(meta, checkpoint_shapes(checkpoint), checkpoint)
    dev = select_device(device)
    mismatches = _reevaluate(
        result, recipe, checkpoint, Path(root) if root is not None else None, dev, progress
    )
    if mismatches:
        return VerifyReport(results_path, None, mismatches)
    verification = Verification(
        verified_by=verifier_name(),
        verified_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
        environment=environment_info(dev, result.environment.amp and dev.type == "cuda"),
        source_results_sha256=file_digest(results_path, "sha256"),
    )
    verified = type(result).model_validate(
        {**result.model_dump(), "evaluated_by": "verified", "verification": verification.model_dump()}
    )
    stem = results_path.name.removesuffix(".json").removesuffix(".verified")  # re-verifying a verified copy
    dest = Path(out) if out is not None else results_path.with_name(stem + ".verified.json")
    save_results(verified, dest)
    return VerifyReport(results_path, verified, [], dest)


def rebuild_outside_model(result: AnyRunResult, source: str | Path, *, trust: bool) -> None:
    """Register the model of a run from outside scalebench again, from its recorded reference, if the user
    trusts its code; its source's sha256 must be the recorded one (the code that produced the numbers).

    Raises:
        ScalebenchError: without ``trust`` (nothing is imported), or when the source changed.
    """
    src = getattr(result.model, "source", None)
    from scalebench.models.registry import registered_with, resolve_model

    if src is None or src.kind == "zoo" or registered_with(result.model.name, src.sha256):
        return  # nothing to import: scalebench's own code, or code this process registered already
    if not trust:
        raise ScalebenchError(
            f"{source}: the model {result.model.name!r} comes from outside scalebench ({src.kind} {src.reference}); "
            "verifying it imports and runs that code. Pass --trust-model-code if you trust it."
        )
    resolved = resolve_model(src.reference, name=result.model.name)
    if src.sha256 is not None and resolved.source.sha256 != src.sha256:
        raise ScalebenchError(
            f"{source}: the source of {src.reference} has sha256 {resolved.source.sha256}, but the run recorded "
            f"{src.sha256}: the code changed since the run. Restore the code of the run to verify it."
        )


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


def _check_build(built: Any, result: AnyRunResult) -> None:
    """The build holds the data the run used: the digest of its manifest restricted to the run's training set
    and test scales (``Build.view_sha256``) is the recorded one (results written before runs recorded that view: the
    digest of the whole manifest)."""
    recorded = result.dataset.manifest_sha256
    view = built.view_sha256(train_key(result), result.scales)
    if recorded not in (view, built.manifest_sha256):
        raise ScalebenchError(
            f"Dataset build {result.dataset.build_id!r} here has manifest sha256 {view} for the "
            f"training set and test scales of the run, the results record {recorded}: the data differ. Rebuild the recorded "
            f"dataset version ({result.dataset.version}) with `scalebench build-datasets`."
        )


def _restored_model(
    result: AnyRunResult, checkpoint: Path, dev: torch.device, channels_last: bool
) -> torch.nn.Module:
    """The recorded model (full config), with the checkpoint's weights, on ``dev``, in eval mode."""
    from scalebench.models import create_model

    model = create_model(
        result.model.name, num_classes=result.dataset.num_classes, in_channels=result.dataset.channels,
        **result.model.config,
    )  # fmt: skip
    load_weights(model, checkpoint)
    dense = getattr(result, "test_channels", None)
    if dense is not None:  # tested on a densified channel grid: the same weights on that grid
        from scalebench.models.densify import densify

        model = densify(result.model.name, result.model.config, model, dense.factor,
                        num_classes=result.dataset.num_classes, in_channels=result.dataset.channels)  # fmt: skip
    model = model_to_device(model, dev, channels_last)
    return model.eval()


def _reevaluate(
    result: AnyRunResult,
    recipe: Recipe,
    checkpoint: Path,
    root: Path | None,
    dev: torch.device,
    progress: str,
) -> list[str]:
    """Test the checkpoint on the recorded build, scales and image counts with the task's own evaluation, and
    list every scale whose per-scale record differs from the recorded one."""
    from scalebench.datasets_builders import open_build
    from scalebench.models import get_model_card

    task = task_of(result.task)
    built = open_build(result.dataset.build_id, root)
    if built.task != result.task:
        raise ScalebenchError(
            f"{result.dataset.build_id!r} is a {built.task} build, but the results are {result.task} results."
        )
    _check_build(built, result)
    scales = match_scales(result.scales, built.test_scales, built.build_id)
    model = _restored_model(result, checkpoint, dev, task.channels_last)
    extras = task.extras(model, get_model_card(result.model.name))
    before = state_snapshot(model)
    mismatches: list[str] = []
    with Progress(progress) as bar:
        loop = Loop(recipe, dev, amp=result.environment.amp and dev.type == "cuda",
                    channels_last=task.channels_last, progress=bar)  # fmt: skip
        for scale, recorded in zip(scales, result.per_scale, strict=True):
            ds = built.dataset("test", scale)
            n = len(ds) if result.limit is None else min(len(ds), result.limit)
            record, _ = task.evaluate(model, ds, recorded.scale, n=n, loop=loop, build=built, extras=extras,
                                      label=f"verify scale {scale:.3g}")  # fmt: skip
            bar.end(f"score {record.score:.4f}")
            if record.model_dump() != recorded.model_dump():
                mismatches.append(
                    f"scale {scale:g}: recorded {_counts(recorded)}; re-evaluated {_counts(record)}"
                )
    check_state_unchanged(model, before, "verification")
    return mismatches


def _counts(record: Any) -> str:
    """The counts of a per-scale record, for a mismatch line."""
    return ", ".join(f"{k} {v}" for k, v in record.model_dump().items() if k != "scale")


def format_verify_report(report: VerifyReport) -> str:
    """One or a few lines for the terminal."""
    if report.verified is None:
        return f"NOT verified: {report.source}\n  " + "\n  ".join(report.mismatches)
    return f"Verified: every per-scale count of {report.source} matches. Verified copy: {report.written}"
