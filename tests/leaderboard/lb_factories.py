"""Valid leaderboard submissions for tests: counts in, every derived number computed by the library."""

from __future__ import annotations

from typing import Any

from result_factories import MANIFEST, VERSION, run_text, write_run
from result_factories import make_run as _make_run

from scalebench.leaderboard.validate import KnownBuild
from scalebench.results import RunResult

__all__ = ["KNOWN", "MANIFEST", "SCALES", "VERSION", "make_run", "run_text", "snapshot", "write_run"]

#: The canonical test scales 2^(k/4), k = -4..4 (test_lb_validate checks them against the datasets package;
#: importing that package here would make every spawned test worker import torch).
SCALES = [round(2.0 ** (k / 4), 6) for k in range(-4, 5)]
KNOWN = (KnownBuild("fashion-mnist", VERSION, MANIFEST, tuple(SCALES), 1.0),)


def make_run(
    correct: list[int] | None = None,
    *,
    seed: int = 0,
    total: int = 100,
    selection: bool = False,
    **kwargs: Any,
) -> RunResult:
    """A valid run on the canonical scales of the test build (default counts vary with the seed);
    ``selection=True`` adds a scale-selection block over 5 channels that also varies with the seed."""
    if correct is None:
        base = [50, 60, 70, 80, 90, 82, 74, 66, 58]
        correct = [min(total, c + (seed % 3)) for c in base]
    counts = None
    if selection:
        counts = [[0] * 5 for _ in SCALES]
        for i in range(len(SCALES)):
            counts[i][min(4, i // 2)] = total - seed
            counts[i][(i + seed) % 5] += seed
    sigmas = [2.0 ** (j / 2) for j in range(5)]
    return _make_run(
        correct, scales=SCALES, total=total, seed=seed, selection=counts, sigmas=sigmas, **kwargs
    )


def snapshot(folder) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), to check that a store is unchanged."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
