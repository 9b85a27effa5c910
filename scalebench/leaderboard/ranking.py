"""Aggregate stored runs over seeds and rank them.

An entry is one (board, training scale, model, config hash): the seeds of one configuration, where the board
is the dataset and its track (``fashion-mnist`` for the full build, ``fashion-mnist-lite`` for the lite one;
:attr:`scalebench.leaderboard.validate.KnownBuild.board`). For every
summary metric of :mod:`scalebench.results.metrics` (recomputed from the per-scale counts when the store
was validated), the entry holds the mean and the sample standard deviation (ddof = 1, as WILDS reports
replicates; Koh et al., 2021, "WILDS: a benchmark of in-the-wild distribution shifts", ICML) over seeds,
computed by :func:`scalebench.results.metrics.mean_std`, and the per-scale curve by
:func:`scalebench.figures.curves.curve_rows`.

Ranking, within one board and training scale: entries with at least :data:`MIN_SEEDS` seeds are ranked
by mean accuracy over the test scales (descending), ties broken by worst-scale accuracy, then by model name
and config hash; entries with fewer seeds are listed after them as provisional, unranked.

A metric that is undefined for some seed (the generalisation ratio when the training-scale accuracy is 0;
the scale-selection ρ of a model that reports no selection, or of a constant selection) is undefined for
the entry: averaging over the other seeds only would hide the failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scalebench.leaderboard.store import StoredRun
from scalebench.leaderboard.validate import (
    TRAINING_TRACKS,
    run_config_hash,
    training_track,
    verification_status,
)
from scalebench.results import metrics

#: Seeds an entry needs to be ranked (fewer: provisional).
MIN_SEEDS = 3

#: The summary columns, in display order: (key, label, kind); kind "acc" prints as a percentage.
METRIC_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("mean_accuracy", "mean acc. over scales", "acc"),
    ("train_scale_accuracy", "acc. at training scale", "acc"),
    ("worst_accuracy", "worst-scale acc.", "acc"),
    ("generalisation_ratio", "generalisation ratio", "ratio"),
    ("spearman_rho", "scale-selection ρ", "ratio"),
    ("invariance_error", "scale-invariance error", "ratio"),
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
    """One leaderboard row: a configuration aggregated over its seeds.

    Besides the statistics it carries what the board shows of the runs: the model's card (display name,
    paper, links, notes) and full config as recorded, FLOPs per training image, training seconds over seeds,
    the dates, scalebench versions and commits of the runs, and each run's verification record.
    """

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
    track: str = "full"
    training: str = "standard"
    build_id: str = ""
    card: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    train_flops_per_image: int | None = None
    train_seconds: Stat = Stat(None, None)
    created: tuple[str, str] = ("", "")
    versions: tuple[str, ...] = ()
    commits: tuple[str, ...] = ()
    test_channels: int = 1

    @property
    def board(self) -> str:
        """The board of the entry: its dataset, plus ``-<track>`` off the full track and ``-<training>`` off the
        standard recipe (runs of another training track are never ranked with protocol-trained ones)."""
        board = self.dataset if self.track == "full" else f"{self.dataset}-{self.track}"
        return board if self.training == "standard" else f"{board}-{self.training}"

    @property
    def display_name(self) -> str:
        """The model's name for people (the card's ``display_name``; the registered name in older files), with
        ``+ dense ×F`` for the trained weights tested on an F times finer scale-channel grid."""
        name = str(self.card.get("display_name") or self.model)
        return name if self.test_channels == 1 else f"{name} + dense ×{self.test_channels}"

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def provisional(self) -> bool:
        return self.n_seeds < MIN_SEEDS

    @property
    def status(self) -> str:
        """``verified`` (every seed re-evaluated), ``partly verified`` or ``self-reported``."""
        return verification_status(self.n_verified, self.n_seeds)


def _invariance(result: Any) -> float | None:
    """The trained model's logit invariance error between s and s·√2 (results 1.3+), or None."""
    eq = getattr(result, "equivariance", None)
    return None if eq is None else eq.trained.invariance


def _entry(runs: list[StoredRun]) -> Entry:
    from scalebench.figures.curves import curve_rows

    runs = sorted(runs, key=lambda r: r.result.seed)
    dates = sorted(r.result.created_at for r in runs)
    results = [r.result for r in runs]
    first = results[0]
    stats = {
        key: Stat.of([getattr(r.summary, key) for r in results])
        for key in ("mean_accuracy", "train_scale_accuracy", "worst_accuracy", "generalisation_ratio")
    }
    stats["spearman_rho"] = Stat.of(
        [r.scale_selection.spearman_rho if r.scale_selection is not None else None for r in results]
    )
    stats["invariance_error"] = Stat.of([_invariance(r) for r in results])
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
        runs=[_run_record(r) for r in runs],
        n_verified=sum(r.evaluated_by == "verified" for r in results),
        track=runs[0].track,
        training=training_track(first),
        build_id=first.dataset.build_id,
        card=dict(first.model.card),
        config=dict(first.model.config),
        recipe=dict(first.training.recipe),
        train_flops_per_image=getattr(first.model, "train_flops_per_image", None),
        train_seconds=Stat.of([r.timings.train_seconds for r in results]),
        created=(dates[0], dates[-1]),
        versions=tuple(sorted({r.environment.scalebench_version for r in results})),
        commits=tuple(sorted({r.environment.git_commit for r in results if r.environment.git_commit})),
        test_channels=first.test_channels.factor if getattr(first, "test_channels", None) else 1,
    )


def _run_record(run: StoredRun) -> dict[str, Any]:
    """What the board lists of one seed: its file, verification status and provenance, time and date."""
    r = run.result
    verification = getattr(r, "verification", None)
    return {
        "path": str(run.path),
        "seed": r.seed,
        "evaluated_by": r.evaluated_by,
        "sha256": run.sha256,
        "created_at": r.created_at,
        "train_seconds": r.timings.train_seconds,
        "device": r.environment.device_name,
        "scalebench_version": r.environment.scalebench_version,
        "git_commit": r.environment.git_commit,
        "verification": None if verification is None else verification.model_dump(mode="json"),
    }


def _sort_key(e: Entry) -> tuple:
    mean = e.stats["mean_accuracy"].mean
    worst = e.stats["worst_accuracy"].mean
    return (e.provisional, -(mean or 0.0), -(worst or 0.0), e.model, e.config_hash)


def rank_entries(runs: Sequence[StoredRun]) -> list[Entry]:
    """Group runs into entries and rank them (see the module docstring).

    Returns the entries ordered by dataset, track (full first), training scale, then rank; provisional entries
    (rank None) follow the ranked ones of their board and training scale, in the same order of merit.
    """
    groups: dict[tuple[str, str, float, str, str], list[StoredRun]] = {}
    for run in runs:
        r = run.result
        key = (r.dataset.name, run.track, r.dataset.train_scale, training_track(r), r.model.name,
               run_config_hash(r))  # fmt: skip
        groups.setdefault(key, []).append(run)
    entries = [_entry(g) for g in groups.values()]
    order = {t: i for i, t in enumerate(TRAINING_TRACKS)}
    entries.sort(
        key=lambda e: (e.dataset, e.track != "full", e.track, e.train_scale, order[e.training], *_sort_key(e))
    )
    counters: dict[tuple[str, float], int] = {}
    for e in entries:
        if not e.provisional:
            k = (e.board, e.train_scale)
            counters[k] = counters.get(k, 0) + 1
            e.rank = counters[k]
    return entries
