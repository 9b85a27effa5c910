"""Builders of valid results objects for tests (counts in, every derived number computed by the library)."""

from __future__ import annotations

from typing import Any

from scalebench.benchmark.results import (
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
)


def make_result(
    correct: list[int] | None = None,
    *,
    total: int = 50,
    scales: list[float] | None = None,
    train_scale: float = 1.0,
    seed: int = 0,
    model: str = "gaussdernet",
    selection: list[list[int]] | None = None,
    sigmas: list[float] | None = None,
    limit: int | None = None,
) -> RunResult:
    """A valid RunResult from per-scale correct counts (defaults: 3 scales 0.5, 1, 2)."""
    scales = scales or [0.5, 1.0, 2.0]
    correct = correct if correct is not None else [30, 45, 35][: len(scales)]
    per_scale = [
        ClassificationScaleResult(scale=s, correct=c, total=total, accuracy=c / total)
        for s, c in zip(scales, correct, strict=True)
    ]
    sel = None
    if selection is not None:
        sel = build_scale_selection(scales, sigmas or [2.0**i for i in range(len(selection[0]))], selection)
    data: dict[str, Any] = dict(
        created_at="2026-01-01T00:00:00+00:00",
        model=ModelInfo(
            name=model,
            config={"width": 8, "sigmas": [1.0, 2.0]},
            config_hash="0123456789ab",
            card={"name": model},
            num_params=1234,
        ),
        dataset=DatasetInfo(
            name="fashion-mnist",
            build_id="fashion-mnist",
            version="1.0",
            manifest_sha256="a" * 64,
            train_scale=train_scale,
            canvas=(72, 72),
            channels=1,
            num_classes=10,
            train_size=100,
            val_size=20,
        ),
        seed=seed,
        limit=limit,
        training=TrainingInfo(
            preset="quick",
            recipe={"optimizer": "adamw", "lr": 0.01},
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
            git_commit=None,
        ),
    )
    return RunResult(**data)
