"""Test a model trained elsewhere on every test scale of a build (``scalebench.test``; RobustBench's
``benchmark(model, ...)``): no training, no selection; the results record ``training.preset = "external"``.

The model's weights are saved as ``best.safetensors`` in the run folder (``<out>/<name>__<build>__external__<hash>/``)
so that the numbers can be verified, its code is recorded as :func:`scalebench.models.external.module_source` of
its class, and a state check around the test proves that testing changed nothing. The leaderboard shows such
runs in an external-training track, never ranked with protocol-trained runs.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from torch import nn

from scalebench.benchmark.checkpoint import save_weights
from scalebench.benchmark.engine import (
    Loop,
    check_state_unchanged,
    environment_info,
    select_device,
    state_snapshot,
    write_done,
    writing,
)
from scalebench.benchmark.protocol import check_model
from scalebench.benchmark.tasks import task_of
from scalebench.checks import ScalebenchError
from scalebench.fileio import config_hash
from scalebench.progress import Progress
from scalebench.results import (
    ClassificationResult,
    DatasetInfo,
    ModelInfo,
    Timings,
    TrainingInfo,
    build_scale_selection,
    build_summary,
    save_results,
)
from scalebench.results.recipe import Recipe


def weights_sha256(model: nn.Module) -> str:
    """sha256 over the names and bytes of every tensor of the model's state (the weights being tested)."""
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode() + b"\0" + value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _name(model: nn.Module, name: str | None) -> str:
    chosen = name or type(model).__name__.lower()
    if not re.fullmatch(r"[a-z0-9_][a-z0-9_.-]{0,99}", chosen):
        raise ScalebenchError(
            f"Model name {chosen!r} cannot name runs: give name= with 1-100 lowercase letters, digits, '_', '-', '.'."
        )
    return chosen


def test_model(
    model: nn.Module,
    *,
    dataset: str,
    name: str | None,
    root: str | Path | None,
    out: Path,
    device: str,
    batch_size: int,
    progress: str,
) -> ClassificationResult:
    """See :func:`scalebench.test`."""
    from scalebench.datasets_builders import open_build
    from scalebench.figures.curves import plot_curves
    from scalebench.models.external import module_source, structure_sha256
    from scalebench.models.registry import count_parameters, external_card

    if not isinstance(model, nn.Module):
        raise ScalebenchError(f"scalebench.test takes a torch.nn.Module, got a {type(model).__name__}.")
    built = open_build(dataset, root, task="classification")
    task, dev, label = task_of("classification"), select_device(device), _name(model, name)
    model = model.to(dev).eval()
    scales = list(built.test_scales)
    source = module_source(type(model))
    identity = {"model": label, "source": source.as_dict(), "structure": structure_sha256(model),
                "weights": weights_sha256(model),
                "dataset": built.build_id, "view": built.view_sha256(built.default_train_key, scales)}  # fmt: skip
    card = external_card(label, type(model))
    check_model(model, label, card, built, task)  # before anything is written: one error for a broken model
    extras = task.extras(model, card)
    run_hash = config_hash(identity)
    run_dir = out / f"{label}__{built.build_id}__external__{run_hash}"
    with writing(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        sha = save_weights(model, run_dir / "best.safetensors")
    recipe = Recipe(epochs=1, batch_size=batch_size, eval_batch_size=batch_size, lr=1.0)
    loop = Loop(recipe, dev, channels_last=False)
    before, t0 = state_snapshot(model), time.perf_counter()
    per_scale, aux = [], []
    with Progress(progress) as bar:
        loop.progress = bar
        for i, scale in enumerate(scales, 1):
            ds = built.dataset("test", scale)
            record, counts = task.evaluate(model, ds, scale, n=len(ds), loop=loop, build=built, extras=extras,
                                           label=f"test scale {scale:.3g} ({i}/{len(scales)})")  # fmt: skip
            bar.end(f"accuracy {record.accuracy:.4f}")
            per_scale.append(record)
            aux.append(counts)
    seconds = time.perf_counter() - t0
    check_state_unchanged(model, before, "testing")
    images = sum(r.total for r in per_scale)
    result = ClassificationResult(
        created_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
        model=ModelInfo(name=label, config={}, config_hash=run_hash, card=card.model_dump(mode="json"),
                        num_params=count_parameters(model), source=source.as_dict(),
                        structure_sha256=identity["structure"]),
        dataset=DatasetInfo(name=built.name, build_id=built.build_id, version=str(built.version),
                            manifest_sha256=identity["view"], canvas=tuple(int(v) for v in built.canvas),
                            channels=int(built.channels), num_classes=int(built.num_classes), train_size=0,
                            val_size=0, embedded=bool(getattr(built, "embedded", False)),
                            train_scale=float(built.train_scale)),
        seed=0,
        training=TrainingInfo(preset="external", recipe={}, history=[]),
        per_scale=per_scale,
        summary=build_summary(per_scale, float(built.train_scale)),
        scale_selection=build_scale_selection(scales, extras["sigmas"], aux) if extras["sigmas"] else None,
        checkpoint_sha256=sha,
        timings=Timings(train_seconds=0.0, eval_seconds=seconds, total_seconds=seconds,
                        train_images_per_second=0.0, eval_images_per_second=images / seconds if seconds else 0.0),
        environment=environment_info(dev, False),
    )  # fmt: skip
    with writing(run_dir):
        save_results(result, run_dir / "results.json")
        plot_curves([result], run_dir / "curve", formats=("png", "svg"))
        write_done(run_dir)
    return result
