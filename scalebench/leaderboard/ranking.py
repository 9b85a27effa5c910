"""Aggregate stored runs over seeds and rank them.

An entry is one (dataset, training scale, model, config hash): the seeds of one configuration. For every
summary metric of :mod:`scalebench.benchmark.metrics` (recomputed from the per-scale counts when the store
was validated), the entry holds the mean and the sample standard deviation (ddof = 1, as WILDS reports
replicates; Koh et al., 2021, "WILDS: a benchmark of in-the-wild distribution shifts", ICML) over seeds,
computed by :func:`scalebench.benchmark.metrics.mean_std`, and the per-scale curve by
:func:`scalebench.benchmark.figures.curve_rows`.

Ranking, within one dataset and training scale: entries with at least :data:`MIN_SEEDS` seeds are ranked
by mean accuracy over the test scales (descending), ties broken by worst-scale accuracy, then by model name
and config hash; entries with fewer seeds are listed after them as provisional, unranked.

A metric that is undefined for some seed (the generalisation ratio when the training-scale accuracy is 0;
the scale-selection ρ of a model that reports no selection, or of a constant selection) is undefined for
the entry: averaging over the other seeds only would hide the failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scalebench.benchmark import metrics
from scalebench.leaderboard.store import StoredRun
from scalebench.leaderboard.validate import run_config_hash

#: Seeds an entry needs to be ranked (fewer: provisional).
MIN_SEEDS = 3

#: The summary columns, in display order: (key, label, kind); kind "acc" prints as a percentage.
METRIC_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("mean_accuracy", "mean acc. over scales", "acc"),
    ("train_scale_accuracy", "acc. at training scale", "acc"),
    ("worst_accuracy", "worst-scale acc.", "acc"),
    ("generalisation_ratio", "generalisation ratio", "ratio"),
    ("spearman_rho", "scale-selection ρ", "ratio"),
)


@dataclass(frozen=True)
class Stat:
    """Mean and sample std over seeds; both None when the metric is undefined for some seed."""

    mean: float | None
    std: float | None

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat:
        if not values or any(v is None for v in values):
            return cls(None, None)
        mean, std = metrics.mean_std([float(v) for v in values])  # type: ignore[arg-type]
        return cls(mean, std)


@dataclass
class Entry:
    """One leaderboard row: a configuration aggregated over its seeds."""

    dataset: str
    dataset_version: str
    train_scale: float
    model: str
    config_hash: str
    preset: str
    num_params: int
    seeds: list[int]
    stats: dict[str, Stat]
    curve: list[tuple[float, float, float]]
    runs: list[dict[str, Any]]
    n_verified: int
    rank: int | None = None

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def provisional(self) -> bool:
        return self.n_seeds < MIN_SEEDS

    @property
    def status(self) -> str:
        """``verified`` (every seed re-evaluated), ``partly verified`` or ``self-reported``."""
        if self.n_verified == self.n_seeds:
            return "verified"
        return "partly verified" if self.n_verified else "self-reported"


def _entry(runs: list[StoredRun]) -> Entry:
    from scalebench.benchmark.figures import curve_rows

    runs = sorted(runs, key=lambda r: r.result.seed)
    results = [r.result for r in runs]
    first = results[0]
    stats = {
        key: Stat.of([getattr(r.summary, key) for r in results])
        for key in ("mean_accuracy", "train_scale_accuracy", "worst_accuracy", "generalisation_ratio")
    }
    stats["spearman_rho"] = Stat.of(
        [r.scale_selection.spearman_rho if r.scale_selection is not None else None for r in results]
    )
    return Entry(
        dataset=first.dataset.name,
        dataset_version=first.dataset.version,
        train_scale=first.dataset.train_scale,
        model=first.model.name,
        config_hash=run_config_hash(first),
        preset=first.training.preset,
        num_params=first.model.num_params,
        seeds=[r.seed for r in results],
        stats=stats,
        curve=[(s, m, sd) for s, m, sd, _ in curve_rows(results)],
        runs=[
            {
                "path": str(r.path),
                "seed": r.result.seed,
                "evaluated_by": r.result.evaluated_by,
                "sha256": r.sha256,
            }
            for r in runs
        ],
        n_verified=sum(r.evaluated_by == "verified" for r in results),
    )


def _sort_key(e: Entry) -> tuple:
    mean = e.stats["mean_accuracy"].mean
    worst = e.stats["worst_accuracy"].mean
    return (e.provisional, -(mean or 0.0), -(worst or 0.0), e.model, e.config_hash)


def rank_entries(runs: Sequence[StoredRun]) -> list[Entry]:
    """Group runs into entries and rank them (see the module docstring).

    Returns the entries ordered by dataset, training scale, then rank; provisional entries (rank None)
    follow the ranked ones of their dataset and training scale, in the same order of merit.
    """
    groups: dict[tuple[str, float, str, str], list[StoredRun]] = {}
    for run in runs:
        r = run.result
        key = (r.dataset.name, r.dataset.train_scale, r.model.name, run_config_hash(r))
        groups.setdefault(key, []).append(run)
    entries = [_entry(g) for g in groups.values()]
    entries.sort(key=lambda e: (e.dataset, e.train_scale, *_sort_key(e)))
    counters: dict[tuple[str, float], int] = {}
    for e in entries:
        if not e.provisional:
            k = (e.dataset, e.train_scale)
            counters[k] = counters.get(k, 0) + 1
            e.rank = counters[k]
    return entries
