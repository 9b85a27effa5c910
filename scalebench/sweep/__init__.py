"""Sweeps: the grid models × datasets × training sets × seeds, run by a launcher (local, slurm, debug).

``launch`` expands the grid into jobs (one ``scalebench evaluate`` run each, of any task, named by the
protocol's run hash; the training sets are those of each build, ``--train-scales``),
records them in the sweep folder and hands the ones not done to a launcher. See ``docs/cluster.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from scalebench.checks import check_choice
from scalebench.sweep.collect import CollectReport, collect
from scalebench.sweep.jobs import (
    STATES,
    Job,
    JobStatus,
    delete_incomplete,
    expand_grid,
    job_command,
    load_jobs,
    run_job,
    save_jobs,
    sweep_lock,
    sweep_status,
)
from scalebench.sweep.launchers import LAUNCHERS, LaunchReport, SweepJob, parallel_option, slurm_options


def launch(
    sweep_dir: str | Path,
    *,
    launcher: str = "local",
    models: Sequence[str],
    datasets: Sequence[str],
    seeds: Sequence[int],
    train_scales: Sequence[Sequence[float] | float] | None = None,
    launcher_options: dict[str, Any] | None = None,
    skip_stored: str | Path | None = None,
    **options: Any,
) -> LaunchReport:
    """Expand the grid, add its jobs to ``<sweep_dir>/sweep.json`` and launch those not done nor running.

    The sweep folder's lock is held from writing ``sweep.json`` until the launcher returns (for ``local``, until
    every job finished); a second launch on the same folder meanwhile is an error.

    ``train_scales``: the training sets of each build (:func:`~scalebench.sweep.jobs.expand_grid`; None: each
    build's default). ``options`` are :class:`scalebench.benchmark.config.EvalConfig` fields shared by every job
    (``root``: the one scalebench home of the builds). ``skip_stored``
    (a leaderboard store, e.g. the repository's ``results/``): jobs whose run is stored there are not run
    again, so a fresh machine resumes a sweep whose finished runs were collected and committed.
    """
    check_choice(launcher, "--launcher", list(LAUNCHERS))
    if launcher == "local":
        parallel_option(launcher_options or {})  # before anything is written
    jobs = expand_grid(
        sweep_dir, models=models, datasets=datasets, seeds=seeds, train_scales=train_scales, **options
    )
    with sweep_lock(sweep_dir):  # one launch at a time per folder: no job runs twice
        save_jobs(sweep_dir, jobs)  # also for debug: the printed commands read the jobs from sweep.json
        stored: list[str] = []
        other: list[str] = []
        if skip_stored is not None:
            runs = stored_runs(skip_stored)
            stored = [j.job_id for j in jobs if j.job_id.rsplit("__", 1)[-1] in runs]
            jobs = [j for j in jobs if j.job_id not in set(stored)]
            other = stored_under_other_hash([j.job_id for j in jobs], runs.values())
        report = LAUNCHERS[launcher](sweep_dir, jobs, launcher_options or {})
    report.skipped_stored, report.stored_under_other_hash = stored, other
    return report


def stored_runs(store: str | Path) -> dict[str, str]:
    """Run hash (``model.config_hash``, the end of a job id) -> ``<model>__<build id>__seed<seed>`` of every
    valid run in a leaderboard store: the jobs a sweep on a fresh machine need not run again, since their
    results are committed already."""
    from scalebench.checks import ScalebenchError
    from scalebench.leaderboard.store import checked_path, read_index
    from scalebench.results import ALL_TASKS, load_results

    runs = {}
    for rel in read_index(store):  # {} for a missing store
        if rel.endswith(".json"):
            try:  # an index line naming a path outside the store, or through a link, is never read
                r = load_results(checked_path(store, rel), tasks=ALL_TASKS)
            except ScalebenchError:
                continue  # a broken entry is run again; `leaderboard validate` reports it
            runs[r.model.config_hash] = f"{r.model.name}__{r.dataset.build_id}__seed{r.seed}"
    return runs


def stored_under_other_hash(job_ids: Sequence[str], stored: Iterable[str]) -> list[str]:
    """The jobs (not stored themselves) with a stored run of the same model, build and seed: their run hash
    differs, because the model's code (its source's sha256 is in the hash) or a setting changed, so they run
    again; ``sweep launch`` says how many.

    Example:
        >>> stored_under_other_hash(["cnn__fm__seed0__aa", "cnn__fm__seed1__bb", "cnn__fm__train2__seed0__cc"],
        ...                         ["cnn__fm__seed0"])
        ['cnn__fm__seed0__aa', 'cnn__fm__train2__seed0__cc']
    """
    stored = set(stored)
    out = []
    for job_id in job_ids:
        head, _, rest = job_id.partition("__seed")
        name_build = head.split("__train", 1)[0]  # a training set other than the default adds __train<key>
        seed = rest.split("__", 1)[0]
        if f"{name_build}__seed{seed}" in stored:
            out.append(job_id)
    return out


def _epochs(r: JobStatus) -> str:
    """Epochs done, of the recipe's (``4/6``), as far as the run folder tells."""
    if r.epoch is None:
        return "" if r.epochs is None else f"0/{r.epochs}"
    return str(r.epoch) if r.epochs is None else f"{r.epoch}/{r.epochs}"


def _left(r: JobStatus) -> str | None:
    """For a running job: its training time still to come at the pace of its epochs so far."""
    left = r.seconds_left if r.state == "running" else None
    if left is None:
        return None
    return "(trained; testing)" if left == 0 else f"(about {max(1, round(left / 60))} min of training left)"


def format_status(rows: Sequence[JobStatus], rich: bool = False) -> Any:
    """The ``sweep status`` table: a rich Table (``rich=True``) or plain tab-separated text, then the counts."""
    header = ("state", "job", "epochs done", "log / detail")
    body = [
        (r.state, r.job.job_id, _epochs(r),
         " ".join(x for x in (r.log if r.state == "failed" else None, r.detail, _left(r)) if x))
        for r in rows
    ]  # fmt: skip
    counts = ", ".join(f"{sum(r.state == s for r in rows)} {s}" for s in STATES)
    if rich:
        from rich.table import Table

        table = Table(*header, caption=counts)
        colour = {
            "done": "green",
            "failed": "red",
            "running": "yellow",
            "pending": "white",
            "stale": "magenta",
        }
        for row in body:
            table.add_row(f"[{colour[row[0]]}]{row[0]}[/]", *row[1:])
        return table
    return "\n".join(["\t".join(header), *("\t".join(row) for row in body), counts])


__all__ = [
    "LAUNCHERS",
    "STATES",
    "CollectReport",
    "Job",
    "JobStatus",
    "LaunchReport",
    "SweepJob",
    "collect",
    "delete_incomplete",
    "expand_grid",
    "format_status",
    "job_command",
    "launch",
    "load_jobs",
    "run_job",
    "save_jobs",
    "slurm_options",
    "sweep_lock",
    "sweep_status",
]
