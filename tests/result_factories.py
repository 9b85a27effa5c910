"""Valid results objects for the benchmark and leaderboard tests: counts in, every derived number computed by
the library (``build_summary``, ``build_scale_selection``), everything else fixed."""

from __future__ import annotations

from pathlib import Path

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
    results_to_json,
)

MANIFEST = "a" * 64
VERSION = "1.0.0"

#: The config key that ``make_run(width=...)`` sets, by registered model (``widths``: four layers of it).
_WIDTH_KEY = {
    "cnn": "widths",
    "gaussdernet": "widths",
    "gaussderresnet": "stem_width",
    "gaussderresnet_dw": "stem_width",
}


def model_config(model: str, width: int) -> dict:
    """A valid config of the registered ``model`` that differs with ``width`` (resnets, U-Nets: ``width``)."""
    key = _WIDTH_KEY.get(model, "width")
    return {key: [width] * 4} if key == "widths" else {key: width}


def make_run(
    correct: list[int],
    *,
    scales: list[float],
    total: int,
    train_scale: float = 1.0,
    seed: int = 0,
    model: str = "gaussdernet",
    width: int = 8,
    num_params: int = 12345,
    dataset: str = "fashion-mnist",
    selection: list[list[int]] | None = None,
    sigmas: list[float] | None = None,
    limit: int | None = None,
    evaluated_by: str = "self-reported",
) -> RunResult:
    """A valid RunResult: ``correct[i]`` of ``total`` images right at ``scales[i]``; ``selection`` (one row of
    counts per scale) with ``sigmas`` (default 2^j) gives the scale-selection block. The model config
    (:func:`model_config`) and the recipe are valid for the registered ``model``, so the leaderboard's
    submission checks accept the run."""
    per_scale = [
        ClassificationScaleResult(scale=s, correct=c, total=total, accuracy=c / total)
        for s, c in zip(scales, correct, strict=True)
    ]
    sel = None
    if selection is not None:
        sel = build_scale_selection(scales, sigmas or [2.0**j for j in range(len(selection[0]))], selection)
    return RunResult(
        evaluated_by=evaluated_by,
        created_at="2026-01-01T00:00:00+00:00",
        model=ModelInfo(
            name=model,
            config=model_config(model, width),
            config_hash="0123456789ab",
            card={"name": model},
            num_params=num_params,
        ),
        dataset=DatasetInfo(
            name=dataset,
            build_id=dataset,
            version=VERSION,
            manifest_sha256=MANIFEST,
            train_scale=train_scale,
            canvas=(72, 72),
            channels=1,
            num_classes=10,
            train_size=50000,
            val_size=10000,
        ),
        seed=seed,
        limit=limit,
        training=TrainingInfo(
            preset="paper",
            recipe={"optimizer": "adamw", "lr": 0.01, "epochs": 1, "batch_size": 64},
            best_epoch=1,
            best_val_accuracy=0.5,
            history=[
                EpochRecord(
                    epoch=1, lr=0.01, train_loss=2.0, train_accuracy=0.3, val_accuracy=0.5, seconds=1.0
                )
            ],
        ),
        per_scale=per_scale,
        summary=build_summary(per_scale, train_scale),
        scale_selection=sel,
        checkpoint_sha256="b" * 64,
        timings=Timings(
            train_seconds=1.0,
            eval_seconds=1.0,
            total_seconds=2.0,
            train_images_per_second=100.0,
            eval_images_per_second=150.0,
        ),
        environment=Environment(
            scalebench_version="0.1.0",
            torch_version="2.14.1",
            python_version="3.12",
            platform="linux",
            device="cpu",
            device_name="cpu",
            num_threads=2,
            amp=False,
            deterministic=True,
        ),
    )


def run_text(run: RunResult) -> str:
    """The results JSON of ``run``, as a submission would carry it."""
    return results_to_json(run)


def write_run(path: Path, run: RunResult) -> Path:
    """Write ``run`` as a results file at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results_to_json(run))
    return path
