"""Valid leaderboard submissions for tests: counts in, every derived number computed by the library."""

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
    results_to_json,
)
from scalebench.leaderboard.validate import KnownBuild

#: The canonical test scales 2^(k/4), k = -4..4 (test_lb_validate checks them against the datasets package;
#: importing that package here would make every spawned test worker import torch).
SCALES = [round(2.0 ** (k / 4), 6) for k in range(-4, 5)]
MANIFEST = "a" * 64
VERSION = "1.0.0"
KNOWN = (KnownBuild("fashion-mnist", VERSION, MANIFEST, tuple(SCALES), 1.0),)


def make_run(
    correct: list[int] | None = None,
    *,
    seed: int = 0,
    model: str = "gaussdernet",
    total: int = 100,
    width: int = 8,
    selection: bool = False,
    evaluated_by: str = "self-reported",
    num_params: int = 12345,
    dataset: str = "fashion-mnist",
) -> RunResult:
    """A valid run on the canonical scales of the test build (default counts vary with the seed)."""
    if correct is None:
        base = [50, 60, 70, 80, 90, 82, 74, 66, 58]
        correct = [min(total, c + (seed % 3)) for c in base]
    per_scale = [
        ClassificationScaleResult(scale=s, correct=c, total=total, accuracy=c / total)
        for s, c in zip(SCALES, correct, strict=True)
    ]
    sel = None
    if selection:
        counts = [[0] * 5 for _ in SCALES]
        for i in range(len(SCALES)):
            counts[i][min(4, i // 2)] = total - seed
            counts[i][(i + seed) % 5] += seed
        sel = build_scale_selection(SCALES, [2.0 ** (j / 2) for j in range(5)], counts)
    data: dict[str, Any] = dict(
        evaluated_by=evaluated_by,
        created_at="2026-01-01T00:00:00+00:00",
        model=ModelInfo(
            name=model, config={"width": width}, config_hash="0123456789ab", card={"name": model},
            num_params=num_params,
        ),
        dataset=DatasetInfo(
            name=dataset, build_id=dataset, version=VERSION, manifest_sha256=MANIFEST, train_scale=1.0,
            canvas=(72, 72), channels=1, num_classes=10, train_size=50000, val_size=10000,
        ),
        seed=seed,
        training=TrainingInfo(
            preset="paper",
            recipe={"optimizer": "adamw", "lr": 0.01},
            best_epoch=1,
            best_val_accuracy=0.5,
            history=[
                EpochRecord(epoch=1, lr=0.01, train_loss=2.0, train_accuracy=0.3, val_accuracy=0.5, seconds=1.0)
            ],
        ),
        per_scale=per_scale,
        summary=build_summary(per_scale, 1.0),
        scale_selection=sel,
        checkpoint_sha256="b" * 64,
        timings=Timings(
            train_seconds=1.0, eval_seconds=1.0, total_seconds=2.0, train_images_per_second=100.0,
            eval_images_per_second=150.0,
        ),
        environment=Environment(
            scalebench_version="0.1.0", torch_version="2.14.1", python_version="3.12", platform="linux",
            device="cpu", device_name="cpu", num_threads=2, amp=False, deterministic=True,
        ),
    )  # fmt: skip
    return RunResult(**data)


def run_text(run: RunResult) -> str:
    return results_to_json(run)


def write_run(path, run: RunResult):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results_to_json(run))
    return path


def snapshot(folder) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), to check that a store is unchanged."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
