"""Results for the benchmark tests: three scales 0.5, 1, 2 with 50 images each (``result_factories``)."""

from __future__ import annotations

from typing import Any

from result_factories import make_run

from scalebench.results import RunResult


def make_result(
    correct: list[int] | None = None, *, scales: list[float] | None = None, total: int = 50, **kwargs: Any
) -> RunResult:
    """A valid RunResult from per-scale correct counts (defaults: 30, 45, 35 of 50 at scales 0.5, 1, 2)."""
    scales = scales or [0.5, 1.0, 2.0]
    correct = correct if correct is not None else [30, 45, 35][: len(scales)]
    return make_run(correct, scales=scales, total=total, **kwargs)
