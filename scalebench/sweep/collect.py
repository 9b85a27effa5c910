"""``sweep collect``: submit the finished runs of a sweep to a leaderboard store and draw the comparison figures.

The store is the leaderboard's (:func:`scalebench.leaderboard.submit_runs`), the figures are the paper figures
(:func:`scalebench.figures.curves.plot_curves` with the metric of the runs' task,
:func:`scalebench.figures.selection.plot_selection`); this module only picks the runs. Runs already in the
store are not submitted again; the figures (one curve figure per build and training set, plus a
scale-selection figure when some runs report scale selection) are drawn from every done run of the sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scalebench.benchmark.checkpoint import BEST
from scalebench.benchmark.engine import check_done
from scalebench.benchmark.tasks import task_of
from scalebench.datasets_builders.builds import key_text
from scalebench.leaderboard.store import add_checkpoints, checkpoint_path, read_index, submit_runs
from scalebench.leaderboard.validate import KnownBuild, entry_path, track_of
from scalebench.results import ALL_TASKS, AnyRunResult, load_results, train_key
from scalebench.sweep.jobs import load_jobs


@dataclass
class CollectReport:
    """Runs added to the store, runs already there, jobs not done, and the figure files written."""

    added: list[Path] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    already_stored: list[str] = field(default_factory=list)
    not_done: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    def summary(self, store: str | Path) -> str:
        """The lines ``sweep collect`` prints: the counts, then the figures written."""
        return (
            f"{len(self.added)} added to {store} ({len(self.checkpoints)} checkpoints), {len(self.already_stored)} "
            f"already there, {len(self.not_done)} jobs not done\nwrote "
            + ", ".join(str(p) for p in self.figures)
        )


def collect(
    sweep_dir: str | Path,
    store: str | Path = "results",
    *,
    figures_dir: str | Path | None = None,
    known: Sequence[KnownBuild] | None = None,
    checkpoints: bool = True,
) -> CollectReport:
    """Submit every done run of the sweep that the store lacks (all or nothing), store each one's best checkpoint
    beside it (``checkpoints``; its sha256 checked against the results), then draw the figures.

    ``figures_dir`` defaults to ``<sweep_dir>/figures``; ``known`` to the canonical builds (the leaderboard
    accepts full runs on canonical builds only, and says which rule a run breaks).
    """
    from scalebench.figures.curves import plot_curves
    from scalebench.figures.selection import plot_selection

    report = CollectReport()
    results: list[tuple[str, AnyRunResult]] = []
    best: list[Path] = []
    for job in load_jobs(sweep_dir):
        if not job.done:
            report.not_done.append(job.job_id)
            continue
        path = check_done(job.run_dir)  # the results are those the run wrote (done records their sha256)
        results.append((str(path), load_results(path, tasks=ALL_TASKS)))
        best.append(job.run_dir / BEST)
    index = read_index(store)  # empty for a store not created yet
    rels = []  # each run's path in the store, in the order of results and best
    new = []
    for source, result in results:
        rels.append(entry_path(result, track_of(result, known)))
        if str(rels[-1]) in index:
            report.already_stored.append(source)
        else:
            new.append((source, result))
    if new:
        report.added = [o.path for o in submit_runs(new, store, known=known)]
    if checkpoints and best:
        index = read_index(store)
        todo = [
            (rel, ckpt)
            for rel, ckpt in zip(rels, best, strict=True)
            if str(checkpoint_path(rel)) not in index
        ]
        report.checkpoints = add_checkpoints(store, todo) if todo else []
    out = Path(figures_dir) if figures_dir is not None else Path(sweep_dir) / "figures"
    groups: dict[tuple[str, tuple[float, ...]], list[AnyRunResult]] = {}
    for _, result in results:
        groups.setdefault((result.dataset.build_id, train_key(result)), []).append(result)
    for (build_id, key), runs in sorted(groups.items()):
        stem = out / f"{build_id}__train-scale-{key_text(key)}"
        metric = task_of(runs[0].task).metric
        report.figures += plot_curves(runs, stem.with_name(stem.name + "__curves"), metric=metric)
        with_selection = [r for r in runs if getattr(r, "scale_selection", None) is not None]
        if with_selection:
            report.figures += plot_selection(with_selection, stem.with_name(stem.name + "__selection"))
    return report
